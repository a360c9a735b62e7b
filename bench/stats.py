"""Small statistics helpers for the benchmarks (nearest-rank percentiles)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of the
    samples at or below it. With n samples, p99 is the max whenever n < 100."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    """Human-readable figure; 'n/a' for a figure that was not measured."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"
