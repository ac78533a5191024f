"""
### FreshLM pre-flight

Checks, before the first night, that FreshLM is wired correctly on this deployment:
the configuration parses, the artifact store accepts a write/read/delete, and the sources
answer (the sandbox world in the embedded mode). Trigger it from the UI after any change of
configuration; each task's log shows the numbers (latencies, clock, URLs).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from freshlm.artifacts import dag_defaults


@dag(
    dag_id="freshlm_preflight",
    schedule=None,
    catchup=False,
    tags=["freshlm", "ops"],
    doc_md=__doc__,
    default_args=dag_defaults(retry_delay=timedelta(seconds=10)),
)
def freshlm_preflight():
    @task
    def check_settings() -> dict:
        from freshlm import preflight

        return preflight.check_settings()

    @task
    def check_store(_settings_report: dict) -> dict:
        from freshlm import preflight
        from freshlm.settings import get_settings

        return preflight.check_store(get_settings(), get_current_context()["run_id"])

    @task
    def check_world(_settings_report: dict) -> dict:
        from freshlm import preflight
        from freshlm.settings import get_settings

        return preflight.check_world(get_settings())

    report = check_settings()
    check_store(report)
    check_world(report)


freshlm_preflight()
