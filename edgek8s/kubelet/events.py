"""Events for pods (pulls, starts, kills, probe failures, back-off), sent from one task.

Events are best effort, as upstream's: a bounded queue that drops the oldest when full (masters
unreachable), and repeats of the same (object, reason, message) within ten minutes update the
existing Event's count instead of creating a new one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from typing import Any, Protocol

from edgek8s.kubelet.status import now_rfc3339
from edgek8s.model import errors

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
DEDUP_SECONDS = 600.0


class EventApi(Protocol):
    async def create(self, path: str, body: Any) -> Any: ...

    async def replace(self, path: str, body: Any) -> Any: ...


class EventRecorder:
    def __init__(self, api: EventApi, *, node_name: str, host: str, queue_size: int = 500) -> None:
        self._api = api
        self._node = node_name
        self._host = host
        self._queue: collections.deque[tuple[Obj, str, str, str]] = collections.deque(maxlen=queue_size)
        self._wake = asyncio.Event()
        self._seen: dict[tuple[str, str, str], tuple[float, Obj]] = {}

    def event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        self._queue.append((pod, kind, reason, message))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                pod, kind, reason, message = self._queue.popleft()
                try:
                    await self._send(pod, kind, reason, message)
                except errors.StatusError as exc:
                    logger.debug("event %s for %s dropped: %s", reason, pod["metadata"]["name"], exc.message)

    async def _send(self, obj: Obj, kind: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (str(meta.get("uid")), reason, message)
        now = now_rfc3339()
        seen = self._seen.get(key)
        path = f"/api/v1/namespaces/{namespace}/events"
        if seen and time.monotonic() - seen[0] < DEDUP_SECONDS:
            event = dict(seen[1])
            event["count"] = int(event.get("count", 1)) + 1
            event["lastTimestamp"] = now
            event["metadata"] = {k: v for k, v in event["metadata"].items() if k != "resourceVersion"}
            try:
                stored = await self._api.replace(f"{path}/{event['metadata']['name']}", event)
            except errors.NotFound:
                stored = None
            if stored is not None:
                self._seen[key] = (time.monotonic(), stored)
                return
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {"kind": obj.get("kind", "Pod"), "namespace": namespace, "name": meta["name"],
                               "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion", "v1")},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": "kubelet", "host": self._host}, "reportingComponent": "kubelet",
            "reportingInstance": self._node,
        }
        stored = await self._api.create(path, body)
        if len(self._seen) > 2000:
            cutoff = time.monotonic() - DEDUP_SECONDS
            self._seen = {k: v for k, v in self._seen.items() if v[0] > cutoff}
        self._seen[key] = (time.monotonic(), stored)
