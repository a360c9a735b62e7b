"""`python -m bench raftcrypto`: the cost of protecting one Raft message, three ways, in one run.

The issue asked to measure PySyncObj's password mode (Fernet from a shared secret) against a TLS
transport and choose. edgek8s chose a third way: an AEAD (ChaCha20-Poly1305) in PySyncObj's own
encryptor slot (edgek8s/pki/cipher.py). This measures, per message of typical AppendEntries sizes,
sealing on the sender plus opening on the receiver:

- none:     PySyncObj without a password (unauthenticated: remote code execution for anyone);
- fernet:   PySyncObj's password mode (AES-128-CBC + HMAC-SHA256 + base64, what it ships);
- tls:      TLS 1.3 records through a memory BIO pair (what a TLS transportClass would pay per
            message, leaving aside the handshake and the extra copies of a real socket);
- edgek8s:  RaftCipher.

Figures are microseconds per message (lower is better) and the ratio to edgek8s's cipher.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from edgek8s.pki.cipher import RaftCipher, derive_raft_key

SIZES = (256, 1_536, 16_384)


def _time_per_call(fn: Callable[[], object], seconds: float) -> float:
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        calls += 50
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / calls * 1e6


def _tls_pair(workdir: Path) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO,
                                      ssl.MemoryBIO]:
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=raft", "-addext", "subjectAltName=DNS:raft", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="raft")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return client, c_out, server, s_in, c_in, s_out


def measure(seconds: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    fernet = Fernet(Fernet.generate_key())
    cipher = RaftCipher(derive_raft_key(os.urandom(32)))
    with tempfile.TemporaryDirectory() as tmp:
        client, c_out, server, s_in, _c_in, _s_out = _tls_pair(Path(tmp))
        for size in SIZES:
            message = os.urandom(size)

            def tls_round(message: bytes = message) -> bytes:
                client.write(message)
                s_in.write(c_out.read())
                return server.read(len(message) + 1)

            cases: dict[str, Callable[[], object]] = {
                "none": lambda message=message: bytes(message),
                "fernet": lambda message=message: fernet.decrypt(fernet.encrypt_at_time(message, 1)),
                "tls": tls_round,
                "edgek8s": lambda message=message: cipher.decrypt(cipher.encrypt_at_time(message, 0)),
            }
            results[str(size)] = {
                name: statistics.median(_time_per_call(fn, seconds / 3) for _ in range(3)) for name, fn in cases.items()
            }
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench raftcrypto")
    parser.add_argument("--seconds", type=float, default=1.5, help="time per case and size")
    args = parser.parse_args(argv)
    results = measure(args.seconds)
    print(f"{'message':>8}  {'none':>8}  {'fernet':>8}  {'tls':>8}  {'edgek8s':>8}   fernet/edgek8s  tls/edgek8s")
    for size, row in results.items():
        print(
            f"{size:>7}B  {row['none']:>7.1f}u  {row['fernet']:>7.1f}u  {row['tls']:>7.1f}u  {row['edgek8s']:>7.1f}u"
            f"   {row['fernet'] / row['edgek8s']:>13.2f}x  {row['tls'] / row['edgek8s']:>10.2f}x"
        )
    typical = results["1536"]
    figures = {
        "us_per_message_1536B": {k: round(v, 2) for k, v in typical.items()},
        "fernet_cost_ratio_vs_edgek8s": round(typical["fernet"] / typical["edgek8s"], 2),
        "tls_cost_ratio_vs_edgek8s": round(typical["tls"] / typical["edgek8s"], 2),
    }
    print(json.dumps(figures))
    return 0
