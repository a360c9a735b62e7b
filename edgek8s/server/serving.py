"""A master's own certificates, renewed in place before two thirds of their lifetime, without restart.

Every master holds the CA key, so it re-issues its own certificates itself (same subject, names and
usages; a fresh key; ``lifetime``: the cluster's ``--cert-lifetime``), each on its own schedule
(``_util.renewal.keep_renewed``):

- API serving (``pki/server.crt``): loaded into the live server ``SSLContext``; new handshakes present it;
- kubelet client: loaded into the API's kubelet client context; new connections to kubelets present it;
- admin (``pki/admin.crt``): ``admin.kubeconfig`` is rewritten with it (kubectl reads it on every run);
- node and kubelet serving (joined masters): files only (``kubelet.kubeconfig`` names them by path).

Key then certificate are each written with one rename; signing runs in a thread; the reload runs on the
loop (handshakes read the ``SSL_CTX`` there). Open connections are never disturbed.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgek8s._util.renewal import keep_renewed
from edgek8s.pki.certs import read_pair, reissue, write_pair
from edgek8s.server.kubeconfig import refresh_client_credentials


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnCertificate:
    what: str
    cert: Path
    key: Path
    reload: Callable[[], None] | None = None  # on the loop, once the new files are in place
    kubeconfig: Path | None = None  # a kubeconfig that embeds this pair


def _reissue(own: OwnCertificate, ca_cert: Path, ca_key: Path, lifetime: datetime.timedelta | None) -> None:
    pair = reissue(read_pair(ca_cert, ca_key), own.cert.read_bytes(), lifetime=lifetime)
    write_pair(pair, own.cert, own.key)
    if own.kubeconfig is not None and own.kubeconfig.exists():
        refresh_client_credentials(own.kubeconfig, pair)


async def keep_own_certificate(own: OwnCertificate, *, ca_cert: Path, ca_key: Path,
                               lifetime: datetime.timedelta | None = None) -> None:
    """Run until cancelled: re-issue ``own`` at two thirds of its lifetime and reload its users."""
    async def renew() -> None:
        await asyncio.to_thread(_reissue, own, ca_cert, ca_key, lifetime)
        if own.reload is not None:
            own.reload()

    await keep_renewed(own.cert, renew, what=own.what)
