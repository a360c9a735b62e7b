"""Kubernetes resource quantities ("100m", "128Mi", "1.5", "2e3") as numbers.

``parse_quantity`` returns a Decimal; ``cpu_millis`` and ``to_bytes`` round up as the kubelet does
when turning requests and limits into cgroup settings. Bad input raises ValueError naming the value.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
    "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?)$")


def parse_quantity(value: str | int | float) -> Decimal:
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}: expected a number with an optional suffix (m, Ki, Mi, G...)")
    number, exponent, suffix = match.groups()
    try:
        result = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None
    if exponent:
        return result * Decimal(10) ** int(exponent[1:])
    return result * _SUFFIXES[suffix or ""]


def cpu_millis(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value) * 1000)


def to_bytes(value: str | int | float) -> int:
    return math.ceil(parse_quantity(value))


def format_millis(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
