"""Certificate renewal through a master, in place: the node client certificate and the kubelet's serving one.

``renew_certificate`` asks a master (``POST /edgek8s/v1/renew``, authenticated by the current client
certificate) to sign a CSR for a fresh key with the same identity, writes key then certificate
atomically, and gives the client's ``ClientTLS`` a new context: connections opened from then on present
the new certificate; open ones (watches, in-flight requests) keep working until they end.
``renew_kubelet_serving`` does the same for the kubelet endpoint's serving certificate (same names as
the current one) and reloads the endpoint's server context: new handshakes get the new certificate.

``CertificateKeeper`` owns a client's ``ClientTLS`` and renews it at two thirds of the lifetime
(``_util.renewal.keep_renewed``), rotating over the known masters on failure; nothing is restarted::

    keeper = CertificateKeeper(ClientFiles(ca_file, cert_file, key_file), servers)
    client = FailoverClient(servers, ssl_context=keeper.credentials)
    task = asyncio.create_task(keeper.run(stop_event))
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import ssl
from collections.abc import Sequence
from pathlib import Path

from edgek8s._util.renewal import keep_renewed
from edgek8s.client.rest import ClientTLS, RestClient
from edgek8s.pki.certs import cert_identity, cert_info, cert_sans, client_tls_context, new_csr
from edgek8s.pki.layout import ClientFiles, Layout, write_private

logger = logging.getLogger(__name__)
RENEW_PATH = "/edgek8s/v1/renew"


async def renew_certificate(
    files: ClientFiles | Layout, server: str, context: ssl.SSLContext | ClientTLS, *, timeout: float = 10.0
) -> None:
    """One renewal: new key and CSR for the current identity, signed by ``server``, written, and then a
    ``ClientTLS`` gets a new context (see there why) while a bare ``SSLContext`` is reloaded in place."""
    files = files.client_files if isinstance(files, Layout) else files
    cert_pem = await asyncio.to_thread(files.cert.read_bytes)
    user, groups = cert_identity(cert_pem)
    csr_pem, key_pem = await asyncio.to_thread(new_csr, user, groups)
    async with RestClient(server, timeout=timeout, ssl_context=context) as client:
        answer = await client.create(RENEW_PATH, {"csr": csr_pem.decode()})
    await asyncio.to_thread(_install, files.cert, files.key, str(answer["certificate"]).encode(), key_pem)
    if isinstance(context, ClientTLS):
        context.replace(await asyncio.to_thread(client_tls_context, files.ca, files.cert, files.key))
    else:  # on the loop, not in a thread: handshakes on the loop read this SSL_CTX (two small files)
        context.load_cert_chain(files.cert, files.key)


async def renew_kubelet_serving(cert_file: Path, key_file: Path, *, server: str, client: ssl.SSLContext | ClientTLS,
                                serving: ssl.SSLContext, timeout: float = 10.0) -> None:
    """Renew the kubelet endpoint's serving certificate for the names it has now, authenticated as the
    node (``client``), and load it into the live ``serving`` context."""
    cert_pem = await asyncio.to_thread(cert_file.read_bytes)
    user, groups = cert_identity(cert_pem)
    dns, ips = cert_sans(cert_pem)
    csr_pem, key_pem = await asyncio.to_thread(new_csr, user, groups)
    body = {"kubeletCsr": csr_pem.decode(), "addresses": ips, "hostnames": dns}
    async with RestClient(server, timeout=timeout, ssl_context=client) as rest:
        answer = await rest.create(RENEW_PATH, body)
    await asyncio.to_thread(_install, cert_file, key_file, str(answer["kubeletCertificate"]).encode(), key_pem)
    serving.load_cert_chain(cert_file, key_file)


def _install(cert_file: Path, key_file: Path, cert_pem: bytes, key_pem: bytes) -> None:
    write_private(key_file, key_pem)
    write_private(cert_file, cert_pem, mode=0o644)


class CertificateKeeper:
    def __init__(self, files: ClientFiles | Layout, servers: Sequence[str], *, fraction: float = 2 / 3) -> None:
        self.files = files.client_files if isinstance(files, Layout) else files
        self.servers = list(servers)
        self.fraction = fraction
        self.credentials = ClientTLS(client_tls_context(self.files.ca, self.files.cert, self.files.key))
        self._attempts = 0

    @property
    def context(self) -> ssl.SSLContext:
        """The context with the current certificate (give clients ``credentials``: it follows renewals)."""
        return self.credentials.context

    def renew_at(self) -> datetime.datetime:
        return cert_info(self.files.cert.read_bytes()).renew_at(self.fraction)

    async def renew(self) -> None:
        """One renewal through the next master in turn (a failed attempt moves on to another)."""
        server = self.servers[self._attempts % len(self.servers)]
        self._attempts += 1
        await renew_certificate(self.files, server, self.credentials)
        self._attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Renew at ``fraction`` of each certificate's lifetime until ``stop`` is set."""
        keeper = asyncio.create_task(keep_renewed(self.files.cert, self.renew, what="client",
                                                  fraction=self.fraction))
        try:
            await stop.wait()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
