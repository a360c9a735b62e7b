"""Kubernetes resource quantities (``100m``, ``1.5``, ``128Mi``, ``1e3``) as exact numbers.

Mirrors k8s.io/apimachinery pkg/api/resource/quantity.go for parsing: a signed decimal number, then a
binary suffix (Ki..Ei), a decimal suffix (n, u, m, "", k, M, G, T, P, E) or an exponent (e3, E-2).
Values are kept as ``Fraction`` so nothing is lost; ``milli_value`` (CPU) and ``value`` (bytes, pods)
round up, as upstream's ``MilliValue``/``Value`` do, so a request is never under-counted.

Pure, stdlib only. Errors are ``QuantityError`` (a ``ValueError``) with upstream's wording.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

__all__ = ["QuantityError", "milli_value", "parse_quantity", "value"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
}
_PATTERN = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[eE][+-]?[0-9]+)|[KMGTPE]i|[numkMGTPE]?)$")


class QuantityError(ValueError):
    """Not a quantity; the message is upstream's."""


@lru_cache(maxsize=1024)
def parse_quantity(text: str) -> Fraction:
    """The exact value of a quantity string (cached: a cluster uses few distinct quantities)."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def milli_value(quantity: str | int | float) -> int:
    """Thousandths, rounded up (CPU: ``100m`` -> 100, ``1`` -> 1000)."""
    return math.ceil(_as_fraction(quantity) * 1000)


def value(quantity: str | int | float) -> int:
    """Units, rounded up (memory in bytes, pod counts)."""
    return math.ceil(_as_fraction(quantity))


def _as_fraction(quantity: str | int | float) -> Fraction:
    if isinstance(quantity, bool):
        raise QuantityError(f"not a quantity: {quantity!r}")
    if isinstance(quantity, int | float):
        return Fraction(quantity)
    return parse_quantity(quantity)
