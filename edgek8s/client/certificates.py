"""Client certificate renewal for agents and masters: renew before two thirds of the lifetime, in place.

``CertificateKeeper`` owns the client ``SSLContext`` built from a ``Layout``'s node certificate. Its
``run`` loop sleeps until the renewal point, asks a master (``POST /edgek8s/v1/renew``, authenticated by
the current certificate) to sign a CSR for a fresh key with the same identity, writes key then
certificate atomically, and reloads the context in place: connections opened from then on present the
new certificate; open ones (watches) keep working until they end. Failures are retried with backoff,
rotating over the known masters; nothing is restarted.

The agent (``edgek8s agent --ca-file --cert-file --key-file``) uses it as::

    keeper = CertificateKeeper(ClientFiles(ca_file, cert_file, key_file), servers)
    client = FailoverClient(servers, ssl_context=keeper.context)
    task = asyncio.create_task(keeper.run(stop_event))
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import random
import ssl
from collections.abc import Sequence

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.pki.certs import cert_identity, cert_info, client_tls_context, new_csr
from edgek8s.pki.layout import ClientFiles, Layout, write_private

logger = logging.getLogger(__name__)


async def renew_certificate(
    files: ClientFiles | Layout, server: str, context: ssl.SSLContext, *, timeout: float = 10.0
) -> None:
    """One renewal: new key and CSR for the current identity, signed by ``server``, written, reloaded."""
    files = files.client_files if isinstance(files, Layout) else files
    cert_pem = await asyncio.to_thread(files.cert.read_bytes)
    user, groups = cert_identity(cert_pem)
    csr_pem, key_pem = await asyncio.to_thread(new_csr, user, groups)
    async with RestClient(server, timeout=timeout, ssl_context=context) as client:
        answer = await client.create("/edgek8s/v1/renew", {"csr": csr_pem.decode()})
    new_cert = str(answer["certificate"]).encode()
    await asyncio.to_thread(_install, files, new_cert, key_pem)
    # On the loop, not in the thread: handshakes on the loop read this SSL_CTX (two small files).
    context.load_cert_chain(files.cert, files.key)
    logger.info("renewed the client certificate of %s; valid until %s", user, cert_info(new_cert).not_after)


def _install(files: ClientFiles, cert_pem: bytes, key_pem: bytes) -> None:
    write_private(files.key, key_pem)
    write_private(files.cert, cert_pem, mode=0o644)


class CertificateKeeper:
    def __init__(self, files: ClientFiles | Layout, servers: Sequence[str], *, fraction: float = 2 / 3) -> None:
        self.files = files.client_files if isinstance(files, Layout) else files
        self.servers = list(servers)
        self.fraction = fraction
        self.context = client_tls_context(self.files.ca, self.files.cert, self.files.key)

    def renew_at(self) -> datetime.datetime:
        return cert_info(self.files.cert.read_bytes()).renew_at(self.fraction)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            delay = (self.renew_at() - datetime.datetime.now(datetime.UTC)).total_seconds()
            if failures:
                delay = min(30.0, 0.5 * 2**failures) * random.uniform(0.5, 1.0)
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(delay, 3600.0))
                    return
                except TimeoutError:
                    if not failures and (self.renew_at() - datetime.datetime.now(datetime.UTC)).total_seconds() > 0:
                        continue
            server = self.servers[failures % len(self.servers)]
            try:
                await renew_certificate(self.files, server, self.context)
                failures = 0
            except (errors.StatusError, OSError, ValueError, KeyError) as exc:
                failures += 1
                logger.warning("certificate renewal via %s failed (%s); retrying", server, exc)
