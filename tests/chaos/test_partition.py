"""A real network partition of the controller leader, on simulated hosts: it stops before its successor starts.

Three ``edgek8s server`` processes, each in a simulated host of its own (tests/support/simhosts.py:
network namespaces on one bridge); the test's clients run in the controller namespace. Hollow nodes
write pod status; a 50-replica Deployment rolls to a new image, and a moment into the rollout the
leader is partitioned from the two other masters, either

- ``raft``: only its Raft traffic is cut (a bridge rule in the switch; its API still answers, so its
  status can be watched while it is cut off), or
- ``all``: everything in and out of its host is dropped (an nft table in the host; TCP stays open).

The checks, from the recorded history:
- the old leader's own write log: its last write *attempt* (a proposal by any of its loops) happened
  before its successor's first attempt, and every loop of its term had stopped before the successor's
  term started (``time.monotonic()`` is one clock for every process of the machine);
- the committed Raft log of every master (read after the end): identical on all three, and no write
  fenced at a stale epoch in it, nor one fenced at epoch E appended in another term than E;
- the old leader steps down (Raft role, then its loops cancelled) within ``STEP_DOWN_BOUND`` of the
  cut, and before the successor is elected;
- after healing, it rejoins as a follower of the successor's term and holds the same objects.
Printed: the time from the cut to the old leader's loops stopping, and to the successor's first write.

A partial partition (the leader cut from one follower only) must change nothing: same term, same
controller epoch, writes acknowledged throughout, all of them on the cut follower after healing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.support.processes import (
    HOST_RAFT_PORT,
    ProcessCluster,
    WriteHistory,
    check_acknowledged_creates,
    create_configmap,
    export_objects,
)
from tests.support.raft_history import committed_commands, fencing_violations
from tests.support.rollout_driver import first_write_after, rolled_out_beside_leader, wait_new_claim
from tests.support.simhosts import Host, SimNetwork, needs_simhosts

pytestmark = [pytest.mark.timeout(300), needs_simhosts()]

# Check-quorum 0.4 s after the last answer from a majority (at most ~0.1 s before the cut), plus one
# poll of the gate (50 ms) and the loops' cancellation; doubled for a loaded 2-core machine.
STEP_DOWN_BOUND = 1.2


async def watch_step_down(cluster: ProcessCluster, session: aiohttp.ClientSession, index: int,
                          since: float, timeout: float = 10.0) -> tuple[float, float]:
    """Seconds from ``since`` until the master's Raft role is no longer leader, and until its loops stopped."""
    raft_down = loops_down = None
    deadline = time.monotonic() + timeout
    while (raft_down is None or loops_down is None) and time.monotonic() < deadline:
        try:
            status = await cluster.status(session, index, timeout=1.0)
        except Exception:
            await asyncio.sleep(0.01)
            continue
        now = time.monotonic() - since
        if raft_down is None and not status["isLeader"]:
            raft_down = now
        if loops_down is None and status["controllers"]["epoch"] is None:
            loops_down = now
        await asyncio.sleep(0.01)
    assert raft_down is not None and loops_down is not None, f"still leading after {timeout} s"
    return raft_down, loops_down


