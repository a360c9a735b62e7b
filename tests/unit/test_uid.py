"""Proposer-chosen uids: the fast formatting is exactly the standard library's version-4 UUID."""

from __future__ import annotations

import random
import uuid

from edgek8s.store.raftstore import uuid4_string


def test_uuid4_string_is_uuid_module_output() -> None:
    rng = random.Random(7)
    for bits in [0, (1 << 128) - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        text = uuid4_string(bits)
        assert text == str(uuid.UUID(int=bits, version=4))
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
