"""kubectl port-forward: a SPDY/3.1 server session inside a WebSocket, relayed to the pod's kubelet.

kubectl (1.30+) opens ``GET pods/X/portforward`` as a WebSocket with subprotocol
``SPDY/3.1+portforward.k8s.io`` and speaks SPDY in its binary messages. For every local connection it
opens two streams with headers ``streamtype: error|data``, ``port``, ``requestid``: the data stream carries
the bytes; the error stream carries a message if forwarding fails. Each stream gets a SYN_REPLY (kubectl
waits for it). Each data stream becomes one WebSocket to the kubelet (``/portForward/...?port=N``),
whose kubelet dials the port inside the pod's network namespace.

Ending a connection: the pod side closing -> DATA+FIN on the data stream and FIN on the error stream
(kubectl waits for both); kubectl half-closing -> "eof" to the kubelet; RST_STREAM -> close the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from edgek8s.api import spdy
from edgek8s.model import channels, errors

logger = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"


# Opens the relay to the pod's port: a WebSocket to the kubelet (binary = bytes, text "eof" = half-close).
Dialer = Callable[[int], Awaitable[aiohttp.ClientWebSocketResponse]]


@dataclass
class _Connection:
    """One forwarded connection (one requestid): its error and data streams and its kubelet relay."""

    request_id: str
    port: int
    error_stream: int | None = None
    data_stream: int | None = None
    relay: aiohttp.ClientWebSocketResponse | None = None
    task: asyncio.Task[None] | None = None
    pending: list[tuple[bytes, bool]] = field(default_factory=list)  # data that arrived before the relay


class PortForwardSession:
    def __init__(self, ws: web.WebSocketResponse, dial: Dialer) -> None:
        self._ws = ws
        self._dial = dial
        self._reader = spdy.FrameReader()
        self._codec = spdy.HeaderCodec()
        self._connections: dict[str, _Connection] = {}
        self._by_stream: dict[int, str] = {}
        self._send_lock = asyncio.Lock()

    async def _send(self, frame: bytes) -> None:
        async with self._send_lock:
            if not self._ws.closed:
                await self._ws.send_bytes(frame)

    async def run(self) -> None:
        try:
            async for message in self._ws:
                if message.type != WSMsgType.BINARY:
                    continue
                for frame in self._reader.feed(message.data):
                    await self._handle(frame)
        except spdy.ProtocolError as exc:
            logger.info("port-forward: closing a session after a protocol error: %s", exc)
        finally:
            for connection in list(self._connections.values()):
                await self._drop(connection)

    async def _handle(self, frame: spdy.Frame) -> None:
        if isinstance(frame, spdy.DataFrame):
            await self._on_data(frame)
        elif frame.type == spdy.SYN_STREAM:
            await self._on_syn_stream(frame)
        elif frame.type == spdy.RST_STREAM:
            request_id = self._by_stream.get(spdy.stream_id_of(frame))
            if request_id is not None and request_id in self._connections:
                await self._drop(self._connections[request_id])
        elif frame.type == spdy.PING:
            await self._send(spdy.control_frame(spdy.PING, frame.data))
        elif frame.type == spdy.GOAWAY:
            await self._ws.close()
        # SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do (no flow control, see spdy.py)

    async def _on_syn_stream(self, frame: spdy.ControlFrame) -> None:
        stream_id, headers = spdy.syn_stream_headers(self._codec, frame)
        stream_type = (headers.get("streamtype") or [""])[0]
        request_id = (headers.get("requestid") or [""])[0]
        try:
            port = int((headers.get("port") or [""])[0])
        except ValueError:
            port = 0
        if stream_type not in ("error", "data") or not 0 < port < 65536:
            await self._send(spdy.rst_stream(stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        await self._send(spdy.syn_reply(self._codec, stream_id))
        connection = self._connections.setdefault(request_id, _Connection(request_id=request_id, port=port))
        self._by_stream[stream_id] = request_id
        if stream_type == "error":
            connection.error_stream = stream_id
            return
        connection.data_stream = stream_id
        connection.task = asyncio.create_task(self._relay(connection), name=f"port-forward-{request_id}")

    async def _on_data(self, frame: spdy.DataFrame) -> None:
        request_id = self._by_stream.get(frame.stream_id)
        connection = self._connections.get(request_id) if request_id is not None else None
        if connection is None or frame.stream_id != connection.data_stream:
            return  # the error stream's FIN (kubectl never writes to it), or a dropped connection
        fin = bool(frame.flags & spdy.FLAG_FIN)
        if connection.relay is None:
            connection.pending.append((frame.data, fin))
            return
        await self._forward(connection.relay, frame.data, fin)

    @staticmethod
    async def _forward(relay: aiohttp.ClientWebSocketResponse, data: bytes, fin: bool) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            if data:
                await relay.send_bytes(data)
            if fin:
                await relay.send_str(channels.PORT_FORWARD_EOF)

    async def _relay(self, connection: _Connection) -> None:
        assert connection.data_stream is not None
        data_stream = connection.data_stream
        message = ""
        try:
            connection.relay = await self._dial(connection.port)
            for data, fin in connection.pending:
                await self._forward(connection.relay, data, fin)
            connection.pending.clear()
            while True:
                reply = await connection.relay.receive()
                if reply.type == WSMsgType.BINARY:
                    await self._send(spdy.data_frame(data_stream, reply.data))
                elif reply.type == WSMsgType.CLOSE:
                    if reply.data != WSCloseCode.OK:  # the kubelet could not reach the pod's port
                        message = str(reply.extra or "the kubelet closed the connection")
                    break
                elif reply.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                    break
        except errors.StatusError as exc:
            message = exc.message
        except (ConnectionError, aiohttp.ClientError) as exc:
            message = f"lost the connection to the pod's kubelet: {exc}"
        await self._send(spdy.data_frame(data_stream, b"", spdy.FLAG_FIN))
        if connection.error_stream is not None:
            if message:
                await self._send(spdy.data_frame(connection.error_stream, message.encode()))
            await self._send(spdy.data_frame(connection.error_stream, b"", spdy.FLAG_FIN))
        self._forget(connection)
        if connection.relay is not None:
            await connection.relay.close()

    def _forget(self, connection: _Connection) -> None:
        if self._connections.get(connection.request_id) is connection:
            del self._connections[connection.request_id]
        for stream_id in (connection.error_stream, connection.data_stream):
            if stream_id is not None:
                self._by_stream.pop(stream_id, None)

    async def _drop(self, connection: _Connection) -> None:
        self._forget(connection)
        if connection.task is not None and not connection.task.done():
            connection.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection.task
        if connection.relay is not None:
            await connection.relay.close()
