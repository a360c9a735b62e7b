"""An injectable clock: wall time for what is written to objects, monotonic time for durations.

Controllers take a ``Clock`` instead of calling ``time``/``datetime`` so tests drive time (a CronJob's
next minute, a node's grace period) without sleeping. ``SystemClock`` is the real one.
"""

from __future__ import annotations

import datetime
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime.datetime:
        """Aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (for timeouts and elapsed time)."""
        ...


class SystemClock:
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def monotonic(self) -> float:
        return time.monotonic()
