"""``edgek8s images import``: load an image archive (``podman save`` / ``docker save``) without a registry.

Locally, into this node's Podman. With ``all_nodes``, from an admin machine: the archive is streamed to
every node's kubelet through the API server's node proxy (``POST nodes/{name}/proxy/images/load``, admins
only), all nodes at once, each reading the file on its own; one failing node does not stop the others,
and the result lists every node's outcome.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from edgek8s.client.rest import RestClient
from edgek8s.config import PodmanConfig
from edgek8s.kubelet.podman_host import resolve
from edgek8s.kubelet.podman_streams import PodmanStreams
from edgek8s.model import errors

_CHUNK = 1024 * 1024
ARCHIVE_TYPE = "application/x-tar"


async def read_chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk
    finally:
        handle.close()


def agent_podman_socket(data_dir: Path) -> Path:
    """The socket of the Podman service an agent with default Podman settings runs for ``data_dir``."""
    return resolve(PodmanConfig(), data_dir).socket


async def import_local(path: Path, podman_socket: Path) -> int:
    try:
        names = await PodmanStreams(podman_socket).load_image(read_chunks(path))
    except errors.StatusError as exc:
        print(f"import of {path} failed: {exc.message} (is the agent running? --data-dir or --podman-socket "
              "name its Podman)")
        return 1
    print(f"loaded {', '.join(names) or 'an unnamed image'} from {path}")
    return 0


async def import_all_nodes(path: Path, server: str, tls: ssl.SSLContext | None, *, selector: str = "") -> int:
    async with RestClient(server, ssl_context=tls) as client:
        params = {"labelSelector": selector} if selector else {}
        nodes = [n["metadata"]["name"] for n in (await client.get("/api/v1/nodes", **params))["items"]]
        if not nodes:
            print(f"no nodes{' match ' + selector if selector else ' in the cluster'}: nothing to import into")
            return 1

        async def one(node: str) -> str | None:
            try:
                result = await client.upload(f"/api/v1/nodes/{node}/proxy/images/load", read_chunks(path),
                                             content_type=ARCHIVE_TYPE)
            except errors.StatusError as exc:
                print(f"{node}: failed: {exc.message}")
                return None
            return ", ".join(result.get("images") or []) or "an unnamed image"

        results = await asyncio.gather(*(one(node) for node in nodes))
    for node, loaded in zip(nodes, results, strict=True):
        if loaded is not None:
            print(f"{node}: loaded {loaded}")
    failed = sum(r is None for r in results)
    print(f"imported {path} into {len(nodes) - failed} of {len(nodes)} nodes")
    return 1 if failed else 0
