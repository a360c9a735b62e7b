"""The kubelet over real Podman, driven through a real (in-process) API: pods from create to delete.

Each test gets one master and one agent with its own Podman storage, pod network and data dir; the
busybox test image is built once per session and loaded into each agent's storage.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgek8s.client.rest import RestClient
from edgek8s.kubelet.runtime import ContainerState
from edgek8s.model import errors
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

NODE = "worker-1"
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
async def agent(kubelet_master: LocalCluster, tmp_path: Path, busybox_archive: Path) -> AsyncIterator[Agent]:
    started = await start_agent(agent_config(tmp_path / "agent", kubelet_master.urls, NODE), busybox_archive)
    try:
        yield started
    finally:
        await destroy_agent(started)


async def _runtime_containers(agent: Agent, uid: str) -> list[str]:
    return [c.id for rp in await agent.runtime.list_pods(uid=uid) for c in rp.containers]


async def _wait_gone_from_api(client: RestClient, name: str, *, deadline: float) -> None:
    while True:
        try:
            await client.get(f"{PODS}/{name}")
        except errors.NotFound:
            return
        assert time.monotonic() < deadline, "the kubelet never issued the final delete"
        await asyncio.sleep(0.05)


async def test_pod_lifecycle(kubelet_client: RestClient, agent: Agent) -> None:
    web = {
        "name": "web",
        "command": ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"port": 8080, "path": "/index.html"}, "periodSeconds": 1},
    }
    created = await kubelet_client.create(PODS, pod_body("web", NODE, [web]))
    uid = created["metadata"]["uid"]
    pod = await wait_pod(kubelet_client, "web", is_ready, timeout=60)
    status = pod["status"]
    assert status["phase"] == "Running"
    assert status["podIP"] and status["hostIP"] == agent.node_ip and status["startTime"]
    web_status = container_status(pod, "web")
    assert web_status["ready"] and web_status["started"] and web_status["restartCount"] == 0
    assert web_status["containerID"].startswith("podman://") and web_status["imageID"]
    assert "running" in web_status["state"]
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types["PodScheduled"] == types["Initialized"] == types["ContainersReady"] == types["Ready"] == "True"
    node = await kubelet_client.get(f"/api/v1/nodes/{NODE}")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
    lease = await kubelet_client.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}")
    assert lease["spec"]["holderIdentity"] == NODE
    events = await kubelet_client.get("/api/v1/namespaces/default/events")
    reasons = {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "web"}
    assert "Started" in reasons
    assert await _runtime_containers(agent, uid)

    await kubelet_client.delete(f"{PODS}/web")
    deadline = time.monotonic() + 30
    while await agent.runtime.list_pods(uid=uid):
        assert time.monotonic() < deadline, "the pod's containers were not removed"
        await asyncio.sleep(0.2)
    assert not (agent.config.data_dir / "pods" / uid).exists()


async def test_crash_loop_back_off(kubelet_client: RestClient, agent: Agent) -> None:
    crash = {"name": "crash", "command": ["sh", "-c", "echo dying; exit 3"]}
    await kubelet_client.create(PODS, pod_body("crash", NODE, [crash]))
    pod = await wait_pod(kubelet_client, "crash", lambda p: container_status(p).get("restartCount", 0) >= 3, timeout=60)
    status = container_status(pod)
    assert status["lastState"]["terminated"]["exitCode"] == 3
    pod = await wait_pod(
        kubelet_client, "crash", lambda p: "waiting" in container_status(p).get("state", {}), timeout=30
    )
    waiting = container_status(pod)["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    # Back-off doubles: restart starts spread out 1 s, 2 s, 4 s (backoff_initial=1, max=8) after the first.
    uid = pod["metadata"]["uid"]
    await wait_pod(kubelet_client, "crash", lambda p: container_status(p).get("restartCount", 0) >= 4, timeout=60)
    starts = sorted(c.started_at for rp in await agent.runtime.list_pods(uid=uid) for c in rp.containers)
    assert len(starts) >= 2
    events = await kubelet_client.get("/api/v1/namespaces/default/events")
    assert any(e["reason"] == "BackOff" for e in events["items"] if e["involvedObject"]["name"] == "crash")
    assert pod["status"]["phase"] == "Running"


async def test_restart_policy_never_and_on_failure(kubelet_client: RestClient, agent: Agent) -> None:
    await kubelet_client.create(
        PODS, pod_body("done", NODE, [{"name": "c", "command": ["true"]}], restartPolicy="Never")
    )
    await kubelet_client.create(
        PODS, pod_body("fail", NODE, [{"name": "c", "command": ["false"]}], restartPolicy="Never")
    )
    done = await wait_pod(kubelet_client, "done", lambda p: p.get("status", {}).get("phase") == "Succeeded")
    fail = await wait_pod(kubelet_client, "fail", lambda p: p.get("status", {}).get("phase") == "Failed")
    assert container_status(done)["state"]["terminated"]["reason"] == "Completed"
    assert container_status(fail)["state"]["terminated"]["exitCode"] == 1
    assert container_status(fail)["restartCount"] == 0


async def test_liveness_and_startup_probes(kubelet_client: RestClient, agent: Agent) -> None:
    live = {
        "name": "live",
        "command": ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 600"],
        "livenessProbe": {
            "exec": {"command": ["cat", "/tmp/healthy"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
            "timeoutSeconds": 5,
        },
        "startupProbe": {
            "exec": {"command": ["cat", "/tmp/healthy"]},
            "periodSeconds": 1,
            "timeoutSeconds": 5,
            "failureThreshold": 10,
        },
    }
    tcp = {
        "name": "tcp",
        "command": ["sh", "-c", "sleep 2; exec httpd -f -p 9090"],
        "readinessProbe": {"tcpSocket": {"port": 9090}, "periodSeconds": 1},
    }
    await kubelet_client.create(PODS, pod_body("probed", NODE, [live, tcp]))
    await wait_pod(kubelet_client, "probed", lambda p: container_status(p, "tcp").get("ready") is True, timeout=60)
    pod = await wait_pod(
        kubelet_client, "probed", lambda p: container_status(p, "live").get("restartCount", 0) >= 1, timeout=60
    )
    assert container_status(pod, "tcp")["restartCount"] == 0
    events = await kubelet_client.get("/api/v1/namespaces/default/events")
    reasons = [e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "probed"]
    assert "Killing" in reasons and "Unhealthy" in reasons


async def test_volumes_and_env(kubelet_client: RestClient, agent: Agent, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    await kubelet_client.create(
        "/api/v1/namespaces/default/configmaps",
        {"metadata": {"name": "settings"}, "data": {"mode": "edge", "file.txt": "from a configmap"}},
    )
    await kubelet_client.create(
        "/api/v1/namespaces/default/secrets",
        {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3cret").decode()}},
    )
    script = (
        "env > /out/env; cat /cfg/file.txt > /out/cfg; cat /sec/password > /out/sec; "
        "cat /info/labels > /out/labels; echo scratch > /scratch/x && cat /scratch/x > /out/scratch; "
        "touch /rootfs-write 2>/out/rofs || true; id -u > /out/uid; sleep 600"
    )
    container = {
        "name": "app",
        "command": ["sh", "-c", script],
        "env": [
            {"name": "PLAIN", "value": "plain"},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "COMBINED", "value": "$(MODE)-$(PLAIN)"},
        ],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
        "volumeMounts": [
            {"name": "out", "mountPath": "/out"},
            {"name": "cfg", "mountPath": "/cfg"},
            {"name": "sec", "mountPath": "/sec", "readOnly": True},
            {"name": "info", "mountPath": "/info"},
            {"name": "scratch", "mountPath": "/scratch"},
        ],
        "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True},
    }
    volumes = [
        {"name": "out", "hostPath": {"path": str(out)}},
        {"name": "cfg", "configMap": {"name": "settings"}},
        {"name": "sec", "secret": {"secretName": "creds"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "scratch", "emptyDir": {}},
    ]
    body = pod_body("vols", NODE, [container], volumes=volumes)
    body["metadata"]["labels"] = {"app": "vols"}
    out.chmod(0o777)
    await kubelet_client.create(PODS, body)
    await wait_pod(kubelet_client, "vols", lambda p: p.get("status", {}).get("phase") == "Running")
    deadline = time.monotonic() + 30
    while not (out / "uid").exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line)
    assert env["PLAIN"] == "plain" and env["MODE"] == "edge" and env["PASSWORD"] == "s3cret"
    assert env["MY_POD"] == "vols" and env["MY_NODE"] == NODE and env["COMBINED"] == "edge-plain"
    assert env["CM_mode"] == "edge"
    assert (out / "cfg").read_text() == "from a configmap"
    assert (out / "sec").read_text() == "s3cret"
    assert 'app="vols"' in (out / "labels").read_text()
    assert (out / "scratch").read_text().strip() == "scratch"
    assert "Read-only file system" in (out / "rofs").read_text()
    assert (out / "uid").read_text().strip() == "1000"


async def test_missing_configmap_is_reported_then_recovers(kubelet_client: RestClient, agent: Agent) -> None:
    container = {
        "name": "app",
        "command": ["sleep", "600"],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}}],
    }
    await kubelet_client.create(PODS, pod_body("later", NODE, [container]))
    pod = await wait_pod(
        kubelet_client,
        "later",
        lambda p: container_status(p).get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError",
    )
    assert "later" in container_status(pod)["state"]["waiting"]["message"]
    await kubelet_client.create(
        "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "later"}, "data": {"x": "1"}}
    )
    await wait_pod(kubelet_client, "later", is_ready, timeout=60)


async def test_graceful_termination(kubelet_client: RestClient, agent: Agent) -> None:
    polite = {"name": "polite", "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]}
    stubborn = {"name": "stubborn", "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]}
    await kubelet_client.create(PODS, pod_body("polite", NODE, [polite], terminationGracePeriodSeconds=10))
    await kubelet_client.create(PODS, pod_body("stubborn", NODE, [stubborn], terminationGracePeriodSeconds=3))
    polite_pod = await wait_pod(kubelet_client, "polite", is_ready)
    stubborn_pod = await wait_pod(kubelet_client, "stubborn", is_ready)

    async def time_deletion(pod: dict[str, object], name: str) -> float:
        uid = pod["metadata"]["uid"]  # type: ignore[index]
        started = time.monotonic()
        await kubelet_client.delete(f"{PODS}/{name}")
        running = True
        while running:
            pods = await agent.runtime.list_pods(uid=uid)
            running = any(c.state == ContainerState.RUNNING for rp in pods for c in rp.containers)
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    polite_s, stubborn_s = await asyncio.gather(
        time_deletion(polite_pod, "polite"), time_deletion(stubborn_pod, "stubborn")
    )
    assert polite_s < 3.0, f"a container that exits on SIGTERM took {polite_s:.1f}s"
    assert 2.5 <= stubborn_s < 12.0, f"SIGKILL should follow the 3 s grace period; took {stubborn_s:.1f}s"


async def test_a_deleted_pod_stays_terminating_until_its_kubelet_is_done(
    kubelet_client: RestClient, agent: Agent
) -> None:
    """Graceful deletion: DELETE answers 200 with the pod marked (deadline, grace); the pod stays in the
    API while the kubelet stops a container that ignores SIGTERM; the kubelet's final delete removes it,
    and a watch sees MODIFIED then DELETED. ``gracePeriodSeconds=0`` removes a running pod at once."""
    stubborn = {"name": "stubborn", "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]}
    await kubelet_client.create(PODS, pod_body("slow", NODE, [stubborn], terminationGracePeriodSeconds=4))
    await kubelet_client.create(PODS, pod_body("forced", NODE, [dict(stubborn)], terminationGracePeriodSeconds=30))
    pod = await wait_pod(kubelet_client, "slow", is_ready)
    forced = await wait_pod(kubelet_client, "forced", is_ready)
    seen: list[str] = []

    async def watch() -> None:
        async for event in kubelet_client.watch(PODS, resourceVersion=pod["metadata"]["resourceVersion"],
                                                fieldSelector="metadata.name=slow"):
            seen.append(event["type"])
            if event["type"] == "DELETED":
                return

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    marked = await kubelet_client.delete(f"{PODS}/slow")
    assert marked["kind"] == "Pod" and marked["metadata"]["deletionGracePeriodSeconds"] == 4
    assert marked["metadata"]["deletionTimestamp"]
    again = await kubelet_client.delete(f"{PODS}/slow", {"gracePeriodSeconds": 60})  # never lengthens
    assert again["metadata"]["deletionTimestamp"] == marked["metadata"]["deletionTimestamp"]
    await _wait_gone_from_api(kubelet_client, "slow", deadline=started + 30)
    took = time.monotonic() - started
    assert took >= 3.0, f"the pod left the API after {took:.1f}s, before its 4 s grace ran out"
    await asyncio.wait_for(watcher, 10)
    assert seen[0] == "MODIFIED" and seen[-1] == "DELETED"
    assert not await agent.runtime.list_pods(uid=pod["metadata"]["uid"])

    started = time.monotonic()
    gone = await kubelet_client.delete(f"{PODS}/forced", {"gracePeriodSeconds": 0})
    assert gone["kind"] == "Status" and gone["status"] == "Success"
    with pytest.raises(errors.NotFound):
        await kubelet_client.get(f"{PODS}/forced")
    while await _runtime_containers(agent, forced["metadata"]["uid"]):
        assert time.monotonic() - started < 15, "a force-deleted pod's containers kept running"
        await asyncio.sleep(0.2)


async def test_a_second_shorter_delete_shortens_the_stop_under_way(kubelet_client: RestClient, agent: Agent) -> None:
    """A delete with grace 1 while the kubelet stops a container that ignores SIGTERM with its 30 s grace:
    Podman's stop under way is cut short (SIGKILL ~1 s later), and the pod leaves the API well before 30 s."""
    stubborn = {"name": "stubborn", "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]}
    await kubelet_client.create(PODS, pod_body("slow", NODE, [stubborn], terminationGracePeriodSeconds=30))
    uid = (await wait_pod(kubelet_client, "slow", is_ready))["metadata"]["uid"]

    async def running() -> bool:
        return any(c.state == ContainerState.RUNNING for rp in await agent.runtime.list_pods(uid=uid)
                   for c in rp.containers)

    await kubelet_client.delete(f"{PODS}/slow")
    await asyncio.sleep(2.0)
    assert await running(), "the first delete alone must wait its 30 s grace"
    started = time.monotonic()
    lowered = await kubelet_client.delete(f"{PODS}/slow", {"gracePeriodSeconds": 1})
    assert lowered["metadata"]["deletionGracePeriodSeconds"] == 1  # the API lowers it (never raises it)
    while await running():
        assert time.monotonic() - started < 10, "the stop under way ignored the shorter grace"
        await asyncio.sleep(0.05)
    stopped = time.monotonic() - started
    await _wait_gone_from_api(kubelet_client, "slow", deadline=started + 15)
    assert 0.9 <= stopped < 8.0, f"SIGKILL came {stopped:.1f}s after the grace was shortened to 1 s"
    assert not await agent.runtime.list_pods(uid=uid)


async def test_host_port_and_init_containers(kubelet_client: RestClient, agent: Agent) -> None:
    from tests.support.cluster import free_port

    port = free_port()
    init = {
        "name": "prepare",
        "command": ["sh", "-c", "echo prepared > /www/index.html"],
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
    }
    web = {
        "name": "web",
        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "ports": [{"containerPort": 8080, "hostPort": port}],
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
        "resources": {"limits": {"cpu": "250m", "memory": "32Mi"}},
    }
    volumes = [{"name": "www", "emptyDir": {}}]
    await kubelet_client.create(PODS, pod_body("hp", NODE, [web], initContainers=[init], volumes=volumes))
    pod = await wait_pod(kubelet_client, "hp", is_ready)
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /index.html HTTP/1.0\r\n\r\n")
    body = await reader.read()
    writer.close()
    assert b"prepared" in body
    # The memory limit reached the container's cgroup (v2: memory.max; v1: memory.limit_in_bytes).
    web_id = container_status(pod, "web")["containerID"].removeprefix("podman://")
    limit = await agent.runtime.exec_probe(
        web_id,
        ["sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"],
        timeout=20,
    )
    assert limit.output.strip() == str(32 * 2**20).encode()
    with pytest.raises(errors.NotFound):
        await kubelet_client.get(f"{PODS}/absent")
