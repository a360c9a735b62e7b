"""A master's own certificates, renewed in place before two thirds of their lifetime, without restart.

Every master holds the CA key, so it re-issues its own certificates itself (same subject, names and
usages; a fresh key; ``lifetime``: the cluster's ``--cert-lifetime``), each on its own schedule
(``_util.renewal.keep_renewed``):

- API serving (``pki/server.crt``): loaded into the live server ``SSLContext``; new handshakes present it;
- kubelet client: the API's kubelet client gets a new context (``ClientTLS``); new connections present it;
- admin (``pki/admin.crt``): ``admin.kubeconfig`` is rewritten with it (kubectl reads it on every run);
- node and kubelet serving (joined masters): files only (``kubelet.kubeconfig`` names them by path).

Key then certificate are each written with one rename; signing runs in a thread; the reload runs on the
loop (handshakes read the ``SSL_CTX`` there). Open connections are never disturbed.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgek8s._util.renewal import keep_renewed
from edgek8s.client.rest import ClientTLS
from edgek8s.config import ApiConfig
from edgek8s.pki.certs import client_tls_context, read_pair, reissue, reload_serving_cert, write_pair
from edgek8s.pki.layout import Layout


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
        # Here: it imports PyYAML (~0.8 MB on every master), needed only when a renewal rewrites a kubeconfig.
        from edgek8s.server.kubeconfig import refresh_client_credentials

        refresh_client_credentials(own.kubeconfig, pair)


async def keep_own_certificate(own: OwnCertificate, *, ca_cert: Path, ca_key: Path,
                               lifetime: datetime.timedelta | None = None) -> None:
    """Run until cancelled: re-issue ``own`` at two thirds of its lifetime and reload its users."""
    async def renew() -> None:
        await asyncio.to_thread(_reissue, own, ca_cert, ca_key, lifetime)
        if own.reload is not None:
            own.reload()

    await keep_renewed(own.cert, renew, what=own.what)


def own_certificates(api: ApiConfig, layout: Layout | None, *, serving: ssl.SSLContext,
                     kubelet_client: Callable[[], ClientTLS]) -> list[OwnCertificate]:
    """A master's certificates and how each reaches its users once renewed (``kubelet_client``: the API's
    kubelet client credentials, looked up at reload time)."""
    assert api.tls_cert_file is not None and api.tls_key_file is not None and api.client_ca_file is not None
    ca = api.client_ca_file
    serving_cert, serving_key = api.tls_cert_file, api.tls_key_file
    own = [OwnCertificate(what="API serving", cert=serving_cert, key=serving_key,
                          reload=lambda: reload_serving_cert(serving, serving_cert, serving_key))]
    kubelet_cert, kubelet_key = api.kubelet_client_cert_file, api.kubelet_client_key_file
    if kubelet_cert is not None and kubelet_key is not None:
        own.append(OwnCertificate(what="kubelet client", cert=kubelet_cert, key=kubelet_key,
                                  reload=lambda: kubelet_client().replace(
                                      client_tls_context(ca, kubelet_cert, kubelet_key))))
    if layout is not None:
        if layout.admin_cert.exists():
            own.append(OwnCertificate(what="admin", cert=layout.admin_cert, key=layout.admin_key,
                                      kubeconfig=layout.admin_kubeconfig))
        # Files only: kubelet.kubeconfig names them by path, and no agent runs with them on a master.
        for what, cert, key in (("node", layout.node_cert, layout.node_key),
                                ("kubelet serving", layout.kubelet_serving_cert, layout.kubelet_serving_key)):
            if cert.exists():
                own.append(OwnCertificate(what=what, cert=cert, key=key))
    return own
