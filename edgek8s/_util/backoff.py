"""Per-key exponential back-off, as the kubelet's CrashLoopBackOff does it (upstream ``flowcontrol.Backoff``).

The first restart of a key is immediate; each restart then waits ``initial`` doubling up to ``maximum``.
A key whose last restart is older than ``2 * maximum`` starts over. Time comes from an injectable clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Backoff:
    def __init__(self, initial: float, maximum: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (current delay, time of the last restart)

    def remaining(self, key: str) -> float:
        """Seconds until ``key`` may restart again; 0 if it may restart now."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, last = entry
        now = self._clock()
        if now - last > 2 * self.maximum:
            del self._entries[key]
            return 0.0
        return max(0.0, last + delay - now)

    def record_restart(self, key: str) -> None:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            self._entries[key] = (self.initial, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.maximum), now)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
