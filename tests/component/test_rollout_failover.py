"""What the chaos failover test (tests/chaos/test_controller_failover.py) relies on, on a real 3-master
cluster in one process: a controller write after a new leader's claim exists only if there is work.

- A successor that takes over a settled rollout has nothing to do: after its claim it writes its Lease
  and no controller write (ReplicaSet, pod create/delete/bind) at all. This is the CI failure of the
  kills test reproduced deterministically: a quick rollout had finished before the kill, and waiting
  for the successor's first controller write timed out although the failover had worked.
- With the chaos test's hollow container start time, the rollout is still going at the latest kill
  point and lasts at least two container starts, so every kill leaves the successor work.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.server.control_plane import Master
from edgek8s.server.leadership import LEASE_NAME, LEASE_NAMESPACE, LEASES
from tests.support.cluster import LocalCluster, eventually, started_cluster, wait_for
from tests.support.controller_history import ControllerHistory
from tests.support.hollow import HollowNodes
from tests.support.hollow_agents import running
from tests.support.rollout_driver import CONTAINER_START, DEPLOYMENTS, KILL_DELAY, REPLICAS, deployment

pytestmark = pytest.mark.timeout(120)

NODES = [f"hollow-{i}" for i in range(5)]


def live_urls(cluster: LocalCluster) -> list[str]:
    return [c.api_url for c, m in zip(cluster.configs, cluster.masters, strict=True) if m is not None]


def rolled_out(client: InProcessClient, image: str) -> Any:
    async def check() -> dict[str, Any] | None:
        d = await client.get(DEPLOYMENTS, "default", "web")
        status = d.get("status") or {}
        done = (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
                and status.get("updatedReplicas") == REPLICAS and status.get("replicas") == REPLICAS
                and status.get("availableReplicas") == REPLICAS)
        return d if done else None
    return check


async def set_image(client: InProcessClient, image: str) -> None:
    await client.patch(DEPLOYMENTS, "default", "web", {"spec": {"template": deployment(image)["spec"]["template"]}})


async def test_a_successor_of_a_settled_rollout_writes_only_its_lease(tmp_path: Path) -> None:
    async with started_cluster(tmp_path) as cluster:
        leader = await cluster.wait_stable_leader()
        survivor = next(i for i, m in enumerate(cluster.masters) if m is not None and i != leader)
        master = cluster.masters[survivor]
        assert master is not None
        client = InProcessClient(master.store, manager="test")
        history = ControllerHistory(urls=lambda: live_urls(cluster))
        recorder = asyncio.create_task(history.run())
        try:
            async with running(HollowNodes(client, NODES, heartbeat=2.0)):  # containers start at once
                await client.create(DEPLOYMENTS, deployment("web:0"))
                await eventually(rolled_out(client, "web:0"), timeout=60)
                await set_image(client, "web:1")
                await eventually(rolled_out(client, "web:1"), timeout=60)  # settled before the kill
                old = cluster.masters[leader]
                assert old is not None and old.gate.epoch is not None
                old_epoch = old.gate.epoch
                await cluster.stop(leader)

                def successor() -> Master | None:
                    return next((m for m in cluster.running() if (m.gate.epoch or 0) > old_epoch), None)

                await wait_for(lambda: successor() is not None, timeout=15)
                new = successor()
                assert new is not None
                claim_index = new.gate.terms[-1].claim_index

                def renewed() -> bool:  # the successor's Lease, written after its claim
                    lease, _ = new.store.state.get(LEASES.id, LEASE_NAMESPACE, LEASE_NAME)
                    return (lease is not None and lease.rv > claim_index
                            and lease.decode()["spec"]["holderIdentity"] == new.config.name)

                await wait_for(renewed, timeout=10)
                await asyncio.sleep(3.0)  # give the successor's controllers time to (wrongly) act
                assert new.gate.epoch is not None and new.gate.epoch > old_epoch
                assert new.gate.terms[-1].log.writes >= 1  # its Lease, written when the term starts
                late = [e for e in history.events if e.controller_write and e.rv > claim_index]
                assert late == [], f"controller writes after the claim of a settled rollout: {late[:5]}"
                assert history.first_controller_write_after(claim_index) is None
        finally:
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)


async def test_with_the_chaos_container_start_a_rollout_outlasts_the_kill_window(tmp_path: Path) -> None:
    async with started_cluster(tmp_path) as cluster:
        client = InProcessClient(cluster.running()[0].store, manager="test")
        async with running(HollowNodes(client, NODES, heartbeat=2.0, start_delay=CONTAINER_START)):
            await client.create(DEPLOYMENTS, deployment("web:0"))
            await eventually(rolled_out(client, "web:0"), timeout=60)
            await set_image(client, "web:1")
            changed = time.monotonic()
            await asyncio.sleep(KILL_DELAY[1])  # the latest a chaos round kills the leader
            assert await rolled_out(client, "web:1")() is None, "the rollout finished before the kill window ended"
            await eventually(rolled_out(client, "web:1"), timeout=60, interval=0.02)
            took = time.monotonic() - changed
            # The old ReplicaSet can drop below 38 only once new pods are Ready, and the last new pods
            # are created only then: two container starts one after the other, at least.
            assert took >= 2 * CONTAINER_START, f"the rollout took {took:.2f} s"
