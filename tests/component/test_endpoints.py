"""Endpoints and EndpointSlices on a real 3-master cluster, from pods run by hollow agents; Event expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.informer import InformerFactory
from edgek8s.controllers.endpoints import MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL
from edgek8s.controllers.eventttl import EventTTLController, EventTTLSettings
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import LocalCluster, absent, eventually
from tests.support.hollow_agents import HollowAgents, running

PODS = by_id(resource_id("", "pods"))
SERVICES = by_id(resource_id("", "services"))
ENDPOINTS = by_id(resource_id("", "endpoints"))
SLICES = by_id(resource_id("discovery.k8s.io", "endpointslices"))
REPLICA_SETS = by_id(resource_id("apps", "replicasets"))
EVENTS = by_id(resource_id("", "events"))

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[InProcessClient]:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    async with running(HollowAgents(client, ["n1", "n2"])):
        yield client


def replica_set(replicas: int) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "ports": [{"name": "web", "containerPort": 8080}]}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}}


def service(name: str, selector: dict[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": "web"}]}
    if selector is not None:
        spec["selector"] = selector
    else:
        spec["ports"][0]["targetPort"] = 9000
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def pod_ips(client: InProcessClient, ready_only: bool = True) -> set[str]:
    pods = (await client.list(PODS, "default", label_selector="app=web")).items
    return {p["status"]["podIP"] for p in pods if p["status"].get("podIP") and (not ready_only or any(
        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or ()))}


async def published(client: InProcessClient) -> tuple[set[str], set[str], list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        endpoints = await client.get(ENDPOINTS, "default", "web")
    except errors.NotFound:
        return set(), set(), [], []
    ready = {a["ip"] for s in endpoints.get("subsets") or () for a in s.get("addresses") or ()}
    not_ready = {a["ip"] for s in endpoints.get("subsets") or () for a in s.get("notReadyAddresses") or ()}
    ports = [port for s in endpoints.get("subsets") or () for port in s.get("ports") or ()]
    slices = (await client.list(SLICES, "default", label_selector=f"{SERVICE_NAME_LABEL}=web")).items
    return ready, not_ready, ports, slices


async def test_endpoints_follow_pod_readiness(client: InProcessClient) -> None:
    await client.create(SERVICES, service("web", {"app": "web"}))
    await client.create(REPLICA_SETS, replica_set(3))

    async def three_ready() -> Any:
        ips = await pod_ips(client)
        ready, not_ready, ports, slices = await published(client)
        ok = len(ips) == 3 and ready == ips and not not_ready and ports == [
            {"name": "http", "port": 8080, "protocol": "TCP"}] and len(slices) == 1
        return slices if ok else None

    slices = await eventually(three_ready)
    (eps,) = slices
    assert eps["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    assert eps["addressType"] == "IPv4" and eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in eps["endpoints"])
    assert all(e["targetRef"]["kind"] == "Pod" and e["nodeName"] in ("n1", "n2") for e in eps["endpoints"])

    # A readiness probe fails (the kubelet reports Ready=False): the address moves to notReadyAddresses.
    pods = (await client.list(PODS, "default", label_selector="app=web")).items
    sick = pods[0]
    conditions = [{**c, "status": "False", "reason": "ProbeFailed"} if c["type"] in ("Ready", "ContainersReady")
                  else c for c in sick["status"]["conditions"]]
    await client.update_status(PODS, {**sick, "status": {**sick["status"], "conditions": conditions}})

    async def one_not_ready() -> Any:
        ready, not_ready, _, slices = await published(client)
        flags = {e["addresses"][0]: e["conditions"]["ready"] for s in slices for e in s["endpoints"]}
        return (not_ready == {sick["status"]["podIP"]} and len(ready) == 2
                and flags.get(sick["status"]["podIP"]) is False)

    await eventually(one_not_ready)

    # Scale down: the addresses of removed pods go.
    rs = await client.get(REPLICA_SETS, "default", "web")
    await client.update(REPLICA_SETS, {**rs, "spec": {**rs["spec"], "replicas": 1}})

    async def shrunk() -> bool:
        ready, not_ready, _, slices = await published(client)
        return len(ready | not_ready) == 1 and sum(len(s["endpoints"]) for s in slices) == 1

    await eventually(shrunk)
    # The Service goes: so do its Endpoints.
    await client.delete(SERVICES, "default", "web")
    await eventually(lambda: absent(client, ENDPOINTS, "default", "web"))


async def test_selectorless_service_endpoints_are_the_users(client: InProcessClient) -> None:
    await client.create(SERVICES, service("external", None))
    mine = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.7"}], "ports": [{"port": 9000, "protocol": "TCP"}]}]}
    await client.create(ENDPOINTS, mine)
    await client.create(SERVICES, service("web", {"app": "web"}))
    await client.create(REPLICA_SETS, replica_set(1))

    async def web_published() -> bool:
        return len((await published(client))[0]) == 1

    await eventually(web_published)  # the controller is running and has seen everything
    kept = await client.get(ENDPOINTS, "default", "external")
    assert kept["subsets"] == mine["subsets"]
    slices = (await client.list(SLICES, "default", label_selector=f"{SERVICE_NAME_LABEL}=external")).items
    assert slices == []


async def test_expired_events_are_swept_in_bounded_batches(cluster: LocalCluster) -> None:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    old, fresh = "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"
    for name, last in [*((f"old-{i}", old) for i in range(7)), ("new", fresh)]:
        await client.create(EVENTS, {"apiVersion": "v1", "kind": "Event",
                                     "metadata": {"name": name, "namespace": "default"},
                                     "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
                                     "reason": "Test", "message": "m", "type": "Normal",
                                     "firstTimestamp": old, "lastTimestamp": last})
    sweeper = EventTTLController(settings=EventTTLSettings(ttl=3600, interval=30, batch=3, again_after=0.05))
    task = asyncio.create_task(sweeper.run(client, InformerFactory(client)))
    try:
        async def swept() -> bool:
            names = {e["metadata"]["name"] for e in (await client.list(EVENTS, "default")).items}
            return not any(n.startswith("old-") for n in names) and "new" in names

        await eventually(swept)
        assert sweeper.deleted == 7
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_idle_event_sweep_adds_no_raft_entry(cluster: LocalCluster) -> None:
    """A sweep with nothing to expire reads the local replica: no barrier, so no journal write (issue #6:
    a linearizable list committed a no-op on every master once a minute on an idle cluster)."""
    client = InProcessClient(cluster.running()[0].store, manager="test")
    raft = cluster.running()[0].store.raft
    await client.list(EVENTS)  # any barrier of the set-up is behind us
    before = raft.status().last_log_index
    sweeper = EventTTLController(settings=EventTTLSettings(ttl=3600, interval=0.01))
    task = asyncio.create_task(sweeper.run(client, InformerFactory(client)))
    try:
        await asyncio.sleep(1.0)  # ~100 sweeps at most, under load a few
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Other masters' loops (a lease renewal) may add an entry or two; a barrier per sweep adds dozens.
    assert raft.status().last_log_index - before <= 3
