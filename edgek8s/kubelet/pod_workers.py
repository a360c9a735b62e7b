"""One task per pod uid (upstream ``pod_workers.go``): updates are coalesced, kills are sticky.

```
 update(uid, pod) ──► pending[uid] = latest pod ──wake──► worker(uid): sync_pod(latest) ─► wait
 kill(uid)        ──► pending[uid] = KILL (never overwritten by a later update) ──► kill_pod ─► worker ends
```
A worker runs one sync at a time, so two syncs of one pod never overlap; syncs of different pods run
concurrently. A worker with nothing pending sleeps until woken, until the delay its last sync asked
for, or until the resync period, whichever comes first (level-triggered: a missed wake-up only delays).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edgek8s._util.waiting import wait_event

logger = logging.getLogger(__name__)
Obj = dict[str, Any]


@dataclass(slots=True)
class _Pending:
    pod: Obj | None
    kill: bool = False
    grace: float | None = None


class PodWorkers:
    def __init__(
        self,
        *,
        sync: Callable[[Obj], Awaitable[float | None]],
        kill: Callable[[str, Obj | None, float | None], Awaitable[None]],
        resync_period: float,
        max_concurrent: int = 8,
    ) -> None:
        self._sync = sync
        self._kill = kill
        self._resync = resync_period
        self._pending: dict[str, _Pending] = {}
        self._latest: dict[str, Obj] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Podman serialises much of its work; a few concurrent syncs keep it busy without a pile-up.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._stopping = False

    def uids(self) -> set[str]:
        return set(self._tasks)

    def update(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        pending = self._pending.get(uid)
        if pending is not None and pending.kill:
            return  # a pending kill is never overwritten
        self._pending[uid] = _Pending(pod)
        self._ensure(uid)

    def kill(self, uid: str, pod: Obj | None = None, *, grace: float | None = None) -> None:
        self._pending[uid] = _Pending(pod or self._latest.get(uid), kill=True, grace=grace)
        self._ensure(uid)

    def _ensure(self, uid: str) -> None:
        self._wake.setdefault(uid, asyncio.Event()).set()
        if uid not in self._tasks:
            self._tasks[uid] = asyncio.create_task(self._run(uid), name=f"pod-worker-{uid[:8]}")

    async def _run(self, uid: str) -> None:
        wake = self._wake[uid]
        delay: float | None = None
        try:
            while True:
                timeout = self._resync if delay is None else min(delay, self._resync)
                await wait_event(wake, timeout)
                wake.clear()
                pending = self._pending.pop(uid, None)
                if pending is not None and pending.kill:
                    async with self._slots:
                        await self._kill(uid, pending.pod, pending.grace)
                    return
                if pending is not None and pending.pod is not None:
                    self._latest[uid] = pending.pod
                pod = self._latest.get(uid)
                if pod is None:
                    continue
                try:
                    async with self._slots:
                        delay = await self._sync(pod)
                except Exception:
                    logger.exception("sync of pod %s failed", uid)
                    delay = 5.0
        except Exception:
            logger.exception("kill of pod %s failed", uid)
        finally:
            self._tasks.pop(uid, None)
            self._latest.pop(uid, None)
            self._wake.pop(uid, None)
            # a kill failed, or an update came for a pod being killed: start over
            if uid in self._pending and not self._stopping:
                retry = self._pending[uid]
                if retry.kill or retry.pod is not None:
                    self._ensure(uid)

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
