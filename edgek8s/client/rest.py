"""A small async client for the edgek8s / Kubernetes REST API; the only owner of aiohttp.ClientSession.

Writes are never retried here: aiohttp may silently resend a request on a kept-alive connection that
the server closed, and a resent PUT or DELETE can apply twice or report the wrong outcome. Requests
are sent with ``Connection`` reuse but every failure surfaces to the caller, who decides (a history
recorder must treat a failed write as indeterminate). Errors come back as ``StatusError``s rebuilt
from the server's Status body.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp

from edgek8s.model import errors

_BY_CODE: dict[int, type[errors.StatusError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    405: errors.MethodNotAllowed, 409: errors.Conflict, 410: errors.Gone, 413: errors.RequestEntityTooLarge,
    422: errors.Invalid, 429: errors.TooManyRequests, 503: errors.ServiceUnavailable, 504: errors.Timeout,
}


class TransportError(errors.ServiceUnavailable):
    """The request could not be completed (connection refused, reset, timeout): outcome unknown for writes."""


def error_from_status(code: int, body: bytes) -> errors.StatusError:
    try:
        status = json.loads(body)
        message = str(status.get("message", "")) or body.decode(errors="replace")
        reason = status.get("reason", "")
    except ValueError:
        message, reason = body.decode(errors="replace"), ""
    cls = _BY_CODE.get(code, errors.InternalError)
    if code == 409 and reason == "AlreadyExists":
        cls = errors.AlreadyExists
    return cls(message)


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            connector=aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl if self._ssl is not None else True),
        )
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use RestClient as an async context manager")
        return self._session

    async def request(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self.session.request(
                method, self.base_url + path, data=data, params=params, headers=headers
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise error_from_status(response.status, raw)
                if response.content_type == "application/json" and raw:
                    return json.loads(raw)
                return raw
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body=body)

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.request("DELETE", path, body=body)

    async def stream_lines(self, path: str, **params: str) -> AsyncIterator[bytes]:
        """Lines of a streaming response (watch events, snapshot records)."""
        try:
            async with self.session.get(
                self.base_url + path, params=params or None, timeout=aiohttp.ClientTimeout(total=None)
            ) as response:
                if response.status >= 400:
                    raise error_from_status(response.status, await response.read())
                while True:
                    line = await response.content.readline()
                    if not line:
                        return
                    yield line
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"GET {path}: {type(exc).__name__}: {exc}") from exc

    async def watch(self, path: str, **params: str) -> AsyncIterator[dict[str, Any]]:
        params = {"watch": "1", **params}
        async for line in self.stream_lines(path, **params):
            yield json.loads(line)

    async def upload(self, path: str, body: AsyncIterator[bytes], *, content_type: str) -> Any:
        """POST a streamed body (an image archive); never retried, like every write here."""
        try:
            async with self.session.post(self.base_url + path, data=body, headers={"Content-Type": content_type},
                                         timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise error_from_status(response.status, raw)
                return json.loads(raw) if raw else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"POST {path}: {type(exc).__name__}: {exc}") from exc
