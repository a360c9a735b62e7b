"""PriorityClasses and preemption on a real 3-master cluster over HTTP: admission resolves priorities,
and the leader's scheduler evicts lower-priority pods for a pod that fits nowhere."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from tests.component.test_scheduler import PODS, all_bound, create_nodes, events_of, node_of, wait_pods
from tests.support.objects import make_node, make_pod

CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


def priority_class(name: str, value: int, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **extra}


async def test_admission_resolves_classes_and_the_global_default(clients: list[RestClient]) -> None:
    client = clients[0]
    plain = await client.create(PODS, make_pod("plain"))
    assert (plain["spec"]["priority"], plain["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")
    created = await client.create(CLASSES, priority_class("high", 1000, description="urgent"))
    assert created["preemptionPolicy"] == "PreemptLowerPriority"  # defaulted
    await client.create(CLASSES, priority_class("batch", 10, globalDefault=True, preemptionPolicy="Never"))

    pod = make_pod("urgent")
    pod["spec"]["priorityClassName"] = "high"
    assert (await client.create(PODS, pod))["spec"]["priority"] == 1000
    defaulted = await client.create(PODS, make_pod("batchy"))
    assert (defaulted["spec"]["priorityClassName"], defaulted["spec"]["priority"],
            defaulted["spec"]["preemptionPolicy"]) == ("batch", 10, "Never")
    system = make_pod("critical")
    system["spec"]["priorityClassName"] = "system-node-critical"
    assert (await client.create(PODS, system))["spec"]["priority"] == 2000001000

    unknown = make_pod("unknown")
    unknown["spec"]["priorityClassName"] = "nope"
    with pytest.raises(errors.Forbidden, match="no PriorityClass with name nope was found"):
        await client.create(PODS, unknown)
    lying = make_pod("lying")
    lying["spec"].update(priorityClassName="high", priority=5)
    with pytest.raises(errors.Forbidden, match=r"the integer value of priority \(5\) must not be provided"):
        await client.create(PODS, lying)
    with pytest.raises(errors.Forbidden, match="PriorityClass batch is already marked as default"):
        await client.create(CLASSES, priority_class("other", 1, globalDefault=True))
    with pytest.raises(errors.Invalid, match="maximum allowed value of a user defined priority"):
        await client.create(CLASSES, priority_class("huge", 2_000_000_000))
    names = {pc["metadata"]["name"] for pc in (await client.get(CLASSES))["items"]}
    assert names == {"high", "batch"}
    high = await client.get(f"{CLASSES}/high")
    with pytest.raises(errors.Invalid, match=r"value: Forbidden: may not be changed in an update"):
        await client.replace(f"{CLASSES}/high", {**high, "value": 2000})
    described = await client.replace(f"{CLASSES}/high", {**high, "description": "still urgent"})
    assert (described["value"], described["description"]) == (1000, "still urgent")


async def test_a_high_priority_pod_preempts_the_fewest_least_important(clients: list[RestClient]) -> None:
    client = clients[1]
    await client.create(CLASSES, priority_class("low", 1))
    await client.create(CLASSES, priority_class("mid", 5))
    await client.create(CLASSES, priority_class("high", 100))
    await create_nodes(client, make_node("small-1", allocatable={"cpu": "2", "memory": "4Gi", "pods": "110"}),
                       make_node("small-2", allocatable={"cpu": "2", "memory": "4Gi", "pods": "110"}))

    def with_class(name: str, cls: str, cpu: str, node: str = "") -> dict[str, Any]:
        pod = make_pod(name, requests={"cpu": cpu}, node_name=node)
        pod["spec"]["priorityClassName"] = cls
        # No kubelet runs on these nodes to finish a graceful deletion: the victims ask for none.
        pod["spec"]["terminationGracePeriodSeconds"] = 0
        return pod

    fillers = [with_class("mid-a", "mid", "1", "small-1"), with_class("mid-b", "mid", "1", "small-1"),
               with_class("low-a", "low", "1", "small-2"), with_class("low-b", "low", "1", "small-2")]
    for filler in fillers:
        await client.create(PODS, filler)
    pods = await wait_pods(client, all_bound([f["metadata"]["name"] for f in fillers]))
    # A low-priority pod waiting for room must not take what the preemption frees (the room is held).
    await client.create(PODS, with_class("sneaky", "low", "2"))
    await client.create(PODS, with_class("urgent", "high", "2"))
    pods = await wait_pods(client, all_bound(["urgent"]), timeout=30.0)
    # The node of the two low pods is emptied (two priority-1 victims beat two priority-5 ones).
    target = node_of(pods["urgent"])
    assert target == "small-2"
    assert pods["urgent"]["status"].get("nominatedNodeName") == target
    assert "low-a" not in pods and "low-b" not in pods
    assert node_of(pods["mid-a"]) == node_of(pods["mid-b"]) == "small-1"
    assert node_of(pods["sneaky"]) is None
    preempted = await events_of(client, "low-a", "Preempted")
    assert preempted[0]["message"] == f"Preempted by pod {pods['urgent']['metadata']['uid']} on node {target}"
