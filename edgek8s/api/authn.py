"""Authentication: who sent the request, from the TLS client certificate (CN = user, O = groups).

With TLS on, every request must carry a certificate signed by the cluster CA, except the public
health and version endpoints (as kube-apiserver's system:public-info-viewer allows); others get a 401
Status. The TLS layer requests but does not require a certificate, so a client without one gets a clean
401 instead of a handshake failure. Without TLS (tests, benchmarks) every request is the anonymous
admin. Authorization per identity is layered on top of ``USER`` (NodeRestriction comes with joining).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from edgek8s.api.context import CONFIG
from edgek8s.model import errors
from edgek8s.pki.certs import identity_from_peercert

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...]


USER = web.RequestKey("user", User)
DEVELOPMENT_ADMIN = User("system:admin", ("system:masters",))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[CONFIG].api.tls:
        request[USER] = DEVELOPMENT_ADMIN
        return await handler(request)
    transport = request.transport
    identity = identity_from_peercert(transport.get_extra_info("peercert") if transport is not None else None)
    if identity is None:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        raise errors.Unauthorized("Unauthorized")
    request[USER] = User(*identity)
    return await handler(request)
