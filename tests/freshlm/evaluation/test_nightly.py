"""A night's evaluation with its inputs gathered from the store: retention probes and old text
come only from published datasets (the base corpus among them), and the stage imports neither
another stage nor the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from freshlm.evaluation.config import EvalConfig, EvalConfigError
from freshlm.evaluation.nightly import configured_eval, run_evaluation
from freshlm.registry import Lineage, publish_version
from freshlm.settings import Settings
from freshlm.store import open_store
from tests.freshlm.evaluation import tiny_models

CONFIG = EvalConfig(
    batch_size=8, latency_prompts=1, latency_new_tokens=2, threads=1, heldout_max_docs=4,
    crows_max_pairs=4,
)  # fmt: skip
BASE_WINDOW = {"start": "2025-01-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"}
DAY1 = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
#: Packages the evaluation stage must never load: other stages, the sandbox, the DAG files.
FORBIDDEN = ("sandbox", "training", "crawlers", "expectations", "dags", "freshlm.curation")

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import freshlm.evaluation
for module in pkgutil.iter_modules(freshlm.evaluation.__path__):
    importlib.import_module("freshlm.evaluation." + module.name)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_evaluation_is_configured_by_its_setting_and_names_a_wrong_field():
    """``FRESHLM_EVAL_CONFIG`` sets EvalConfig fields (the rest keep their defaults), travels
    to subprocesses unchanged, and a wrong field fails naming the variable and the field."""
    assert configured_eval(Settings.from_env({})) == EvalConfig()
    settings = Settings.from_env(
        {"FRESHLM_EVAL_CONFIG": '{"crows_max_pairs": 300, "dtype": "bfloat16"}'}
    )
    assert configured_eval(settings) == EvalConfig(crows_max_pairs=300, dtype="bfloat16")
    assert Settings.from_env(settings.as_env()) == settings
    for doc, named in (
        ('{"crows_pairs": 300}', "unknown field(s) 'crows_pairs'"),
        ('{"crows_max_pairs": -1}', "EvalConfig.crows_max_pairs = -1"),
        ('{"dtype": "float16"}', "EvalConfig.dtype = 'float16'"),
    ):
        with pytest.raises(EvalConfigError, match=r"^FRESHLM_EVAL_CONFIG: ") as err:
            configured_eval(Settings.from_env({"FRESHLM_EVAL_CONFIG": doc}))
        assert named in str(err.value)


def test_the_evaluation_stage_imports_no_other_stage_nor_the_sandbox():
    """Every module of freshlm.evaluation (nightly among them) loads without any other stage
    or the sandbox: it reads what they produce from the store, and the world over HTTP."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout)
    assert "freshlm.evaluation.nightly" in modules and "freshlm.evaluation.evaluate" in modules
    loaded = [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert loaded == []


def docs(prefix: str, texts: list[str]) -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "title": "", "text": text, "language": "ko" if i == 4 else "en"}
        for i, text in enumerate(texts)
    ]


def publish_dataset(store, dataset_id, window, train, heldout, role=None) -> None:
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", train)
        pub.write_jsonl("heldout.jsonl.gz", heldout)
        fields = {"dataset_id": dataset_id, "window": window}
        pub.set_manifest_fields(**fields, **({"role": role} if role else {}))


OLD_TEXTS = [
    *tiny_models.OLD_TEXTS,
    "The Vell valley railway opened in 1902 and reached Tessford harbour by 1910.",
    "Harbour master Ilse Marr counted 300 boats at the Tessford Lantern Festival in 2019.",
]


@pytest.fixture
def night(tmp_path):
    """A store with the tiny baseline as production's stand-in and a candidate trained on day 1;
    the world is not reachable (no fact probes)."""
    store = open_store(f"file://{tmp_path / 'store'}")
    publish_dataset(store, "day1", DAY1, docs("new", tiny_models.NEW_TEXTS), [
        {"id": "new-h", "text": tiny_models.NEW_TEXTS[0]}
    ])  # fmt: skip
    baseline_dir, candidate_dir = tiny_models.model_dirs()
    baseline, _ = publish_version(store, baseline_dir, lineage=Lineage(kind="bootstrap"))
    candidate, _ = publish_version(
        store,
        candidate_dir,
        lineage=Lineage(
            kind="finetune",
            parent_version=baseline.version_id,
            dataset_ids=("day1",),
            crawl_windows=(DAY1,),
        ),
    )
    settings = Settings.from_env(
        {
            "FRESHLM_HOME": str(tmp_path / "home"),
            "FRESHLM_WORLD_URL": "http://127.0.0.1:9",
            "FRESHLM_HTTP_TIMEOUT_S": "2",
        }
    )
    request = {
        "candidate": candidate.version_id,
        "baseline": baseline.version_id,
        "dataset_ids": ["day1"],
        "windows": [DAY1],
    }
    return store, request, settings


def evaluate_night(night):
    store, request, settings = night
    return run_evaluation(store, request, config=CONFIG, settings=settings)


def test_retention_comes_from_the_published_base_corpus(night):
    store = night[0]
    publish_dataset(
        store, "base", BASE_WINDOW, docs("old", OLD_TEXTS), docs("oldh", OLD_TEXTS[:3]),
        role="base-corpus",
    )  # fmt: skip
    report = evaluate_night(night)
    counts = report["counts"]
    assert counts["old"] > 0 and counts["old_texts"] == 3  # the base corpus's held-out split
    assert counts["new"] > 0 and counts["new_texts"] == 1
    assert "retention_acc" not in counts["unmeasured"] and "ppl_old" not in counts["unmeasured"]
    assert counts["world_new"] == counts["world_old"] == 0  # the world was not reachable
    probes = {p.split("/")[1] for p in store.list_published("probes/")}
    assert probes == {"base", "day1"}


def test_without_a_base_corpus_or_earlier_dataset_retention_is_unmeasured(night, caplog):
    caplog.set_level("INFO")
    report = evaluate_night(night)
    counts = report["counts"]
    assert counts["old"] == counts["old_texts"] == 0 and counts["new"] > 0
    assert counts["unmeasured"]["retention_acc"] == "no retention items"
    assert counts["unmeasured"]["ppl_old"] == "no held-out old text"
    assert report["candidate"]["metrics"]["retention_acc"] is None
    assert report["comparison"]["retention_drop"] is None
    assert "no retention probes or old text" in caplog.text


def test_the_nightly_evaluation_keeps_the_configured_number_of_local_model_copies(night):
    """Earlier nights' copies on the worker go once they are beyond
    ``FRESHLM_MODEL_COPIES_KEEP``; tonight's two versions stay."""
    import os
    import time

    from freshlm.registry.local_copies import MARKER

    store, request, settings = night
    models = settings.home / "work" / "evaluation" / "models"
    last_week = time.time() - 7 * 86400
    for stale in ("a" * 32, "b" * 32):
        (models / stale).mkdir(parents=True)
        (models / stale / "model.safetensors").write_bytes(b"0" * 1000)
        (models / stale / MARKER).write_text("sha\n")
        os.utime(models / stale / MARKER, (last_week, last_week))
    settings = Settings.from_env({**settings.as_env(), "FRESHLM_MODEL_COPIES_KEEP": "2"})
    run_evaluation(store, request, config=CONFIG, settings=settings)
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [request["baseline"], request["candidate"]]
    )
