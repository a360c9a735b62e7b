"""The kubelet's streaming endpoint lets in only the API servers: mTLS with the cluster CA, and a client
certificate whose CN is the API servers' kubelet-client name. Real TLS on loopback, a real server."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from edgek8s.config import KUBELET_CLIENT_NAME, KubeletServerConfig
from edgek8s.kubelet.podman_streams import PodmanStreams
from edgek8s.kubelet.stream_server import KubeletServer
from edgek8s.pki.certs import CertPair, client_tls_context, issue, new_ca, write_pair


def _client(tmp: Path, ca: CertPair, name: str, *, signer: CertPair | None = None, client: bool = True,
            server: bool = False, lifetime: datetime.timedelta | None = None) -> ssl.SSLContext:
    pair = issue(signer or ca, common_name=name, organizations=["system:masters"], client=client, server=server,
                 lifetime=lifetime)
    write_pair(pair, tmp / f"{name}.crt", tmp / f"{name}.key")
    return client_tls_context(tmp / "ca.crt", tmp / f"{name}.crt", tmp / f"{name}.key")


@pytest.fixture
async def endpoint(tmp_path: Path) -> AsyncIterator[tuple[str, CertPair]]:
    ca = new_ca()
    write_pair(ca, tmp_path / "ca.crt", tmp_path / "ca.key")
    write_pair(issue(ca, common_name="system:node:n1", ip_addresses=["127.0.0.1"], server=True),
               tmp_path / "kubelet.crt", tmp_path / "kubelet.key")
    config = KubeletServerConfig(host="127.0.0.1", port=0, tls_cert_file=tmp_path / "kubelet.crt",
                                 tls_key_file=tmp_path / "kubelet.key", client_ca_file=tmp_path / "ca.crt")
    # No Podman behind it: these requests are decided before any container is looked at.
    server = KubeletServer(config, PodmanStreams(tmp_path / "no-podman.sock"))
    await server.start()
    try:
        yield f"https://127.0.0.1:{server.port}", ca
    finally:
        await server.stop()


async def _get(url: str, tls: ssl.SSLContext) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=tls) as response:
        return response.status, await response.text()


async def test_only_the_api_servers_certificate_gets_in(endpoint: tuple[str, CertPair], tmp_path: Path) -> None:
    url, ca = endpoint
    assert await _get(f"{url}/healthz", _client(tmp_path, ca, KUBELET_CLIENT_NAME)) == (200, "ok")
    status, body = await _get(f"{url}/stats/usage", _client(tmp_path, ca, "admin"))
    assert status == 403 and 'user \\"admin\\" may not use the kubelet API' in body


async def test_no_certificate_or_a_foreign_ca_fails_the_handshake(endpoint: tuple[str, CertPair],
                                                                  tmp_path: Path) -> None:
    url, ca = endpoint
    anonymous = client_tls_context(tmp_path / "ca.crt")
    foreign = _client(tmp_path, ca, KUBELET_CLIENT_NAME, signer=new_ca("someone-else"))
    for tls in (anonymous, foreign):
        with pytest.raises(aiohttp.ClientError):
            await _get(f"{url}/healthz", tls)


async def test_a_certificate_not_for_client_auth_fails_the_handshake(endpoint: tuple[str, CertPair],
                                                                     tmp_path: Path) -> None:
    url, ca = endpoint
    serving_only = _client(tmp_path, ca, KUBELET_CLIENT_NAME, client=False, server=True)
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{url}/healthz", serving_only)


async def test_a_certificate_that_expires_on_a_kept_alive_connection_is_refused(
        endpoint: tuple[str, CertPair], tmp_path: Path) -> None:
    url, ca = endpoint
    lifetime = 3.0
    issued = time.time()
    tls = _client(tmp_path, ca, KUBELET_CLIENT_NAME, lifetime=datetime.timedelta(seconds=lifetime))
    connector = aiohttp.TCPConnector(limit=1, ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 200 and time.time() < issued + lifetime  # else the machine is too slow
            await response.read()
        await asyncio.sleep(max(0.0, issued + lifetime + 1.5 - time.time()))
        # A new handshake would fail (OpenSSL rejects the expired certificate): a 401 is the per-request check.
        async with session.get(f"{url}/healthz") as response:
            assert response.status == 401


async def test_a_missing_runtime_is_a_clean_status(endpoint: tuple[str, CertPair], tmp_path: Path) -> None:
    url, ca = endpoint
    status, body = await _get(f"{url}/containerLogs/ns/pod/uid/app", _client(tmp_path, ca, KUBELET_CLIENT_NAME))
    assert status == 503 and "cannot reach podman" in body
