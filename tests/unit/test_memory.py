"""Process-wide memory settings: the malloc arena cap on this (glibc) machine, the garbage collector."""

from __future__ import annotations

import subprocess
import sys


def test_limit_malloc_arenas_is_accepted_by_glibc() -> None:
    code = "from edgek8s._util.memory import limit_malloc_arenas; print(limit_malloc_arenas(2))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.strip() == "True"


def test_settled_garbage_collector_freezes_startup_objects_and_keeps_collecting_new_cycles() -> None:
    code = """
import gc, weakref
from edgek8s._util.memory import settle_garbage_collector
import edgek8s.server.control_plane
settle_garbage_collector()
frozen = gc.get_freeze_count()
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after startup: still garbage-collected
alive = weakref.ref(a)
del a, b
gc.collect()
print(frozen > 10_000, gc.get_threshold()[0], alive() is None)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["True", "2000", "True"]


def test_agent_keeps_optional_modules_out_and_the_podman_bindings_still_work() -> None:
    """rich (pull progress bars) and the charset detectors stay out of the agent process; the bindings
    import without them, and requests still decodes an undeclared text body (as utf-8), silently."""
    code = """
import sys, warnings
warnings.simplefilter("error")
from edgek8s._util.memory import keep_out
keep_out("rich", "charset_normalizer", "chardet", silence="Unable to find acceptable character detection dependency")
import podman, requests
response = requests.models.Response()
response._content = "caf\\u00e9".encode()
print(sorted(m for m in ("rich", "charset_normalizer", "chardet") if sys.modules.get(m) is not None), response.text)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[] caf\u00e9"
