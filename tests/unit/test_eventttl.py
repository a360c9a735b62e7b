"""Event expiry: which Events a sweep deletes, in what order, and how many at a time."""

from __future__ import annotations

import datetime
from typing import Any

from edgek8s.controllers.actions import EVENTS, Delete
from edgek8s.controllers.eventttl import expired_events, last_seen
from tests.support.builders import NOW, meta, ts


def event(name: str, **times: Any) -> dict[str, Any]:
    return {"metadata": meta(name, age=times.pop("age", 7200.0)), **times}


def test_last_seen_takes_the_newest_time() -> None:
    assert last_seen(event("e", lastTimestamp=ts(10), firstTimestamp=ts(500))) == NOW - datetime.timedelta(seconds=10)
    assert last_seen(event("e", series={"lastObservedTime": ts(3)}, eventTime=ts(50))) == NOW - datetime.timedelta(
        seconds=3)
    assert last_seen({"metadata": {}}) is None
    assert last_seen({"metadata": {"creationTimestamp": ts(7)}}) == NOW - datetime.timedelta(seconds=7)


def test_sweep_deletes_expired_oldest_first_with_preconditions() -> None:
    events = [
        event("fresh", lastTimestamp=ts(60)),
        event("old", lastTimestamp=ts(4000)),
        event("older", lastTimestamp=ts(5000)),
        event("bumped", lastTimestamp=ts(10), firstTimestamp=ts(9000)),  # count+1 recently: keep
        event("series", series={"lastObservedTime": ts(30)}, eventTime=ts(8000)),
    ]
    plan = expired_events(events, NOW, ttl=3600, batch=10, again_after=1.0)
    deletes = [a for a in plan.actions if isinstance(a, Delete)]
    assert [d.name for d in deletes] == ["older", "old"]
    assert all(d.resource == EVENTS and d.resource_version == "7" and d.uid for d in deletes)
    assert plan.requeue_after is None


def test_sweep_is_bounded() -> None:
    events = [event(f"e{i}", lastTimestamp=ts(4000 + i)) for i in range(25)]
    plan = expired_events(events, NOW, ttl=3600, batch=10, again_after=0.5)
    assert len(plan.actions) == 10 and plan.requeue_after == 0.5
    assert next(a.name for a in plan.actions if isinstance(a, Delete)) == "e24"
