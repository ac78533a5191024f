"""Which batch a curate run works on, from the crawl's events or from Params."""

from __future__ import annotations

import logging

import pytest

from freshlm.curation.batch import BatchError, resolve_batch

NIGHT1 = {"start": "2026-11-02T00:00:00Z", "end": "2026-11-03T00:00:00Z"}
NIGHT2 = {"start": "2026-11-03T00:00:00Z", "end": "2026-11-04T00:00:00Z"}


def _event(window: dict, *shards: str) -> dict:
    return {"shards": list(shards), "window": window}


def test_the_newest_event_is_curated_and_a_recrawl_of_its_night_is_silent(caplog):
    caplog.set_level(logging.WARNING, logger="freshlm.curation.batch")
    events = [_event(NIGHT1, "s3://b/raw/n1-old"), _event(NIGHT1, "s3://b/raw/n1")]
    batch = resolve_batch({}, events)
    assert batch == {"shards": ["s3://b/raw/n1"], "window": NIGHT1, "accept": None}
    assert not caplog.records


def test_an_older_night_folded_into_the_run_is_named_with_the_params_that_curate_it(caplog):
    caplog.set_level(logging.WARNING, logger="freshlm.curation.batch")
    events = [_event(NIGHT1, "s3://b/raw/n1"), _event(NIGHT2, "s3://b/raw/n2")]
    assert resolve_batch({}, events)["window"] == NIGHT2
    (record,) = caplog.records
    assert "not curated" in record.getMessage()
    assert "window_start=2026-11-02T00:00:00Z" in record.getMessage()
    assert "s3://b/raw/n1" in record.getMessage()


def test_params_win_over_events_and_must_name_a_window():
    params = {"shards": ["s3://b/raw/x"], "window_start": NIGHT2["start"], "window_end": None}
    with pytest.raises(BatchError, match="window_start and window_end"):
        resolve_batch(params, [_event(NIGHT1, "s3://b/raw/n1")])
    params["window_end"] = NIGHT2["end"]
    assert resolve_batch(params, [_event(NIGHT1, "s3://b/raw/n1")])["shards"] == ["s3://b/raw/x"]


def test_a_manual_run_without_shards_is_refused_with_what_to_give():
    with pytest.raises(BatchError, match="Params shards, window_start and window_end"):
        resolve_batch({}, [])


def test_accepting_a_refused_batch_needs_a_reason():
    params = {"accept_batch": True, "accept_reason": "  "}
    with pytest.raises(BatchError, match="accept_reason"):
        resolve_batch(params, [_event(NIGHT1, "s3://b/raw/n1")])
    params["accept_reason"] = "spam came from one bot; removed upstream"
    batch = resolve_batch(params, [_event(NIGHT1, "s3://b/raw/n1")])
    assert batch["accept"] == {"reason": "spam came from one bot; removed upstream"}
