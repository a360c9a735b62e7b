"""The API server's client for kubelet endpoints (logs, exec, port-forward, usage, image loading).

One aiohttp session for all kubelets, authenticated with the API servers' kubelet-client certificate;
kubelet serving certificates are verified against the cluster CA. Streams are handed to the caller
open (the caller closes them); failures become ``StatusError``s: a kubelet's own Status is passed on,
an unreachable kubelet is a 502-like ServiceUnavailable naming the node.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from edgek8s.client.rest import ClientTLS, RestClient, error_from_status
from edgek8s.model import errors

_CONNECT_TIMEOUT = 10.0


class KubeletClient(RestClient):
    """A ``RestClient`` without a base URL (each kubelet has its own) whose streams have no total timeout."""

    def __init__(self, ssl_context: ssl.SSLContext | ClientTLS | None) -> None:
        super().__init__("", connections=0, ssl_context=ssl_context)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT)

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        if response.status >= 400:
            body = await response.read()
            response.release()
            raise error_from_status(response.status, body)

    async def open_stream(self, url: str, *, params: list[tuple[str, str]] | None = None) -> aiohttp.ClientResponse:
        """A GET whose body the caller reads incrementally (``response.content``) and then releases."""
        try:
            response = await self.session.get(url, params=params, ssl=self.ssl)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {url}: {exc}") from exc
        await self._check(response)
        return response

    async def websocket(self, url: str, *, protocols: tuple[str, ...],
                        params: list[tuple[str, str]] | None = None) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.session.ws_connect(url, params=params, protocols=protocols, autoping=True,
                                                 max_msg_size=4 * 1024 * 1024, heartbeat=None, ssl=self.ssl)
        except aiohttp.WSServerHandshakeError as exc:
            # The kubelet answered with a Status instead of upgrading: aiohttp drops the body, keep the code.
            cls = {400: errors.BadRequest, 403: errors.Forbidden, 404: errors.NotFound}.get(
                exc.status, errors.ServiceUnavailable)
            raise cls(str(exc.message)) from exc  # the kubelet puts its message in the reason phrase
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {url}: {exc}") from exc

    async def get_json(self, url: str) -> Any:
        response = await self.open_stream(url)
        try:
            return await response.json()
        finally:
            response.release()
