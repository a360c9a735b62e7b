"""Expiry of old Events: upstream gives each Event an etcd lease of ``--event-ttl`` (1 h). Pure.

Raft has no leases, so a leader-only sweep deletes Events last seen more than ``ttl`` ago.
``expired_events`` picks at most ``batch`` of them per sweep (oldest first), each deleted with its
resourceVersion as precondition so an Event bumped meanwhile (``count`` + 1) survives; a sweep that
hit the bound asks to run again soon, so a backlog drains at a bounded write rate instead of as one
burst of Raft commands.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import ClusterClient
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import EVENTS, Delete, Plan
from edgek8s.controllers.runner import execute
from edgek8s.model import errors
from edgek8s.model.resources import by_id
from edgek8s.model.timestamps import parse_time


def last_seen(event: Mapping[str, Any]) -> datetime.datetime | None:
    """When the Event last happened: the newest of the times it carries (core/v1 and events.k8s.io
    spellings), its creation only when it carries none. Every recorder write (a new Event, a count
    bump) moves one of them, so this stands for upstream's "TTL since the last write"."""
    series = event.get("series") or {}
    times = [
        parse_time(event.get("lastTimestamp")),
        parse_time(event.get("eventTime")),
        parse_time(series.get("lastObservedTime") if isinstance(series, Mapping) else None),
        parse_time(event.get("firstTimestamp")),
    ]
    found = [t for t in times if t is not None]
    if found:
        return max(found)
    return parse_time(p.meta(event).get("creationTimestamp"))


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


# --- the loop -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EventTTLSettings:
    ttl: float = 3600.0  # upstream's --event-ttl
    interval: float = 60.0  # between sweeps
    batch: int = 500  # deletions per sweep at most
    again_after: float = 1.0  # the next sweep, when one hit the bound


class EventTTLController:
    """A leader-only periodic sweep: list Events, delete the expired ones (bounded), sleep."""

    name = "event-ttl-controller"

    def __init__(self, *, settings: EventTTLSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or EventTTLSettings()
        self._clock = clock or SystemClock()
        self.deleted = 0

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        recorder = EventRecorder(client, component="event-ttl-controller")
        while True:
            # This replica's view (no Raft barrier: a barrier is a journal entry and an fdatasync on every
            # master, once a minute on an idle cluster). Staleness is harmless: deletions are preconditioned
            # on uid and resourceVersion, and an Event not yet seen is swept by the next pass.
            listed = await client.list(by_id(EVENTS), consistent=False)
            plan = expired_events(listed.items, self._clock.now(), ttl=self.settings.ttl, batch=self.settings.batch,
                                  again_after=self.settings.again_after)
            for action in plan.writes():
                try:
                    await execute(client, Plan(actions=[action]), recorder=recorder)
                    self.deleted += 1
                except errors.Conflict as exc:
                    if isinstance(exc, errors.Fenced):
                        raise
                    # Bumped since the list (count + 1): it lives on.
            delay = plan.requeue_after if plan.requeue_after is not None else self.settings.interval
            await asyncio.sleep(delay)