async def wait_rejoined(cluster: ProcessCluster, session: aiohttp.ClientSession, index: int,
                        leader: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            status = await cluster.status(session, index, timeout=1.0)
        except Exception as exc:
            last = repr(exc)
        else:
            last = {k: status[k] for k in ("isLeader", "leader", "term", "appliedIndex")}
            if (not status["isLeader"] and status["leader"] == leader["raftAddress"]
                    and status["term"] == leader["term"] and status["appliedIndex"] >= leader["leaderClaimIndex"]):
                return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{cluster.masters[index].name} did not rejoin as follower: {last}\n{cluster.describe()}")


async def identical_exports(cluster: ProcessCluster, session: aiohttp.ClientSession, attempts: int = 10) -> int:
    """Every master exports the same objects (retried while a write lands between two exports; the
    exports' own barriers move the index, so objects are compared, resourceVersions included)."""
    differing: list[str] = []
    for _ in range(attempts):
        await cluster.wait_converged(session)
        exports = [await export_objects(session, m.url) for m in cluster.masters]
        keyed = [{(r["res"], r["ns"], r["name"]): r["object"] for r in records} for _, records in exports]
        differing = [f"{cluster.masters[i].name}: {key}" for i, k in enumerate(keyed[1:], 1)
                     for key in sorted(set(k) | set(keyed[0])) if k.get(key) != keyed[0].get(key)]
        if not differing:
            return len(keyed[0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"replicas differ after healing: {differing[:10]}")


def term_of(status: dict[str, Any], epoch: int) -> dict[str, Any]:
    (term,) = [t for t in status["controllers"]["terms"] if t["epoch"] == epoch]
    return term


@pytest.mark.parametrize("cut", ["raft", "all"])
async def test_a_partitioned_leader_stops_before_its_successor_starts(
    sim_cluster: tuple[SimNetwork, list[Host], ProcessCluster], cut: str
) -> None:
    network, hosts, cluster = sim_cluster
    with network.entered(network.controller):
        async with aiohttp.ClientSession() as session:
            async with rolled_out_beside_leader(cluster, session, ready_timeout=60.0) as setup:
                driver, old, others, old_epoch = setup.driver, setup.old, setup.others, setup.epoch
                await driver.set_image("web:1")
                await asyncio.sleep(0.2)  # mid-rollout, with the old leader's controllers busy
                cut_at = time.monotonic()
                if cut == "raft":
                    for other in others:
                        network.cut(hosts[old], hosts[other], port=HOST_RAFT_PORT)
                    raft_down, loops_down = await watch_step_down(cluster, session, old, cut_at)
                else:
                    network.isolate(hosts[old])
                claimed = await wait_new_claim(cluster, session, others, old_epoch)
                first_seen = await first_write_after(driver, claimed) - cut_at
                await asyncio.sleep(1.0)  # the successor rolls on; the old leader stays cut off
                network.heal()
                healed_at = time.monotonic()
                successor = next(i for i in others if cluster.masters[i].name == claimed["leaderHolder"])
                leader_status = await cluster.status(session, successor)
                await wait_rejoined(cluster, session, old, leader_status)
                rejoined = time.monotonic() - healed_at
                await driver.set_image("web:2")
                await driver.check_end_state("web:2")
            objects = await identical_exports(cluster, session)
            statuses = await cluster.wait_converged(session)
            old_status = await cluster.status(session, old)
            new_status = await cluster.status(session, successor)
    committed = min(s["commitIndex"] for s in statuses)
    cluster.stop_all()

    old_term, new_term = term_of(old_status, old_epoch), term_of(new_status, claimed["leaderEpoch"])
    stopped = old_term["endedAt"] - cut_at
    successor_started = new_term["startedAt"] - cut_at
    successor_first = new_term["firstAttemptAt"] - cut_at
    print(f"[{cut}] cut {cluster.masters[old].name} (epoch {old_epoch}); "
          + (f"its raft stepped down after {raft_down:.3f} s, status showed loops stopped after {loops_down:.3f} s; "
             if cut == "raft" else "")
          + f"its loops stopped {stopped:.3f} s after the cut ({old_term['attempts']} write attempts, last "
          f"{old_term['lastAttemptAt'] - cut_at:+.3f} s); successor {claimed['leaderHolder']} "
          f"(epoch {claimed['leaderEpoch']}) started {successor_started:.3f} s, first write attempt "
          f"{successor_first:.3f} s, first controller write seen {first_seen:.3f} s after the cut; "
          f"rejoined as follower {rejoined:.3f} s after healing")

    # The old leader stopped before its successor started, and made its last attempt before the first.
    assert old_term["writes"] > 0
    assert old_term["endedAt"] is not None and old_term["endedAt"] < new_term["startedAt"]
    assert old_term["lastAttemptAt"] < new_term["firstAttemptAt"]
    assert old_term["lastWriteIndex"] < claimed["leaderClaimIndex"]
    assert stopped <= STEP_DOWN_BOUND, f"loops stopped {stopped:.3f} s after the cut"
    if cut == "raft":
        assert raft_down <= STEP_DOWN_BOUND and loops_down <= STEP_DOWN_BOUND
    # After healing: a follower of the successor's term, loops not running, same objects everywhere.
    assert not old_status["isLeader"] and old_status["controllers"]["epoch"] is None
    assert old_status["term"] == new_status["term"]
    assert objects > 0
    # The committed log: the same on every master, nothing stale in it.
    logs = [committed_commands(m.data_dir, committed) for m in cluster.masters]
    assert all(log == logs[0] for log in logs[1:]), "the masters' committed logs differ"
    fenced_old = [e for e in logs[0] if e.command.get("fence") == old_epoch]
    assert fenced_old, "no write of the old leader's epoch in the log"
    assert fencing_violations(logs[0]) == []
    errors = cluster.log_errors()
    assert not errors, f"internal errors in the masters' logs: {errors[:10]}"


async def test_cutting_the_leader_from_one_follower_changes_nothing(
    sim_cluster: tuple[SimNetwork, list[Host], ProcessCluster],
) -> None:
    """A partial partition (leader <-> one follower, that follower still talks to the other): the cut
    follower's pre-votes are refused by the follower that still hears the leader, the leader keeps a
    majority (check-quorum counts one answer of two), so term and controller epoch stay; writes through
    the two connected masters go on, and after healing the cut follower holds every one of them."""
    network, hosts, cluster = sim_cluster
    history = WriteHistory()
    with network.entered(network.controller):
        async with aiohttp.ClientSession() as session:
            cluster.start_all()
            await cluster.wait_ready(session, timeout=60.0)
            leader, status = await cluster.find_leader(session)
            cut, kept = [i for i in range(3) if i != leader]
            network.cut(hosts[leader], hosts[cut], port=HOST_RAFT_PORT)
            deadline = time.monotonic() + 3.0  # several election timeouts
            n = 0
            while time.monotonic() < deadline:
                await create_configmap(session, cluster.masters[(leader, kept)[n % 2]].url, f"pp-{n:04d}", history)
                n += 1
            during = await cluster.status(session, leader)
            network.heal()
            await cluster.wait_converged(session)
            await check_acknowledged_creates(cluster, session, history)
    print(f"leader {cluster.masters[leader].name} cut from {cluster.masters[cut].name} for 3 s: term "
          f"{status['term']} -> {during['term']}, {len(history.acked)} creates acknowledged meanwhile")
    assert during["isLeader"] and during["term"] == status["term"]
    assert during["controllers"]["epoch"] == status["controllers"]["epoch"] == status["leaderEpoch"]
    assert len(history.acked) > 20 and not history.unknown
    errors = cluster.log_errors()
    assert not errors, f"internal errors in the masters' logs: {errors[:10]}"
