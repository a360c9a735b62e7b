"""A renewal's key and CSR, made in a short-lived child process so the caller never imports ``cryptography``.

An agent renews its certificates a few times a year; importing ``cryptography`` for that would keep ~10 MB
in its RSS from the first renewal on. ``renewal_request(cert_file)`` runs
``python -m edgek8s.pki.renewal_request CERT_FILE``, which reads the current certificate and prints, as
one JSON object, a CSR for a fresh ECDSA key with the same identity (CN, O), that key, and the
certificate's DNS and IP names (a serving certificate is renewed for the names it has). The key travels
only over the child's stdout pipe, never through a file or an argument.

Invariant: this module imports nothing from ``cryptography`` at import time; only the child does.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 60.0  # a loaded Pi takes a few seconds to start Python and import cryptography


class RenewalRequestError(RuntimeError):
    """The child could not make the request; the message says why."""


@dataclass(frozen=True, slots=True)
class RenewalRequest:
    csr_pem: bytes
    key_pem: bytes
    user: str
    groups: tuple[str, ...]
    dns_names: list[str]
    ip_addresses: list[str]


async def renewal_request(cert_file: Path, *, timeout: float = TIMEOUT) -> RenewalRequest:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(cert_file),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(child.communicate(), timeout)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise RenewalRequestError(f"making a CSR for {cert_file} took over {timeout:.0f}s") from None
    if child.returncode != 0:
        raise RenewalRequestError(f"making a CSR for {cert_file} failed: {err.decode(errors='replace').strip()[-500:]}")
    made = json.loads(out)
    return RenewalRequest(made["csr"].encode(), made["key"].encode(), made["user"], tuple(made["groups"]),
                          list(made["dns"]), list(made["ips"]))


def _main(argv: list[str]) -> int:
    from edgek8s.pki.certs import cert_identity, cert_sans, new_csr

    if len(argv) != 1:
        print(f"usage: python -m {__name__} CERT_FILE", file=sys.stderr)
        return 2
    try:
        cert_pem = Path(argv[0]).read_bytes()
        user, groups = cert_identity(cert_pem)
        dns, ips = cert_sans(cert_pem)
    except (OSError, ValueError) as exc:
        print(f"cannot read the certificate {argv[0]}: {exc}", file=sys.stderr)
        return 1
    csr_pem, key_pem = new_csr(user, groups)
    json.dump({"csr": csr_pem.decode(), "key": key_pem.decode(), "user": user, "groups": list(groups), "dns": dns,
               "ips": ips}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
