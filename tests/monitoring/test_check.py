"""The monitor's check on a store laid out night by night, with a real model server answering
the canaries: lag, gaps, missed curation and training, folded nights, rejection streaks, the
retraining it asks for, the history it keeps and the alert it writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from freshlm.airflow_local import free_port
from freshlm.monitoring.canaries import states
from freshlm.monitoring.check import run_check
from freshlm.monitoring.history import chart_series, read_history, record_check
from freshlm.monitoring.messages import monitor_alert
from freshlm.registry import PRODUCTION, Lineage, move_alias, publish_version
from freshlm.settings import Settings
from freshlm.store import Store, open_store
from tests.freshlm.evaluation.tiny_models import model_dirs
from tests.serving.inprocess import serving

CHECKED_AT = dt.datetime(2026, 11, 9, 6, tzinfo=dt.UTC)


def day(n: int) -> dict[str, str]:
    """The crawl window of night ``n`` (night 0 is the base corpus)."""
    start = dt.date(2026, 11, 1) + dt.timedelta(days=n)
    return {"start": f"{start}T00:00:00Z", "end": f"{start + dt.timedelta(days=1)}T00:00:00Z"}


def raw_shard(store: Store, n: int, newest: str | None = None) -> None:
    window = day(n)
    published = newest or window["start"].replace("T00", "T12")
    records = [{"id": f"{n:032x}", "published_at": published, "text": f"night {n}"}]
    with store.publisher(f"raw/news/night-{n}", kind="raw-shard") as pub:
        pub.write_jsonl("records.jsonl.gz", records)
        pub.set_manifest_fields(source="news", window=window, records=len(records))


def dataset(store: Store, n: int, role: str | None = None) -> str:
    dataset_id = f"ds-night-{n}"
    with store.publisher(f"datasets/{dataset_id}", kind="dataset") as pub:
        pub.write_jsonl("train.jsonl.gz", [{"id": "x", "text": "t"}])
        fields = {"dataset_id": dataset_id, "window": day(n)}
        pub.set_manifest_fields(**fields, **({"role": role} if role else {}))
    return dataset_id


def quarantined(store: Store, n: int) -> None:
    with store.publisher(f"quarantine/batches/night-{n}", kind="quarantined-batch") as pub:
        pub.write_bytes("batch.json", b"{}")
        pub.set_manifest_fields(window=day(n), severity="critical", candidate=f"c{n}")


def version(store: Store, folder: Path, tag: str, datasets: list[str], n: int) -> str:
    (folder / "generation_config.json").write_text(json.dumps({"tag": tag}))
    lineage = Lineage(
        kind="finetune" if n else "bootstrap",
        base_model="tests",
        dataset_ids=datasets,
        crawl_windows=[day(n)] if n else [],
    )
    return publish_version(store, folder, lineage=lineage)[0].version_id


def report(store: Store, facts: list[dict]) -> None:
    with store.publisher("reports/c/vs-b", kind="eval-report") as pub:
        doc = {"created_at": "2026-11-08T03:00:00Z", "facts": facts}
        pub.write_bytes("report.json", json.dumps(doc).encode())


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> dict:
    """Night 1 trained and promoted; night 2 refused by the gate; night 3 never crawled;
    night 4 published, never trained; night 5 crawled, never curated; night 6 and 7 published
    and trained together in one run (6 folded into 7's run); production trained on night 1."""
    import shutil

    home = tmp_path_factory.mktemp("monitor-home")
    store = open_store((home / "store").as_uri())
    base_dir = home / "model"
    shutil.copytree(model_dirs()[0], base_dir)
    base_corpus = dataset(store, 0, role="base-corpus")
    base = version(store, base_dir, "base", [base_corpus], 0)
    for n in (1, 2, 4, 5, 6, 7):
        raw_shard(store, n, newest="2026-11-08T21:30:00Z" if n == 7 else None)
    d1, d4, d6, d7 = (dataset(store, n) for n in (1, 4, 6, 7))
    quarantined(store, 2)
    night1 = version(store, base_dir, "night1", [d1], 1)
    version(store, base_dir, "night6+7", [d6, d7], 7)
    move_alias(store, PRODUCTION, base, actor="tests", reason="base")
    move_alias(store, PRODUCTION, night1, actor="tests", reason="night 1")
    report(store, [{"group": "new", "question": "Who opened the market?", "answer": "Ada Brook"}])
    return {"store": store, "home": home, "production": night1, "untrained": [d4]}


def settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"FRESHLM_HOME": str(home), **env})


