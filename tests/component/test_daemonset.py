"""The DaemonSet controller on a real 3-master cluster: the scheduler binds, hollow agents run the pods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.controllers.daemonset import HASH_LABEL
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import LocalCluster, eventually
from tests.support.hollow_agents import HollowAgents, running

PODS = by_id(resource_id("", "pods"))
NODES = by_id(resource_id("", "nodes"))
DAEMON_SETS = by_id(resource_id("apps", "daemonsets"))

pytestmark = pytest.mark.timeout(120)


def daemon_set(name: str, image: str = "busybox:1", **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}], **pod_spec}}},
    }


@pytest.fixture
async def agents(cluster: LocalCluster) -> AsyncIterator[tuple[InProcessClient, HollowAgents]]:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    async with running(HollowAgents(client, ["n1", "n2", "n3"])) as hollow:
        yield client, hollow


async def daemons(client: InProcessClient, uid: str) -> list[dict[str, Any]]:
    pods = (await client.list(PODS, "default")).items
    return [p for p in pods if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or ())
            and not p["metadata"].get("deletionTimestamp")]


async def test_one_running_pod_per_node_then_a_rolling_update(
    agents: tuple[InProcessClient, HollowAgents],
) -> None:
    client, _ = agents
    ds = await client.create(DAEMON_SETS, daemon_set("agent"))
    uid = ds["metadata"]["uid"]

    async def settled(image: str) -> Any:
        current = await client.get(DAEMON_SETS, "default", "agent")
        status = current.get("status") or {}
        pods = await daemons(client, uid)
        bound = sorted(p["spec"].get("nodeName", "") for p in pods)
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        ok = (bound == ["n1", "n2", "n3"] and images == {image}
              and all(p["status"].get("phase") == "Running" for p in pods)
              and status.get("observedGeneration") == current["metadata"]["generation"]
              and [status.get(k) for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                           "updatedNumberScheduled", "numberAvailable")] == [3, 3, 3, 3, 3])
        return pods if ok else None

    pods = await eventually(lambda: settled("busybox:1"))
    for pod in pods:  # pinned by required node affinity, bound by the scheduler
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]
    old_hash = pods[0]["metadata"]["labels"][HASH_LABEL]

    # Rolling update with maxUnavailable 1: sample the pods while it runs; never two nodes down at once.
    current = await client.get(DAEMON_SETS, "default", "agent")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    await client.update(DAEMON_SETS, current)
    worst = 0
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        live = await daemons(client, uid)
        serving = {p["spec"].get("nodeName") for p in live
                   if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or ())}
        worst = max(worst, 3 - len(serving))
        if await settled("busybox:2"):
            break
        await asyncio.sleep(0.02)
    final = await eventually(lambda: settled("busybox:2"))
    assert {p["metadata"]["labels"][HASH_LABEL] for p in final} != {old_hash}
    assert worst <= 1, f"{worst} nodes were without a ready daemon at once (maxUnavailable 1)"


async def test_node_selector_taints_and_new_nodes(agents: tuple[InProcessClient, HollowAgents]) -> None:
    client, _ = agents
    await eventually(lambda: _nodes_exist(client, 3))
    n3 = await client.get(NODES, "", "n3")
    n3["metadata"]["labels"]["edge"] = "true"
    await client.update(NODES, n3)
    ds = await client.create(DAEMON_SETS, daemon_set("edge-only", nodeSelector={"edge": "true"}))
    uid = ds["metadata"]["uid"]

    async def on_nodes(expected: list[str]) -> Any:
        pods = await daemons(client, uid)
        return sorted(p["spec"].get("nodeName", "") for p in pods) == expected and all(
            p["status"].get("phase") == "Running" for p in pods)

    await eventually(lambda: on_nodes(["n3"]))
    # A NoExecute taint the daemon does not tolerate removes it; a label on another node adds one there.
    n3 = await client.get(NODES, "", "n3")
    n3["spec"]["taints"] = [{"key": "maintenance", "effect": "NoExecute"}]
    await client.update(NODES, n3)
    n1 = await client.get(NODES, "", "n1")
    n1["metadata"]["labels"]["edge"] = "true"
    await client.update(NODES, n1)
    await eventually(lambda: on_nodes(["n1"]))
    status = (await client.get(DAEMON_SETS, "default", "edge-only"))["status"]
    assert status["desiredNumberScheduled"] == 1


async def _nodes_exist(client: InProcessClient, count: int) -> bool:
    return len((await client.list(NODES)).items) >= count


REVISIONS = by_id(resource_id("apps", "controllerrevisions"))


async def test_revisions_follow_updates_and_an_undo(agents: tuple[InProcessClient, HollowAgents]) -> None:
    """One ControllerRevision per template; restoring an old template (what ``kubectl rollout undo``
    patches in) brings back its pods' hash and renumbers it; the history limit prunes the rest."""
    client, _ = agents
    ds = await client.create(DAEMON_SETS, daemon_set("hist"))
    uid = ds["metadata"]["uid"]

    async def revisions() -> dict[int, dict[str, Any]]:
        items = (await client.list(REVISIONS, "default", label_selector="app=hist")).items
        return {r["revision"]: r for r in items
                if any(ref.get("uid") == uid for ref in r["metadata"].get("ownerReferences") or ())}

    async def rolled_out(image: str, numbers: list[int]) -> Any:
        pods = await daemons(client, uid)
        history = await revisions()
        current = history.get(max(numbers)) if sorted(history) == numbers else None
        if current is None or len(pods) != 3 or {p["spec"]["containers"][0]["image"] for p in pods} != {image}:
            return None
        hashes = {p["metadata"]["labels"][HASH_LABEL] for p in pods}
        return history if hashes == {current["metadata"]["labels"][HASH_LABEL]} else None

    first = await eventually(lambda: rolled_out("busybox:1", [1]))
    r1 = first[1]
    assert r1["metadata"]["name"] == f"hist-{r1['metadata']['labels'][HASH_LABEL]}"
    assert r1["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"

    current = await client.get(DAEMON_SETS, "default", "hist")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    await client.update(DAEMON_SETS, current)
    await eventually(lambda: rolled_out("busybox:2", [1, 2]))

    current = await client.get(DAEMON_SETS, "default", "hist")
    current["spec"]["template"] = {k: v for k, v in r1["data"]["spec"]["template"].items() if k != "$patch"}
    await client.update(DAEMON_SETS, current)
    undone = await eventually(lambda: rolled_out("busybox:1", [2, 3]))
    assert undone[3]["metadata"]["uid"] == r1["metadata"]["uid"]  # the same revision, renumbered

    current = await client.get(DAEMON_SETS, "default", "hist")
    current["spec"]["revisionHistoryLimit"] = 0
    await client.update(DAEMON_SETS, current)
    await eventually(lambda: rolled_out("busybox:1", [3]))
