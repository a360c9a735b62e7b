"""Plugs the kubelet's HTTPS streaming endpoint (kubelet/stream_server.py) into an agent, and keeps its
serving certificate renewed.

The endpoint needs a serving certificate signed by the cluster CA (the API servers verify it) and
trusts the cluster CA for clients; it serves the agent's own Podman socket on ``kubelet_port`` (the
port the agent advertises in its Node status), on every address of the host as upstream's kubelet does.
At two thirds of the serving certificate's lifetime the agent asks a master for a new one with the same
names (authenticated by its node client certificate) and loads it into the live server context: new
handshakes get it, open streams (``logs -f``, exec sessions) go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from edgek8s._util.renewal import keep_renewed
from edgek8s.config import ConfigError, KubeletServerConfig
from edgek8s.kubelet.podman_streams import PodmanStreams
from edgek8s.kubelet.stream_server import KubeletServer
from edgek8s.server.agent import Agent, ServerFactory


class KubeletEndpoint:
    def __init__(self, agent: Agent, server: KubeletServer) -> None:
        self.agent = agent
        self.server = server
        self._renewal: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.server.start()
        if self.agent.tls is not None:
            self._renewal = asyncio.create_task(keep_renewed(
                self.server.config.tls_cert_file, self._renew, what="kubelet serving"), name="kubelet-serving-cert")

    async def _renew(self) -> None:
        from edgek8s.client.certificates import renew_kubelet_serving

        assert self.agent.tls is not None and self.server.tls is not None
        config = self.server.config
        await renew_kubelet_serving(config.tls_cert_file, config.tls_key_file, server=self.agent.transport.current_url,
                                    client=self.agent.tls, serving=self.server.tls)

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        await self.server.stop()


def kubelet_endpoint(*, cert_file: Path, key_file: Path, host: str = "0.0.0.0") -> ServerFactory:
    def build(agent: Agent) -> KubeletEndpoint:
        if agent.podman_host is None:
            raise ConfigError("the kubelet endpoint streams from Podman; this agent runs another runtime")
        if agent.config.ca_file is None:
            raise ConfigError("the kubelet endpoint needs the cluster CA (--ca-file) to check the API servers")
        config = KubeletServerConfig(host=host, port=agent.config.kubelet_port, tls_cert_file=cert_file,
                                     tls_key_file=key_file, client_ca_file=agent.config.ca_file,
                                     podman_socket=agent.podman_host.socket)
        return KubeletEndpoint(agent, KubeletServer(config, PodmanStreams(config.podman_socket)))

    return build
