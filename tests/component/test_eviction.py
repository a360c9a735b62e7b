"""pods/eviction and PodDisruptionBudgets on a real 3-master cluster (scheduler, controllers, the disruption
controller), with hollow kubelets that run the pods and finish graceful deletions.

Over HTTP (RestClient), as kubectl drain calls it: discovery names pods/eviction (policy/v1 Eviction); an
eviction the budget allows answers 201 and the pod terminates; one it does not answers 429 with the
budget's cause and changes nothing; two budgets covering a pod give 500; the disruption controller keeps
currentHealthy/desiredHealthy/expectedPods/disruptionsAllowed current, so evictions resume as replacements
become ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import LocalCluster, eventually
from tests.support.hollow import HollowNodes
from tests.support.hollow_agents import running

PODS = by_id(resource_id("", "pods"))
DEPLOYMENTS = by_id(resource_id("apps", "deployments"))
BUDGETS = by_id(resource_id("policy", "poddisruptionbudgets"))
PDB_PATH = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"

pytestmark = pytest.mark.timeout(120)
START_S = 3.0  # a replacement takes this long to be ready: the window in which the budget is spent


@pytest.fixture
async def slow_client(cluster: LocalCluster) -> AsyncIterator[InProcessClient]:
    """Hollow kubelets whose containers take ``START_S`` to start and 1 s to stop."""
    client = InProcessClient(cluster.running()[0].store, manager="test")
    async with running(HollowNodes(client, ["n1", "n2", "n3"], heartbeat=2.0, start_delay=START_S,
                                   termination_delay=1.0)):
        yield client


def web(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}


def budget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def eviction(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or ())


async def live_pods(client: InProcessClient) -> list[dict[str, Any]]:
    return [p for p in (await client.list(PODS, "default", label_selector="app=web")).items
            if not p["metadata"].get("deletionTimestamp")]


async def evict(rest: RestClient, name: str) -> Any:
    return await rest.create(f"/api/v1/namespaces/default/pods/{name}/eviction", eviction(name))


async def test_eviction_respects_a_disruption_budget(slow_client: InProcessClient, clients: list[RestClient]) -> None:
    client, rest = slow_client, clients[1]
    core = await rest.get("/api/v1")
    [sub] = [r for r in core["resources"] if r["name"] == "pods/eviction"]
    assert (sub["group"], sub["version"], sub["kind"], sub["verbs"]) == ("policy", "v1", "Eviction", ["create"])

    await client.create(DEPLOYMENTS, web(3))
    await rest.create(PDB_PATH, budget("web", maxUnavailable=1))

    async def settled() -> Any:
        pdb = await rest.get(f"{PDB_PATH}/web")
        status = pdb.get("status") or {}
        pods = await live_pods(client)
        return pdb if (len(pods) == 3 and all(map(ready, pods)) and status.get("currentHealthy") == 3
                       and status.get("disruptionsAllowed") == 1) else None

    pdb = await eventually(settled, timeout=30)
    assert pdb["status"]["expectedPods"] == 3 and pdb["status"]["desiredHealthy"] == 2
    assert pdb["status"]["observedGeneration"] == pdb["metadata"]["generation"]
    allowed = next(c for c in pdb["status"]["conditions"] if c["type"] == "DisruptionAllowed")
    assert (allowed["status"], allowed["reason"]) == ("True", "SufficientPods")

    first, second, *_ = sorted(p["metadata"]["name"] for p in await live_pods(client))
    dry = await rest.request("POST", f"/api/v1/namespaces/default/pods/{first}/eviction", body=eviction(first),
                             params={"dryRun": "All"})
    assert dry["status"] == "Success"  # checked, nothing written
    assert not (await client.get(PODS, "default", first))["metadata"].get("deletionTimestamp")
    assert (await rest.get(f"{PDB_PATH}/web"))["status"]["disruptionsAllowed"] == 1
    answer = await evict(rest, first)
    assert answer["status"] == "Success"
    # The eviction took the one disruption; a second one at once is refused with the budget's cause.
    with pytest.raises(errors.TooManyRequests) as refused:
        await evict(rest, second)
    assert refused.value.message == "Cannot evict pod as it would violate the pod's disruption budget."
    assert [c.reason for c in refused.value.causes] == ["DisruptionBudget"]
    untouched = await client.get(PODS, "default", second)
    assert not untouched["metadata"].get("deletionTimestamp")

    # The evicted pod terminates (hollow kubelet's final delete); its replacement becomes ready; the budget
    # allows one disruption again and the second eviction goes through.
    async def recovered() -> Any:
        names = {p["metadata"]["name"] for p in (await client.list(PODS, "default")).items}
        pdb = await rest.get(f"{PDB_PATH}/web")
        return first not in names and (pdb.get("status") or {}).get("disruptionsAllowed") == 1

    await eventually(recovered, timeout=30)
    assert (await evict(rest, second))["status"] == "Success"

    # Two budgets over one pod: upstream refuses with 500 and deletes nothing.
    await rest.create(PDB_PATH, budget("web-too", minAvailable=1))
    await eventually(lambda: _observed(rest, "web-too"), timeout=20)
    third = sorted(p["metadata"]["name"] for p in await live_pods(client) if ready(p))[0]  # Pending ones skip budgets
    with pytest.raises(errors.StatusError) as failed:
        await evict(rest, third)
    assert failed.value.code == 500 and "more than one PodDisruptionBudget" in failed.value.message
    assert not (await client.get(PODS, "default", third))["metadata"].get("deletionTimestamp")


async def _observed(rest: RestClient, name: str) -> bool:
    pdb = await rest.get(f"{PDB_PATH}/{name}")
    return (pdb.get("status") or {}).get("observedGeneration") == pdb["metadata"]["generation"]


async def test_bad_budgets_and_evictions_are_rejected(
    hollow_client: InProcessClient, clients: list[RestClient]
) -> None:
    rest = clients[0]
    with pytest.raises(errors.Invalid):
        await rest.create(PDB_PATH, budget("both", minAvailable=1, maxUnavailable=1))
    with pytest.raises(errors.Invalid):
        await rest.create(PDB_PATH, budget("negative", minAvailable=-1))
    with pytest.raises(errors.NotFound):
        await evict(rest, "nobody")
    with pytest.raises(errors.BadRequest):
        await rest.create("/api/v1/namespaces/default/pods/x/eviction", eviction("y"))
    assert not (await rest.get(PDB_PATH))["items"]
