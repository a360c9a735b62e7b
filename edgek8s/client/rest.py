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
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from edgek8s.client.interface import DeleteOptions, Obj, ObjectEvent, ObjectList
from edgek8s.model import errors, jsoncodec
from edgek8s.model.resources import ResourceType, by_id, resource_id

PODS = by_id(resource_id("", "pods"))

_BY_CODE: dict[int, type[errors.StatusError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    405: errors.MethodNotAllowed, 409: errors.Conflict, 410: errors.Gone, 413: errors.RequestEntityTooLarge,
    422: errors.Invalid, 429: errors.TooManyRequests, 503: errors.ServiceUnavailable, 504: errors.Timeout,
}


def drop_public_ca_defaults() -> None:
    """Replace the two client TLS contexts aiohttp builds at import with ones that load no CA bundle.

    aiohttp loads the system's public CA bundle into both at import (~3 MB of OpenSSL memory per
    process), although the unverified one never uses it. For a master, which trusts only its cluster
    CA and passes that context on every TLS request, the verified default then trusts nothing: a TLS
    request made without a context fails verification instead of trusting the public CAs. Call once
    per process, in processes that never talk TLS to the public internet.
    """
    from aiohttp import connector

    verified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no trusted CA
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    for context in (verified, unverified):
        context.set_alpn_protocols(("http/1.1",))
    connector._SSL_CONTEXT_VERIFIED = verified
    connector._SSL_CONTEXT_UNVERIFIED = unverified


class TransportError(errors.ServiceUnavailable):
    """The request could not be completed (connection refused, reset, timeout): outcome unknown for writes."""


def error_from_status(code: int, body: bytes) -> errors.StatusError:
    try:
        status = json.loads(body)
        message = str(status.get("message", "")) or body.decode(errors="replace")
        reason = status.get("reason", "")
        details = status.get("details") or {}
        causes = tuple(errors.StatusCause(field=str(c.get("field") or ""), reason=str(c.get("reason") or ""),
                                          message=str(c.get("message") or ""))
                       for c in details.get("causes") or () if isinstance(c, dict))
    except (ValueError, AttributeError):
        message, reason, causes = body.decode(errors="replace"), "", ()
    cls = _BY_CODE.get(code, errors.InternalError)
    if code == 409 and reason == "AlreadyExists":
        cls = errors.AlreadyExists
    elif code == 409 and message.startswith("fenced:"):
        cls = errors.Fenced
    return cls(message, causes=causes)


class ClientTLS:
    """A client's TLS context, replaceable when its certificate is renewed.

    The API verifies the client certificate on every request, validity included, and aiohttp keeps
    connections alive in a pool per ``SSLContext`` object. Loading a renewed certificate into the same
    context would leave pooled connections presenting the old one, and they would get 401s once it
    expires. So each request takes ``context`` as it is at that moment, and a renewal ``replace``s it:
    connections opened afterwards present the new certificate, pooled ones of the old context are no
    longer picked and close when idle, and in-flight requests and open watches finish where they are
    (client-go closes every connection on rotation instead, watches included).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context

    def replace(self, context: ssl.SSLContext) -> None:
        self.context = context


def client_tls(tls: ssl.SSLContext | ClientTLS | None) -> ClientTLS | None:
    return ClientTLS(tls) if isinstance(tls, ssl.SSLContext) else tls


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connections: int = 100,
        ssl_context: ssl.SSLContext | ClientTLS | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._tls = client_tls(ssl_context)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._connections))
        return self

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        """What a request made now uses (per request: see ``ClientTLS``)."""
        return self._tls.context if self._tls is not None else True

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use RestClient as an async context manager")
        return self._session

    async def request(
        self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self.session.request(
                method, self.base_url + path, data=data, params=params, headers=headers, ssl=self.ssl
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise error_from_status(response.status, raw)
                if response.content_type == "application/json" and raw:
                    return jsoncodec.loads(raw)
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
                self.base_url + path, params=params or None, timeout=aiohttp.ClientTimeout(total=None), ssl=self.ssl
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
            # orjson shares the keys of the objects it decodes (kept objects, e.g. an informer's cache
            # of pods, ~25% smaller than from json.loads) and is ~3x faster.
            yield jsoncodec.loads(line)

    async def upload(self, path: str, body: AsyncIterator[bytes], *, content_type: str) -> Any:
        """POST a streamed body (an image archive); never retried, like every write here."""
        try:
            async with self.session.post(self.base_url + path, data=body, headers={"Content-Type": content_type},
                                         timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                                         ssl=self.ssl) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise error_from_status(response.status, raw)
                return json.loads(raw) if raw else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"POST {path}: {type(exc).__name__}: {exc}") from exc

def resource_path(rtype: ResourceType, namespace: str | None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """The REST path of a collection, an object, or one of its subresources."""
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    if rtype.namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    path = f"{base}/{rtype.plural}"
    if name is not None:
        path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
    return path


def _meta(obj: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


class RestTransport(Protocol):
    """What ``RestClusterClient`` needs: ``RestClient``, or ``failover.FailoverClient`` over several masters."""

    async def request(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                      content_type: str = "application/json") -> Any: ...

    async def get(self, path: str, **params: str) -> Any: ...

    async def create(self, path: str, body: Any) -> Any: ...

    async def replace(self, path: str, body: Any) -> Any: ...

    async def delete(self, path: str, body: Any = None) -> Any: ...

    def watch(self, path: str, **params: str) -> AsyncIterator[dict[str, Any]]: ...


class RestClusterClient:
    """``ClusterClient`` over HTTP (kubelet, tools, out-of-process controllers), on an open ``RestClient``
    (or a ``FailoverClient``).

    Writes are sent once; a transport failure raises ``TransportError`` (outcome unknown)."""

    def __init__(self, rest: RestTransport) -> None:
        self._rest = rest

    async def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        result: Obj = await self._rest.get(resource_path(rtype, namespace, name))
        return result

    async def list(
        self, rtype: ResourceType, namespace: str | None = None, *, label_selector: str = "",
        field_selector: str = "", consistent: bool = True,
    ) -> ObjectList:
        params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        if not consistent:
            params["resourceVersion"] = "0"
        body = await self._rest.get(resource_path(rtype, namespace), **params)
        return ObjectList(list(body.get("items") or []), int(_meta(body).get("resourceVersion") or 0))

    async def watch(
        self, rtype: ResourceType, namespace: str | None = None, *, resource_version: int,
        label_selector: str = "", field_selector: str = "", prefilter: Callable[[bytes], bool] | None = None,
    ) -> AsyncIterator[ObjectEvent]:
        """Every event the server sends (``prefilter``, a hint, is not used over HTTP)."""
        params = {"resourceVersion": str(resource_version), "allowWatchBookmarks": "true"}
        params.update({k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v})
        async for event in self._rest.watch(resource_path(rtype, namespace), **params):
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise error_from_status(int(status.get("code") or 500), json.dumps(status).encode())
            yield ObjectEvent(str(event.get("type")), event.get("object") or {})

    async def create(self, rtype: ResourceType, obj: Obj) -> Obj:
        result: Obj = await self._rest.create(resource_path(rtype, _meta(obj).get("namespace")), obj)
        return result

    async def update(self, rtype: ResourceType, obj: Obj) -> Obj:
        meta = _meta(obj)
        result: Obj = await self._rest.replace(resource_path(rtype, meta.get("namespace"), meta["name"]), obj)
        return result

    async def update_status(self, rtype: ResourceType, obj: Obj) -> Obj:
        meta = _meta(obj)
        result: Obj = await self._rest.replace(
            resource_path(rtype, meta.get("namespace"), meta["name"], "status"), obj)
        return result

    async def patch(self, rtype: ResourceType, namespace: str, name: str, patch: Obj, *,
                    subresource: str | None = None) -> Obj:
        result: Obj = await self._rest.request(
            "PATCH", resource_path(rtype, namespace, name, subresource), body=patch,
            content_type="application/merge-patch+json")
        return result

    async def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, options: DeleteOptions | None = None
    ) -> Obj | None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if options is not None:
            preconditions = {k: v for k, v in (("uid", options.uid), ("resourceVersion", options.resource_version))
                             if v is not None}
            if preconditions:
                body["preconditions"] = {k: str(v) for k, v in preconditions.items()}
            if options.propagation_policy:
                body["propagationPolicy"] = options.propagation_policy
            if options.grace_period_seconds is not None:
                body["gracePeriodSeconds"] = options.grace_period_seconds
        result = await self._rest.delete(resource_path(rtype, namespace, name), body)
        if isinstance(result, dict) and result.get("kind") != "Status":
            return result
        return None

    async def bind(self, namespace: str, name: str, *, node: str, uid: str | None = None) -> None:
        binding: Obj = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": namespace},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        if uid:
            binding["metadata"]["uid"] = uid
        await self._rest.create(resource_path(PODS, namespace, name, "binding"), binding)
