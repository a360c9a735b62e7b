"""A work queue of keys for level-triggered workers, as client-go's ``workqueue`` (rate-limited, delaying).

Invariants (the ones controllers rely on):
- a key waiting in the queue is there once, however often it is added (``dirty``);
- a key is never handed to two workers at once: a key added while it is being processed is queued again
  only when its worker calls ``done`` (``processing``);
- ``add_rate_limited`` requeues after a per-key exponential backoff with jitter; ``forget`` resets it;
- ``add_after`` keeps the earliest pending time per key;
- after ``shutdown``, ``get`` raises ``ShutDown`` once the queue is drained, and adds are ignored.

Single event loop, no threads: every method except ``get`` is synchronous and safe to call from handlers.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down and has nothing more to give."""


# One generator for every backoff's jitter: a Random is ~2.5 KB of state, and the leader has ~70 backoffs.
_JITTER = random.Random()


class ExponentialBackoff(Generic[K]):
    """Per-key delay ``base * 2**failures`` capped at ``cap``, with +-``jitter`` (fraction) randomness."""

    def __init__(
        self, *, base: float = 0.005, cap: float = 60.0, jitter: float = 0.1, rng: random.Random | None = None
    ) -> None:
        self._base, self._cap, self._jitter = base, cap, jitter
        self._failures: dict[K, int] = {}
        self._rng = rng or _JITTER

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay: float = min(self._cap, self._base * 2.0 ** min(failures, 62))
        return max(0.0, delay * (1 + self._jitter * (2 * self._rng.random() - 1)))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def retries(self, key: K) -> int:
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    def __init__(self, *, name: str = "", backoff: ExponentialBackoff[K] | None = None) -> None:
        self.name = name
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._backoff: ExponentialBackoff[K] = backoff or ExponentialBackoff()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # requeued by done()
        self._queue.append(key)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def get(self) -> K:
        """The next key to process; the caller must call ``done(key)`` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # We may have been woken and cancelled in the same step: pass the wake-up on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= when:
                return
            pending[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self._backoff.when(key))

    def forget(self, key: K) -> None:
        self._backoff.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._backoff.retries(key)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _when, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
