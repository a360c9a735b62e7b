"""The aiohttp application: routes, and the middleware that turns every failure into a ``Status``.

Handlers raise ``StatusError``; the middleware answers with the Status body and code. Anything else
is a bug: it is logged with a traceback and answered as a 500 Status, never as an HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from edgek8s._util.ratelimit import FailureLimiter
from edgek8s.api import bootstrap, discovery, metrics, openapi, reviews, streams, system
from edgek8s.api.authn import REVOCATIONS, TOKEN_LIMITER, VERIFIER, authenticate
from edgek8s.api.authz import authorize
from edgek8s.api.context import CONFIG, STORE, json_response, status_response
from edgek8s.api.credentials import Revocations
from edgek8s.api.kubelets import kubelet_client_ctx
from edgek8s.api.paths import parse_target
from edgek8s.api.resources import handle_collection, handle_object
from edgek8s.config import ServerConfig
from edgek8s.model import errors
from edgek8s.pki.certs import ClientVerifier
from edgek8s.store.raftstore import RaftStore

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.StatusError as exc:
        return status_response(exc)
    except web.HTTPRequestEntityTooLarge:
        return status_response(errors.RequestEntityTooLarge("the request body is too large"))
    except web.HTTPNotFound:
        return status_response(errors.NotFound("the server could not find the requested resource"))
    except web.HTTPMethodNotAllowed as exc:
        return status_response(errors.MethodNotAllowed(f"the server does not allow this method ({exc.method})"))
    except web.HTTPException:
        raise
    except Exception as exc:
        logger.exception("unhandled error serving %s %s", request.method, request.path)
        return status_response(errors.InternalError(f"internal error: {type(exc).__name__}"))


async def core_api(request: web.Request) -> web.StreamResponse:
    return await _resource_request(request, "", request.match_info["version"], request.match_info["tail"])


async def group_api(request: web.Request) -> web.StreamResponse:
    return await _resource_request(
        request, request.match_info["group"], request.match_info["version"], request.match_info["tail"]
    )


async def _resource_request(request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
    segments = tail.split("/") if tail else []
    if not segments:
        body = discovery.resource_list(group, version)
        if body is None or request.method != "GET":
            raise errors.NotFound("the server could not find the requested resource")
        return json_response(body)
    target = parse_target(group, version, segments)
    if target.subresource in streams.POD_STREAMS and target.rtype.plural == "pods" and not group:
        return await streams.handle_pod_stream(request, target)
    if target.name is None:
        return await handle_collection(request, target)
    return await handle_object(request, target)


def build_app(store: RaftStore, config: ServerConfig) -> web.Application:
    app = web.Application(
        middlewares=[status_errors, authenticate, authorize], client_max_size=config.api.max_body_bytes + 1024
    )
    app[STORE] = store
    app[CONFIG] = config
    app[TOKEN_LIMITER] = FailureLimiter()
    app[REVOCATIONS] = Revocations(store)
    if config.api.client_ca_file is not None:
        app[VERIFIER] = ClientVerifier(config.api.client_ca_file.read_bytes())
    app.cleanup_ctx.append(kubelet_client_ctx)
    system.add_routes(app)
    bootstrap.add_routes(app)
    streams.add_routes(app)  # before the generic routes below: they would claim these paths
    metrics.add_routes(app)
    reviews.add_routes(app)
    # Path outer, method inner: aiohttp then keeps one resource per path with five methods, instead of
    # twenty resources that every API request tries in turn. Resource paths first, then the version
    # roots, then discovery's /api and /apis: none of these overlap, and aiohttp tries resources with
    # the same static prefix in the order they were added, so an object request matches the first.
    for path, handler in (
        ("/api/{version}/{tail:.*}", core_api),
        ("/apis/{group}/{version}/{tail:.*}", group_api),
        ("/api/{version}", core_api_root),
        ("/apis/{group}/{version}", group_api_root),
    ):
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            app.router.add_route(method, path, handler)
    discovery.add_routes(app)
    openapi.add_routes(app)
    return app


async def core_api_root(request: web.Request) -> web.StreamResponse:
    return await _resource_request(request, "", request.match_info["version"], "")


async def group_api_root(request: web.Request) -> web.StreamResponse:
    return await _resource_request(request, request.match_info["group"], request.match_info["version"], "")
