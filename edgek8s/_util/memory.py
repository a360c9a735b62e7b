"""Process-wide memory settings for small boards.

Each is called once, early, by a process's composition root (``cli.main``), before any thread starts:
some change process-wide state (the environment, a stdlib class attribute) that a thread could race.
"""

from __future__ import annotations

import asyncio.sslproto
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import mimetypes
import os
import re
import sys
import warnings
from collections.abc import Iterator

_M_ARENA_MAX = -8  # glibc's mallopt parameter number


@functools.cache  # find_library may run ldconfig: once per process
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name is not None else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's per-thread malloc arenas (default 8 per core); call before starting threads.

    A master runs the event loop, the Raft thread and a few worker threads; each would get its own
    arena and keep freed memory in it. Measured with 10,000 objects: ~2.5 MB less RSS per master.
    Returns False where there is no glibc (the setting is then simply not applied).
    """
    libc = _libc()
    try:
        return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except AttributeError:
        return False


def release_free_memory() -> bool:
    """Hand memory glibc keeps after a burst (e.g. 100 pods started at once) back to the kernel.

    Python frees objects into malloc's arenas; without a trim the process keeps its high-water RSS.
    Cheap enough (a walk of the free lists) to run every few seconds on an idle agent.
    """
    libc = _libc()
    try:
        return libc is not None and bool(libc.malloc_trim(0))
    except AttributeError:
        return False


MASTER_YOUNG_THRESHOLD = 10_000


def settle_garbage_collector(young_threshold: int = 2000) -> None:
    """Freeze what exists now and collect the young generation less often; call once imports are done.

    Modules, classes and functions live as long as the process: frozen, a full collection no longer
    walks them (with 10,000 objects a master tracked ~67,000 objects, and a full collection cost
    ~30 ms of CPU in the middle of a request). CPython 3.13 raised the young threshold from 700 to
    2,000 for the same reason: fewer collections that find in-flight requests alive and promote
    them. Measured at 64 clients: GC CPU per master 180 -> ~120 ms per 10,000 creates, no full
    collection. Garbage is collected first so that none is frozen.

    A master passes ``MASTER_YOUNG_THRESHOLD``: under write load what a young collection walks is
    mostly the in-flight requests (~5,000 objects at 64 clients, ~1 ms each time), not the new
    garbage (a master makes next to no cycles per write), so its cost per write falls with the
    threshold. Measured at 64 clients (`bench writecpu`): 22 -> 2 young collections per 6,300
    writes, GC CPU ~6 -> ~1.8 µs per write per master; RSS with 10,000 objects unchanged.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 10, 10)


def keep_out(*modules: str, silence: str = "") -> None:
    """Make every later ``import`` of these modules fail in this process, so they cost no memory.

    Only for optional dependencies that a library imports with a fallback and that the process never
    uses: an entry of None in ``sys.modules`` makes the import raise ImportError (documented in the
    import system reference). Modules already imported are left alone. ``silence``: the start of the
    warning a library gives about the missing module, if it gives one.
    """
    for name in modules:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    if silence:
        warnings.filterwarnings("ignore", message=re.escape(silence))


@contextlib.contextmanager
def without_default_ca_bundle() -> Iterator[None]:
    """Within the block, OpenSSL's default trust store points nowhere; as it was again afterwards.

    For imports that build TLS contexts with the defaults (aiohttp builds two at import) in a process that
    trusts only its own cluster CA: each would parse the system's public CA bundle (~140 certificates,
    ~2 MB of OpenSSL memory that, freed later, stays in the heap as RSS). OpenSSL reads ``SSL_CERT_FILE``
    and ``SSL_CERT_DIR`` when a context loads its defaults, and ignores a store it cannot load. Restored
    on exit, so child processes (the Podman service pulls images over TLS) see the environment unchanged.
    """
    names = ("SSL_CERT_FILE", "SSL_CERT_DIR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, os.devnull))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_tls_read_buffers(size: int = 32 * 1024) -> None:
    """Make asyncio give each TLS connection a ``size`` read buffer instead of 256 KiB.

    asyncio allocates (and zero-fills, so it is resident) one such buffer per TLS connection, client or
    server, for the connection's life: an agent holds 5-10 (watches, kept-alive API connections, the API
    servers' calls to its kubelet endpoint). A TLS record carries at most 16 KiB, so a smaller buffer only
    means more loop iterations for a bulk read. Measured with the agent after 100 pods: -1.4 MB of RSS at
    64 KiB, -1.8 MB at 32 KiB.
    """
    asyncio.sslproto.SSLProtocol.max_size = size


def defer_mime_type_files() -> None:
    """Leave the system's MIME type files unread until something guesses a type from a file name.

    aiohttp builds a ``MimeTypes`` table at import (for static file responses, which an API server never
    makes), and the first table built makes the standard library read ``/etc/mime.types`` into a second,
    module-wide table that then stays: ~0.35 MB. ``mimetypes.inited`` is the documented flag that says this
    was done; set beforehand, tables start from Python's built-in types only, and the module-level guess
    functions still read the system files on their first call (they look for the module-wide table itself).
    """
    mimetypes.inited = True
