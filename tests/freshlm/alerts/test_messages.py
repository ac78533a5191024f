"""Slack messages every alert shares: the task failure alert names the task, try and error, with
the Airflow 3 log link, within Slack's limits."""

from __future__ import annotations

from freshlm.alerts.messages import SlackMessage, task_failure_alert, task_log_url
from tests.support.slack_text import text_of, within_limits

RUN_ID = "scheduled__2026-11-03T02:00:00+00:00"
LOG_URL = task_log_url("http://airflow.test:8080/", "freshlm_crawl", RUN_ID, "gate", 2)


def test_the_airflow_3_log_url_matches_airflow_s_own() -> None:
    assert LOG_URL == (
        "http://airflow.test:8080/dags/freshlm_crawl/runs/"
        "scheduled__2026-11-03T02%3A00%3A00%2B00%3A00/tasks/gate?try_number=2"
    )
    assert task_log_url("http://a/", "d", "r", "t", None, map_index=3) == (
        "http://a/dags/d/runs/r/tasks/t/mapped/3"
    )


def test_a_task_failure_alert_names_the_task_try_and_error() -> None:
    try:
        raise RuntimeError("feed https://courier.example/tech.rss answered 503\nsecond line")
    except RuntimeError as exc:
        error = exc
    message = task_failure_alert(
        dag_id="freshlm_crawl",
        run_id=RUN_ID,
        task_id="crawl",
        try_number=3,
        max_tries=2,
        exception=error,
        log_url=LOG_URL,
        map_index=1,
    )
    within_limits(message)
    shown = text_of(message)
    assert "freshlm_crawl.crawl[1]" in message.blocks[0]["text"]["text"]
    assert "*Try*\n3 of 3" in shown
    assert "RuntimeError: feed https://courier.example/tech.rss answered 503\nsecond line" in shown
    assert f"<{LOG_URL}|Airflow task log>" in shown and "*Clear* this task" in shown
    assert "RuntimeError: feed" in message.text and LOG_URL in message.text
    long = task_failure_alert(
        dag_id="d",
        run_id="r",
        task_id="t",
        try_number=1,
        max_tries=0,
        exception="x\n" * 500,
        log_url=None,
    )
    within_limits(long)
    assert "more lines" in text_of(long)


def test_the_fallback_text_is_escaped_and_clipped_without_a_broken_entity() -> None:
    message = task_failure_alert(
        dag_id="freshlm_crawl",
        run_id="manual__<!channel>",
        task_id="crawl",
        try_number=1,
        max_tries=0,
        exception=RuntimeError("<!everyone> & <https://evil.example|click>"),
        log_url=LOG_URL,
    )
    assert "<!" not in message.text and "<https://evil" not in message.text
    assert "manual__&lt;!channel&gt;" in message.text
    assert "&lt;!everyone&gt; &amp; &lt;https://evil.example|click&gt;" in message.text
    assert "&lt;!everyone&gt; &amp; &lt;https://evil.example|click&gt;" in text_of(message)
    long = SlackMessage(text="&" * 5000, blocks=message.blocks)
    assert len(long.text) <= 3000 and long.text.endswith("&amp;…")
