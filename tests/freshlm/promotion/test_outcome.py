"""The promotion's end of a run reads the evaluation report from the store (through
:mod:`freshlm.artifacts`), never through the evaluation stage's code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from freshlm.artifacts import REPORT_KIND, report_prefix
from freshlm.promotion.outcome import load_report
from tests.freshlm.promotion.conftest import make_report

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import freshlm.promotion
for module in pkgutil.iter_modules(freshlm.promotion.__path__):
    importlib.import_module("freshlm.promotion." + module.name)
print(json.dumps(sorted(sys.modules)))
"""
FORBIDDEN = ("freshlm.evaluation", "freshlm.curation", "training", "sandbox", "expectations")


def test_the_promotion_stage_imports_no_other_stage():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout)
    assert "freshlm.promotion.outcome" in modules
    loaded = [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert loaded == []


def test_load_report_reads_the_published_report(store):
    report = make_report()
    summary = {k: report[k] for k in ("candidate", "baseline", "uri")}
    with pytest.raises(RuntimeError, match="file:///store/reports/r1 is not published"):
        load_report(store, summary)
    prefix = report_prefix(report["candidate"]["version_id"], report["baseline"]["version_id"])
    with store.publisher(prefix, kind=REPORT_KIND) as pub:
        pub.write_bytes("report.json", json.dumps(report).encode())
    assert load_report(store, summary) == report
