"""Restart safety and edge autonomy of the agent, on real Podman with in-process masters.

- An agent restarted over running pods adopts them: same container ids, no restarts, and a pod deleted
  while the agent was down is removed.
- With every master stopped for 60 s, pods keep running, a crashing container keeps restarting per its
  policy, an agent restarted during the outage restores its pods from local state, and when the
  masters return the statuses catch up without restarting healthy containers.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from edgek8s.client.rest import RestClient
from edgek8s.kubelet.runtime import ContainerState
from edgek8s.server.agent import Agent
from tests.support.agent import (
    agent_config,
    container_status,
    destroy_agent,
    is_ready,
    pod_body,
    start_agent,
    wait_pod,
)
from tests.support.cluster import LocalCluster

NODE = "edge-1"
PODS = "/api/v1/namespaces/default/pods"


async def _running(agent: Agent, uid: str) -> dict[str, str]:
    """container name -> id of its running instance."""
    return {
        c.name: c.id
        for rp in await agent.runtime.list_pods(uid=uid)
        for c in rp.containers
        if c.state == ContainerState.RUNNING
    }


async def _attempts(agent: Agent, uid: str, name: str) -> int:
    return max(
        (c.attempt for rp in await agent.runtime.list_pods(uid=uid) for c in rp.containers if c.name == name),
        default=-1,
    )


async def test_restart_adopts_pods(kubelet_master: LocalCluster, tmp_path: Path, busybox_archive: Path) -> None:
    config = agent_config(tmp_path / "agent", kubelet_master.urls, NODE)
    agent = await start_agent(config, busybox_archive)
    try:
        async with RestClient(kubelet_master.urls[0]) as kubelet_client:
            keep = await kubelet_client.create(
                PODS, pod_body("keep", NODE, [{"name": "c", "command": ["sleep", "3600"]}])
            )
            gone = await kubelet_client.create(
                PODS, pod_body("gone", NODE, [{"name": "c", "command": ["sleep", "3600"]}])
            )
            await wait_pod(kubelet_client, "keep", is_ready)
            await wait_pod(kubelet_client, "gone", is_ready)
            before = await _running(agent, keep["metadata"]["uid"])
            await agent.stop()
            await kubelet_client.delete(f"{PODS}/gone")
            agent = await start_agent(config, busybox_archive)
            deadline = time.monotonic() + 30
            while await agent.runtime.list_pods(uid=gone["metadata"]["uid"]):
                assert time.monotonic() < deadline, "the pod deleted while the agent was down is still there"
                await asyncio.sleep(0.2)
            for _ in range(5):  # several relists and syncs
                await agent.kubelet.relist()
                await asyncio.sleep(config.relist_period)
            assert await _running(agent, keep["metadata"]["uid"]) == before
            assert await _attempts(agent, keep["metadata"]["uid"], "c") == 0
            pod = await kubelet_client.get(f"{PODS}/keep")
            assert container_status(pod)["restartCount"] == 0 and is_ready(pod)
            pods = await agent.runtime.list_pods()
            assert len([rp for rp in pods if rp.sandboxes]) == 1, "a duplicate sandbox was created"
    finally:
        await destroy_agent(agent)


@pytest.mark.slow
async def test_masters_unreachable_for_60s(kubelet_master: LocalCluster, tmp_path: Path, busybox_archive: Path) -> None:
    config = agent_config(tmp_path / "agent", kubelet_master.urls, NODE, backoff_initial=1.0, backoff_max=4.0)
    agent = await start_agent(config, busybox_archive)
    try:
        async with RestClient(kubelet_master.urls[0]) as kubelet_client:
            await kubelet_client.create(
                "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "site"}, "data": {"name": "edge-site-7"}}
            )
            steady_body = pod_body(
                "steady",
                NODE,
                [
                    {
                        "name": "c",
                        "command": ["sh", "-c", "echo $SITE > /tmp/site; exec sleep 3600"],
                        "env": [{"name": "SITE", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "name"}}}],
                    }
                ],
            )
            steady = await kubelet_client.create(PODS, steady_body)
            crash = {"name": "c", "command": ["sh", "-c", "sleep 1; exit 1"]}
            crasher = await kubelet_client.create(PODS, pod_body("crasher", NODE, [crash]))
            await wait_pod(kubelet_client, "steady", is_ready)
            await wait_pod(kubelet_client, "crasher", lambda p: container_status(p).get("restartCount", 0) >= 1)
        steady_uid, crasher_uid = steady["metadata"]["uid"], crasher["metadata"]["uid"]
        steady_ids = await _running(agent, steady_uid)

        await kubelet_master.stop()
        outage_started = time.monotonic()
        attempts_at_outage = await _attempts(agent, crasher_uid, "c")
        await asyncio.sleep(20)
        # Restart the agent in the middle of the outage: it must restore its pods from local state.
        await agent.stop()
        agent = await start_agent(config, busybox_archive)
        assert {p["metadata"]["name"] for p in agent.kubelet.desired.values()} == {"steady", "crasher"}
        while time.monotonic() - outage_started < 60:
            assert await _running(agent, steady_uid) == steady_ids, "a healthy pod changed during the outage"
            await asyncio.sleep(2)
        attempts = await _attempts(agent, crasher_uid, "c")
        assert attempts >= attempts_at_outage + 3, "the crashing container stopped restarting"

        await kubelet_master.start()
        await kubelet_master.wait_ready()
        async with RestClient(kubelet_master.urls[0]) as kubelet_client:
            attempts = await _attempts(agent, crasher_uid, "c")
            await wait_pod(
                kubelet_client,
                "crasher",
                lambda p: container_status(p).get("restartCount", 0) >= attempts - 1,
                timeout=30,
            )
            pod = await wait_pod(kubelet_client, "steady", is_ready, timeout=30)
            assert container_status(pod)["restartCount"] == 0
            assert container_status(pod)["containerID"] == f"podman://{steady_ids['c']}"
        assert await _running(agent, steady_uid) == steady_ids
    finally:
        await destroy_agent(agent)
