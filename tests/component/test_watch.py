"""Watch semantics on a real cluster: replay, live, 410, bookmarks, timeouts, leader change mid-watch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from edgek8s.client.rest import RestClient
from edgek8s.config import StoreConfig
from edgek8s.store.watch import Watcher
from tests.support.cluster import LocalCluster, started_cluster
from tests.support.objects import make_pod

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


class Stream:
    """A raw watch connection; collects events as they arrive."""

    def __init__(self, url: str, path: str, **params: str) -> None:
        self.url, self.path, self.params = url, path, {"watch": "1", **params}
        self.events: list[dict[str, Any]] = []
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        self._response = await self._session.get(self.url + self.path, params=self.params)
        assert self._response.status == 200
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for line in self._response.content:
                if line.strip():
                    self.events.append(json.loads(line))
                    self._changed.set()
        except aiohttp.ClientError:
            pass
        finally:
            self.ended.set()

    async def wait_count(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events

    async def wait_for_type(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if event["type"] == kind:
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def __aexit__(self, *exc: object) -> None:
        self._response.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._session.close()


def names_and_types(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"]


async def test_watch_from_rv_replays_then_streams_without_gaps_or_duplicates(
    cluster: LocalCluster, clients: list[RestClient]
) -> None:
    start = await clients[0].get(CM)
    rv = start["metadata"]["resourceVersion"]
    for i in range(5):
        await clients[i % 3].create(CM, configmap(f"before-{i}"))
    async with Stream(cluster.urls[2], CM, resourceVersion=rv) as stream:
        await stream.wait_count(5)
        for i in range(5):
            await clients[i % 3].create(CM, configmap(f"after-{i}"))
        await clients[1].delete(f"{CM}/before-0")
        events = await stream.wait_count(11)
    assert names_and_types(events) == (
        [("ADDED", f"before-{i}") for i in range(5)]
        + [("ADDED", f"after-{i}") for i in range(5)]
        + [("DELETED", "before-0")]
    )
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)


async def test_watch_rv_zero_starts_with_synthetic_added(cluster: LocalCluster, clients: list[RestClient]) -> None:
    await clients[0].create(CM, configmap("existing"))
    async with Stream(cluster.urls[1], CM, resourceVersion="0") as stream:
        first = await stream.wait_count(1)
        assert names_and_types(first) == [("ADDED", "existing")]
        await clients[2].create(CM, configmap("new"))
        events = await stream.wait_count(2)
    assert names_and_types(events)[1] == ("ADDED", "new")


async def test_single_object_watch_by_field_selector(cluster: LocalCluster, clients: list[RestClient]) -> None:
    await clients[0].create(CM, configmap("one"))
    await clients[0].create(CM, configmap("two"))
    async with Stream(cluster.urls[0], CM, resourceVersion="0", fieldSelector="metadata.name=two") as stream:
        await stream.wait_count(1)
        obj = await clients[1].get(f"{CM}/two")
        await clients[1].replace(f"{CM}/two", dict(obj, data={"k": "v"}))
        await clients[2].replace(f"{CM}/one", dict(await clients[2].get(f"{CM}/one"), data={"k": "v"}))
        events = await stream.wait_count(2)
        await asyncio.sleep(0.2)
    assert names_and_types(stream.events) == [("ADDED", "two"), ("MODIFIED", "two")]
    assert events[1]["object"]["data"] == {"k": "v"}


async def test_timeout_seconds_ends_the_stream(cluster: LocalCluster) -> None:
    async with Stream(cluster.urls[0], CM, timeoutSeconds="1") as stream:
        async with asyncio.timeout(5):
            await stream.ended.wait()


async def test_a_stream_timing_out_ends_after_every_event_of_the_last_resource_version(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events of one Raft entry (a batch of bindings) share its resourceVersion, and a client watches
    again after the last resourceVersion it saw. A stream whose timeout runs out while it writes them (a
    slow client: injected) must end after the last of them, or the others are lost to that client."""
    # One event per write, so the entry's events span writes.
    monkeypatch.setattr(Watcher, "drain_ready", lambda _self, _limit: [])
    leader = cluster.masters[await cluster.wait_stable_leader()]
    assert leader is not None
    async with RestClient(cluster.urls[0]) as client:
        for name in ("b1", "b2"):
            await client.create(PODS, make_pod(name, scheduler_name="nobody"))
        rv = (await client.get(PODS))["metadata"]["resourceVersion"]
    write = web.StreamResponse.write

    async def slow_client(self: web.StreamResponse, data: bytes) -> None:
        if b'"MODIFIED"' in data and b'"b1"' in data:
            await asyncio.sleep(1.5)  # past the stream's timeout
        await write(self, data)
    monkeypatch.setattr(web.StreamResponse, "write", slow_client)
    async with Stream(cluster.urls[0], PODS, resourceVersion=rv, timeoutSeconds="1") as stream:
        await leader.store.bind_many([("default", "b1", "n1", None), ("default", "b2", "n1", None)])
        await asyncio.wait_for(stream.ended.wait(), 10)
    assert names_and_types(stream.events) == [("MODIFIED", "b1"), ("MODIFIED", "b2")]


