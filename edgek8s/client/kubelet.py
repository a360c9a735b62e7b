"""The API server's client for kubelet endpoints (logs, exec, port-forward, usage, image loading).

One aiohttp session for all kubelets, authenticated with the API servers' kubelet-client certificate;
kubelet serving certificates are verified against the cluster CA. Streams are handed to the caller
open (the caller closes them); failures become ``StatusError``s: a kubelet's own Status is passed on,
an unreachable kubelet is a 502-like ServiceUnavailable naming the node.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from edgek8s.client.rest import error_from_status
from edgek8s.model import errors

_CONNECT_TIMEOUT = 10.0


class KubeletClient:
    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeletClient:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT),
            connector=aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=0),
            auto_decompress=False,
        )
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use KubeletClient as an async context manager")
        return self._session

    async def _check(self, response: aiohttp.ClientResponse) -> None:
        if response.status >= 400:
            body = await response.read()
            response.release()
            raise error_from_status(response.status, body)

    async def open_stream(self, url: str, *, params: list[tuple[str, str]] | None = None) -> aiohttp.ClientResponse:
        """A GET whose body the caller reads incrementally (``response.content``) and then releases."""
        try:
            response = await self.session.get(url, params=params)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {url}: {exc}") from exc
        await self._check(response)
        return response

    async def websocket(self, url: str, *, protocols: tuple[str, ...],
                        params: list[tuple[str, str]] | None = None) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.session.ws_connect(url, params=params, protocols=protocols, autoping=True,
                                                 max_msg_size=4 * 1024 * 1024, heartbeat=None)
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

    async def post_stream(self, url: str, body: AsyncIterator[bytes], *, content_type: str) -> Any:
        try:
            async with self.session.post(url, data=body, headers={"Content-Type": content_type}) as response:
                await self._check(response)
                return await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise errors.ServiceUnavailable(f"cannot reach the kubelet at {url}: {exc}") from exc
