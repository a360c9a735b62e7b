"""The kubelet's HTTPS endpoint: container logs, exec, port-forward, usage, image loading.

Only API servers call it (mTLS with the cluster CA, client CN in ``allowed_clients``); they proxy
``kubectl logs|exec|port-forward|top`` to it. Routes (the pod's uid pins the pod instance):

  GET  /containerLogs/{ns}/{pod}/{uid}/{container}?follow&tailLines&sinceSeconds&sinceTime&timestamps&previous
       &limitBytes
  GET  /exec/{ns}/{pod}/{uid}/{container}?command=..&stdin&stdout&stderr&tty   WebSocket v5/v4.channel.k8s.io
  GET  /attach/{ns}/{pod}/{uid}/{container}?stdin&stdout&stderr&tty            (the same, main process)
  GET  /portForward/{ns}/{pod}/{uid}?port=N      WebSocket: binary messages are the bytes; text "eof" = half-close;
                                                 a failed dial closes it with code 1011 and the reason
  GET  /stats/usage                              JSON: node and per-container cpu (nanocores) and memory
  POST /images/load                              body: an image archive (podman/docker save); loads it

Bad requests (a bad query, no upgrade) get a Status with its HTTP code. Failing to start an exec or
attach, or to dial the pod's port, is reported after the upgrade, in-band (a channel-3 Status; a close
with code 1011 and the reason): the body of a refused upgrade never reaches kubectl through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import asdict
from typing import cast

from aiohttp import WSCloseCode, WSMsgType, web

from edgek8s.config import KubeletServerConfig
from edgek8s.kubelet.streams import ContainerRef, ContainerStreams, ExecOptions, ExecSession, LogOptions, PodRef
from edgek8s.model import channels, errors
from edgek8s.pki.certs import ClientVerifier, mutual_tls_server_context

logger = logging.getLogger(__name__)

STREAMS = web.AppKey("container_streams", ContainerStreams)
ALLOWED = web.AppKey("allowed_clients", frozenset)
VERIFIER = web.AppKey("client_verifier", ClientVerifier)


_MAX_MESSAGE = 4 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status(error: errors.StatusError) -> web.Response:
    return web.Response(body=json.dumps(error.to_status()).encode(), status=error.code,
                        content_type="application/json")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The handshake required a certificate of the cluster CA already; this also checks its validity period
    # per request (a kept-alive connection outlives a certificate) and reads who it names.
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    identity = request.app[VERIFIER].identity(ssl_object.getpeercert(binary_form=True) if ssl_object else None)
    try:
        if identity is None:
            raise errors.Unauthorized("Unauthorized")
        if identity.user not in request.app[ALLOWED]:
            raise errors.Forbidden(f'user "{identity.user}" may not use the kubelet API')
        return await handler(request)
    except errors.StatusError as exc:
        return _status(exc)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("1", "true")


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.BadRequest(f"{name}: invalid integer {value!r}") from None
    if number < 0:
        raise errors.BadRequest(f"{name}: must not be negative")
    return number


def _pod(request: web.Request) -> PodRef:
    info = request.match_info
    return PodRef(namespace=info["namespace"], name=info["pod"], uid=info["uid"])


def _container(request: web.Request) -> ContainerRef:
    return ContainerRef(pod=_pod(request), container=request.match_info["container"])


async def container_logs(request: web.Request) -> web.StreamResponse:
    options = LogOptions(
        follow=_flag(request, "follow"), tail_lines=_int(request, "tailLines"),
        since_seconds=_int(request, "sinceSeconds"), since_time=request.query.get("sinceTime") or None,
        timestamps=_flag(request, "timestamps"), previous=_flag(request, "previous"),
        limit_bytes=_int(request, "limitBytes"),
    )
    lines = cast(AsyncGenerator[bytes, None], request.app[STREAMS].logs(_container(request), options))
    try:
        first = await anext(lines, None)  # errors (no such container) become a Status, not a cut stream
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        if first is not None:
            await response.write(first)
            async for chunk in lines:
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await lines.aclose()


async def _pump_input(ws: web.WebSocketResponse, session: ExecSession) -> None:
    async for message in ws:
        if message.type != WSMsgType.BINARY:
            continue
        try:
            channel, data = channels.decode(message.data)
            if channel == channels.STDIN:
                await session.write_stdin(data)
            elif channel == channels.RESIZE:
                await session.resize(*channels.parse_resize(data))
            elif channel == channels.CLOSE and data[:1] == bytes((channels.STDIN,)):
                await session.close_stdin()
        except channels.FrameError as exc:
            logger.info("exec: ignoring a bad frame: %s", exc)
        except (ConnectionError, errors.StatusError):
            return  # the command is gone; its output side reports how it ended


async def exec_command(request: web.Request) -> web.StreamResponse:
    command = tuple(request.query.getall("command", []))
    if not command:
        raise errors.BadRequest("you must specify at least one command for the container")
    return await _serve_session(request, command, attach=False)


async def attach_container(request: web.Request) -> web.StreamResponse:
    return await _serve_session(request, (), attach=True)


async def _serve_session(request: web.Request, command: tuple[str, ...], *, attach: bool) -> web.StreamResponse:
    tty = _flag(request, "tty")
    # With a terminal, stderr is merged into stdout (there is only one stream), as upstream does.
    options = ExecOptions(command=command, stdin=_flag(request, "stdin"), stdout=_flag(request, "stdout", True),
                          stderr=_flag(request, "stderr", True) and not tty, tty=tty)
    ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, max_msg_size=_MAX_MESSAGE, autoping=True)
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest("streams need a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)")
    streams = request.app[STREAMS]
    try:
        open_session = streams.attach if attach else streams.exec
        session = await open_session(_container(request), options)
    except errors.StatusError as exc:  # as upstream: upgrade, then the reason on the status channel
        await ws.prepare(request)
        await asyncio.sleep(channels.FAILURE_GRACE)
        await ws.send_bytes(channels.failure_frame(exc))
        await ws.close()
        return ws
    try:
        await ws.prepare(request)
        reader = asyncio.create_task(_pump_input(ws, session), name="stream-stdin")
        try:
            async for stream, data in session.output():
                await ws.send_bytes(channels.encode(stream, data))
            status = channels.exit_status(await session.exit_code())
        except errors.StatusError as exc:
            status = channels.error_status(exc.message)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(channels.status_frame(status))
        await ws.close()
        return ws
    finally:
        await session.close()


async def _copy_to_ws(reader: asyncio.StreamReader, ws: web.WebSocketResponse) -> None:
    while data := await reader.read(65536):
        await ws.send_bytes(data)
    await ws.close()  # the pod closed its side: the API server passes that on as FIN


async def port_forward(request: web.Request) -> web.StreamResponse:
    port = _int(request, "port")
    if port is None or not 0 < port < 65536:
        raise errors.BadRequest("port-forward needs ?port= between 1 and 65535")
    ws = web.WebSocketResponse(protocols=(channels.PORT_FORWARD_RELAY,), max_msg_size=_MAX_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise errors.BadRequest(f"port-forward needs a WebSocket upgrade ({channels.PORT_FORWARD_RELAY})")
    await ws.prepare(request)
    try:
        reader, writer = await request.app[STREAMS].port_forward(_pod(request), port)
    except errors.StatusError as exc:  # in-band: a refused upgrade would lose the message
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=exc.message.encode()[:120])
        return ws
    try:
        outbound = asyncio.create_task(_copy_to_ws(reader, ws), name="port-forward-out")
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    writer.write(message.data)
                    await writer.drain()
                elif (message.type == WSMsgType.TEXT and message.data == channels.PORT_FORWARD_EOF
                      and writer.can_write_eof()):
                    writer.write_eof()
            with contextlib.suppress(ConnectionError):
                await outbound  # the pod's side may still be answering after our EOF
        except ConnectionError:
            pass
        finally:
            outbound.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await outbound
        await ws.close()
        return ws
    finally:
        writer.close()


async def stats_usage(request: web.Request) -> web.Response:
    usage = await request.app[STREAMS].usage()
    return web.json_response(asdict(usage))


async def load_image(request: web.Request) -> web.Response:
    names = await request.app[STREAMS].load_image(request.content.iter_chunked(256 * 1024))
    logger.info("loaded image archive: %s", ", ".join(names) or "(no names)")
    return web.json_response({"images": names})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_kubelet_app(streams: ContainerStreams, allowed_clients: tuple[str, ...],
                      verifier: ClientVerifier) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=_MAX_MESSAGE)
    app[STREAMS] = streams
    app[ALLOWED] = frozenset(allowed_clients)
    app[VERIFIER] = verifier
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{uid}/{container}", container_logs)
    app.router.add_get("/exec/{namespace}/{pod}/{uid}/{container}", exec_command)
    app.router.add_get("/attach/{namespace}/{pod}/{uid}/{container}", attach_container)
    app.router.add_get("/portForward/{namespace}/{pod}/{uid}", port_forward)
    app.router.add_get("/stats/usage", stats_usage)
    app.router.add_post("/images/load", load_image)
    return app


class KubeletServer:
    """Serves the endpoint until ``stop``; the agent's composition root owns it."""

    def __init__(self, config: KubeletServerConfig, streams: ContainerStreams) -> None:
        self.config = config
        self.app = build_kubelet_app(streams, config.allowed_clients,
                                     ClientVerifier(config.client_ca_file.read_bytes()))
        self._runner: web.AppRunner | None = None
        self.port = config.port
        self.tls: ssl.SSLContext | None = None  # the live context: loading a renewed certificate into it is enough

    async def start(self) -> None:
        config = self.config
        tls = mutual_tls_server_context(config.tls_cert_file, config.tls_key_file, config.client_ca_file)
        self.tls = tls
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.host, config.port, reuse_address=True, ssl_context=tls)
        await site.start()
        if config.port == 0:
            self.port = int(self._runner.addresses[0][1])
        logger.info("kubelet endpoint serving on %s:%d", config.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
