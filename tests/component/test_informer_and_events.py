"""Informers that fall behind relist and converge; Events aggregate repeats (real 3-master cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import Handlers, InformerFactory, index_by_owner_uid
from edgek8s.config import StoreConfig
from edgek8s.controllers.garbagecollector import in_graph, may_be_in_graph
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import LocalCluster, eventually, started_cluster

CONFIGMAPS = by_id(resource_id("", "configmaps"))
EVENTS = by_id(resource_id("", "events"))

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def small_queues(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    # Watchers cut off past 20 queued events, history of 30: a burst forces an informer to relist.
    async with started_cluster(tmp_path, store=StoreConfig(watch_history=30, watcher_queue=20), loops=[]) as cluster:
        yield cluster


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


class CountingClient(InProcessClient):
    lists = 0

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        self.lists += 1
        return await super().list(*args, **kwargs)


async def test_an_informer_that_falls_behind_relists_and_converges(small_queues: LocalCluster) -> None:
    store = small_queues.running()[0].store
    client = InProcessClient(store, manager="test")
    watching = CountingClient(store, manager="test")  # the informer's own client: its lists are counted
    for i in range(5):
        await client.create(CONFIGMAPS, configmap(f"old-{i}"))
    factory = InformerFactory(watching)
    informer = factory.informer(CONFIGMAPS)
    deleted: list[str] = []
    informer.add_handlers(Handlers(on_delete=lambda o: deleted.append(o["metadata"]["name"])))
    task = asyncio.create_task(factory.run())
    try:
        await asyncio.wait_for(factory.wait_synced(), 10)
        # A burst bigger than the watcher's queue, applied before the informer's task runs again.
        await asyncio.gather(*(client.create(CONFIGMAPS, configmap(f"burst-{i}")) for i in range(120)),
                             *(client.delete(CONFIGMAPS, "default", f"old-{i}") for i in range(5)))

        async def converged() -> bool:
            listed = await client.list(CONFIGMAPS, "default")
            cached = {(o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in informer.list("default")}
            return cached == {(o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in listed.items}

        await eventually(converged, 20)
        assert watching.lists >= 2  # the first list, and at least one after its watch was cut off
        assert sorted(deleted) == [f"old-{i}" for i in range(5)]  # a relist reports what went meanwhile
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_metadata_informer_keeps_compact_metadata_and_serves_it_decoded(cluster: LocalCluster) -> None:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    owner = await client.create(CONFIGMAPS, configmap("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dependent = configmap("dependent")
    dependent["metadata"].update(ownerReferences=[ref], annotations={"note": "x" * 500})
    await client.create(CONFIGMAPS, dependent)
    factory = InformerFactory(client)
    informer = factory.metadata_informer(CONFIGMAPS, indexers={"owner": index_by_owner_uid})
    added: list[dict[str, Any]] = []
    informer.add_handlers(Handlers(on_add=added.append))
    task = asyncio.create_task(factory.run())
    try:
        await asyncio.wait_for(factory.wait_synced(), 10)
        await client.delete(CONFIGMAPS, "default", "owner")

        async def owner_gone() -> bool:
            return informer.get("default", "owner") is None

        await eventually(owner_gone, 10)
        cached = informer.get("default", "dependent")
        assert cached is not None and cached["metadata"]["ownerReferences"] == [ref]
        assert cached["metadata"]["uid"] and cached["metadata"]["resourceVersion"]
        # The graph needs none of these; managedFields and annotations were most of the memory.
        assert not {"managedFields", "annotations", "creationTimestamp"} & set(cached["metadata"])
        assert "data" not in cached and cached["kind"] == "ConfigMap"
        assert [o["metadata"]["name"] for o in informer.by_index("owner", ref["uid"])] == ["dependent"]
        assert sorted(o["metadata"]["name"] for o in added) == ["dependent", "owner"]
        assert [o["metadata"]["name"] for o in informer.list("default")] == ["dependent"]
        assert all(isinstance(value, bytes) for value in informer._cache.values())  # what it holds
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_filtered_informer_caches_only_what_it_keeps_and_reports_every_deletion(
    cluster: LocalCluster,
) -> None:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    plain = await client.create(CONFIGMAPS, configmap("plain"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "plain", "uid": plain["metadata"]["uid"]}
    owned = configmap("owned")
    owned["metadata"]["ownerReferences"] = [ref]
    await client.create(CONFIGMAPS, owned)
    factory = InformerFactory(client)
    informer = factory.metadata_informer(CONFIGMAPS, keep=in_graph)
    seen: list[tuple[str, str]] = []
    informer.add_handlers(Handlers(
        on_add=lambda o: seen.append(("add", o["metadata"]["name"])),
        on_update=lambda old, new: seen.append(("update", new["metadata"]["name"])),
        on_delete=lambda o: seen.append(("delete", o["metadata"]["name"])),
    ))
    task = asyncio.create_task(factory.run())
    try:
        await asyncio.wait_for(factory.wait_synced(), 10)
        assert informer.keys() == ["default/owned"] and informer.get("default", "plain") is None
        await client.patch(CONFIGMAPS, "default", "owned", {"metadata": {"ownerReferences": None}})
        await client.delete(CONFIGMAPS, "default", "plain")

        async def both_seen() -> bool:
            return ("delete", "plain") in seen and ("update", "owned") in seen

        await eventually(both_seen, 10)
        assert len(informer) == 0  # no longer owned: dropped, with on_update(old, new) to say so
        assert seen == [("add", "owned"), ("update", "owned"), ("delete", "plain")]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class EventCountingClient(InProcessClient):
    events: dict[str, int]

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        self.events = getattr(self, "events", {})
        async for event in super().watch(*args, **kwargs):
            self.events[event.type] = self.events.get(event.type, 0) + 1
            yield event


async def test_a_prefiltered_informer_makes_the_same_handler_calls_without_decoding_what_it_ignores(
    cluster: LocalCluster,
) -> None:
    store = cluster.running()[0].store
    client = InProcessClient(store, manager="test")
    plain_client, prefiltered_client = EventCountingClient(store, manager="test"), EventCountingClient(
        store, manager="test")
    calls: dict[str, list[tuple[str, str, str]]] = {"plain": [], "prefiltered": []}
    informers = {}
    for label, watching, prefilter in (("plain", plain_client, None), ("prefiltered", prefiltered_client,
                                                                       may_be_in_graph)):
        factory = InformerFactory(watching)
        informers[label] = (factory, factory.metadata_informer(CONFIGMAPS, keep=in_graph, prefilter=prefilter))
        record = calls[label]
        informers[label][1].add_handlers(Handlers(
            on_add=lambda o, r=record: r.append(("add", o["metadata"]["name"], o["metadata"]["resourceVersion"])),
            on_update=lambda old, new, r=record: r.append(("update", new["metadata"]["name"],
                                                           new["metadata"]["resourceVersion"])),
            on_delete=lambda o, r=record: r.append(("delete", o["metadata"]["name"],
                                                    o["metadata"]["resourceVersion"])),
        ))
    tasks = [asyncio.create_task(factory.run()) for factory, _ in informers.values()]
    try:
        for factory, _ in informers.values():
            await asyncio.wait_for(factory.wait_synced(), 10)
        owner = await client.create(CONFIGMAPS, configmap("owner"))
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
        for i in range(20):
            await client.create(CONFIGMAPS, configmap(f"plain-{i}"))
        await client.patch(CONFIGMAPS, "default", "plain-0", {"data": {"k": "v"}})  # ignored before and after
        await client.patch(CONFIGMAPS, "default", "plain-1", {"metadata": {"finalizers": ["example.com/f"]}})
        await client.patch(CONFIGMAPS, "default", "plain-1", {"metadata": {"finalizers": None}})
        owned = configmap("owned")
        owned["metadata"]["ownerReferences"] = [ref]
        await client.create(CONFIGMAPS, owned)
        await client.patch(CONFIGMAPS, "default", "owned", {"metadata": {"ownerReferences": None}})
        await client.patch(CONFIGMAPS, "default", "owned", {"data": {"k": "v"}})
        await client.delete(CONFIGMAPS, "default", "plain-2")
        for i in range(3, 10):
            await client.patch(CONFIGMAPS, "default", f"plain-{i}", {"data": {"k": "v"}})
        last = await client.create(CONFIGMAPS, {**configmap("last"), "metadata": {
            "name": "last", "namespace": "default", "finalizers": ["example.com/f"]}})
        last_rv = int(last["metadata"]["resourceVersion"])

        async def both_at_last() -> bool:  # "last" is delivered to both: no event is left out after it
            return all(informer.resource_version >= last_rv for _, informer in informers.values())

        await eventually(both_at_last, 10)
        assert calls["prefiltered"] == calls["plain"]
        assert [c[:2] for c in calls["plain"]] == [
            ("add", "plain-1"), ("update", "plain-1"), ("add", "owned"), ("update", "owned"),
            ("delete", "plain-2"), ("add", "last")]
        assert informers["prefiltered"][1].keys() == informers["plain"][1].keys() == ["default/last"]
        # The prefiltered watch decoded only the events the informer uses (and the deletion).
        assert prefiltered_client.events == {"ADDED": 2, "MODIFIED": 3, "DELETED": 1}
        assert plain_client.events == {"ADDED": 23, "MODIFIED": 12, "DELETED": 1}
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_repeated_events_are_aggregated(cluster: LocalCluster) -> None:
    client = InProcessClient(cluster.running()[0].store, manager="test")
    target = await client.create(CONFIGMAPS, configmap("watched"))
    recorder = EventRecorder(client, component="test-controller", host="m0")
    task = asyncio.create_task(recorder.run())
    try:
        for _ in range(3):
            recorder.warning(target, "Failing", "the same failure")
        recorder.normal(target, "Fine", "something else")

        async def recorded() -> list[dict[str, Any]]:
            events = (await client.list(EVENTS, "default", field_selector="involvedObject.name=watched")).items
            return events if sum(e.get("count", 0) for e in events) == 4 else []

        events = {e["reason"]: e for e in await eventually(recorded, 10)}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert set(events) == {"Failing", "Fine"}
    failing = events["Failing"]
    assert (failing["count"], failing["type"], failing["message"]) == (3, "Warning", "the same failure")
    assert failing["source"] == {"component": "test-controller", "host": "m0"}
    assert failing["involvedObject"]["uid"] == target["metadata"]["uid"]
    assert failing["involvedObject"]["kind"] == "ConfigMap" and failing["firstTimestamp"] <= failing["lastTimestamp"]
    assert events["Fine"]["count"] == 1 and events["Fine"]["type"] == "Normal"
