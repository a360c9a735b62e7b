"""The kubelet endpoint's serving certificate is renewed through the API, for the same names, and loaded
into the live server context: new handshakes get it, a connection opened before keeps working."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from edgek8s.client.certificates import renew_kubelet_serving
from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.pki.certs import cert_identity, cert_sans, client_tls_context, mutual_tls_server_context, new_csr
from tests.component.test_join_api import Env, env, join_worker, make_token, node_tls

__all__ = ["env"]


async def presented(port: int, ca: Path) -> bytes:
    context = client_tls_context(ca)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="pi-k")
    try:
        return bytes(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
    finally:
        writer.close()
        await writer.wait_closed()


async def test_kubelet_serving_certificate_renews_in_place(env: Env, tmp_path: Path) -> None:
    layout = await join_worker(env, await make_token(env), "pi-k", tmp_path)
    before = layout.kubelet_serving_cert.read_bytes()
    serving = mutual_tls_server_context(layout.kubelet_serving_cert, layout.kubelet_serving_key, layout.ca_cert)
    serving.verify_mode = ssl.CERT_NONE  # this test server checks only what it presents

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=serving)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls_context(layout.ca_cert),
                                                       server_hostname="pi-k")
        assert await presented(port, layout.ca_cert) == ssl.PEM_cert_to_DER_cert(before.decode())
        await renew_kubelet_serving(layout.kubelet_serving_cert, layout.kubelet_serving_key, server=env.url,
                                    client=node_tls(layout), serving=serving)
        after = layout.kubelet_serving_cert.read_bytes()
        assert after != before and cert_sans(after) == cert_sans(before)
        assert cert_identity(after) == ("system:node:pi-k", ("system:nodes",))
        assert await presented(port, layout.ca_cert) == ssl.PEM_cert_to_DER_cert(after.decode())
        writer.write(b"still here\n")  # the connection opened before the renewal goes on
        assert await reader.readline() == b"still here\n"
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()

    csr, _key = new_csr("system:node:pi-other", ["system:nodes"])
    async with RestClient(env.url, ssl_context=node_tls(layout)) as node, \
            RestClient(env.url, ssl_context=env.admin) as admin:
        with pytest.raises(errors.BadRequest, match="same node"):  # only its own name
            await node.create("/edgek8s/v1/renew", {"kubeletCsr": csr.decode()})
        with pytest.raises(errors.Forbidden, match="only a node"):
            await admin.create("/edgek8s/v1/renew", {"kubeletCsr": csr.decode()})
