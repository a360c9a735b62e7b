"""Process-wide memory settings: the malloc arena cap on this (glibc) machine, the garbage collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgek8s.pki.certs import issue, new_ca, write_pair


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


def test_a_tls_agent_never_imports_cryptography() -> None:
    """Everything a joined agent loads (CLI, agent, kubelet endpoint with its client-certificate check,
    certificate renewal) stays free of cryptography (~10 MB of RSS): renewals make their key and CSR in
    a child process (pki.renewal_request)."""
    code = """
import sys
import edgek8s.cli.main, edgek8s.server.agent, edgek8s.server.kubelet_endpoint, edgek8s.client.certificates
import edgek8s.kubelet.stream_server, edgek8s.pki.layout, edgek8s.pki.peer, edgek8s.pki.renewal_request
print(sorted(m for m in sys.modules if m.split(".")[0] == "cryptography"))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_imports_without_the_default_ca_bundle_load_no_public_ca_and_leave_the_environment_as_it_was() -> None:
    # A subprocess: the block changes the process environment. aiohttp builds its default contexts at import:
    # inside the block they hold no CA; after it, a default context trusts the public CAs again and the
    # variables the Podman service inherits are what they were (one set, one unset).
    code = """
import os, ssl
os.environ["SSL_CERT_DIR"] = "/etc/ssl/certs"
os.environ.pop("SSL_CERT_FILE", None)
from edgek8s._util.memory import without_default_ca_bundle
with without_default_ca_bundle():
    from aiohttp import connector
print(connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"], os.environ.get("SSL_CERT_DIR"),
      os.environ.get("SSL_CERT_FILE"), ssl.create_default_context().cert_store_stats()["x509_ca"] > 0)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert result.stdout.split() == ["0", "/etc/ssl/certs", "None", "True"]


def test_limited_tls_read_buffers_still_carry_a_large_body_intact(tmp_path: Path) -> None:
    """A real TLS connection over loopback (server and client on asyncio, as the agent's kubelet endpoint and
    its API client): the per-connection buffer is the limit, and 1 MiB crosses it unchanged."""
    ca = new_ca("test-ca")
    leaf = issue(ca, common_name="localhost", ip_addresses=["127.0.0.1"], server=True)
    write_pair(leaf, tmp_path / "tls.crt", tmp_path / "tls.key")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    code = f"""
import asyncio, hashlib, os, ssl
from edgek8s._util.memory import limit_tls_read_buffers
limit_tls_read_buffers(16 * 1024)
body = os.urandom(1 << 20)

async def main():
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain({str(tmp_path / "tls.crt")!r}, {str(tmp_path / "tls.key")!r})
    async def echo(reader, writer):
        writer.write(hashlib.sha256(await reader.readexactly(len(body))).digest())
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile={str(tmp_path / "ca.crt")!r})
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
    buffer = len(writer.transport._ssl_protocol._ssl_buffer)
    writer.write(body)
    digest = await reader.readexactly(32)
    writer.close()
    server.close()
    print(buffer, digest == hashlib.sha256(body).digest())
asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == [str(16 * 1024), "True"]


def test_a_master_loads_neither_pyyaml_nor_protobuf_tables_nor_libstdcxx_and_aiohttp_still_serves() -> None:
    """Everything a master imports at start leaves PyYAML out (only server-side apply and a kubeconfig
    renewal load it), the protobuf field tables (only a protobuf request body loads them) and, with the
    master's settings, libstdc++ (frozenlist's C++ extension): aiohttp then uses the pure-Python
    FrozenList, and an app with a response-prepare signal still runs it. The system's MIME type files are
    read only when a type is first guessed from a file name."""
    code = """
import asyncio, sys
from edgek8s.cli.main import master_memory_settings
master_memory_settings()
import edgek8s.server.control_plane
from aiohttp import ClientSession, web

async def main():
    app = web.Application()
    async def hello(request):
        return web.Response(text="ok")
    async def stamp(request, response):
        response.headers["X-Prepared"] = "yes"
    app.router.add_get("/", hello)
    app.on_response_prepare.append(stamp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as response:
        result = (response.status, response.headers.get("X-Prepared"), await response.text())
    await runner.cleanup()
    return result

status, prepared, text = asyncio.run(main())
with open("/proc/self/maps") as maps:
    cxx = "libstdc++" in maps.read()
left_out = ("edgek8s.api.protobuf", "edgek8s.model.protobuf_fields", "frozenlist._frozenlist")
import mimetypes
unread = mimetypes._db is None  # the system's MIME type files: read on the first guess, not at start
print(sorted(m for m in sys.modules if m.split(".")[0] == "yaml" or m in left_out and sys.modules[m] is not None),
      cxx, status, prepared, text, unread, mimetypes.guess_type("a.json")[0], mimetypes._db is not None)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == ["[]", "False", "200", "yes", "ok", "True", "application/json", "True"]
