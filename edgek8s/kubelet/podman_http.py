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
_READ = 256 * 1024


def dechunk(buffer: bytearray) -> tuple[bytes, bool]:
    """Decode and remove every complete HTTP/1.1 chunk at the start of ``buffer``: (data, last chunk seen)."""
    out = bytearray()
    position, done = 0, False
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            break
        try:
            size = int(bytes(buffer[position:line_end]).split(b";")[0].strip() or b"0", 16)
        except ValueError:
            raise errors.ServiceUnavailable("podman sent a malformed chunked body") from None
        if size == 0:
            done = True
            break
        end = line_end + 2 + size
        if len(buffer) < end + 2:
            break
        out += buffer[line_end + 2:end]
        position = end + 2
    del buffer[:position]  # once per read: deleting per chunk would move the rest every time
    return bytes(out), done


class PodmanResponse:
    """Status, headers, and a body read incrementally; ``close`` drops the connection."""

    def __init__(self, status: int, headers: dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.status = status
        self.headers = headers
        self.reader = reader
        self.writer = writer

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The body, de-chunked, in pieces of whatever one socket read brought (a log is one HTTP chunk
        per line: decoding every chunk found in a read at once keeps 200,000 lines from costing 200,000
        awaits); for an upgraded connection, everything until EOF."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            buffer = bytearray()
            while True:
                data = await self.reader.read(_READ)
                if not data:
                    return
                buffer += data
                decoded, done = dechunk(buffer)
                if decoded:
                    yield decoded
                if done:
                    return
        elif "content-length" in self.headers:
            remaining = int(self.headers["content-length"])
            while remaining > 0:
                chunk = await self.reader.read(min(remaining, _READ))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
        else:
            while chunk := await self.reader.read(_READ):
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


async def demultiplex_joined(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The payloads of a multiplexed stream, stdout and stderr alike (a log), joined per input chunk."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        out = bytearray()
        position = 0
        while len(buffer) - position >= _HEADER.size:
            _stream, size = _HEADER.unpack_from(buffer, position)
            if len(buffer) - position < _HEADER.size + size:
                break
            out += buffer[position + _HEADER.size:position + _HEADER.size + size]
            position += _HEADER.size + size
        del buffer[:position]
        if out:
            yield bytes(out)


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
