"""One harness for in-process clusters: N real masters (Raft on loopback, aiohttp API on loopback).

Every master has its own data dir, Raft port and API port, exactly as separate processes would; they
share one event loop and one Python process, so the tests can stop, restart and inspect them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from edgek8s._util.ports import free_port
from edgek8s.client.interface import ClusterClient
from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ApiConfig, ControllersConfig, RaftConfig, ServerConfig, StoreConfig
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType, resource_id
from edgek8s.server.control_plane import Master

NAMESPACES = resource_id("", "namespaces")
LoopsSpec = Callable[[ServerConfig], list[LeaderLoop]] | list[LeaderLoop] | None
T = TypeVar("T")


@dataclasses.dataclass
class LocalCluster:
    base: Path
    configs: list[ServerConfig]
    masters: list[Master | None]
    # Leader-only loops per master: None for the production registry from the config, a list (``[]``: a
    # master without controllers) or a factory per master, so a test can inject a clock or settings.
    loops: LoopsSpec = None

    @classmethod
    def build(
        cls,
        base: Path,
        size: int = 3,
        *,
        store: StoreConfig | None = None,
        raft: dict[str, Any] | None = None,
        api: dict[str, Any] | None = None,
        controllers: ControllersConfig | None = None,
        loops: LoopsSpec = None,
    ) -> LocalCluster:
        secret = secrets.token_bytes(32)
        addresses = [f"127.0.0.1:{free_port()}" for _ in range(size)]
        configs = []
        for i, address in enumerate(addresses):
            raft_config = RaftConfig(
                self_address=address,
                peers=tuple(a for a in addresses if a != address),
                data_dir=base / f"m{i}",
                cluster_secret=secret,
                **(raft or {}),
            )
            configs.append(
                ServerConfig(
                    name=f"m{i}",
                    raft=raft_config,
                    store=store or StoreConfig(),
                    api=ApiConfig(host="127.0.0.1", port=free_port(), **(api or {})),
                    controllers=controllers or ControllersConfig(),
                )
            )
        return cls(base=base, configs=configs, masters=[None] * size, loops=loops)

    @property
    def urls(self) -> list[str]:
        return [c.api_url for c in self.configs]

    def _loops_for(self, config: ServerConfig) -> list[LeaderLoop] | None:
        if self.loops is None or isinstance(self.loops, list):
            return None if self.loops is None else list(self.loops)
        return self.loops(config)

    async def start(self, index: int | None = None) -> None:
        for i in [index] if index is not None else range(len(self.configs)):
            config = self.configs[i]
            master = Master(config, loops=self._loops_for(config))
            await master.start()
            self.masters[i] = master

    async def stop(self, index: int | None = None) -> None:
        for i in [index] if index is not None else range(len(self.configs)):
            master = self.masters[i]
            if master is not None:
                self.masters[i] = None
                await master.stop()

    def running(self) -> list[Master]:
        return [m for m in self.masters if m is not None]

    def leader_index(self) -> int | None:
        for i, master in enumerate(self.masters):
            if master is not None and master.store.raft.is_leader:
                return i
        return None

    async def wait_leader(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            index = self.leader_index()
            if index is not None:
                return index
            await asyncio.sleep(0.02)
        raise TimeoutError("no leader elected")

    async def wait_stable_leader(self, timeout: float = 10.0) -> int:
        """Index of the leader once every running master agrees on it and on the term."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            statuses = [m.store.raft.status() for m in self.running()]
            leaders = {s.leader for s in statuses} | {None}
            terms = {s.term for s in statuses}
            index = self.leader_index()
            if index is not None and len(leaders) == 2 and len(terms) == 1:
                leader = self.masters[index]
                if leader is not None and statuses and statuses[0].leader == leader.store.raft.address:
                    return index
            await asyncio.sleep(0.05)
        raise TimeoutError("the masters did not agree on a leader")

    async def wait_ready(self, timeout: float = 15.0) -> None:
        await self.wait_leader(timeout)
        for master in self.running():
            await master.store.ready(timeout)
            await wait_for(lambda m=master: m.store.state.get(NAMESPACES, "", "default")[0] is not None, timeout)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Await ``check()`` until it returns something truthy (returned); fail with its last answer."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s; last: {result!r}")


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def started_cluster(base: Path, **build: Any) -> AsyncIterator[LocalCluster]:
    """A LocalCluster (``build`` as for ``LocalCluster.build``), started and ready; stopped on exit."""
    cluster = LocalCluster.build(base, **build)
    try:  # a master that fails to start must not leave the ones started before it running
        await cluster.start()
        await cluster.wait_ready()
        yield cluster
    finally:
        await cluster.stop()


async def absent(client: ClusterClient, rtype: ResourceType, namespace: str, name: str) -> bool:
    """Whether the object is gone (NotFound), for ``eventually``."""
    try:
        await client.get(rtype, namespace, name)
    except errors.NotFound:
        return True
    return False
