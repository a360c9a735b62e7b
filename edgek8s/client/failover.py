"""A REST client over a list of masters that fails over when the one it uses stops answering.

Reads (GET, watch) move on to the next master at once and retry there, once per master. A write that
fails in transport is *not* resent (its outcome is unknown; see ``rest.RestClient``): the client moves
on to the next master and raises, so the caller decides (the kubelet's loops are level-triggered and
write again from fresh state on their next pass). Business errors (404, 409, 422...) never fail over.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

from edgek8s.client.rest import ClientTLS, RestClient, TransportError

logger = logging.getLogger(__name__)


class FailoverClient:
    def __init__(self, urls: Sequence[str], *, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | ClientTLS | None = None, connections: int = 20) -> None:
        if not urls:
            raise ValueError("FailoverClient needs at least one master URL")
        self.urls = list(dict.fromkeys(u.rstrip("/") for u in urls))
        self._clients = [RestClient(u, timeout=timeout, ssl_context=ssl_context, connections=connections)
                         for u in self.urls]
        self._current = 0

    async def __aenter__(self) -> FailoverClient:
        for client in self._clients:
            await client.__aenter__()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for client in self._clients:
            await client.__aexit__(*exc)

    @property
    def current_url(self) -> str:
        return self.urls[self._current]

    def _failed(self, index: int, exc: Exception) -> None:
        if index == self._current and len(self._clients) > 1:
            self._current = (index + 1) % len(self._clients)
            logger.warning("master %s unreachable (%s); switching to %s", self.urls[index], exc, self.current_url)

    async def request(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Any:
        attempts = len(self._clients) if method == "GET" else 1
        last: TransportError | None = None
        for _ in range(attempts):
            index = self._current
            try:
                return await self._clients[index].request(method, path, body=body, params=params,
                                                          content_type=content_type)
            except TransportError as exc:
                self._failed(index, exc)
                last = exc
        assert last is not None
        raise last

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Any, *, content_type: str = "application/merge-patch+json") -> Any:
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.request("DELETE", path, body=body)

    async def watch(self, path: str, **params: str) -> AsyncIterator[dict[str, Any]]:
        index = self._current
        try:
            async for event in self._clients[index].watch(path, **params):
                yield event
        except TransportError as exc:
            self._failed(index, exc)
            raise
