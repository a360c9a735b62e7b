"""Plugs the kubelet's HTTPS streaming endpoint (kubelet/stream_server.py) into an agent.

The endpoint needs a serving certificate signed by the cluster CA (the API servers verify it) and
trusts the cluster CA for clients; it serves the agent's own Podman socket on ``kubelet_port`` (the
port the agent advertises in its Node status), on every address of the host as upstream's kubelet does.
"""

from __future__ import annotations

from pathlib import Path

from edgek8s.config import ConfigError, KubeletServerConfig
from edgek8s.kubelet.podman_streams import PodmanStreams
from edgek8s.kubelet.stream_server import KubeletServer
from edgek8s.server.agent import Agent, ServerFactory


def kubelet_endpoint(*, cert_file: Path, key_file: Path, host: str = "0.0.0.0") -> ServerFactory:
    def build(agent: Agent) -> KubeletServer:
        if agent.podman_host is None:
            raise ConfigError("the kubelet endpoint streams from Podman; this agent runs another runtime")
        if agent.config.ca_file is None:
            raise ConfigError("the kubelet endpoint needs the cluster CA (--ca-file) to check the API servers")
        config = KubeletServerConfig(host=host, port=agent.config.kubelet_port, tls_cert_file=cert_file,
                                     tls_key_file=key_file, client_ca_file=agent.config.ca_file,
                                     podman_socket=agent.podman_host.socket)
        return KubeletServer(config, PodmanStreams(config.podman_socket))

    return build
