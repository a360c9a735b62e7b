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


def test_dropped_public_ca_defaults_hold_no_ca_and_still_verify() -> None:
    # A subprocess: the setting is process-wide. Before, aiohttp's two default contexts held the system
    # CA bundle (~3 MB); after, the verified one trusts nothing (a TLS request without the cluster
    # context fails closed) and the unverified one stays unverified.
    code = """
import ssl
from aiohttp import connector
before = connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"]
from edgek8s.client.rest import drop_public_ca_defaults
drop_public_ca_defaults()
verified, unverified = connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED
print(before > 0, verified.cert_store_stats()["x509_ca"], unverified.cert_store_stats()["x509_ca"],
      verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname,
      unverified.verify_mode == ssl.CERT_NONE)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.split() == ["True", "0", "0", "True", "True"]
