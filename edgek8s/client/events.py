"""EventRecorder: core/v1 Events about objects, as client-go's record.EventRecorder, for ``kubectl describe``.

``event()`` never blocks and never fails the caller: it queues (bounded; beyond ``max_pending`` events
are dropped and counted) and ``run()`` writes them. A repeat of the same (object, type, reason, message,
component) within the aggregation memory bumps ``count`` and ``lastTimestamp`` of the Event already
written instead of creating a new one, so a loop that fails the same way every resync writes one Event.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

logger = logging.getLogger(__name__)

EVENTS = by_id(resource_id("", "events"))
NORMAL, WARNING = "Normal", "Warning"


def rfc3339(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Pending:
    involved: Obj
    type: str
    reason: str
    message: str
    at: float


@dataclass(slots=True)
class _Written:
    namespace: str
    name: str
    count: int
    first: str


class EventRecorder:
    def __init__(
        self,
        client: ClusterClient,
        *,
        component: str,
        host: str = "",
        max_pending: int = 1000,
        memory: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.component = component
        self._host = host
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_pending)
        self._written: OrderedDict[tuple[str, ...], _Written] = OrderedDict()
        self._memory = memory
        self._clock = clock
        self.dropped = 0

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj`` (a cached object is fine: only its identity is kept)."""
        meta = obj.get("metadata") or {}
        involved = {
            "kind": obj.get("kind", ""),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        try:
            self._queue.put_nowait(_Pending(involved, type_, reason, message[:1024], self._clock()))
        except asyncio.QueueFull:
            self.dropped += 1

    def normal(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Obj, reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    async def run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except errors.Fenced:
                raise
            except errors.StatusError as exc:
                logger.info("could not record event %s on %s/%s: %s", pending.reason,
                            pending.involved["namespace"], pending.involved["name"], exc.message)

    async def _write(self, pending: _Pending) -> None:
        involved = pending.involved
        key = (involved["uid"], involved["kind"], involved["namespace"], involved["name"], pending.type,
               pending.reason, pending.message)
        now = rfc3339(pending.at)
        written = self._written.get(key)
        if written is not None:
            try:
                await self._client.patch(EVENTS, written.namespace, written.name,
                                         {"count": written.count + 1, "lastTimestamp": now})
                written.count += 1
                self._written.move_to_end(key)
                return
            except errors.NotFound:
                del self._written[key]  # expired meanwhile: write a new one
        namespace = involved["namespace"] or "default"
        name = f"{involved['name']}.{int(pending.at * 1e9):x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": pending.reason,
            "message": pending.message,
            "type": pending.type,
            "source": {"component": self.component, **({"host": self._host} if self._host else {})},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self._host,
        }
        await self._client.create(EVENTS, event)
        self._written[key] = _Written(namespace, name, 1, now)
        while len(self._written) > self._memory:
            self._written.popitem(last=False)
