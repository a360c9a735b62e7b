"""Lose a worker: a hollow agent stops renewing its Lease -> Unknown + taints -> its pods are evicted after
the configured toleration (graceful deletions) and recreated elsewhere by the ReplicaSet; when it comes back
it finishes those deletions and its DaemonSet pod (which tolerates unreachable forever) is left alone. A
worker that never comes back has its terminating pods force-deleted once their grace has run out.

Real 3-master cluster, real scheduler and controllers; only the kubelets are hollow.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.config import ControllersConfig
from edgek8s.controllers.nodelifecycle import UNREACHABLE
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import eventually, started_cluster
from tests.support.hollow_agents import HollowAgents, running

PODS = by_id(resource_id("", "pods"))
NODES = by_id(resource_id("", "nodes"))
REPLICA_SETS = by_id(resource_id("apps", "replicasets"))
DAEMON_SETS = by_id(resource_id("apps", "daemonsets"))

GRACE = 1.0
TOLERATION = 2

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[InProcessClient, HollowAgents]]:
    config = ControllersConfig(node_monitor_grace_period=GRACE, default_toleration_seconds=TOLERATION)
    async with started_cluster(tmp_path, controllers=config) as cluster:
        client = InProcessClient(cluster.running()[0].store, manager="test")
        async with running(HollowAgents(client, ["n1", "n2", "n3"], lease_interval=0.1)) as hollow:
            yield client, hollow


def workload(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def ready(pod: dict[str, Any]) -> bool:
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or ())


async def pods_of(client: InProcessClient, app: str) -> list[dict[str, Any]]:
    return [p for p in (await client.list(PODS, "default", label_selector=f"app={app}")).items
            if not p["metadata"].get("deletionTimestamp")]


async def test_lose_a_worker_and_get_it_back(fleet: tuple[InProcessClient, HollowAgents]) -> None:
    client, hollow = fleet

    async def registered() -> bool:
        return len((await client.list(NODES)).items) == 3

    await eventually(registered)
    await client.create(REPLICA_SETS, workload("ReplicaSet", "web", replicas=6))
    await client.create(DAEMON_SETS, workload("DaemonSet", "agent"))

    async def spread() -> Any:
        web, agent = await pods_of(client, "web"), await pods_of(client, "agent")
        nodes = {p["spec"].get("nodeName") for p in web}
        ok = len(web) == 6 and all(map(ready, web)) and "n2" in nodes and len(nodes) > 1 and len(agent) == 3 and all(
            map(ready, agent))
        return web if ok else None

    before = await eventually(spread)
    lost = {p["metadata"]["name"] for p in before if p["spec"]["nodeName"] == "n2"}

    silenced = time.monotonic()
    hollow.silence("n2")

    async def unreachable() -> Any:
        node = await client.get(NODES, "", "n2")
        ready_cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
        return ready_cond["status"] == "Unknown" and taints == {(UNREACHABLE, "NoSchedule"),
                                                                (UNREACHABLE, "NoExecute")}

    await eventually(unreachable, timeout=15)
    noticed = time.monotonic() - silenced
    assert noticed >= GRACE * 0.9, f"declared lost after {noticed:.2f}s, before the {GRACE}s grace"

    async def recovered() -> Any:
        web = await pods_of(client, "web")
        names = {p["metadata"]["name"] for p in web}
        ok = (len(web) == 6 and all(map(ready, web)) and not names & lost
              and all(p["spec"]["nodeName"] in ("n1", "n3") for p in web))
        return web if ok else None

    await eventually(recovered, timeout=30)
    moved = time.monotonic() - silenced
    # timeAdded is a metav1.Time: whole seconds, so the toleration may start up to 1 s early.
    assert moved >= GRACE + TOLERATION - 1, f"evicted after {moved:.2f}s, before grace + toleration"
    # The daemon tolerates unreachable without a limit: still bound to n2 (marked NotReady meanwhile).
    agent_on_n2 = [p for p in await pods_of(client, "agent") if p["spec"].get("nodeName") == "n2"]
    assert len(agent_on_n2) == 1 and not ready(agent_on_n2[0])

    await hollow.revive("n2")

    async def back() -> Any:
        node = await client.get(NODES, "", "n2")
        ready_cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        agent = [p for p in await pods_of(client, "agent") if p["spec"].get("nodeName") == "n2"]
        return (ready_cond["status"] == "True" and not node["spec"].get("taints")
                and len(agent) == 1 and ready(agent[0]))

    await eventually(back, timeout=15)
    # The pods evicted while it was away were still terminating (graceful deletion waits for the kubelet):
    # the board stopped exactly those, issued their final deletes, and killed nothing else.

    async def finished() -> bool:
        names = {p["metadata"]["name"] for p in (await client.list(PODS, "default")).items}
        return not names & lost

    await eventually(finished, timeout=15)
    assert {key.split("/")[1] for key in hollow.stopped["n2"]} == lost
    assert not hollow.stale_killed["n2"]
    assert agent_on_n2[0]["metadata"]["uid"] in hollow.local["n2"]
    # Pods on a node that is Ready again are left alone: nothing more is evicted.
    await asyncio.sleep(GRACE + TOLERATION + 0.5)
    web = await pods_of(client, "web")
    assert len(web) == 6 and all(map(ready, web))
    assert [p["metadata"]["uid"] for p in await pods_of(client, "agent") if p["spec"].get("nodeName") == "n2"] == [
        agent_on_n2[0]["metadata"]["uid"]]


async def test_a_lost_workers_terminating_pods_are_force_deleted_after_their_grace(
    fleet: tuple[InProcessClient, HollowAgents]
) -> None:
    client, hollow = fleet

    async def registered() -> bool:
        return len((await client.list(NODES)).items) == 3

    await eventually(registered)
    template_grace = 2
    body = workload("ReplicaSet", "web", replicas=3)
    body["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=template_grace,
                                            nodeSelector={"kubernetes.io/hostname": "n2"})
    await client.create(REPLICA_SETS, body)

    async def running_on_n2() -> Any:
        web = await pods_of(client, "web")
        return web if len(web) == 3 and all(map(ready, web)) else None

    lost = {p["metadata"]["uid"] for p in await eventually(running_on_n2)}
    hollow.silence("n2")

    async def terminating() -> Any:
        pods = [p for p in (await client.list(PODS, "default")).items if p["metadata"]["uid"] in lost]
        return pods if len(pods) == 3 and all(p["metadata"].get("deletionTimestamp") for p in pods) else None

    marked = await eventually(terminating, timeout=20)
    assert all(p["metadata"]["deletionGracePeriodSeconds"] == template_grace for p in marked)
    evicted_at = time.monotonic()

    async def gone() -> bool:
        uids = {p["metadata"]["uid"] for p in (await client.list(PODS, "default")).items}
        return not uids & lost

    await eventually(gone, timeout=20)
    # Not before their grace ran out (the deadline is in whole seconds: up to 1 s early).
    assert time.monotonic() - evicted_at >= template_grace - 1
    assert not hollow.stopped["n2"]  # the board never came back: the controller force-deleted them
