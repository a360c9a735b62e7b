"""The malloc arena cap takes effect on this (glibc) machine."""

from __future__ import annotations

import subprocess
import sys


def test_limit_malloc_arenas_is_accepted_by_glibc() -> None:
    code = "from edgek8s._util.memory import limit_malloc_arenas; print(limit_malloc_arenas(2))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.strip() == "True"
