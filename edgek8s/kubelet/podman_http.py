"""A minimal asyncio HTTP/1.1 client for Podman's REST API on its unix socket.

Why not aiohttp or the ``podman`` bindings: exec and attach *hijack* the connection (``101 UPGRADED``,
then raw multiplexed bytes both ways), which neither supports, and the bindings block. One connection
per request, closed afterwards (Podman's service is local: connecting costs ~0.1 ms).

Multiplexed streams (logs, exec without a TTY) are Docker's format: an 8-byte header per frame, byte 0
the stream (1 stdout, 2 stderr), bytes 4-7 the big-endian payload length.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from edgek8s.model import errors

API_PREFIX = "/v4.0.0/libpod"
_HEADER = struct.Struct(">BxxxI")
_MAX_LINE = 64 * 1024


class PodmanResponse:
    """Status, headers, and a body read incrementally; ``close`` drops the connection."""

    def __init__(self, status: int, headers: dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.status = status
        self.headers = headers
        self.reader = reader
        self.writer = writer

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The body, de-chunked; for an upgraded connection, everything until EOF."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await self.reader.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.reader.readline()
                    return
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                chunk = await self.reader.read(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
        else:
            while chunk := await self.reader.read(65536):
                yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.body_chunks()])

    async def json(self) -> Any:
        return json.loads(await self.read() or b"null")

    async def raise_for_status(self, what: str) -> None:
        if self.status < 400:
            return
        body = await self.read()
        try:
            message = str(json.loads(body).get("message", body.decode(errors="replace")))
        except (ValueError, AttributeError):
            message = body.decode(errors="replace")
        self.close()
        if self.status == 404:
            raise errors.NotFound(f"{what}: {message}")
        if self.status in (400, 409):
            raise errors.BadRequest(f"{what}: {message}")
        raise errors.ServiceUnavailable(f"{what}: podman answered {self.status}: {message}")

    def close(self) -> None:
        self.writer.close()


class PodmanHttp:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        body: AsyncIterator[bytes] | None = None,
        content_type: str = "application/json",
        upgrade: bool = False,
    ) -> PodmanResponse:
        target = API_PREFIX + path + (f"?{urlencode(params)}" if params else "")
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path), limit=_MAX_LINE)
        except OSError as exc:
            raise errors.ServiceUnavailable(f"cannot reach podman at {self.socket_path}: {exc.strerror}") from exc
        try:
            head = [f"{method} {target} HTTP/1.1", "Host: podman"]
            if upgrade:
                head += ["Connection: Upgrade", "Upgrade: tcp"]
            payload = b""
            if json_body is not None:
                payload = json.dumps(json_body).encode()
                head += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
            elif body is not None:
                head += [f"Content-Type: {content_type}", "Transfer-Encoding: chunked"]
            else:
                head.append("Content-Length: 0")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
            if body is not None:
                async for chunk in body:
                    if chunk:
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
                writer.write(b"0\r\n\r\n")
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[1].isdigit():
                raise errors.ServiceUnavailable(f"podman sent a malformed response to {method} {path}")
            headers: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
        except (OSError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise errors.ServiceUnavailable(f"podman connection failed during {method} {path}: {exc}") from exc
        except BaseException:
            writer.close()
            raise
        return PodmanResponse(int(parts[1]), headers, reader, writer)


async def demultiplex(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """(stream, payload) frames of a Docker multiplexed stream, across arbitrary chunk boundaries."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(buffer)
            if len(buffer) < _HEADER.size + size:
                break
            payload = bytes(buffer[_HEADER.size:_HEADER.size + size])
            del buffer[:_HEADER.size + size]
            yield stream, payload
