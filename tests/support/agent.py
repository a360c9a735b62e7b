"""Worker agents for tests: real Podman, images built locally once per session, pods through the API.

``busybox_archive`` builds ``images/busybox`` once per test session (in a scratch Podman storage) and
saves it as an OCI archive; every agent a test starts loads it into its own storage, so tests never
need a registry. Each agent gets its own data dir, Podman storage, run dir and pod CIDR.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from edgek8s.client.rest import RestClient
from edgek8s.config import AgentConfig, PodmanConfig
from edgek8s.kubelet.podman_host import PodmanHost, remove_everything
from edgek8s.server.agent import Agent
from edgek8s.server.images import TEST_IMAGE, build_archive
from tests.support.cluster import LocalCluster

IMAGE = TEST_IMAGE


def random_pod_cidr() -> str:
    return f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24"


def build_test_archive(directory: Path) -> Path:
    """Build the busybox test image in a scratch storage and save it to ``directory/busybox.tar``."""
    return build_archive(IMAGE, directory / "busybox.tar")


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox test image, built once per session, as an archive every agent imports."""
    return build_test_archive(tmp_path_factory.mktemp("images"))


@pytest.fixture
async def kubelet_master(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    """One in-process master (an agent test needs the API, not a quorum)."""
    local = LocalCluster.build(tmp_path / "masters", 1)
    await local.start()
    try:
        await local.wait_ready()
        yield local
    finally:
        await local.stop()


@pytest.fixture
async def kubelet_client(kubelet_master: LocalCluster) -> AsyncIterator[RestClient]:
    async with RestClient(kubelet_master.urls[0], timeout=20.0) as rest:
        yield rest


def agent_config(data_dir: Path, urls: list[str], name: str = "worker-1", **overrides: Any) -> AgentConfig:
    podman = PodmanConfig(pod_cidr=overrides.pop("pod_cidr", random_pod_cidr()))
    settings: dict[str, Any] = {"relist_period": 1.0, "backoff_initial": 1.0, "backoff_max": 8.0,
                                "node_status_interval": 2.0, "lease_renew_interval": 2.0, **overrides}
    return AgentConfig(node_name=name, data_dir=data_dir, masters=tuple(urls), podman=podman, **settings)


async def start_agent(config: AgentConfig, archive: Path) -> Agent:
    agent = Agent(config)
    await agent.start()
    if await agent.runtime.image_id(IMAGE) is None:
        await agent.runtime.import_image(archive)
    return agent


async def destroy_agent(agent: Agent) -> None:
    """Stop the agent and remove every pod, container, image and file its Podman holds."""
    host: PodmanHost | None = agent.podman_host
    try:
        await agent.stop()
    finally:  # a failing stop (the test's finding) must not leave a Podman service and its pods behind
        if host is not None:
            await remove_everything(host)
        await asyncio.to_thread(shutil.rmtree, agent.config.data_dir, True)


def pod_body(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for container in [*containers, *spec.get("initContainers", [])]:
        container.setdefault("image", IMAGE)
        container.setdefault("imagePullPolicy", "Never")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2, "containers": containers, **spec}}


async def wait_pod(client: RestClient, name: str, condition: Callable[[dict[str, Any]], bool], *,
                   timeout: float = 60.0, namespace: str = "default") -> dict[str, Any]:
    """The pod once ``condition(pod)`` holds; the last seen pod in the error otherwise."""
    deadline = time.monotonic() + timeout
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = await client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        if condition(pod):
            return pod
        await asyncio.sleep(0.2)
    raise AssertionError(f"pod {name} did not reach the condition in {timeout}s; last status: {pod.get('status')}")


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def container_status(pod: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for status in statuses:
        if name is None or status["name"] == name:
            return dict(status)
    return {}
