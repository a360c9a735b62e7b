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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from edgek8s.client.failover import FailoverClient
from edgek8s.client.rest import RestClusterClient
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
        self._ssl = self._tls()
        self.transport = FailoverClient(config.masters, timeout=config.request_timeout, ssl_context=self._ssl)
        self.api = RestClusterClient(self.transport)
        self.kubelet = Kubelet(config, self.api, self.runtime, node_ip=self.node_ip)
        self._factories = list(server_factories)
        self.servers: list[AgentServer] = []
        self._renewal: asyncio.Task[None] | None = None

    def _tls(self) -> ssl.SSLContext | None:
        # The stdlib builds the context: importing cryptography (pki/) would cost the agent ~9 MB of RSS
        # for a renewal that happens once in months; it is imported only then (_keep_certificate).
        c = self.config
        if c.ca_file and c.cert_file and c.key_file:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(c.ca_file))
            context.load_cert_chain(c.cert_file, c.key_file)
            return context
        return None

    async def _keep_certificate(self, context: ssl.SSLContext) -> None:
        """Renew the node certificate at two thirds of its lifetime, in place (no restart, pods untouched)."""
        assert self.config.ca_file and self.config.cert_file and self.config.key_file
        failures = 0
        while True:
            delay = renew_at(self.config.cert_file) - time.time()
            if failures:
                delay = min(300.0, 2.0 * 2**failures)
            if delay > 0:
                await asyncio.sleep(min(delay, 3600.0))
                if failures == 0:
                    continue
            from edgek8s.client.certificates import renew_certificate
            from edgek8s.model import errors
            from edgek8s.pki.layout import ClientFiles

            files = ClientFiles(self.config.ca_file, self.config.cert_file, self.config.key_file)
            try:
                await renew_certificate(files, self.transport.current_url, context)
                failures = 0
            except (errors.StatusError, OSError, ValueError, KeyError) as exc:
                failures += 1
                logger.warning("node certificate renewal failed (%s); retrying", exc)

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.service is not None:
            await self.service.start()
        await self.runtime.start()
        await self.transport.__aenter__()
        await self.kubelet.start()
        if self._ssl is not None:
            self._renewal = asyncio.create_task(self._keep_certificate(self._ssl), name="agent-certificate")
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


def renew_at(cert_file: Path, fraction: float = 2 / 3) -> float:
    """Unix time at ``fraction`` of the certificate's lifetime, read with the stdlib's decoder."""
    info = ssl._ssl._test_decode_cert(str(cert_file))  # type: ignore[attr-defined]
    not_before = ssl.cert_time_to_seconds(info["notBefore"])
    not_after = ssl.cert_time_to_seconds(info["notAfter"])
    return not_before + (not_after - not_before) * fraction


async def run_agent(config: AgentConfig, stop: asyncio.Event, *,
                    server_factories: Sequence[ServerFactory] = ()) -> None:
    agent = Agent(config, server_factories=server_factories)
    await agent.start()
    try:
        await stop.wait()
    finally:
        await agent.stop()
