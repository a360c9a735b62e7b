"""The scheduler on a real 3-master cluster: hollow Node objects, pods created over HTTP, the leader's
scheduler binding them through Raft; and two schedulers racing with different fences."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import Binding
from edgek8s.client.rest import RestClient, RestClusterClient
from edgek8s.model import errors
from edgek8s.model.resources import resource_id
from edgek8s.scheduler.loop import Scheduler
from tests.support.cluster import LocalCluster
from tests.support.objects import make_node, make_pod, node_taint

PODS = "/api/v1/namespaces/default/pods"
PODS_RID = resource_id("", "pods")


async def create_nodes(client: RestClient, *nodes: dict[str, Any]) -> None:
    for node in nodes:
        await client.create("/api/v1/nodes", node)


async def create_pods(client: RestClient, *pods: dict[str, Any]) -> None:
    await asyncio.gather(*(client.create(PODS, pod) for pod in pods))


async def pods_by_name(client: RestClient) -> dict[str, dict[str, Any]]:
    listed = await client.get(PODS)
    return {p["metadata"]["name"]: p for p in listed["items"]}


async def wait_pods(client: RestClient, condition: Callable[[dict[str, dict[str, Any]]], bool],
                    timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        pods = await pods_by_name(client)
        if condition(pods):
            return pods
        if time.monotonic() > deadline:
            summary = {n: (node_of(p), (p.get("status") or {}).get("conditions")) for n, p in pods.items()}
            raise AssertionError(f"pods did not reach the expected state: {summary}")
        await asyncio.sleep(0.1)


async def events_of(client: RestClient, pod: str, reason: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The events with ``reason`` about ``pod``, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        events = (await client.get("/api/v1/namespaces/default/events"))["items"]
        found = [e for e in events if e["reason"] == reason and e["involvedObject"]["name"] == pod]
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {reason} event about {pod}: {[e['reason'] for e in events]}")
        await asyncio.sleep(0.1)


def node_of(pod: dict[str, Any]) -> str | None:
    return pod["spec"].get("nodeName")


def all_bound(names: list[str]) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda pods: all(n in pods and node_of(pods[n]) for n in names)


async def test_pods_land_only_where_filters_allow(clients: list[RestClient]) -> None:
    client = clients[0]
    await create_nodes(
        client,
        make_node("pi-1", arch="arm64", labels={"disk": "ssd"}),
        make_node("pi-2", arch="arm64"),
        make_node("x86-1", arch="amd64"),
        make_node("cordoned", arch="arm64", unschedulable=True),
        make_node("gpu", arch="amd64", taints=[node_taint("dedicated", value="gpu")]),
        make_node("down", arch="arm64", ready="False"),
    )
    arm_only = {"edgek8s.io/image-platforms": "linux/arm64"}
    pods = [make_pod(f"arm-{i}", annotations=arm_only, owner_uid="rs-arm") for i in range(6)]
    pods += [make_pod("ssd", node_selector={"disk": "ssd"})]
    pods += [make_pod("gpu-job", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}],
                      affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                          "nodeSelectorTerms": [{"matchFields": [
                              {"key": "metadata.name", "operator": "In", "values": ["gpu"]}]}]}}})]
    pods += [make_pod(f"web-{i}", labels={"app": "web"}, host_ports=[8080]) for i in range(3)]
    pods += [make_pod(f"any-{i}", requests={"cpu": "500m", "memory": "256Mi"}) for i in range(10)]
    await create_pods(client, *pods)
    names = [p["metadata"]["name"] for p in pods]
    bound = await wait_pods(client, all_bound(names))

    arm_nodes = Counter(node_of(bound[f"arm-{i}"]) for i in range(6))
    assert set(arm_nodes) <= {"pi-1", "pi-2"}
    assert arm_nodes == {"pi-1": 3, "pi-2": 3}  # spread over the owner's eligible nodes
    assert node_of(bound["ssd"]) == "pi-1"
    assert node_of(bound["gpu-job"]) == "gpu"
    assert len({node_of(bound[f"web-{i}"]) for i in range(3)}) == 3  # one host port 8080 per node
    for name in names:
        assert node_of(bound[name]) not in ("cordoned", "down")
        if name != "gpu-job":
            assert node_of(bound[name]) != "gpu"
        condition = {c["type"]: c for c in bound[name]["status"]["conditions"]}["PodScheduled"]
        assert condition["status"] == "True"


async def test_unschedulable_pod_gets_condition_and_event_then_lands_on_a_new_node(clients: list[RestClient]) -> None:
    client = clients[1]
    await create_nodes(client, make_node("small", allocatable={"cpu": "1", "memory": "1Gi", "pods": "10"}))
    await create_pods(client, make_pod("big", requests={"cpu": "3", "memory": "2Gi"}))

    def unschedulable(pods: dict[str, dict[str, Any]]) -> bool:
        conditions = (pods["big"].get("status") or {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)

    pods = await wait_pods(client, unschedulable)
    condition = next(c for c in pods["big"]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    failed = await events_of(client, "big", "FailedScheduling")
    assert failed[0]["type"] == "Warning"
    assert failed[0]["message"] == "0/1 nodes are available: 1 Insufficient cpu."

    await create_nodes(client, make_node("large", allocatable={"cpu": "4", "memory": "8Gi", "pods": "110"}))
    pods = await wait_pods(client, all_bound(["big"]), timeout=15.0)  # retried on the node event, not the flush
    assert node_of(pods["big"]) == "large"
    scheduled = await events_of(client, "big", "Scheduled")
    assert scheduled[0]["message"] == "Successfully assigned default/big to large"


async def test_binding_subresource_binds_once(clients: list[RestClient]) -> None:
    client = clients[2]
    await create_pods(client, make_pod("manual", scheduler_name="nobody"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "manual"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    await client.create(f"{PODS}/manual/binding", binding)
    with pytest.raises(errors.Conflict):
        await client.create(f"{PODS}/manual/binding", {**binding, "target": {"kind": "Node", "name": "n2"}})
    assert node_of(await client.get(f"{PODS}/manual")) == "n1"


async def _run_scheduler(scheduler: Scheduler, client: InProcessClient) -> None:
    informers = InformerFactory(client)
    informer_task = asyncio.create_task(informers.run())
    try:
        await scheduler.run(client, informers)
    finally:
        informer_task.cancel()
        await asyncio.gather(informer_task, return_exceptions=True)


async def test_a_stale_scheduler_is_fenced_and_no_pod_is_bound_twice(
    cluster: LocalCluster, clients: list[RestClient]
) -> None:
    client = clients[0]
    leader = cluster.masters[await cluster.wait_stable_leader()]
    assert leader is not None
    store = leader.store
    await create_nodes(client, *(make_node(f"n{i}") for i in range(5)))
    old_epoch = store.state.leader_epoch
    # A newer leader claims; the old one does not know yet and keeps scheduling with its old fence.
    await store.claim_leadership(epoch=old_epoch + 1, holder="newer")
    stale = Scheduler(scheduler_names={"racer"})
    fresh = Scheduler(scheduler_names={"racer"})
    start_rv = store.state.rv
    await create_pods(client, *(make_pod(f"race-{i}", scheduler_name="racer") for i in range(40)))

    stale_task = asyncio.create_task(_run_scheduler(stale, InProcessClient(store, manager="s", fence=old_epoch)))
    fresh_task = asyncio.create_task(_run_scheduler(fresh, InProcessClient(store, manager="s", fence=old_epoch + 1)))
    try:
        names = [f"race-{i}" for i in range(40)]
        await wait_pods(client, all_bound(names))
        with pytest.raises(errors.Fenced):  # a bare Fenced: the gate ends the term on it
            await asyncio.wait_for(stale_task, 10.0)
    finally:
        for task in (stale_task, fresh_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # Every bind that applied, from the store's own history: each pod went from unbound to bound once.
    watcher = store.hub.watch(PODS_RID, "default", start_rv, lambda _obj: True)
    last: dict[str, str] = {}
    bindings: Counter[str] = Counter()
    with contextlib.suppress(TimeoutError):
        while (delivery := await watcher.next(0.5)) is not None:
            node = (delivery.obj.extra_fields or {}).get("spec.nodeName", "")
            if node and not last.get(delivery.obj.name):
                bindings[delivery.obj.name] += 1
            last[delivery.obj.name] = node
    watcher.close()
    assert bindings == dict.fromkeys(names, 1)


class _HookedBinder(InProcessClient):
    """The in-process client with a hook run before each batch of bindings reaches the store (to hold
    a binding in flight: fault injection)."""

    hook: Callable[[Sequence[Binding]], Awaitable[None]] | None = None

    async def bind_many(self, bindings: Sequence[Binding]) -> list[errors.StatusError | None]:
        if self.hook is not None:
            await self.hook(bindings)
        return await super().bind_many(bindings)


async def test_the_failed_binding_of_a_deleted_pod_leaves_its_namesake_holding_the_room(
    cluster: LocalCluster, clients: list[RestClient]
) -> None:
    """A pod deleted while its binding is in flight and created again under its name (a new uid) is
    assumed into the room the old one freed. The old binding's failure (NotFound: uid precondition) is
    about the old pod: it must not take the new pod off the node, or a third pod is bound into room
    that is not there."""
    client = clients[0]
    leader = cluster.masters[await cluster.wait_stable_leader()]
    assert leader is not None
    await create_nodes(client, make_node("solo", allocatable={"cpu": "1", "memory": "4Gi", "pods": "10"}))

    def one_cpu_pod(name: str) -> dict[str, Any]:
        return make_pod(name, scheduler_name="namesake", requests={"cpu": "1"},
                        node_selector={"kubernetes.io/hostname": "solo"})

    binder = _HookedBinder(leader.store, manager="s")
    calls: list[set[str]] = []
    namesake_held, release, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hook(bindings: Sequence[Binding]) -> None:
        names = {b.name for b in bindings}
        calls.append(names)
        if "x" in names and len([c for c in calls if "x" in c]) == 1:
            await client.delete(f"{PODS}/x")  # unbound: gone at once
            await client.create(PODS, one_cpu_pod("x"))
            await asyncio.wait_for(namesake_held.wait(), 20)
            asyncio.get_running_loop().call_soon(first_done.set)  # once its outcome was handled
        elif "x" in names:
            namesake_held.set()
            await asyncio.wait_for(release.wait(), 30)

    binder.hook = hook
    scheduler = Scheduler(scheduler_names={"namesake"})
    task = asyncio.create_task(_run_scheduler(scheduler, binder))
    try:
        await create_pods(client, one_cpu_pod("x"))
        await asyncio.wait_for(first_done.wait(), 30)
        await create_pods(client, one_cpu_pod("y"))  # no room for it while the new x holds it

        def y_decided(pods: dict[str, dict[str, Any]]) -> bool:
            conditions = (pods["y"].get("status") or {}).get("conditions") or []
            return any("y" in c for c in calls) or any(
                c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)

        await wait_pods(client, y_decided)
        release.set()
        pods = await wait_pods(client, all_bound(["x"]))
        await asyncio.sleep(0.5)  # a binding of y, had one been issued, has landed
        pods = await pods_by_name(client)
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert node_of(pods["y"]) is None, "a pod was bound into the room the new x holds"
    assert not any("y" in c for c in calls)


async def test_scheduler_out_of_process_over_http(clients: list[RestClient]) -> None:
    """The same scheduler over the REST client (as it would run outside a master): one binding request
    per pod, unschedulable status written over HTTP."""
    client = clients[1]
    await create_nodes(client, make_node("r1", arch="arm64"), make_node("r2", arch="amd64"))
    arm_only = {"edgek8s.io/image-platforms": "linux/arm64"}
    await create_pods(client, *(make_pod(f"remote-{i}", scheduler_name="remote", annotations=arm_only)
                                for i in range(5)),
                      make_pod("remote-huge", scheduler_name="remote", requests={"memory": "64Gi"}))
    remote = RestClusterClient(client)
    scheduler = Scheduler(scheduler_names={"remote"})
    informers = InformerFactory(remote)
    informer_task = asyncio.create_task(informers.run())
    scheduler_task = asyncio.create_task(scheduler.run(remote, informers))
    try:
        def done(pods: dict[str, dict[str, Any]]) -> bool:
            huge = (pods["remote-huge"].get("status") or {}).get("conditions") or []
            return all_bound([f"remote-{i}" for i in range(5)])(pods) and any(
                c["type"] == "PodScheduled" and c["status"] == "False" for c in huge)

        pods = await wait_pods(client, done)
    finally:
        for task in (scheduler_task, informer_task):
            task.cancel()
        await asyncio.gather(scheduler_task, informer_task, return_exceptions=True)
    assert {node_of(pods[f"remote-{i}"]) for i in range(5)} == {"r1"}
    huge = next(c for c in pods["remote-huge"]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert huge["message"] == "0/2 nodes are available: 2 Insufficient memory."


async def test_topology_spread_over_zones_then_waits_for_a_domain_to_free(clients: list[RestClient]) -> None:
    """DoNotSchedule on a zone key: a burst of replicas alternates zones (assumed pods count at once);
    a pod that would skew too far stays Pending with upstream's reason, and lands once a pod is deleted."""
    client = clients[0]
    zone = "topology.kubernetes.io/zone"
    await create_nodes(client, make_node("za-1", labels={zone: "a"}), make_node("za-2", labels={zone: "a"}),
                       make_node("zb-1", labels={zone: "b"}))

    def spread_pod(name: str, **kwargs: Any) -> dict[str, Any]:
        pod = make_pod(name, labels={"app": "zonal"}, **kwargs)
        pod["spec"]["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "DoNotSchedule", "nodeAffinityPolicy": "Ignore",
             "labelSelector": {"matchLabels": {"app": "zonal"}}}]
        return pod

    names = [f"zonal-{i}" for i in range(6)]
    await create_pods(client, *(spread_pod(n) for n in names))
    pods = await wait_pods(client, all_bound(names))
    zones = Counter("a" if node_of(pods[n]) in ("za-1", "za-2") else "b" for n in names)
    assert zones == {"a": 3, "b": 3}

    # Zone a only: 3 + 1 - 3 = 1 fits once; then a has 4 against b's 3 and the next one waits.
    await create_pods(client, spread_pod("extra-a", node_selector={zone: "a"}))
    await wait_pods(client, all_bound(["extra-a"]))
    await create_pods(client, spread_pod("waits", node_selector={zone: "a"}))

    def unschedulable(pods: dict[str, dict[str, Any]]) -> bool:
        conditions = (pods["waits"].get("status") or {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)

    pods = await wait_pods(client, unschedulable)
    condition = next(c for c in pods["waits"]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert condition["message"] == ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                                    "2 node(s) didn't match pod topology spread constraints.")
    in_a = [n for n in [*names, "extra-a"] if node_of(pods[n]) in ("za-1", "za-2")]
    await client.delete(f"{PODS}/{in_a[0]}")
    await client.delete(f"{PODS}/{in_a[1]}")  # a: 2, b: 3 -> 2 + 1 - 2 = 1
    pods = await wait_pods(client, all_bound(["waits"]), timeout=20.0)
    assert node_of(pods["waits"]) in ("za-1", "za-2")
