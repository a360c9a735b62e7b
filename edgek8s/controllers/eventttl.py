"""Expiry of old Events: upstream gives each Event an etcd lease of ``--event-ttl`` (1 h). Pure.

Raft has no leases, so a leader-only sweep deletes Events last seen more than ``ttl`` ago.
``expired_events`` picks at most ``batch`` of them per sweep (oldest first), each deleted with its
resourceVersion as precondition so an Event bumped meanwhile (``count`` + 1) survives; a sweep that
hit the bound asks to run again soon, so a backlog drains at a bounded write rate instead of as one
burst of Raft commands.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import EVENTS, Delete, Plan
from edgek8s.model.timestamps import parse_time


def last_seen(event: Mapping[str, Any]) -> datetime.datetime | None:
    """The newest of the times an Event carries (core/v1 and events.k8s.io spellings)."""
    series = event.get("series") or {}
    times = [
        parse_time(event.get("lastTimestamp")),
        parse_time(event.get("eventTime")),
        parse_time(series.get("lastObservedTime") if isinstance(series, Mapping) else None),
        parse_time(event.get("firstTimestamp")),
        parse_time(p.meta(event).get("creationTimestamp")),
    ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def expired_events(
    events: Iterable[Mapping[str, Any]], now: datetime.datetime, *, ttl: float, batch: int, again_after: float
) -> Plan:
    plan = Plan()
    cutoff = now - datetime.timedelta(seconds=ttl)
    expired = []
    for event in events:
        seen = last_seen(event)
        if seen is not None and seen < cutoff:
            expired.append((seen, event))
    expired.sort(key=lambda pair: pair[0])
    for _, event in expired[:batch]:
        plan.actions.append(Delete(resource=EVENTS, namespace=p.namespace(event), name=p.name(event),
                                   uid=p.uid(event), resource_version=str(p.meta(event).get("resourceVersion") or "")))
    if len(expired) > batch:
        plan.requeue(again_after)
    return plan