async def test_bookmarks_carry_progress(tmp_path: Path) -> None:
    cluster = LocalCluster.build(tmp_path, api={"bookmark_interval": 0.2})
    await cluster.start()
    try:
        await cluster.wait_ready()
        async with RestClient(cluster.urls[0]) as client:
            created = await client.create(CM, configmap("b"))
        await _expect_bookmark(cluster, created)
    finally:
        await cluster.stop()


async def _expect_bookmark(cluster: LocalCluster, created: dict[str, Any]) -> None:
    async with Stream(cluster.urls[1], CM, resourceVersion=created["metadata"]["resourceVersion"],
                      allowWatchBookmarks="true") as stream:
        bookmark = await stream.wait_for_type("BOOKMARK")
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    assert bookmark["object"]["kind"] == "ConfigMap"


@pytest.fixture
async def small_history_cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    # No leader loops: the only watchers of the hub are the tests' own (informers would add theirs).
    async with started_cluster(tmp_path, store=StoreConfig(watch_history=20, watcher_queue=50), loops=[]) as local:
        yield local


async def test_too_old_resource_version_gets_410_expired(small_history_cluster: LocalCluster) -> None:
    async with RestClient(small_history_cluster.urls[0]) as client:
        first = await client.create(CM, configmap("old"))
        for i in range(40):
            await client.create(CM, configmap(f"filler-{i}"))
    async with Stream(small_history_cluster.urls[1], CM, resourceVersion=first["metadata"]["resourceVersion"]) as s:
        events = await s.wait_count(1)
        async with asyncio.timeout(5):
            await s.ended.wait()
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")


async def test_slow_watcher_is_cut_off_with_an_error(small_history_cluster: LocalCluster) -> None:
    master = small_history_cluster.running()[0]
    from edgek8s.model.resources import resource_id

    watcher = master.store.hub.watch(resource_id("", "configmaps"), None, master.store.hub.progress_rv, lambda o: True)
    async with RestClient(small_history_cluster.urls[0]) as client:
        await asyncio.gather(*(client.create(CM, configmap(f"flood-{i}")) for i in range(80)))
    assert watcher.closed
    assert watcher.error is not None and watcher.error.code == 410
    assert "fell more than 50 events behind" in watcher.error.message
    assert master.store.hub.watcher_count() == 0


async def test_watch_survives_leader_change(cluster: LocalCluster, clients: list[RestClient]) -> None:
    leader = await cluster.wait_leader()
    follower = next(i for i in range(3) if i != leader)
    other = next(i for i in range(3) if i not in (leader, follower))
    start = await clients[follower].get(CM)
    async with Stream(cluster.urls[follower], CM, resourceVersion=start["metadata"]["resourceVersion"]) as stream:
        for i in range(3):
            await clients[other].create(CM, configmap(f"pre-{i}"))
        await stream.wait_count(3)
        await cluster.stop(leader)
        for i in range(3):
            await clients[other].create(CM, configmap(f"post-{i}"))
        events = await stream.wait_count(6, timeout=15)
    assert names_and_types(events) == [("ADDED", f"pre-{i}") for i in range(3)] + [
        ("ADDED", f"post-{i}") for i in range(3)
    ]
