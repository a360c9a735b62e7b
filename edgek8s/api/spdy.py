"""SPDY/3.1 framing, the part kubectl's port-forward needs (it tunnels SPDY inside WebSocket messages).

Pure: no I/O. ``FrameReader`` turns received bytes (split or joined arbitrarily) into frames;
``HeaderCodec`` holds the session's two zlib streams (one per direction, preset with the SPDY/3
dictionary, never reset: every header block of a session continues the same stream). Flow control is
not implemented on either side: kubectl's SPDY library (spdystream) neither sends nor honours
WINDOW_UPDATE, so there is nothing to agree with.

Frames: control = ``1|version(15)|type(16)|flags(8)|length(24)|data``; data = ``0|stream(31)|flags(8)|
length(24)|data``. Header blocks: ``count(32)`` then ``len(32) name len(32) value`` per header, values
NUL-separated when repeated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL = 1, 3, 5
MAX_FRAME = 1024 * 1024  # kubectl writes 32 KiB at most; bounds what one session buffers

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">II")

_WORD_TEXT = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
)
_WORDS = [*_WORD_TEXT.split(), "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): length-prefixed
# words, then a tail. Both sides must use it byte for byte (zlib checks its Adler-32).
DICTIONARY = b"".join(_U32.pack(len(word)) + word.encode() for word in _WORDS) + _TAIL.encode()


class ProtocolError(ValueError):
    """The peer sent something that is not SPDY/3."""


@dataclass(frozen=True, slots=True)
class ControlFrame:
    type: int
    flags: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes


Frame = ControlFrame | DataFrame


class FrameReader:
    """Whole frames out of a byte stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = _HEAD.unpack_from(self._buffer)
            length = second & 0xFFFFFF
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes is too large")
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version = (first >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frames.append(ControlFrame(first & 0xFFFF, flags, payload))
            else:
                frames.append(DataFrame(first & 0x7FFFFFFF, flags, payload))
        return frames


def control_frame(frame_type: int, payload: bytes, flags: int = 0) -> bytes:
    return _HEAD.pack(0x80000000 | (VERSION << 16) | frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, flags: int = 0) -> bytes:
    return _HEAD.pack(stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, _HEAD.pack(stream_id & 0x7FFFFFFF, status))


def stream_id_of(frame: ControlFrame) -> int:
    """The stream a SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS or WINDOW_UPDATE frame is about."""
    if len(frame.data) < 4:
        raise ProtocolError("control frame too short for a stream id")
    return int(_U32.unpack_from(frame.data)[0] & 0x7FFFFFFF)


class HeaderCodec:
    """The session's header compression, one zlib stream per direction."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(level=9, zdict=DICTIONARY)

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"bad header block: {exc}") from exc
        headers: dict[str, list[str]] = {}
        try:
            (count,), offset = _U32.unpack_from(raw), 4
            for _ in range(count):
                (size,) = _U32.unpack_from(raw, offset)
                name = raw[offset + 4:offset + 4 + size].decode().lower()
                offset += 4 + size
                (size,) = _U32.unpack_from(raw, offset)
                value = raw[offset + 4:offset + 4 + size].decode()
                offset += 4 + size
                headers.setdefault(name, []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad header block: {exc}") from exc
        return headers

    def encode(self, headers: dict[str, str]) -> bytes:
        raw = bytearray(_U32.pack(len(headers)))
        for name, value in headers.items():
            raw += _U32.pack(len(name)) + name.lower().encode() + _U32.pack(len(value)) + value.encode()
        return self._deflate.compress(bytes(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)


def syn_stream_headers(codec: HeaderCodec, frame: ControlFrame) -> tuple[int, dict[str, list[str]]]:
    """(stream id, headers) of a SYN_STREAM: stream id, associated id, priority/slot, then the block."""
    if len(frame.data) < 10:
        raise ProtocolError("SYN_STREAM too short")
    return stream_id_of(frame), codec.decode(frame.data[10:])


def syn_reply(codec: HeaderCodec, stream_id: int, headers: dict[str, str] | None = None, flags: int = 0) -> bytes:
    return control_frame(SYN_REPLY, _U32.pack(stream_id & 0x7FFFFFFF) + codec.encode(headers or {}), flags)
