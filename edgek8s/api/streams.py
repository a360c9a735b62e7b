"""Pod streams proxied to the pod's kubelet: ``log``, ``exec``, ``attach``, ``portforward``;
and ``nodes/{name}/proxy/...`` (admins only) for kubelet endpoints such as image loading.

The API server checks everything it can before it upgrades kubectl's connection (pod, container,
phase, node, and the kubelet's own upgrade), so a failure is a Status kubectl prints. kubectl retries
a refused WebSocket with a SPDY POST; that POST gets the same checks, then a BadRequest saying only
WebSocket streaming is served. Exec frames are relayed verbatim (the kubelet speaks the same
``v5``/``v4.channel.k8s.io`` protocol); port-forward's SPDY is terminated here (api/portforward.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from edgek8s.api.authn import USER
from edgek8s.api.kubelets import KUBELETS, get_node, get_pod, kubelet_url, pod_kubelet
from edgek8s.api.paths import Target
from edgek8s.api.portforward import PROTOCOL as PORT_FORWARD_PROTOCOL
from edgek8s.api.portforward import PortForwardSession
from edgek8s.model import channels, errors

POD_STREAMS = frozenset({"log", "exec", "attach", "portforward"})
_MAX_MESSAGE = 4 * 1024 * 1024
_LOG_INTS = ("tailLines", "sinceSeconds", "limitBytes")
_LOG_FLAGS = ("follow", "timestamps", "previous")
_EXEC_FLAGS = ("stdin", "stdout", "stderr", "tty")


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def _container(pod: dict[str, Any], requested: str | None) -> str:
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [str(c.get("name", "")) for c in spec.get("containers") or []]
    others = [str(c.get("name", "")) for key in ("initContainers", "ephemeralContainers") for c in spec.get(key) or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        raise errors.BadRequest(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]")
    if requested not in containers and requested not in others:
        raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
    return requested


def _check_started(pod: dict[str, Any], container: str) -> None:
    """Upstream's answer for a container that has not run yet (kubectl prints it as is)."""
    status = pod.get("status") or {}
    for entry in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        waiting = (entry.get("state") or {}).get("waiting")
        if entry.get("name") == container and waiting is not None and not entry.get("lastState"):
            raise errors.BadRequest(f'container "{container}" in pod "{pod["metadata"]["name"]}" is waiting to '
                                    f'start: {waiting.get("reason") or "ContainerCreating"}')


def _base(pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}/{meta['uid']}"


def _negotiate(request: web.Request, offered: tuple[str, ...]) -> str | None:
    """The first subprotocol the client offers that we serve; None if it is not a WebSocket upgrade."""
    if request.method != "GET" or "websocket" not in request.headers.get("Upgrade", "").lower():
        return None
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        if protocol.strip() in offered:
            return protocol.strip()
    return None


def _websocket_only(what: str, protocols: tuple[str, ...]) -> errors.BadRequest:
    return errors.BadRequest(f"{what} is served over WebSocket only (subprotocol {' or '.join(protocols)}); "
                             "use kubectl 1.30 or newer")


async def handle_pod_stream(request: web.Request, target: Target) -> web.StreamResponse:
    assert target.name is not None and target.namespace is not None
    if target.subresource == "log":
        if request.method != "GET":
            raise errors.MethodNotAllowed(f"{request.method} is not supported on pods/log")
        return await _log(request, target.namespace, target.name)
    if target.subresource in ("exec", "attach"):
        return await _exec(request, target.namespace, target.name, attach=target.subresource == "attach")
    return await _port_forward(request, target.namespace, target.name)


