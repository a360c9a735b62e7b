"""A bounded per-key failure limiter (token guessing): ``burst`` failures, then one per ``interval``.

Memory is bounded: at most ``max_keys`` keys are tracked; the oldest is forgotten first. Keys are
client addresses, so a guesser spread over many addresses is still limited by the ``"*"`` key, which
every failure also charges (with a larger burst).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class FailureLimiter:
    def __init__(
        self,
        *,
        burst: int = 10,
        interval: float = 1.0,
        global_burst: int = 100,
        max_keys: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._interval = interval
        self._global_burst = global_burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, updated)

    def _tokens(self, key: str, burst: int) -> float:
        tokens, updated = self._buckets.get(key, (float(burst), self._clock()))
        return min(float(burst), tokens + (self._clock() - updated) / self._interval)

    def allowed(self, key: str) -> bool:
        """Whether ``key`` may try now (checking costs nothing; only failures are charged)."""
        return self._tokens(key, self._burst) >= 1 and self._tokens("*", self._global_burst) >= 1

    def failed(self, key: str) -> None:
        for name, burst in ((key, self._burst), ("*", self._global_burst)):
            self._buckets[name] = (max(0.0, self._tokens(name, burst) - 1), self._clock())
            self._buckets.move_to_end(name)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def retry_after(self) -> int:
        return max(1, int(self._interval))
