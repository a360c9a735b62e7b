"""A follower that crashes and restarts, or stalls, does not depose a healthy leader.

Upstream PySyncObj let a node whose election timer ran out bump the term and force a new election even
though the leader was fine (edgek8s adds pre-vote against that). Two disturbances, 10 times each,
alternating between the two followers, under light write load to the leader, while every master's status
is polled every 20 ms: a follower killed with SIGKILL and restarted on the same data dir; and a follower
frozen (SIGSTOP) for longer than the election timeout and then resumed. The leader must stay the leader,
its term must never change, and no follower may see another leader or term, during the disturbances and
for 2 s after the last one.

The restart case is what was asked for; on loopback the restarted follower hears from the leader before
its election timer runs out, so it passes even without pre-vote. The pause case is the one that needs
pre-vote: it fails with ``EdgeSyncObj._edge_maybe_pre_vote`` disabled.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.processes import (
    ClusterError,
    ProcessCluster,
    WriteHistory,
    configmaps_of,
    create_configmap,
    export_objects,
)

pytestmark = pytest.mark.timeout(120)

RESTARTS = 10
SETTLE_AFTER_LAST = 3.0  # > election timeout max + pre-vote round: a late deposition would show up
# Longer than the election timeout (0.6-1.2 s), shorter than the connection timeout (2 s): the paused
# follower wakes up with an expired election timer and its connections still up.
PAUSE = 1.5


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    local = ProcessCluster(tmp_path)
    try:
        yield local
    finally:
        local.stop_all()


async def run_disturbances(
    cluster: ProcessCluster, disturb: Callable[[aiohttp.ClientSession, int, int], Awaitable[None]], label: str
) -> None:
    """Start the cluster; ``disturb(session, follower, n)`` one follower at a time, RESTARTS times, alternating
    between the two followers, while every master's status is polled every 20 ms and 2 clients write to it.
    Afterwards the leader must have been the leader at the same term in every poll, every master must agree,
    and every acknowledged write must be present."""
    history = WriteHistory()
    # (time, master, (isLeader, leader, term)) or (time, master, error)
    observations: list[tuple[float, int, Any]] = []
    stop = asyncio.Event()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
        cluster.start_all()
        await cluster.wait_ready(session, timeout=30.0)
        leader, status = await cluster.find_leader(session)
        term = status["term"]
        leader_address = cluster.masters[leader].raft_address
        followers = [i for i in range(len(cluster.masters)) if i != leader]
        # Everyone agrees before we start, so a change later is a change, not a late first election.
        for i in followers:
            assert (await cluster.status(session, i))["leader"] == leader_address

        async def poll(index: int) -> None:
            while not stop.is_set():
                try:
                    s = await cluster.status(session, index, timeout=1.0)
                    observations.append((time.monotonic(), index, (s["isLeader"], s["leader"], s["term"])))
                except (aiohttp.ClientError, TimeoutError, OSError, ClusterError, ValueError) as exc:
                    observations.append((time.monotonic(), index, f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(0.02)

        async def writer(k: int) -> None:
            n = 0
            while not stop.is_set():
                await create_configmap(session, cluster.masters[leader].url, f"nd-w{k}-{n:05d}", history)
                n += 1
                await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(poll(i), name=f"poll-m{i + 1}") for i in range(len(cluster.masters))]
        tasks += [asyncio.create_task(writer(k), name=f"writer-{k}") for k in range(2)]
        try:
            for n in range(RESTARTS):
                follower = followers[n % len(followers)]
                began = time.monotonic()
                await disturb(session, follower, n)
                seen = await cluster.status(session, follower)
                print(
                    f"{label} {n + 1}: {cluster.masters[follower].name} back in {time.monotonic() - began:.2f} s, "
                    f"sees leader {seen['leader']} term {seen['term']}"
                )
                assert (seen["leader"], seen["term"]) == (leader_address, term), (
                    f"{label} {n + 1}: {cluster.masters[follower].name} came back to a new leader or term: "
                    f"{seen['leader']} term {seen['term']} (was {leader_address} term {term})\n{cluster.describe()}"
                )
            await asyncio.sleep(SETTLE_AFTER_LAST)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.result()

        expected = (True, leader_address, term)
        on_leader = [(t, o) for t, i, o in observations if i == leader]
        changes = [(t, o) for t, o in on_leader if o != expected]
        assert len(on_leader) > 100, f"too few status polls of the leader: {len(on_leader)}"
        assert not changes, (
            f"the leader's status changed or failed {len(changes)} times out of {len(on_leader)} polls, "
            f"first: {changes[:5]}\n{cluster.describe()}"
        )
        # A follower may be down or not know the leader yet while it restarts, but it never sees another
        # leader or another term.
        elsewhere = [
            (t, cluster.masters[i].name, o)
            for t, i, o in observations
            if i != leader and not isinstance(o, str) and (o[0] or o[1] not in (None, leader_address) or o[2] != term)
        ]
        assert not elsewhere, f"a follower saw another leader or term: {elsewhere[:5]}\n{cluster.describe()}"
        for i in range(len(cluster.masters)):
            final = await cluster.status(session, i)
            assert (final["leader"], final["term"]) == (leader_address, term), (
                f"{cluster.masters[i].name} after the polls: leader {final['leader']} term {final['term']}; "
                f"last polls (s before the end, master, status): "
                f"{[(round(t - time.monotonic(), 3), cluster.masters[j].name, o) for t, j, o in observations[-30:]]}"
                f"\n{cluster.describe()}"
            )
        # The light load was served throughout, and nothing acknowledged was lost.
        assert len(history.acked) > 50, f"only {len(history.acked)} writes acknowledged meanwhile"
        assert not history.unknown, f"writes to a healthy leader failed: {list(history.unknown.items())[:5]}"
        _header, records = await export_objects(session, cluster.masters[leader].url)
        stored = configmaps_of(records)
        assert all(stored.get(n) == v for n, v in history.acked.items()), "an acknowledged create is missing"
        errors = cluster.log_errors()
        assert not errors, f"internal errors in the masters' logs: {errors[:10]}"
    print(f"{len(observations)} status polls, leader {leader_address} kept term {term}; {len(history.acked)} writes")


async def test_restarted_follower_does_not_depose_the_leader(cluster: ProcessCluster) -> None:
    rng = random.Random()

    async def restart(session: aiohttp.ClientSession, follower: int, n: int) -> None:
        cluster.kill(follower)
        await asyncio.sleep(rng.uniform(0.0, 0.5))  # down for a while: it misses entries
        cluster.start(follower)
        await cluster.wait_ready(session, [follower], timeout=30.0)

    await run_disturbances(cluster, restart, "restart")


async def test_paused_follower_does_not_depose_the_leader(cluster: ProcessCluster) -> None:
    # A follower frozen for longer than the election timeout (a long GC pause, a stalled VM, a host
    # suspended) wakes up with its election timer expired and its connections still up; its first tick
    # comes before it reads the leader's buffered heartbeats. Without pre-vote it would start an election
    # at term + 1 and depose the leader (this test fails with ``_edge_maybe_pre_vote`` disabled).
    async def pause(session: aiohttp.ClientSession, follower: int, n: int) -> None:
        cluster.freeze([follower])
        try:
            await asyncio.sleep(PAUSE)
        finally:
            cluster.thaw([follower])
        await cluster.wait_ready(session, [follower], timeout=30.0)
        await asyncio.sleep(0.3)

    await run_disturbances(cluster, pause, "pause")
