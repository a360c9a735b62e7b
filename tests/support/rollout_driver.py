"""RolloutDriver: a Deployment rolling on hollow nodes, recorded, for controller failover chaos tests.

Clients to every master (except those in ``avoid``: frozen or cut off), hollow nodes
(tests/support/hollow.py, through whichever master answers) writing pod status as kubelets would, and a
``ControllerHistory`` of what the controllers and scheduler wrote. Hollow containers take
``CONTAINER_START`` to start, so a rollout needs at least two such waits and a failover lands mid-rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from edgek8s.client.rest import RestClient, RestClusterClient
from edgek8s.controllers.rollout import equal_ignore_hash
from edgek8s.model.resources import by_id, resource_id
from tests.support.controller_history import ControllerHistory
from tests.support.failover_client import FailoverClient
from tests.support.hollow import HollowNodes
from tests.support.processes import ProcessCluster

REPLICAS = 50
KILL_DELAY = (0.05, 0.4)  # seconds from the image change to a kill: "a moment into the rollout"
# A rollout takes at least twice this (see the module docstring), well past the latest kill; a successor waiting for
# the containers of its predecessor's last scale-up writes at most this long after they were created.
CONTAINER_START = 0.5
DEPLOYMENTS = by_id(resource_id("apps", "deployments"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
PODS = by_id(resource_id("", "pods"))


def deployment(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}},
    }


class Driver:
    """Clients to every master, hollow nodes and a history recorder, for one test."""

    def __init__(self, cluster: ProcessCluster, session: aiohttp.ClientSession, avoid: set[int]) -> None:
        self.cluster = cluster
        self.session = session
        self.avoid = avoid  # masters the helpers must not talk to (frozen)
        self.rests = [RestClient(m.url, timeout=3.0) for m in cluster.masters]
        self.history = ControllerHistory(urls=self.urls)
        self.tasks: list[asyncio.Task[None]] = []

    def urls(self) -> list[str]:
        return [self.cluster.masters[i].url for i in self.cluster.running() if i not in self.avoid] or [
            m.url for m in self.cluster.masters]

    def client(self, indexes: list[int] | None = None) -> FailoverClient:
        chosen = indexes if indexes is not None else list(range(len(self.rests)))
        return FailoverClient([RestClusterClient(self.rests[i]) for i in chosen])

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, cluster: ProcessCluster, session: aiohttp.ClientSession,
                    avoid: set[int] | None = None) -> AsyncIterator[Driver]:
        driver = cls(cluster, session, avoid or set())
        for rest in driver.rests:
            await rest.__aenter__()
        usable = [i for i in range(len(cluster.masters)) if i not in driver.avoid]
        hollow = HollowNodes(driver.client(usable), [f"hollow-{i}" for i in range(5)], heartbeat=2.0,
                             start_delay=CONTAINER_START)
        tasks = [asyncio.create_task(hollow.run(), name="hollow"),
                 asyncio.create_task(driver.history.run(), name="history")]
        driver.tasks = tasks
        try:
            yield driver
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for rest in driver.rests:
                await rest.__aexit__(None, None, None)

    async def rolled_out(self, image: str, timeout: float = 60.0) -> dict[str, Any]:
        client = self.client([i for i in range(len(self.rests)) if i not in self.avoid])
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                d = await client.get(DEPLOYMENTS, "default", "web")
                status = d.get("status") or {}
                last = status
                if (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
                        and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
                        and status.get("updatedReplicas") == REPLICAS and status.get("replicas") == REPLICAS
                        and status.get("availableReplicas") == REPLICAS):
                    return d
            except Exception as exc:  # a master just killed: ask another
                last = repr(exc)
            await asyncio.sleep(0.1)
        raise AssertionError(f"rollout to {image} did not finish in {timeout}s: {last}\n{self.cluster.describe()}")

    async def set_image(self, image: str) -> None:
        client = self.client([i for i in range(len(self.rests)) if i not in self.avoid])
        template = deployment(image)["spec"]["template"]
        for _ in range(20):
            try:
                await client.patch(DEPLOYMENTS, "default", "web", {"spec": {"template": template}})
                return
            except Exception:
                await asyncio.sleep(0.1)
        raise AssertionError("could not change the image")

    async def explain_quiet(self, claimed: dict[str, Any]) -> str:
        """Why no controller write was seen: the recorder's health, the rollout and the successor's term."""
        lines = [f"history: {len(self.history.events)} events, newest rv "
                 f"{max((e.rv for e in self.history.events), default=0)}, tasks "
                 + ", ".join(f"{t.get_name()}={_state(t)}" for t in self.tasks)]
        try:
            d = await self.client([i for i in self.cluster.running() if i not in self.avoid]).get(
                DEPLOYMENTS, "default", "web")
            image = d["spec"]["template"]["spec"]["containers"][0]["image"]
            lines.append(f"deployment: rv {d['metadata']['resourceVersion']} generation "
                         f"{d['metadata']['generation']} image {image} status {d.get('status')}")
        except Exception as exc:
            lines.append(f"deployment: {exc!r}")
        holder = next((i for i, m in enumerate(self.cluster.masters) if m.name == claimed["leaderHolder"]), None)
        if holder is not None:
            with contextlib.suppress(Exception):
                terms = (await self.cluster.status(self.session, holder))["controllers"]["terms"]
                lines.append(f"successor {claimed['leaderHolder']} terms: {terms}")
        return "\n".join(lines)

    async def check_end_state(self, image: str) -> None:
        client = self.client([i for i in range(len(self.rests)) if i not in self.avoid])
        d = await self.rolled_out(image)
        pods = (await client.list(PODS, "default", label_selector="app=web")).items
        assert len(pods) == REPLICAS, f"{len(pods)} pods, want exactly {REPLICAS}"
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {image}
        assert all(p["status"].get("phase") == "Running" and p["spec"].get("nodeName") for p in pods)
        rss = (await client.list(REPLICASETS, "default", label_selector="app=web")).items
        uid = d["metadata"]["uid"]
        owned = [rs for rs in rss if any(r["uid"] == uid for r in rs["metadata"].get("ownerReferences") or ())]
        assert len(owned) == len(rss)
        for i, a in enumerate(owned):
            for b in owned[i + 1:]:
                assert not equal_ignore_hash(a["spec"]["template"], b["spec"]["template"]), (
                    f"duplicate ReplicaSets {a['metadata']['name']} and {b['metadata']['name']}")
        current = [rs for rs in owned if rs["spec"]["replicas"] > 0]
        assert len(current) == 1 and current[0]["spec"]["replicas"] == REPLICAS
        created: dict[str, int] = {}
        for event in self.history.events:
            if event.resource == "replicasets" and event.type == "ADDED":
                created[event.name] = created.get(event.name, 0) + 1
        assert all(n == 1 for n in created.values()), f"a ReplicaSet created twice: {created}"
        twice = self.history.pods_bound_twice()
        assert not twice, f"pods bound to two nodes: {list(twice.items())[:5]}"
        assert self.history.gaps == 0, "the recorded history has gaps (410 on resume)"


@dataclass(frozen=True)
class LeaderUnderTest:
    driver: Driver
    old: int  # the controller leader's index
    others: list[int]
    epoch: int  # its controllers' epoch


@contextlib.asynccontextmanager
async def rolled_out_beside_leader(cluster: ProcessCluster, session: aiohttp.ClientSession,
                                   ready_timeout: float = 30.0) -> AsyncIterator[LeaderUnderTest]:
    """Start every master, find the controller leader, and roll ``web:0`` out with a Driver whose clients
    avoid the leader (the test is about to freeze or cut it off)."""
    cluster.start_all()
    await cluster.wait_ready(session, timeout=ready_timeout)
    old, _ = await cluster.find_leader(session)
    others = [i for i in range(len(cluster.masters)) if i != old]
    async with Driver.start(cluster, session, avoid={old}) as driver:
        await driver.client(others).create(DEPLOYMENTS, deployment("web:0"))
        await driver.rolled_out("web:0")
        status = await cluster.status(session, old)
        epoch = status["controllers"]["epoch"]
        assert epoch == status["leaderEpoch"]
        yield LeaderUnderTest(driver=driver, old=old, others=others, epoch=epoch)


def _state(task: asyncio.Task[None]) -> str:
    if not task.done():
        return "running"
    return "cancelled" if task.cancelled() else f"ended: {task.exception()!r}"


async def wait_new_claim(cluster: ProcessCluster, session: aiohttp.ClientSession, survivors: list[int],
                         old_epoch: int, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for index in survivors:
            try:
                status = await cluster.status(session, index, timeout=1.0)
            except Exception:
                continue
            if status["leaderEpoch"] > old_epoch:
                return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"no new leader claimed after epoch {old_epoch}\n{cluster.describe()}")


async def first_write_after(driver: Driver, claimed: dict[str, Any], timeout: float = 15.0) -> float:
    claim_index = claimed["leaderClaimIndex"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.history.first_controller_write_after(claim_index)
        if found is not None:
            return found.at
        await asyncio.sleep(0.01)
    raise AssertionError(f"no controller write after claim index {claim_index} within {timeout}s\n"
                         f"{await driver.explain_quiet(claimed)}")
