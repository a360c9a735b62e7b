"""Run only the kubelet's streaming endpoint over a Podman socket (tests, before a whole agent runs it).

    python -m tests.support.kubelet_endpoint --port P --cert C --key K --ca CA --podman-socket S
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from edgek8s.config import KubeletServerConfig
from edgek8s.kubelet.podman_streams import PodmanStreams
from edgek8s.kubelet.stream_server import KubeletServer


async def main(args: argparse.Namespace) -> None:
    config = KubeletServerConfig(host="127.0.0.1", port=args.port, tls_cert_file=Path(args.cert),
                                 tls_key_file=Path(args.key), client_ca_file=Path(args.ca),
                                 podman_socket=Path(args.podman_socket))
    server = KubeletServer(config, PodmanStreams(config.podman_socket))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {server.port}", flush=True)
    await stop.wait()
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--cert", "--key", "--ca", "--podman-socket"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--port", type=int, default=0)
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(parser.parse_args()))
