"""Deadlines: await many futures, each with a deadline, under one shared timer.

Role: the per-write wait of the Raft propose bridge. ``asyncio.timeout`` arms a timer handle for every
await and cancels it afterwards (a heap push, a cancel, and a cancelled handle the loop later skips);
at thousands of writes per second that was ~5% of a master's event loop. ``Deadlines.wait`` costs a
dict entry instead; one timer, armed at the earliest pending deadline, resolves every future still
pending at its deadline.

Invariants:
- ``wait(future, delay, expired)`` returns the future's result, or ``expired`` if the future is still
  pending ``delay`` seconds after the call (it is then resolved with ``expired``, so a result that
  arrives later is dropped: producers check ``future.done()`` before setting one). It never cancels
  the future on expiry; a cancellation of the waiting task cancels the future, as ``await`` does.
- Futures due at one sweep are resolved in deadline order.
- At most one timer is armed, never later than the earliest pending deadline. When deadlines grow
  with time (one timeout for all waits), a sweep runs about once per timeout, not once per wait.
- Event loop only (one loop per instance).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypeVar

T = TypeVar("T")


class Deadlines:
    def __init__(self) -> None:
        self._pending: dict[asyncio.Future[Any], tuple[float, Any]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._pending)

    async def wait(self, future: asyncio.Future[T], delay: float, expired: T) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        self._pending[future] = (deadline, expired)
        if deadline < self._timer_at:
            self._arm(loop, deadline)
        try:
            return await future
        finally:
            self._pending.pop(future, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(when, self._sweep, loop, when), when

    def _sweep(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._timer, self._timer_at = None, math.inf
        now = max(loop.time(), when)  # the loop runs a timer up to its clock resolution early
        earliest = math.inf
        due: list[tuple[float, asyncio.Future[Any], Any]] = []
        for future, (deadline, expired) in self._pending.items():
            if deadline <= now:
                if not future.done():
                    due.append((deadline, future, expired))
            elif deadline < earliest:
                earliest = deadline
        # A late sweep (a busy loop) finds several due at once: their waiters resume in deadline order,
        # not in the order the waits began.
        due.sort(key=lambda entry: entry[0])
        for _, future, expired in due:
            future.set_result(expired)
        if earliest < math.inf:
            self._arm(loop, earliest)
