"""Compact JSON for the hot paths: request bodies, stored objects and Raft commands (orjson).

Role: the one place that chooses the JSON library for data that every write goes through. orjson is
~10x faster than ``json.dumps`` and ~3x faster than ``json.loads`` on a 1 KiB object; a create
decodes its body once and encodes its command once on the proposer, and every replica decodes the
command and encodes the stored object, so this is a measurable share of a write's CPU.

Invariants:
- ``dumps`` returns an exact-size ``bytes`` (stored objects keep it for their lifetime); it is
  deterministic (equal values, equal bytes, on every replica: the state machine relies on
  it), compact, UTF-8 (no ``\\u`` escapes for non-ASCII), and keeps key order. A value orjson cannot
  encode (an integer beyond 64 bits, a non-string key) is encoded by the standard library with the
  same compact separators, so ``dumps`` fails only where ``json.dumps`` would.
- ``loads`` raises ``ValueError`` for anything that is not strict JSON; unlike ``json.loads`` it
  refuses ``NaN``/``Infinity``, as kube-apiserver's Go decoder does, and an integer beyond 64 bits
  becomes a float, as it does in upstream's unstructured objects.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        # orjson returns its output buffer shrunk in place: a kept result pins a whole ~8 KiB malloc
        # chunk (10,000 stored objects: +100 MB RSS per master). An exact-size copy costs ~0.2 µs.
        return bytes(memoryview(orjson.dumps(value)))
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)