async def _log(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    query = request.query
    params: list[tuple[str, str]] = []
    for key in _LOG_INTS:
        value = query.get(key)
        if value not in (None, ""):
            if not value.isdigit():
                raise errors.BadRequest(f"{key}: invalid value {value!r}: must be a non-negative integer")
            params.append((key, value))
    params += [(key, "true") for key in _LOG_FLAGS if _flag(query.get(key))]
    if query.get("sinceTime"):
        params.append(("sinceTime", query["sinceTime"]))
    pod = await get_pod(request, namespace, name)
    container = _container(pod, query.get("container"))
    if not _flag(query.get("previous")):
        _check_started(pod, container)
    url = f"{await pod_kubelet(request, pod)}/containerLogs/{_base(pod)}/{container}"
    upstream = await request.app[KUBELETS].open_stream(url, params=params)
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    except aiohttp.ClientError:
        return response  # the kubelet went away mid-stream: end the log there, as upstream does
    finally:
        upstream.close()


async def _relay(client: web.WebSocketResponse, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """Frames both ways until one side ends; the kubelet ending (after its status frame) ends kubectl's."""

    async def downstream() -> None:
        with contextlib.suppress(ConnectionError):
            async for message in kubelet:
                if message.type == WSMsgType.BINARY:
                    await client.send_bytes(message.data)
        await client.close()

    task = asyncio.create_task(downstream(), name="exec-downstream")
    try:
        async for message in client:
            if message.type == WSMsgType.BINARY and not kubelet.closed:
                await kubelet.send_bytes(message.data)
    except ConnectionError:
        pass
    finally:
        await kubelet.close()  # ends downstream too
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(task, timeout=2.0)


async def _exec(request: web.Request, namespace: str, name: str, *, attach: bool) -> web.StreamResponse:
    command = [] if attach else request.query.getall("command", [])
    if not command and not attach:
        raise errors.BadRequest("you must specify at least one command for the container")
    pod = await get_pod(request, namespace, name)
    container = _container(pod, request.query.get("container"))
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        verb = "attach to" if attach else "exec into"
        raise errors.BadRequest(f"cannot {verb} a container in a completed pod; current phase is {phase}")
    base = await pod_kubelet(request, pod)
    protocol = _negotiate(request, channels.PROTOCOLS)
    if protocol is None:
        raise _websocket_only("attach" if attach else "exec", channels.PROTOCOLS)
    params = [("command", c) for c in command] + [(f, "true") for f in _EXEC_FLAGS if _flag(request.query.get(f))]
    ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=_MAX_MESSAGE)
    try:
        kubelet = await request.app[KUBELETS].websocket(
            f"{base}/{'attach' if attach else 'exec'}/{_base(pod)}/{container}", protocols=(protocol,),
            params=params)
    except errors.StatusError as exc:
        # Refusing the upgrade would send kubectl to its SPDY fallback, whose error hides this one.
        await ws.prepare(request)
        await asyncio.sleep(channels.FAILURE_GRACE)
        await ws.send_bytes(channels.failure_frame(exc))
        await ws.close()
        return ws
    try:
        await ws.prepare(request)
        await _relay(ws, kubelet)
        await ws.close()
        return ws
    finally:
        await kubelet.close()


async def _port_forward(request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    pod = await get_pod(request, namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running":
        raise errors.BadRequest(f"unable to forward port because pod is not running. Current status={phase}")
    base = await pod_kubelet(request, pod)
    if _negotiate(request, (PORT_FORWARD_PROTOCOL,)) is None:
        raise _websocket_only("port-forward", (PORT_FORWARD_PROTOCOL,))
    kubelets = request.app[KUBELETS]
    url = f"{base}/portForward/{_base(pod)}"

    async def dial(port: int) -> aiohttp.ClientWebSocketResponse:
        return await kubelets.websocket(url, protocols=(channels.PORT_FORWARD_RELAY,), params=[("port", str(port))])

    ws = web.WebSocketResponse(protocols=(PORT_FORWARD_PROTOCOL,), max_msg_size=_MAX_MESSAGE)
    await ws.prepare(request)
    await PortForwardSession(ws, dial).run()
    await ws.close()
    return ws


async def node_proxy(request: web.Request) -> web.StreamResponse:
    """``/api/v1/nodes/{name}/proxy/{path}``: a kubelet endpoint, for cluster admins only."""
    user = request.get(USER)
    if user is None or "system:masters" not in user.groups:
        raise errors.Forbidden(f'nodes "{request.match_info["name"]}" is forbidden: only cluster admins may '
                               "use the node proxy")
    url = f"{kubelet_url(await get_node(request, request.match_info['name']))}/{request.match_info['path']}"
    kubelets = request.app[KUBELETS]
    if request.method == "POST":
        result = await kubelets.upload(url, request.content.iter_chunked(256 * 1024),
                                       content_type=request.content_type)
        return web.json_response(result)
    if request.method != "GET":
        raise errors.MethodNotAllowed(f"{request.method} is not supported on the node proxy")
    upstream = await kubelets.open_stream(url, params=list(request.query.items()))
    try:
        response = web.StreamResponse(headers={"Content-Type": upstream.content_type})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        upstream.close()


def add_routes(app: web.Application) -> None:
    for method in ("GET", "POST"):
        app.router.add_route(method, "/api/v1/nodes/{name}/proxy/{path:.*}", node_proxy)
