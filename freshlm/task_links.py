"""Extra links on FreshLM's tasks in the Airflow UI, to the console's pages.

* "Data Docs" on ``freshlm_curate.gate_batch``: the gate's Great Expectations site;
* "Evaluation report" on ``freshlm_evaluate.evaluate``: the candidate's report page;
* "Model card" on ``freshlm_evaluate.promote``: the promoted version's page (card, reports).

Airflow 3 computes an operator's extra links on the worker when the task ends and keeps each
in an XCom (``_link_<class>``); the UI reads that XCom back. So each link here is built from
the task's own return value, and a task that returned nothing (it failed first) has an empty,
disabled link. The DAG files attach the links to their tasks with :func:`attach`; this module
is in the core (not in :mod:`freshlm.console`) because workers build the links.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperatorLink

from freshlm.alerts.links import model_url, store_file_url

log = logging.getLogger(__name__)


def _returned(ti_key: Any) -> Mapping[str, Any] | None:
    """The task's return value, or None when it returned nothing (it failed first)."""
    from airflow.sdk.execution_time.xcom import XCom  # the configured XCom backend

    value = XCom.get_value(ti_key=ti_key, key="return_value")
    return value if isinstance(value, Mapping) else None


class DataDocsLink(BaseOperatorLink):
    """The gate's Data Docs, from ``gate_batch``'s ``data_docs_url`` (a store URI)."""

    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        gate = _returned(ti_key)
        if not gate or not gate.get("data_docs_url"):
            return ""
        from freshlm.alerts.pages import stored_file_page

        return stored_file_page(gate["data_docs_url"]) or ""


class EvaluationReportLink(BaseOperatorLink):
    """The evaluation report's page, from ``evaluate``'s report summary (the pair compared)."""

    name = "Evaluation report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from freshlm.artifacts import report_prefix
        from freshlm.evaluation.report import REPORT_HTML

        report = _returned(ti_key)
        if not report:
            return ""
        candidate = report["candidate"]["version_id"]
        baseline = report["baseline"]["version_id"]
        return store_file_url(f"{report_prefix(candidate, baseline)}/{REPORT_HTML}")


class ModelCardLink(BaseOperatorLink):
    """The promoted version's page, from ``promote``'s decision record."""

    name = "Model card"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        record = _returned(ti_key)
        version = record and (record.get("production_after") or record.get("candidate"))
        return model_url(version) if isinstance(version, str) and version else ""


def attach(task_output: Any, *links: BaseOperatorLink) -> Any:
    """Give the task behind ``task_output`` (what calling a ``@task`` returns) these extra
    links; returns ``task_output`` so the DAG's wiring reads on."""
    operator = task_output.operator
    operator.operator_extra_links = (*operator.operator_extra_links, *links)
    return task_output
