"""Podman's error answers to the runtime's list calls become RuntimeFailure, never a TypeError in a kubelet loop.

Podman 4.3.1 answers ``GET /images/json`` with 500 and a JSON error object, not a list, while an image is
being loaded or removed (measured on this machine: 12 such answers among ~3,900 lists made during 6 loads of
the test image). An agent lists images for its first node status exactly when `start_agent` (and an operator
after `edgek8s join`) loads an image: ``list_images`` iterated the error object's keys, ``"cause"["Id"]``
raised ``TypeError: string indices must be integers``, and the kubelet-register loop died; before the loops
were supervised that surfaced only at ``agent.stop()`` (session 3, CI run 1 at 675a900,
``test_restart_adopts_pods``).

The Podman here is a stand-in on a unix socket that answers every list with that error (its body as the real
service sent it); the runtime talks to it through the real bindings and HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgek8s.config import PodmanConfig
from edgek8s.kubelet.podman_host import resolve
from edgek8s.kubelet.podman_runtime import PodmanRuntime
from edgek8s.kubelet.runtime import RuntimeFailure

# Podman 4.3.1's answer to GET /images/json during `podman load` (captured; the image id is the test image's).
IMAGE_LIST_ERROR = {"cause": "image not known", "message": 'retrieving parent of image "ad3720d796f8f35a2ba453c7'
                    '1350a3d5d0c315bd13ffda298eb771c1e819fe93": you may need to remove the image to resolve the '
                    'error: reading image "ad3720d796f8": image not known', "response": 500}


class FailingPodman:
    """Keep-alive HTTP/1.1 on a unix socket: the pod network exists; every other call fails as Podman does
    mid-load."""

    def __init__(self) -> None:
        self.handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers[task] = writer
        try:
            while request := await reader.readuntil(b"\r\n\r\n"):
                path = request.split(b" ", 2)[1].decode()
                if "/networks/" in path and path.endswith("/exists"):
                    head, body = b"HTTP/1.1 204 No Content\r\n", b""
                else:
                    head, body = b"HTTP/1.1 500 Internal Server Error\r\n", json.dumps(IMAGE_LIST_ERROR).encode()
                writer.write(head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                             + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Python 3.11's server.close() leaves open connections (the bindings pool theirs): end them."""
        for writer in self.handlers.values():
            writer.close()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)


@pytest.fixture
async def failing_podman(tmp_path: Path) -> AsyncIterator[PodmanRuntime]:
    socket = tmp_path / "podman.sock"
    podman = FailingPodman()
    server = await asyncio.start_unix_server(podman.answer, path=str(socket))
    runtime = PodmanRuntime(resolve(PodmanConfig(socket=socket, run_dir=tmp_path / "run"), tmp_path / "agent"))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
        server.close()
        await podman.close()
        await server.wait_closed()


async def test_an_image_list_answered_with_an_error_is_a_runtime_failure(failing_podman: PodmanRuntime) -> None:
    with pytest.raises(RuntimeFailure, match="image not known"):
        await failing_podman.list_images()


@pytest.mark.parametrize("uid", [None, "4f5db105-112c-4fec-a559-a80b2f6a3ed1"])
async def test_a_pod_list_answered_with_an_error_is_a_runtime_failure(failing_podman: PodmanRuntime,
                                                                      uid: str | None) -> None:
    with pytest.raises(RuntimeFailure, match="image not known"):  # the relist's call, and a pod's own read
        await failing_podman.list_pods(uid=uid)