def test_a_missed_night_is_reported_and_lag_past_the_threshold_asks_for_training(nights):
    store, home = nights["store"], nights["home"]
    with serving(store.root_uri, home) as url:
        check = run_check(store, settings(home), serve_url=url, checked_at=CHECKED_AT)
    fresh = check["freshness"]
    assert fresh["production"] == nights["production"]
    assert fresh["newest_document"] == "2026-11-08T21:30:00Z"
    assert fresh["production_window_end"] == day(1)["end"]
    assert fresh["lag_hours"] == pytest.approx(5 * 24 + 21.5)
    assert fresh["gaps"] == [day(3)]
    assert [u["window"] for u in fresh["uncurated"]] == [day(5)]
    assert fresh["uncurated"][0]["shards"] == [store.uri_for("raw/news/night-5")]
    assert [u["dataset_id"] for u in fresh["untrained"]] == nights["untrained"]
    assert [f["window"] for f in fresh["folded"]] == [day(6)]
    kinds = {f["kind"]: f for f in check["findings"]}
    assert {"freshness-lag", "missed-crawl", "missed-curation", "missed-training"} <= set(kinds)
    assert kinds["folded"]["severity"] == "info"
    assert "freshlm_crawl" in kinds["missed-crawl"]["action"]
    # Past the threshold (48 h by default) the untrained datasets are trained on.
    assert check["retrain"] == {
        "dag_id": "freshlm_train",
        "conf": {"datasets": nights["untrained"]},
    }
    # The canary was asked over HTTP and answered by production.
    canaries = check["canaries"]
    assert canaries["asked"] == 1 and canaries["error"] is None
    assert canaries["versions"] == [nights["production"]]
    assert canaries["answers"][0]["question"] == "Who opened the market?"
    assert "stale-server" not in kinds and "server-unreachable" not in kinds

    alert = monitor_alert(check, log_url="http://airflow/log")
    text = alert.text + json.dumps(alert.blocks)
    assert "never curated" in text and "freshlm_curate" in text and "freshlm_train" in text
    assert "http://airflow/log" in text


def test_below_the_threshold_nothing_is_triggered_and_a_dead_server_is_a_finding(nights):
    store, home = nights["store"], nights["home"]
    relaxed = settings(home, FRESHLM_MONITOR_MAX_LAG_HOURS="1000")
    dead = f"http://127.0.0.1:{free_port()}"
    check = run_check(store, relaxed, serve_url=dead, checked_at=CHECKED_AT)
    assert check["retrain"] is None
    kinds = {f["kind"]: f for f in check["findings"]}
    assert "freshness-lag" not in kinds
    assert "freshlm.serving" in kinds["server-unreachable"]["action"]
    assert check["canaries"]["asked"] == 0


