"""SchedulingQueue: pending pods in the order the scheduler tries them, as upstream's PriorityQueue.

    add ──> active (heap: higher spec.priority first, then first-come) ──pop──> in flight
                ^                                                              │
                │ backoff expired                                    unschedulable / error
    backoff (per-pod timer, 1 s doubling to 10 s) <── move_all (a node changed) ──┤
                                                                               v
                                                unschedulable (parked) ── flush every 30 s ──> backoff

- A key is in at most one of active, backoff, unschedulable, in flight; adding a key that is already
  waiting only refreshes its priority.
- A pod that failed waits out its backoff even when a node changes (no hot loop on a flapping node).
- ``move_all`` (a node was added or changed) sends parked pods to backoff, or straight to active when
  their backoff is over: a new node gets the pods that were waiting for room.

Keys only (``namespace/name``); the scheduler keeps the pods themselves. Single event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from edgek8s._util.workqueue import ExponentialBackoff


class SchedulingQueue:
    def __init__(
        self,
        *,
        backoff: ExponentialBackoff[str] | None = None,
        unschedulable_flush: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._active: dict[str, int] = {}  # key -> heap sequence number of its live entry
        self._priority: dict[str, int] = {}
        self._seq = itertools.count()
        self._backoff_until: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._unschedulable: dict[str, float] = {}  # key -> when it was parked
        self._in_flight: set[str] = set()
        self._changed_in_flight: set[str] = set()  # updated during its attempt: not parked after it
        self._backoff = backoff or ExponentialBackoff(base=1.0, cap=10.0, jitter=0.1)
        self._flush_after = unschedulable_flush
        self._clock = clock
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._active) + len(self._timers) + len(self._unschedulable)

    def __contains__(self, key: object) -> bool:
        """Whether the pod is held anywhere: waiting, backing off, parked or being tried."""
        return key in self._active or key in self._timers or key in self._unschedulable or key in self._in_flight

    def stats(self) -> dict[str, int]:
        return {"active": len(self._active), "backoff": len(self._timers),
                "unschedulable": len(self._unschedulable), "in_flight": len(self._in_flight)}

    # --- producers (informer handlers) ------------------------------------------------------------

    def add(self, key: str, priority: int = 0) -> None:
        """A pending pod, new or changed: tried as soon as its backoff (if any) is over."""
        if key in self._active and self._priority.get(key) == priority:
            return  # waiting already, keeps its place
        self._priority[key] = priority
        if key in self._in_flight:
            self._changed_in_flight.add(key)
            return  # its attempt's outcome decides where it goes next
        self._unschedulable.pop(key, None)
        if key in self._timers:
            return
        self._push(key)

    def delete(self, key: str) -> None:
        """The pod is gone or no longer pending."""
        self._active.pop(key, None)
        self._in_flight.discard(key)
        self._changed_in_flight.discard(key)
        self._priority.pop(key, None)
        self._unschedulable.pop(key, None)
        self._backoff_until.pop(key, None)
        self._backoff.forget(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def move_all(self) -> None:
        """Nodes changed: every parked pod may fit now."""
        for key in list(self._unschedulable):
            del self._unschedulable[key]
            self._after_backoff(key)

    def flush_unschedulable(self) -> None:
        """Parked pods older than the flush interval are tried again (level-triggered safety net)."""
        horizon = self._clock() - self._flush_after
        for key, parked in list(self._unschedulable.items()):
            if parked <= horizon:
                del self._unschedulable[key]
                self._after_backoff(key)

    # --- the scheduler ----------------------------------------------------------------------------

    async def pop(self) -> str:
        """The next pod to try; it is in flight until ``done``/``unschedulable``/``retry``."""
        while (key := self.pop_nowait()) is None:
            self._wakeup.clear()
            await self._wakeup.wait()
        return key

    def pop_nowait(self) -> str | None:
        """The next pod to try, if one is waiting (stale heap entries of re-added keys are skipped)."""
        while self._heap:
            _priority, seq, key = heapq.heappop(self._heap)
            if self._active.get(key) == seq:
                del self._active[key]
                self._in_flight.add(key)
                return key
        return None

    def done(self, key: str) -> None:
        """Scheduled (or dropped): forget its failures."""
        self._in_flight.discard(key)
        self._changed_in_flight.discard(key)
        self._backoff.forget(key)
        self._backoff_until.pop(key, None)
        if key in self._priority and key not in self._active and key not in self._timers:
            self._priority.pop(key, None)

    def unschedulable(self, key: str) -> None:
        """No node fits: park it until a node changes (or the flush), after a backoff."""
        if key not in self._in_flight:
            return
        self._in_flight.discard(key)
        self._backoff_until[key] = self._clock() + self._backoff.when(key)
        if key in self._changed_in_flight:
            self._changed_in_flight.discard(key)
            self._after_backoff(key)
        else:
            self._unschedulable[key] = self._clock()

    def retry(self, key: str) -> None:
        """The attempt failed for another reason (the binding write): try again after a backoff."""
        if key not in self._in_flight:
            return
        self._in_flight.discard(key)
        self._changed_in_flight.discard(key)
        self._backoff_until[key] = self._clock() + self._backoff.when(key)
        self._after_backoff(key)

    # --- internals --------------------------------------------------------------------------------

    def _push(self, key: str) -> None:
        seq = next(self._seq)
        self._active[key] = seq
        heapq.heappush(self._heap, (-self._priority.get(key, 0), seq, key))
        self._wakeup.set()

    def _after_backoff(self, key: str) -> None:
        if key in self._timers or key in self._active:
            return
        delay = self._backoff_until.get(key, 0.0) - self._clock()
        if delay <= 0:
            self._push(key)
            return
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self._backoff_over, key)

    def _backoff_over(self, key: str) -> None:
        if self._timers.pop(key, None) is not None:
            self._push(key)
