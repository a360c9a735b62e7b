"""Framing of kubectl's stream protocols (exec/attach WebSocket channels, SPDY/3 for port-forward), of Podman's
streams, and the usage rates behind kubectl top."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from edgek8s.api import spdy
from edgek8s.kubelet.podman_http import dechunk, demultiplex, demultiplex_joined
from edgek8s.kubelet.streams import PodRef
from edgek8s.kubelet.usage import ContainerSample, UsageMeter
from edgek8s.model import channels


def test_channel_frames_round_trip() -> None:
    for channel in (channels.STDIN, channels.STDOUT, channels.STDERR, channels.ERROR, channels.RESIZE,
                    channels.CLOSE):
        for data in (b"", b"x", bytes(range(256)) * 10):
            assert channels.decode(channels.encode(channel, data)) == (channel, data)


def test_channel_frames_as_kubectl_sends_them() -> None:
    # Recorded from kubectl 1.32 (reference traces): stdin "piped stdin\n", then the v5 close of stdin.
    assert channels.decode(bytes.fromhex("00706970656420737464696e0a")) == (channels.STDIN, b"piped stdin\n")
    assert channels.decode(bytes.fromhex("ff00")) == (channels.CLOSE, bytes([channels.STDIN]))
    assert channels.parse_resize(b'{"Width":100,"Height":30}\n') == (100, 30)


@pytest.mark.parametrize("bad", [b"", b"{}", b'{"Width":"x","Height":1}', b'{"Width":-1,"Height":1}', b"not json"])
def test_bad_resize_frames_are_rejected(bad: bytes) -> None:
    with pytest.raises(channels.FrameError):
        channels.parse_resize(bad)


def test_empty_frame_and_out_of_range_channel_are_rejected() -> None:
    with pytest.raises(channels.FrameError):
        channels.decode(b"")
    with pytest.raises(channels.FrameError):
        channels.encode(256, b"")


def test_exit_status_is_what_kubectl_turns_into_its_exit_code() -> None:
    assert channels.exit_status(0) == {"metadata": {}, "status": "Success"}
    failure = channels.exit_status(3)
    assert failure["status"] == "Failure" and failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    channel, body = channels.decode(channels.status_frame(failure))
    assert channel == channels.ERROR and json.loads(body) == failure


def test_spdy_dictionary_is_the_specs() -> None:
    # SPDY/3's dictionary: 1423 bytes, Adler-32 0xe3c6a7c2 (the dictionary id zlib puts in every stream header).
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options") and spdy.DICTIONARY.endswith(b",*,enq=0.")


def _client_syn_stream(deflate: zlib._Compress, stream_id: int, headers: dict[str, str]) -> bytes:
    block = struct.pack(">I", len(headers)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in headers.items())
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + compressed
    return spdy.control_frame(spdy.SYN_STREAM, payload)


def test_spdy_syn_streams_as_kubectl_opens_them() -> None:
    # kubectl opens an error and a data stream per connection; one zlib stream spans the whole session.
    deflate = zlib.compressobj(level=9, zdict=spdy.DICTIONARY)
    wire = _client_syn_stream(deflate, 1, {"streamtype": "error", "port": "80", "requestid": "0"})
    wire += _client_syn_stream(deflate, 3, {"streamtype": "data", "port": "80", "requestid": "0"})
    wire += spdy.data_frame(3, b"GET / HTTP/1.0\r\n\r\n", spdy.FLAG_FIN)
    assert wire[:4] == bytes.fromhex("80030001")  # what the reference trace saw first
    reader, codec = spdy.FrameReader(), spdy.HeaderCodec()
    frames = []
    for i in range(len(wire)):  # split at every byte: frames may straddle WebSocket messages
        frames += reader.feed(wire[i:i + 1])
    assert len(frames) == 3
    first, second, data = frames
    assert isinstance(first, spdy.ControlFrame) and isinstance(second, spdy.ControlFrame)
    assert spdy.syn_stream_headers(codec, first) == (1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]})
    assert spdy.syn_stream_headers(codec, second) == (3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]})
    assert data == spdy.DataFrame(3, spdy.FLAG_FIN, b"GET / HTTP/1.0\r\n\r\n")


def test_spdy_replies_decode_with_the_peers_inflater() -> None:
    codec = spdy.HeaderCodec()
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    reader = spdy.FrameReader()
    for stream_id in (1, 3, 5):  # successive replies continue one compression stream
        (frame,) = reader.feed(spdy.syn_reply(codec, stream_id))
        assert isinstance(frame, spdy.ControlFrame) and frame.type == spdy.SYN_REPLY
        assert spdy.stream_id_of(frame) == stream_id
        assert inflate.decompress(frame.data[4:]) == struct.pack(">I", 0)


def test_spdy_rejects_other_versions_and_huge_frames() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(bytes.fromhex("80020001") + bytes(4))
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(struct.pack(">II", 1, 0xFFFFFF) + b"x")
    with pytest.raises(spdy.ProtocolError):
        spdy.HeaderCodec().decode(b"not zlib at all")


def test_spdy_rst_and_ping_frames() -> None:
    (rst,) = spdy.FrameReader().feed(spdy.rst_stream(7, spdy.RST_CANCEL))
    assert isinstance(rst, spdy.ControlFrame) and rst.type == spdy.RST_STREAM
    assert struct.unpack(">II", rst.data) == (7, spdy.RST_CANCEL)
    (ping,) = spdy.FrameReader().feed(spdy.control_frame(spdy.PING, struct.pack(">I", 1)))
    assert isinstance(ping, spdy.ControlFrame) and ping.type == spdy.PING and ping.data == struct.pack(">I", 1)


async def test_podman_multiplexed_stream_across_any_chunking() -> None:
    # Docker/Podman frames: [stream, 0, 0, 0, big-endian length] + payload; chunks split them anywhere.
    frames = [(1, b"line 1\n"), (2, b"oops\n"), (1, b""), (1, bytes(70000))]
    wire = b"".join(struct.pack(">BxxxI", stream, len(data)) + data for stream, data in frames)
    for size in (1, 7, 8, 9, 4096, len(wire)):
        async def chunks(size: int = size) -> AsyncIterator[bytes]:
            for i in range(0, len(wire), size):
                yield wire[i:i + size]

        assert [frame async for frame in demultiplex(chunks())] == frames


async def test_log_payloads_join_across_http_chunks_and_reads() -> None:
    # A log as Podman sends it: one HTTP chunk per frame, one frame per line, reads split anywhere.
    lines = [f"line {i}\n".encode() for i in range(500)]
    body = b"".join(struct.pack(">BxxxI", 1 + i % 2, len(line)) + line for i, line in enumerate(lines))
    http = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 15]), body[i:i + 15]) for i in range(0, len(body), 15))
    http += b"0\r\n\r\n"
    for size in (1, 5, 4096, len(http)):
        buffer, decoded, done = bytearray(), bytearray(), False
        for i in range(0, len(http), size):
            buffer += http[i:i + size]
            data, done = dechunk(buffer)
            decoded += data
        assert done and bytes(decoded) == body

        async def reads(size: int = size) -> AsyncIterator[bytes]:
            for i in range(0, len(body), size):
                yield body[i:i + size]

        assert b"".join([chunk async for chunk in demultiplex_joined(reads())]) == b"".join(lines)


async def test_usage_rates_from_cumulative_cpu() -> None:
    pod = PodRef(namespace="ns", name="p", uid="u")
    cpu = {"a": 0}
    containers = ["a"]

    async def sample() -> list[ContainerSample]:
        cpu["a"] += 50_000_000  # 50 ms of CPU per sample
        cpu.setdefault("b", 0)
        cpu["b"] += 10_000_000
        return [ContainerSample(pod=pod, container=c, key=c, cpu_ns=cpu[c], memory_bytes=1024) for c in containers]

    meter = UsageMeter(sample, min_window=0.05)
    first = await meter.usage()  # sampled twice, 50 ms apart: 50 ms of CPU in >= 50 ms
    (usage,) = first.pods[0].containers
    assert usage.name == "a" and 0 < usage.cpu_nanocores <= 1_000_000_000 and usage.memory_bytes == 1024
    assert first.window_seconds >= 0.05 and first.cpu_nanocores >= 0 and first.memory_bytes > 0
    containers.append("b")  # a container new since the last sample is measured over a window of its own
    second = await meter.usage()
    rates = {c.name: c.cpu_nanocores for c in second.pods[0].containers}
    assert set(rates) == {"a", "b"} and rates["b"] > 0
