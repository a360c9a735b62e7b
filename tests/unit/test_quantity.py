"""Quantity parsing as upstream's resource.Quantity (MilliValue/Value round up)."""

from __future__ import annotations

import pytest

from edgek8s.model.quantity import QuantityError, milli_value, value


@pytest.mark.parametrize(
    ("text", "milli", "units"),
    [
        ("1", 1000, 1), ("100m", 100, 1), ("0.5", 500, 1), ("1.5", 1500, 2), ("250m", 250, 1),
        ("1Ki", 1024000, 1024), ("128Mi", 128 * 2**20 * 1000, 128 * 2**20), ("4Gi", 4 * 2**30 * 1000, 4 * 2**30),
        ("1k", 10**6, 1000), ("2M", 2 * 10**9, 2 * 10**6), ("1e3", 10**6, 1000), ("1E-3", 1, 1),
        ("1n", 1, 1), ("0", 0, 0), (".5", 500, 1), ("+2", 2000, 2), (3, 3000, 3), (0.25, 250, 1),
    ],
)
def test_values(text: str | int | float, milli: int, units: int) -> None:
    assert milli_value(text) == milli
    assert value(text) == units


@pytest.mark.parametrize("text", ["", "abc", "1Z", "1 Gi", "--1", "1.2.3", "Gi", "1ii"])
def test_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        milli_value(text)


def test_bool_is_not_a_quantity() -> None:
    with pytest.raises(QuantityError):
        value(True)
