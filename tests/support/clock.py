"""FakeClock: the ``edgek8s._util.clock.Clock`` a test moves by hand (no sleeping for a cron minute)."""

from __future__ import annotations

import datetime
import time


class FakeClock:
    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._now = start or datetime.datetime.now(datetime.UTC)
        self._mono = time.monotonic()

    def now(self) -> datetime.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += datetime.timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, moment: datetime.datetime) -> None:
        self._mono += max(0.0, (moment - self._now).total_seconds())
        self._now = moment
