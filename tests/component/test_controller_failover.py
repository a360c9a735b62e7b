"""The leader master dies while a Job and a DaemonSet are being run: the next leader's controllers
finish the work with exact counts and no duplicate pods (fresh caches, deterministic recovery).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import eventually, started_cluster
from tests.support.hollow_agents import EXIT_CODE, RUN_SECONDS, HollowAgents, running

PODS = by_id(resource_id("", "pods"))
JOBS = by_id(resource_id("batch", "jobs"))
DAEMON_SETS = by_id(resource_id("apps", "daemonsets"))

pytestmark = pytest.mark.timeout(120)


async def test_job_and_daemonset_survive_a_leader_kill(tmp_path: Path) -> None:
    async with started_cluster(tmp_path) as cluster:
        leader = await cluster.wait_stable_leader()
        follower = next(i for i, m in enumerate(cluster.masters) if m is not None and i != leader)
        master = cluster.masters[follower]
        assert master is not None
        client = InProcessClient(master.store, manager="test")
        async with running(HollowAgents(client, ["n1", "n2", "n3"])):
            template = {"metadata": {"annotations": {RUN_SECONDS: "0.3", EXIT_CODE: "0"}},
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
            job = await client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                                             "metadata": {"name": "work", "namespace": "default"},
                                             "spec": {"completions": 8, "parallelism": 2, "template": template}})
            await client.create(DAEMON_SETS, {
                "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})

            async def some_done() -> bool:
                status = (await client.get(JOBS, "default", "work")).get("status") or {}
                return int(status.get("succeeded") or 0) >= 2

            await eventually(some_done)
            await cluster.stop(leader)

            async def complete() -> Any:
                current = await client.get(JOBS, "default", "work")
                done = any(c["type"] == "Complete" and c["status"] == "True"
                           for c in (current.get("status") or {}).get("conditions") or ())
                return current if done else None

            finished = await eventually(complete, timeout=60)
            assert finished["status"]["succeeded"] == 8 and finished["status"].get("failed", 0) == 0
            pods = [p for p in (await client.list(PODS, "default")).items
                    if p["metadata"].get("ownerReferences", [{}])[0].get("uid") == job["metadata"]["uid"]]
            assert len(pods) == 8 and all(p["status"]["phase"] == "Succeeded" for p in pods)

            async def one_daemon_per_node() -> bool:
                daemons = (await client.list(PODS, "default", label_selector="app=agent")).items
                return sorted(p["spec"].get("nodeName", "") for p in daemons) == ["n1", "n2", "n3"]

            await eventually(one_daemon_per_node, timeout=30)
