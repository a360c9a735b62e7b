"""The leader gate, the in-process client and informers on a real 3-master cluster (Raft + API on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.informer import Handlers, Informer, InformerFactory, index_by_node_name
from edgek8s.client.interface import ClusterClient
from edgek8s.client.rest import RestClient, RestClusterClient
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.server.leadership import LEASE_NAME, LEASE_NAMESPACE, LEASES
from tests.support.cluster import LocalCluster, started_cluster, wait_for

CONFIGMAPS = by_id(resource_id("", "configmaps"))
PODS = by_id(resource_id("", "pods"))

pytestmark = pytest.mark.timeout(60)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": data}


def pod(name: str) -> dict[str, Any]:
    # Another scheduler's pod: the cluster's own scheduler leaves it alone, only the test writes it.
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedulerName": "test-scheduler", "containers": [{"name": "c", "image": "busybox"}]}}


async def lease_holder(cluster: LocalCluster) -> str | None:
    master = cluster.running()[0]
    obj, _ = master.store.state.get(LEASES.id, LEASE_NAMESPACE, LEASE_NAME)
    return None if obj is None else str(obj.decode()["spec"]["holderIdentity"])


async def test_the_leader_claims_and_holds_the_lease_and_a_successor_fences_it(cluster: LocalCluster) -> None:
    leader = await cluster.wait_stable_leader()
    master = cluster.masters[leader]
    assert master is not None
    await wait_for(lambda: master.gate.epoch is not None, 10)
    epoch = master.gate.epoch
    assert epoch == master.store.raft.term == master.store.state.leader_epoch
    holder: list[str | None] = [None]

    async def poll() -> None:
        holder[0] = await lease_holder(cluster)

    for _ in range(100):
        await poll()
        if holder[0] == master.config.name:
            break
        await asyncio.sleep(0.05)
    assert holder[0] == master.config.name
    followers = [m for i, m in enumerate(cluster.masters) if m is not None and i != leader]
    assert all(m.gate.epoch is None for m in followers)

    stale = InProcessClient(master.store, manager="test", fence=epoch)
    await stale.create(CONFIGMAPS, configmap("before"))
    await cluster.stop(leader)
    new_leader = await cluster.wait_stable_leader()
    successor = cluster.masters[new_leader]
    assert successor is not None
    await wait_for(lambda: successor.gate.epoch is not None, 10)
    assert successor.gate.epoch is not None and successor.gate.epoch > (epoch or 0)
    # A client of the old epoch is fenced on any master, and changes nothing.
    old = InProcessClient(successor.store, manager="test", fence=epoch)
    with pytest.raises(errors.Fenced, match="fenced: stale leader epoch"):
        await old.create(CONFIGMAPS, configmap("after"))
    with pytest.raises(errors.NotFound):
        await old.get(CONFIGMAPS, "default", "after")
    await wait_for(lambda: successor.store.state.get(LEASES.id, LEASE_NAMESPACE, LEASE_NAME)[0] is not None
                   and successor.store.state.get(LEASES.id, LEASE_NAMESPACE, LEASE_NAME)[0].decode()  # type: ignore[union-attr]
                   ["spec"]["holderIdentity"] == successor.config.name, 10)
    lease = (await old.get(LEASES, LEASE_NAMESPACE, LEASE_NAME))["spec"]
    assert lease["leaseTransitions"] >= 1 and lease["leaseDurationSeconds"] == 120


async def _exercise_client(client: ClusterClient) -> None:
    created = await client.create(CONFIGMAPS, configmap("c1", a="1"))
    assert created["metadata"]["uid"] and created["metadata"]["managedFields"]
    got = await client.get(CONFIGMAPS, "default", "c1")
    got["data"]["a"] = "2"
    updated = await client.update(CONFIGMAPS, got)
    with pytest.raises(errors.Conflict):
        await client.update(CONFIGMAPS, got)  # stale resourceVersion
    patched = await client.patch(CONFIGMAPS, "default", "c1", {"data": {"b": "3"}})
    assert patched["data"] == {"a": "2", "b": "3"}
    listed = await client.list(CONFIGMAPS, "default")
    assert [o["metadata"]["name"] for o in listed.items] == ["c1"] and listed.resource_version >= int(
        patched["metadata"]["resourceVersion"])
    # The serving replica as it is (no barrier): after the linearizable list above, it has c1 too.
    local = await client.list(CONFIGMAPS, "default", consistent=False)
    assert [o["metadata"]["name"] for o in local.items] == ["c1"] and local.resource_version >= int(
        patched["metadata"]["resourceVersion"])
    events = []
    stream = client.watch(CONFIGMAPS, "default", resource_version=int(updated["metadata"]["resourceVersion"]) - 1)
    async for event in stream:
        events.append((event.type, event.obj["metadata"]["resourceVersion"]))
        if len(events) == 2:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert events == [("MODIFIED", updated["metadata"]["resourceVersion"]),
                      ("MODIFIED", patched["metadata"]["resourceVersion"])]
    p = await client.create(PODS, pod("p1"))
    await client.bind("default", "p1", node="n1", uid=p["metadata"]["uid"])
    with pytest.raises(errors.Conflict, match="already assigned"):
        await client.bind("default", "p1", node="n2")
    assert (await client.get(PODS, "default", "p1"))["spec"]["nodeName"] == "n1"
    with pytest.raises(errors.Conflict):
        await client.delete(CONFIGMAPS, "default", "c1", options=_options(uid="wrong"))
    assert await client.delete(CONFIGMAPS, "default", "c1") is None
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "default", "c1")
    with pytest.raises(errors.Invalid):
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": "bad", "namespace": "default"}, "spec": {}})


def _options(**kwargs: Any) -> Any:
    from edgek8s.client.interface import DeleteOptions

    return DeleteOptions(**kwargs)


async def test_in_process_client_behaves_like_http(cluster: LocalCluster) -> None:
    master = cluster.running()[1]
    await _exercise_client(InProcessClient(master.store, manager="test"))


async def test_rest_cluster_client_behaves_the_same(cluster: LocalCluster) -> None:
    async with RestClient(cluster.urls[2]) as rest:
        await _exercise_client(RestClusterClient(rest))


async def test_informer_caches_indexes_and_relists(cluster: LocalCluster) -> None:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    await client.create(PODS, pod("a"))
    factory = InformerFactory(client, resync=0.2)
    informer: Informer = factory.informer(PODS, indexers={"node": index_by_node_name})
    seen: list[tuple[str, str]] = []
    resyncs = [0]

    def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        if old is new:
            resyncs[0] += 1
        else:
            seen.append(("update", new["metadata"]["name"]))

    informer.add_handlers(Handlers(on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
                                   on_update=on_update,
                                   on_delete=lambda o: seen.append(("delete", o["metadata"]["name"]))))
    task = asyncio.create_task(factory.run())
    try:
        await asyncio.wait_for(factory.wait_synced(), 5)
        assert informer.has_synced and [o["metadata"]["name"] for o in informer.list("default")] == ["a"]
        await client.create(PODS, pod("b"))
        await client.bind("default", "b", node="n1")
        await client.delete(PODS, "default", "a")
        await wait_for(lambda: ("delete", "a") in seen, 5)
        assert seen == [("add", "a"), ("add", "b"), ("update", "b"), ("delete", "a")]
        assert [o["metadata"]["name"] for o in informer.by_index("node", "n1")] == ["b"]
        assert informer.by_index("node", "") == []
        await wait_for(lambda: resyncs[0] >= 1, 5)
        # A late handler gets the cache replayed as adds.
        late: list[str] = []
        informer.add_handlers(Handlers(on_add=lambda o: late.append(o["metadata"]["name"])))
        assert late == ["b"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class Flaky:
    """A leader loop that crashes once, then is fenced once, then runs quietly; it records its runs."""

    name = "flaky"

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    async def run(self, client: Any, informers: InformerFactory) -> None:
        self.runs.append(("run", str(getattr(client, "fence", None))))
        if len(self.runs) == 1:
            raise ValueError("a bug in one loop")
        if len(self.runs) == 2:
            raise errors.Fenced("fenced: stale leader epoch (injected)")
        await asyncio.Event().wait()


async def test_a_crashing_loop_restarts_alone_and_a_fenced_term_starts_over(tmp_path: Path) -> None:
    flaky = Flaky()
    async with started_cluster(tmp_path, loops=[flaky]) as cluster:
        leader = cluster.masters[await cluster.wait_stable_leader()]
        assert leader is not None
        await wait_for(lambda: len(flaky.runs) >= 3, 15)
        # Crash: restarted within the same term; Fenced: the term ended and a new one was claimed.
        epoch = leader.store.state.leader_epoch
        assert flaky.runs == [("run", str(epoch))] * 3
        await wait_for(lambda: leader.gate.epoch == epoch, 5)
        assert [t["epoch"] for t in leader.gate.status()["terms"]] == [epoch, epoch]
