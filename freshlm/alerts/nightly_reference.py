"""The nightly deadline as an Airflow 3 deadline reference: the first ``HH:MM`` UTC after a run
is created.

Airflow's built-in references count from a run's logical date or queue time plus a fixed
interval. The nightly chain needs a wall-clock time instead: the crawl is scheduled, but
curate, train and evaluate run when the Asset before them is updated (no logical date), each
at its own hour, and all of them must be done by the same 08:00. So every DAG of the chain
carries this reference with a zero interval, and a run of any of them still going at the first
deadline after it was created alerts (:mod:`freshlm.alerts.deadline`). A run created after
the day's deadline (a manual rerun at noon) counts toward the next night's.

The scheduler evaluates references from its own copy of the class, so the FreshLM plugin
registers it (``deadline_references``); importing this module needs Airflow's task SDK.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, ClassVar

from airflow.sdk.definitions.deadline import BaseDeadlineReference, deadline_reference

#: The key the reference's type is serialized under (``REFERENCE_TYPE_FIELD`` of Airflow's).
_TYPE_FIELD = "reference_type"


def next_deadline(after: dt.datetime, time_of_day: dt.time) -> dt.datetime:
    """The first ``time_of_day`` (UTC) strictly after ``after`` (an aware datetime)."""
    after = after.astimezone(dt.UTC)
    same_day = dt.datetime.combine(after.date(), time_of_day, tzinfo=dt.UTC)
    return same_day if same_day > after else same_day + dt.timedelta(days=1)


@deadline_reference
@dataclasses.dataclass(frozen=True)
class NightlyDeadline(BaseDeadlineReference):
    """The first ``time_of_day`` (``HH:MM[:SS]`` UTC) after the run's creation."""

    time_of_day: str = "08:00:00"
    #: Nothing is read from the run: the reference is evaluated when the run is created.
    required_kwargs: ClassVar[set[str]] = set()

    def serialize_reference(self) -> dict[str, Any]:
        return {_TYPE_FIELD: self.reference_name, "time_of_day": self.time_of_day}

    @classmethod
    def deserialize_reference(cls, reference_data: dict[str, Any]) -> NightlyDeadline:
        return cls(time_of_day=str(reference_data["time_of_day"]))

    def _evaluate_with(self, *, session: Any = None, **kwargs: Any) -> dt.datetime:
        return next_deadline(dt.datetime.now(dt.UTC), dt.time.fromisoformat(self.time_of_day))
