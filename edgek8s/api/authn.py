"""Authentication: who sent the request.

- A TLS client certificate verified here against the cluster CA (``pki.certs.ClientVerifier``: issuer,
  signature, usage, validity period; CN = user, O = groups) and not revoked (a deleted Node's
  certificates issued before the deletion; see ``credentials``). The TLS layer lets any certificate
  finish the handshake, so a foreign or expired one gets a 401 here rather than a failed handshake
  kubectl would retry for a long time; any certificate that does not verify is a 401, never a
  fallback to a token.
- Otherwise an ``Authorization: Bearer <id>.<secret>`` join token, matched against the hash kept in
  the store: the user ``system:bootstrap:<id>`` with groups ``system:bootstrappers`` and
  ``system:bootstrappers:edgek8s:<role>``. Failed token attempts are rate-limited per client address
  (429 past the limit) and logged with the token id only, never the secret.
- Otherwise 401, except for the public health, version and cluster-info endpoints.

The TLS layer requests but does not require a certificate. Without TLS (tests, benchmarks) every request
is the anonymous admin.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from edgek8s._util.ratelimit import FailureLimiter
from edgek8s.api.context import CONFIG, STORE
from edgek8s.api.credentials import Revocations
from edgek8s.model import errors
from edgek8s.model.resources import resource_id
from edgek8s.pki import tokens
from edgek8s.pki.certs import ClientVerifier
from edgek8s.store.raftstore import RaftStore

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/edgek8s/v1/cluster-info"})
SECRETS = resource_id("", "secrets")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...]


USER = web.RequestKey("user", User)
TOKEN_LIMITER = web.AppKey("token_limiter", FailureLimiter)
VERIFIER = web.AppKey("client_verifier", ClientVerifier)
REVOCATIONS = web.AppKey("revocations", Revocations)
DEVELOPMENT_ADMIN = User("system:admin", ("system:masters",))

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _token_user(store: RaftStore, bearer: str) -> User | None:
    parsed = tokens.parse_bearer(bearer)
    if parsed is None:
        return None
    token_id, secret = parsed
    stored, _ = store.state.get(SECRETS, tokens.NAMESPACE, tokens.secret_name(token_id))
    if stored is None:
        return None
    record = tokens.verify(stored.decode(), secret, now=datetime.datetime.now(datetime.UTC))
    if record is None:
        return None
    return User(f"system:bootstrap:{token_id}", ("system:bootstrappers", tokens.GROUP_PREFIX + record.role))


def _authenticate_token(request: web.Request) -> User:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise errors.Unauthorized("Unauthorized")
    limiter = request.app[TOKEN_LIMITER]
    client = request.remote or "?"
    if not limiter.allowed(client):
        raise errors.TooManyRequests("too many failed token attempts; retry later", retry_after=limiter.retry_after())
    user = _token_user(request.app[STORE], header.removeprefix("Bearer ").strip())
    if user is None:
        limiter.failed(client)
        token_id = header.removeprefix("Bearer ").strip().partition(".")[0][:6]
        logger.warning("rejected a bearer token (id %r) from %s", token_id, client)
        raise errors.Unauthorized("Unauthorized")
    return user


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[CONFIG].api.tls:
        request[USER] = DEVELOPMENT_ADMIN
        return await handler(request)
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    identity = request.app[VERIFIER].identity(der)
    if identity is not None and not request.app[REVOCATIONS].revoked(identity):
        request[USER] = User(identity.user, identity.groups)
        return await handler(request)
    if der:
        # A CA-signed certificate that is expired, not yet valid or revoked: never fall back to a token.
        raise errors.Unauthorized("Unauthorized")
    if "Authorization" not in request.headers and request.path in PUBLIC_PATHS:
        return await handler(request)
    request[USER] = _authenticate_token(request)
    return await handler(request)