def test_rejection_streaks_are_counted_and_alerted(nights, tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    for n in (1, 2, 3):
        raw_shard(store, n)
    dataset(store, 1)
    quarantined(store, 2)
    quarantined(store, 3)
    for i, outcome in enumerate(("promoted", "rejected", "rejected", "rejected")):
        store.write_json(
            f"registry/decisions/{i:032x}/d-{outcome}.json",
            {"outcome": outcome, "decided_at": f"2026-11-0{i + 1}T05:00:00Z"},
        )
    check = run_check(
        store, settings(tmp_path), serve_url="http://127.0.0.1:9", checked_at=CHECKED_AT
    )
    assert check["freshness"]["gate_rejection_streak"] == 2
    assert check["freshness"]["promotion_rejection_streak"] == 3
    kinds = {f["kind"] for f in check["findings"]}
    assert {"gate-rejections", "promotion-rejections", "no-production"} <= kinds


def test_each_check_goes_to_the_history_the_operator_page_charts(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    for hour, lag in ((1, 10.0), (2, 60.0)):
        check = {
            "checked_at": f"2026-11-09T0{hour}:00:00Z",
            "freshness": {
                "lag_hours": lag,
                "gate_rejection_streak": 0,
                "promotion_rejection_streak": hour - 1,
            },
            "canaries": {"accuracy": 0.5},
            "findings": [],
        }
        record_check(store, check, f"scheduled__2026-11-09T0{hour}:00:00+00:00")
    record_check(store, check, "scheduled__2026-11-09T02:00:00+00:00")  # a rerun: same record
    history = read_history(store)
    assert len(history) == 2
    series = chart_series(history)
    assert series["lag_hours"] == [10.0, 60.0]
    assert series["promotion_rejection_streak"] == [0, 1]


@pytest.mark.parametrize(
    ("expected", "said", "right"),
    [
        ("Ada Brook", "The market was opened by ada brook.", True),
        ("5,200 mAh", "It has a 5200 mAh battery", True),
        ("$64", "It costs $649.", False),
        ("Ada Brook", "Nobody", False),
        ("30 months", "A 30-month warranty.", True),  # as the evaluator reads it
        ("5,200 mAh", "It has a 5,200mAh battery.", True),
    ],
)
def test_a_canary_answer_counts_when_it_states_the_fact(expected, said, right):
    assert states(expected, said) is right


def arxiv_shard_with_missed_nights(store: Store, n: int, missed_from: int) -> None:
    """Night ``n``'s arXiv shard, whose crawl also fetched nights ``missed_from``..``n - 1``."""
    window = day(n)
    records = [
        {"id": f"{k:032x}", "published_at": day(k)["start"].replace("T00", "T12"), "text": "p"}
        for k in range(missed_from, n + 1)
    ]
    with store.publisher(f"raw/papers/night-{n}", kind="raw-shard") as pub:
        pub.write_jsonl("records.jsonl.gz", records)
        folded = {"start": day(missed_from)["start"], "end": window["start"]}
        pub.set_manifest_fields(source="papers", window=window, records=3, folded=folded)


def test_missed_nights_folded_into_a_later_crawl_are_alerted_until_curated(tmp_path):
    """Nights 2 and 3 never ran; night 4's arXiv crawl fetched them with its own window."""
    store = open_store((tmp_path / "store").as_uri())
    raw_shard(store, 1)
    dataset(store, 1)
    raw_shard(store, 4)
    arxiv_shard_with_missed_nights(store, 4, missed_from=2)
    relaxed = settings(tmp_path, FRESHLM_MONITOR_MAX_LAG_HOURS="1000")
    dead = f"http://127.0.0.1:{free_port()}"

    check = run_check(store, relaxed, serve_url=dead, checked_at=CHECKED_AT)
    fresh = check["freshness"]
    missed = {"start": day(2)["start"], "end": day(4)["start"]}
    assert fresh["gaps"] == []  # fetched, by night 4's crawl: nothing to crawl again
    assert fresh["folded_crawls"] == [
        {
            "window": missed,
            "crawled_in": day(4),
            "shards": sorted(store.uri_for(f"raw/{s}/night-4") for s in ("news", "papers")),
            "curated": False,
        }
    ]
    kinds = {f["kind"]: f for f in check["findings"]}
    left = kinds["folded-uncurated"]
    assert left["severity"] == "warning"
    assert f"{missed['start']}..{missed['end']}" in left["what"]
    assert day(4)["start"] in left["what"] and "freshlm_curate" in left["action"]
    alert = monitor_alert(check, log_url=None)
    assert alert is not None and f"{missed['start']}..{missed['end']}" in alert.text

    # Night 4's batch is curated, the missed nights' papers with it: recorded, not alerted.
    dataset(store, 4)
    check = run_check(store, relaxed, serve_url=dead, checked_at=CHECKED_AT)
    assert check["freshness"]["folded_crawls"][0]["curated"] is True
    kinds = {f["kind"]: f for f in check["findings"]}
    assert "folded-uncurated" not in kinds
    assert kinds["folded-crawl"]["severity"] == "info"
