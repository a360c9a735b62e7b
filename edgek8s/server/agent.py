"""Composition root of one worker: Podman, the kubelet, the API client, and any extra servers.

```
 Agent.start: PodmanService (start or find `podman system service`) ─► PodmanRuntime ─► FailoverClient
              ─► Kubelet (node registration, pods, relist, status) ─► extra servers (e.g. the kubelet's
                 HTTPS endpoint for logs/exec, built from ``Agent.runtime`` and ``Agent.kubelet``)
 Agent.stop:  the reverse; pods keep running (a restarted agent adopts them).
```
Extra servers plug in through ``server_factories``: each is called with the started Agent and returns an
object with ``start()``/``stop()`` (the ``AgentServer`` Protocol). Nothing here is global: several agents
can run in one process with different data dirs (the tests do), and a fake runtime can stand in for
Podman (hollow nodes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Protocol

from edgek8s._util.renewal import keep_renewed
from edgek8s.client.failover import FailoverClient
from edgek8s.client.rest import ClientTLS, RestClusterClient
from edgek8s.config import AgentConfig
from edgek8s.kubelet.agent import Kubelet
from edgek8s.kubelet.node_status import detect_node_ip
from edgek8s.kubelet.podman_host import PodmanService, resolve
from edgek8s.kubelet.podman_runtime import PodmanRuntime
from edgek8s.kubelet.runtime import ContainerRuntime

logger = logging.getLogger(__name__)


class AgentServer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ServerFactory = Callable[["Agent"], AgentServer]


class Agent:
    def __init__(self, config: AgentConfig, *, runtime: ContainerRuntime | None = None,
                 server_factories: Sequence[ServerFactory] = ()) -> None:
        self.config = config
        self.podman_host = None if runtime is not None else resolve(config.podman, config.data_dir)
        self.service = PodmanService(self.podman_host) if self.podman_host is not None else None
        self.runtime: ContainerRuntime = runtime or PodmanRuntime(self.podman_host)  # type: ignore[arg-type]
        self.node_ip = config.node_ip or detect_node_ip(config.masters)
        context = self._tls()
        self.tls = ClientTLS(context) if context is not None else None  # renewals replace its context
        self.transport = FailoverClient(config.masters, timeout=config.request_timeout, ssl_context=self.tls)
        self.api = RestClusterClient(self.transport)
        self.kubelet = Kubelet(config, self.api, self.runtime, node_ip=self.node_ip)
        self._factories = list(server_factories)
        self.servers: list[AgentServer] = []
        self._renewal: asyncio.Task[None] | None = None

    def _tls(self) -> ssl.SSLContext | None:
        # The stdlib builds the context: importing cryptography (pki/) would cost the agent ~9 MB of RSS
        # for a renewal that happens once in months; it is imported only then (_renew_client_cert).
        c = self.config
        if c.ca_file and c.cert_file and c.key_file:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(c.ca_file))
            context.load_cert_chain(c.cert_file, c.key_file)
            return context
        return None

    async def _renew_client_cert(self) -> None:
        """One renewal of the node certificate through the master the agent talks to; the client context is
        replaced (no restart; pods, in-flight requests and open watches untouched)."""
        from edgek8s.client.certificates import renew_certificate
        from edgek8s.pki.layout import ClientFiles

        assert self.tls and self.config.ca_file and self.config.cert_file and self.config.key_file
        files = ClientFiles(self.config.ca_file, self.config.cert_file, self.config.key_file)
        await renew_certificate(files, self.transport.current_url, self.tls)

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.service is not None:
            await self.service.start()
        await self.runtime.start()
        await self.transport.__aenter__()
        await self.kubelet.start()
        if self.tls is not None and self.config.cert_file is not None:
            self._renewal = asyncio.create_task(
                keep_renewed(self.config.cert_file, self._renew_client_cert, what="node client"),
                name="agent-certificate")
        for factory in self._factories:
            server = factory(self)
            await server.start()
            self.servers.append(server)
        logger.info("agent %s started (node IP %s, masters %s)", self.config.node_name, self.node_ip,
                    ", ".join(self.config.masters))

    async def stop(self) -> None:
        for server in reversed(self.servers):
            await server.stop()
        self.servers.clear()
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        await self.kubelet.stop()
        await self.transport.__aexit__(None, None, None)
        await self.runtime.stop()
        if self.service is not None:
            await self.service.stop()


async def run_agent(config: AgentConfig, stop: asyncio.Event, *,
                    server_factories: Sequence[ServerFactory] = ()) -> None:
    agent = Agent(config, server_factories=server_factories)
    await agent.start()
    try:
        await stop.wait()
    finally:
        await agent.stop()
