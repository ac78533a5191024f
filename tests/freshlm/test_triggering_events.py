"""Triggering Asset events are read oldest first, whatever order Airflow hands them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from freshlm.triggering_events import extras_oldest_first, triggering_extras


@dataclass
class Event:
    extra: dict
    timestamp: datetime


def _at(hour: int) -> datetime:
    return datetime(2026, 11, 3, hour, tzinfo=UTC)


def test_events_are_sorted_by_their_timestamp_not_by_the_order_given():
    # The order Airflow's execution API returned in CI: the newest event was not last.
    events = [Event({"n": 2}, _at(2)), Event({"n": 4}, _at(4)), Event({"n": 1}, _at(1))]
    assert [e["n"] for e in extras_oldest_first(events)] == [1, 2, 4]


def test_only_the_asked_assets_events_and_none_for_a_manual_run():
    batch, other = object(), object()
    context = {"triggering_asset_events": {batch: [Event({"n": 1}, _at(1))], other: []}}
    assert triggering_extras(context, batch) == [{"n": 1}]
    assert triggering_extras({"triggering_asset_events": {}}, batch) == []
