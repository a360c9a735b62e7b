"""ControllerHistory: a recorded history of what controllers and the scheduler wrote, for chaos checks.

Watches pods and ReplicaSets of one namespace through whichever master answers, resuming from the last
resourceVersion on another master when one dies (a 410 would be a gap: counted, and checks fail on it).
Every event is kept with its receive time (time.monotonic()) and resourceVersion. A *controller write*
is a ReplicaSet event, a pod created or deleted (marked terminating by a graceful delete, or removed at
once), or a pod bound or adopted; pod status updates and the final delete of a terminating pod (what
hollow kubelets write) are not, nor are the leader's Lease renewals (not watched here): a leader with
nothing to do makes no controller write. An error response is retried like a dropped connection (a
recorder that stopped would look like controllers that stopped).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True, slots=True)
class Observed:
    at: float
    type: str
    resource: str
    uid: str
    name: str
    rv: int
    node: str
    controller_write: bool
    obj: dict[str, Any]


@dataclass
class ControllerHistory:
    urls: Callable[[], list[str]]  # the masters to try, in order of preference
    namespace: str = "default"
    events: list[Observed] = field(default_factory=list)
    gaps: int = 0
    _last: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod uid -> (node, ownerReferences json)
    _terminating: set[str] = field(default_factory=set)  # pods seen with a deletionTimestamp

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(self._follow(session, "/api/v1", "pods"),
                                 self._follow(session, "/apis/apps/v1", "replicasets"))

    async def _follow(self, session: aiohttp.ClientSession, prefix: str, plural: str) -> None:
        rv = 0
        turn = 0
        while True:
            urls = self.urls()
            url = urls[turn % len(urls)]
            turn += 1
            path = f"{url}{prefix}/namespaces/{self.namespace}/{plural}"
            try:
                if rv == 0:
                    async with session.get(path, timeout=aiohttp.ClientTimeout(total=5)) as response:
                        response.raise_for_status()  # a Status body (503 mid-election) is no list
                        body = await response.json()
                    rv = int(body["metadata"]["resourceVersion"])
                    for obj in body["items"]:
                        self._record("ADDED", plural, obj)
                params = {"watch": "1", "resourceVersion": str(rv), "allowWatchBookmarks": "true"}
                async with session.get(path, params=params,
                                       timeout=aiohttp.ClientTimeout(total=None, sock_read=5)) as response:
                    response.raise_for_status()
                    async for line in response.content:
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            self.gaps += 1
                            rv = 0
                            break
                        rv = max(rv, int(event["object"]["metadata"]["resourceVersion"]))
                        if event["type"] != "BOOKMARK":
                            self._record(event["type"], plural, event["object"])
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                await asyncio.sleep(0.02)

    def _record(self, kind: str, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        node = (obj.get("spec") or {}).get("nodeName") or ""
        marked = plural == "pods" and bool(meta.get("deletionTimestamp"))
        if plural == "replicasets" or kind == "ADDED":
            controller_write = True
        elif kind == "DELETED":
            controller_write = meta["uid"] not in self._terminating  # else its kubelet's final delete
        else:
            owners = json.dumps(meta.get("ownerReferences") or [], sort_keys=True)
            controller_write = (self._last.get(meta["uid"], ("", "")) != (node, owners)
                                or (marked and meta["uid"] not in self._terminating))  # a graceful delete
        if plural == "pods":
            self._last[meta["uid"]] = (node, json.dumps(meta.get("ownerReferences") or [], sort_keys=True))
            if marked:
                self._terminating.add(meta["uid"])
        self.events.append(Observed(time.monotonic(), kind, plural, meta["uid"], meta["name"],
                                    int(meta["resourceVersion"]), node, controller_write, obj))

    def first_controller_write_after(self, index: int) -> Observed | None:
        """The earliest-received controller write committed after Raft index ``index``."""
        found = [e for e in self.events if e.controller_write and e.rv > index]
        return min(found, key=lambda e: e.at) if found else None

    def pods_bound_twice(self) -> dict[str, set[str]]:
        nodes: dict[str, set[str]] = {}
        for event in self.events:
            if event.resource == "pods" and event.node:
                nodes.setdefault(event.uid, set()).add(event.node)
        return {uid: found for uid, found in nodes.items() if len(found) > 1}
