"""``edgek8s images import FILE.tar [--all-nodes]``: flags only; the work is in server/image_import.py."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgek8s.config import ConfigError

DEFAULT_AGENT_DATA_DIR = "/var/lib/edgek8s/agent"  # the agent's own default


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               add_endpoint_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    images = sub.add_parser("images", help="container images on the nodes (air-gapped sites have no registry)")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    load = images_sub.add_parser("import", help="load an image archive (podman/docker save) on this node, "
                                                "or with --all-nodes on every node through the API")
    load.add_argument("file")
    load.add_argument("--all-nodes", action="store_true", help="send it to every node's kubelet (needs an admin "
                                                                "kubeconfig)")
    load.add_argument("-l", "--selector", default="", help="with --all-nodes: only the nodes with these labels "
                                                            "(e.g. kubernetes.io/arch=arm64)")
    load.add_argument("--podman-socket", default=os.environ.get("EDGEK8S_PODMAN_SOCKET"),
                      help="this node's Podman API socket (default: the one the agent with --data-dir runs)")
    load.add_argument("--data-dir", default=os.environ.get("EDGEK8S_DATA_DIR", DEFAULT_AGENT_DATA_DIR),
                      help="the local agent's data dir, to find its Podman")
    add_endpoint_flags(load)


def run(args: argparse.Namespace, endpoint: Callable[[argparse.Namespace], tuple[str, Any]]) -> int:
    from edgek8s.server.image_import import agent_podman_socket, import_all_nodes, import_local

    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"{args.file}: no such file")
    if args.all_nodes:
        server, tls = endpoint(args)
        return asyncio.run(import_all_nodes(path, server, tls, selector=args.selector))
    if args.selector:
        raise ConfigError("--selector picks nodes for --all-nodes")
    socket = Path(args.podman_socket) if args.podman_socket else agent_podman_socket(Path(args.data_dir))
    return asyncio.run(import_local(path, socket))
