"""The kubelet over the FakeRuntime (what hollow nodes run): the same pod workers, status and relist code
as on Podman, against a real in-process master. Also the fake runtime's own contract."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.client.rest import RestClient, TransportError
from edgek8s.config import AgentConfig
from edgek8s.kubelet import local_state
from edgek8s.kubelet.fake_runtime import Behaviour, FakeRuntime
from edgek8s.kubelet.runtime import (
    ContainerConfig,
    ContainerState,
    ImageInfo,
    ImageNotFound,
    RuntimeFailure,
    SandboxConfig,
)
from edgek8s.model import errors
from edgek8s.server.agent import Agent
from tests.support.agent import container_status, is_ready, pod_body, wait_pod
from tests.support.cluster import LocalCluster

NODE = "hollow-1"
PODS = "/api/v1/namespaces/default/pods"
IMAGE = "localhost/fake:1"


def _config(tmp_path: Path, kubelet_master: LocalCluster) -> AgentConfig:
    return AgentConfig(
        node_name=NODE,
        data_dir=tmp_path / "agent",
        masters=tuple(kubelet_master.urls),
        relist_period=0.2,
        backoff_initial=0.5,
        backoff_max=2.0,
        node_status_interval=1.0,
        lease_renew_interval=1.0,
    )


@pytest.fixture
async def hollow(kubelet_master: LocalCluster, tmp_path: Path) -> AsyncIterator[tuple[Agent, FakeRuntime]]:
    runtime = FakeRuntime(images=(IMAGE,))
    agent = Agent(_config(tmp_path, kubelet_master), runtime=runtime)
    await agent.start()
    try:
        yield agent, runtime
    finally:
        await agent.stop()


def _pod(name: str, command: str = "run", **spec: object) -> dict[str, object]:
    return pod_body(name, NODE, [{"name": "c", "image": IMAGE, "command": [command]}], **spec)


async def test_fifty_pods_run_and_are_deleted(hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient) -> None:
    _, runtime = hollow
    await asyncio.gather(*(kubelet_client.create(PODS, _pod(f"p{i}")) for i in range(50)))
    for i in range(50):
        pod = await wait_pod(kubelet_client, f"p{i}", is_ready, timeout=30)
        assert pod["status"]["podIP"].startswith("10.250.0.")
    node = await kubelet_client.get(f"/api/v1/nodes/{NODE}")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "fake://1.0"
    await kubelet_client.delete(f"{PODS}?labelSelector=")  # deletecollection of every pod in the namespace
    for _ in range(100):
        if not runtime.containers and not runtime.sandboxes:
            break
        await asyncio.sleep(0.1)
    assert not runtime.containers and not runtime.sandboxes
    for _ in range(100):  # each pod was terminating until its kubelet's final delete removed it
        if not (await kubelet_client.get(PODS))["items"]:
            break
        await asyncio.sleep(0.1)
    assert not (await kubelet_client.get(PODS))["items"]


async def test_the_kubelet_keeps_pods_without_managed_fields_and_its_status_writes_keep_them(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    """The kubelet's pod cache and local state drop managedFields (half a pod's memory); its status writes
    (spec and status only, on the status subresource) leave the API's entries in place."""
    agent, _ = hollow
    await kubelet_client.create(PODS, _pod("lean"))
    pod = await wait_pod(kubelet_client, "lean", is_ready, timeout=30)
    assert any(e.get("subresource", "") == "" for e in pod["metadata"]["managedFields"])  # the creator's, kept
    cached = agent.kubelet.pods.get("default", "lean")
    assert cached is not None and cached["metadata"]["uid"] == pod["metadata"]["uid"]
    assert "managedFields" not in cached["metadata"]
    saved = json.loads((agent.kubelet.local.root / "pods" / "default_lean.json").read_text())
    assert "managedFields" not in saved["metadata"] and saved["spec"] == pod["spec"]


async def test_a_namespace_with_running_pods_goes_once_its_kubelet_stopped_them(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    _, runtime = hollow
    await kubelet_client.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": "doomed"}})
    doomed = "/api/v1/namespaces/doomed/pods"
    await kubelet_client.create(doomed, _pod("resident", terminationGracePeriodSeconds=5))
    pod = await wait_pod(kubelet_client, "resident", is_ready, namespace="doomed", timeout=30)
    seen: list[tuple[str, bool]] = []

    async def watch() -> None:
        async for event in kubelet_client.watch(doomed, resourceVersion=pod["metadata"]["resourceVersion"]):
            seen.append((event["type"], bool(event["object"]["metadata"].get("deletionTimestamp"))))
            if event["type"] == "DELETED":
                return

    watcher = asyncio.create_task(watch())
    await kubelet_client.delete("/api/v1/namespaces/doomed")
    for _ in range(300):
        try:
            await kubelet_client.get("/api/v1/namespaces/doomed")
        except errors.NotFound:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the namespace never finished deleting")
    await asyncio.wait_for(watcher, 10)
    # The namespace controller's delete was graceful (marked), and the kubelet's final delete removed it.
    assert ("MODIFIED", True) in seen and seen[-1][0] == "DELETED"
    assert not runtime.containers and not runtime.sandboxes


async def _run_and_delete_lingering(client: RestClient, config: AgentConfig,
                                    containers: list[dict[str, object]]) -> tuple[str, Path]:
    """Run pod "lingering" (30 s grace) until Ready, delete it, and wait until the agent saved it locally as
    terminating; its uid and that file."""
    await client.create(PODS, pod_body("lingering", NODE, containers, terminationGracePeriodSeconds=30))
    pod = await wait_pod(client, "lingering", is_ready, timeout=30)
    await client.delete(f"{PODS}/lingering")
    saved = config.data_dir / "state" / "pods" / "default_lingering.json"
    for _ in range(100):
        if saved.exists() and b"deletionTimestamp" in saved.read_bytes():
            return str(pod["metadata"]["uid"]), saved
        await asyncio.sleep(0.05)
    raise AssertionError("the terminating pod was not saved locally")


async def test_a_pod_terminating_when_the_masters_went_away_is_never_run_again(
    kubelet_master: LocalCluster, tmp_path: Path, kubelet_client: RestClient
) -> None:
    """Autonomy mode must not resurrect a terminating pod: the agent saved it as terminating, so an agent
    restarted during the outage finishes stopping it instead of running it from local state."""
    runtime = FakeRuntime(images=(IMAGE, "localhost/slow-stop:1"))
    runtime.behaviours["localhost/slow-stop:1"] = Behaviour(stop_seconds=4.0)
    config = _config(tmp_path, kubelet_master)
    agent = Agent(config, runtime=runtime)
    await agent.start()
    try:
        uid, _ = await _run_and_delete_lingering(kubelet_client, config,
                                                 [{"name": "c", "image": "localhost/slow-stop:1"}])
        await agent.stop()  # the agent goes down while the pod's containers are still stopping
        await kubelet_master.stop()  # and every master with it
        running = [c for _, c in runtime.containers.values() if c.state == ContainerState.RUNNING]
        assert running, "the stop finished before the outage; the test needs it under way"

        agent = Agent(config, runtime=runtime)  # restarted during the outage
        await agent.start()
        assert uid not in agent.kubelet.desired
        for _ in range(300):
            if not runtime.sandboxes and not runtime.containers:
                break
            await asyncio.sleep(0.05)
        assert not runtime.containers and not runtime.sandboxes, "the terminating pod was not stopped"
        await asyncio.sleep(1.0)
        assert not runtime.containers, "autonomy mode ran a terminating pod again"
    finally:
        await agent.stop()


async def test_a_container_death_while_the_terminating_pod_is_saved_does_not_undo_the_save(
    kubelet_master: LocalCluster, tmp_path: Path, kubelet_client: RestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow disk (injected) holds the save of the terminating pod while one of its containers dies. The
    relist's wake-up must not sync the pod's old spec: that sync's save would come last and leave a running
    pod on disk, for a restart during an outage to run again (CI caught this once in 2,250 tests)."""
    runtime = FakeRuntime(images=(IMAGE, "localhost/slow-stop:1"))
    runtime.behaviours["localhost/slow-stop:1"] = Behaviour(stop_seconds=4.0)
    config = _config(tmp_path, kubelet_master)
    loop = asyncio.get_running_loop()
    write = local_state._write_atomically

    def slow_write_and_a_death(path: Path, data: bytes) -> None:
        if b"deletionTimestamp" in data:
            sidecar = next(cid for cid, (_, c) in runtime.containers.items() if c.name == "sidecar")
            loop.call_soon_threadsafe(runtime._exit, sidecar, 1)
            time.sleep(1.0)  # the relist (every 0.2 s) sees the death meanwhile
        write(path, data)
    monkeypatch.setattr(local_state, "_write_atomically", slow_write_and_a_death)

    agent = Agent(config, runtime=runtime)
    await agent.start()
    try:
        _, saved = await _run_and_delete_lingering(kubelet_client, config, [
            {"name": "c", "image": "localhost/slow-stop:1"}, {"name": "sidecar", "image": IMAGE}])
        await asyncio.sleep(1.0)  # and a sync of the old spec, had one started, would have saved by now
        assert b"deletionTimestamp" in saved.read_bytes(), "the pod's old spec was saved over its deletion"
    finally:
        await agent.stop()


async def test_a_pod_created_again_under_its_name_keeps_its_local_record_when_the_old_one_stops(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    """Local records are kept by namespace and name. A pod force-deleted and created again at once (same
    name, new uid) is saved by its worker while the old pod's containers still stop; the old pod's kill,
    finishing later, must not remove the new pod's record (a restart during an outage would then kill the
    new pod as an orphan instead of running it)."""
    agent, runtime = hollow
    runtime.images["localhost/slow-stop:1"] = "sha256:slow-stop"
    runtime.behaviours["localhost/slow-stop:1"] = Behaviour(stop_seconds=4.0)  # SIGKILL at the forced grace
    await kubelet_client.create(PODS, pod_body("reused", NODE, [{"name": "c", "image": "localhost/slow-stop:1"}]))
    old = (await wait_pod(kubelet_client, "reused", is_ready, timeout=30))["metadata"]["uid"]
    await kubelet_client.delete(f"{PODS}/reused", {"gracePeriodSeconds": 0})  # gone from the API at once
    await kubelet_client.create(PODS, _pod("reused"))
    pod = await wait_pod(kubelet_client, "reused", lambda p: p["metadata"]["uid"] != old and is_ready(p), timeout=30)
    for _ in range(200):  # the old pod's kill (and its local delete) is over
        if old not in agent.kubelet.workers.uids() and not any(
                sb.uid == old for sb in runtime.sandboxes.values()):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the old pod was never stopped")
    saved = agent.kubelet.local.root / "pods" / "default_reused.json"
    assert saved.exists(), "the old pod's kill removed the new pod's local record"
    assert json.loads(saved.read_text())["metadata"]["uid"] == pod["metadata"]["uid"]


async def test_a_pod_replaced_under_its_name_while_the_watch_was_down_is_stopped(
    kubelet_master: LocalCluster, tmp_path: Path, kubelet_client: RestClient
) -> None:
    """The kubelet's pod watch goes silent and then expires (injected) while a pod is force-deleted and
    created again under its name. The informer's relist shows the name with a new uid, an update of that
    key: the old pod must be stopped, not left running beside the new one for ever."""
    runtime = FakeRuntime(images=(IMAGE,))
    agent = Agent(_config(tmp_path, kubelet_master), runtime=runtime)
    silent, expire = asyncio.Event(), asyncio.Event()
    watch = agent.api.watch

    async def cut_off_watch(rtype: Any, namespace: str | None = None, **options: Any) -> AsyncIterator[Any]:
        async for event in watch(rtype, namespace, **options):
            if rtype.plural == "pods" and expire.is_set():
                silent.clear()
                expire.clear()
                raise errors.Gone("too old resource version (injected)")
            if rtype.plural != "pods" or not silent.is_set():
                yield event
    agent.api.watch = cut_off_watch  # type: ignore[method-assign]
    await agent.start()
    try:
        await kubelet_client.create(PODS, _pod("reborn"))
        old = (await wait_pod(kubelet_client, "reborn", is_ready, timeout=30))["metadata"]["uid"]
        silent.set()
        await kubelet_client.delete(f"{PODS}/reborn", {"gracePeriodSeconds": 0})
        await kubelet_client.create(PODS, _pod("reborn"))
        expire.set()
        await kubelet_client.create(PODS, _pod("nudge"))  # an event: the watch expires on it
        new = await wait_pod(kubelet_client, "reborn", lambda p: p["metadata"]["uid"] != old and is_ready(p),
                             timeout=30)
        for _ in range(200):
            if not any(sb.uid == old for sb in runtime.sandboxes.values()) and old not in agent.kubelet.workers.uids():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the deleted pod still runs beside the one that replaced it")
        assert old not in agent.kubelet.desired
        saved = json.loads((agent.kubelet.local.root / "pods" / "default_reborn.json").read_text())
        assert saved["metadata"]["uid"] == new["metadata"]["uid"]  # the new pod's record stays
    finally:
        await agent.stop()


async def test_a_node_marked_unknown_while_cut_off_is_ready_again_once_its_lease_is_renewed(
    kubelet_master: LocalCluster, tmp_path: Path, kubelet_client: RestClient
) -> None:
    """Cut off from the masters (its lease renewals fail: injected), the node is marked Unknown by the node
    lifecycle controller (here the test, which need not wait the controller's grace). Once renewals go
    through again the kubelet must report its node status: its own view did not change, and waiting for
    the 5-minute report left the node Unknown and tainted NoExecute, its pods evicted a minute later."""
    # Node status checks far apart: the report must not wait for the next one.
    config = dataclasses.replace(_config(tmp_path, kubelet_master), node_status_interval=60.0)
    agent = Agent(config, runtime=FakeRuntime(images=(IMAGE,)))
    update, failed = agent.api.update, asyncio.Event()
    cut_off = False

    async def partition(rtype: Any, obj: dict[str, Any]) -> dict[str, Any]:
        if cut_off and rtype.plural == "leases":
            failed.set()
            raise TransportError("the masters are unreachable (injected)")
        result: dict[str, Any] = await update(rtype, obj)
        return result
    agent.api.update = partition  # type: ignore[method-assign]

    def ready(node: dict[str, Any]) -> str:
        conditions = (node.get("status") or {}).get("conditions") or ()
        return next((c["status"] for c in conditions if c["type"] == "Ready"), "")

    await agent.start()
    try:
        for _ in range(200):
            with contextlib.suppress(errors.NotFound):
                if ready(await kubelet_client.get(f"/api/v1/nodes/{NODE}")) == "True":
                    break
            await asyncio.sleep(0.05)
        cut_off = True
        await asyncio.wait_for(failed.wait(), 10)
        node = await kubelet_client.get(f"/api/v1/nodes/{NODE}")  # what the controller writes after its grace
        for condition in node["status"]["conditions"]:
            condition.update(status="Unknown", reason="NodeStatusUnknown",
                             message="Kubelet stopped posting node status.")
        await kubelet_client.replace(f"/api/v1/nodes/{NODE}/status", node)
        cut_off = False
        for _ in range(100):  # a few lease renewals (1 s each here)
            if ready(await kubelet_client.get(f"/api/v1/nodes/{NODE}")) == "True":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the node stayed Unknown after its kubelet reached the masters again")
    finally:
        await agent.stop()


@pytest.mark.parametrize("second", [1, 0])
async def test_a_second_shorter_delete_shortens_the_stop_under_way(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient, second: int
) -> None:
    """Upstream's podWorkers: a delete with a shorter grace (or a force delete) while the kubelet is already
    stopping the pod with the longer one brings the SIGKILL forward; the first delete alone waits its grace."""
    _, runtime = hollow
    runtime.images["localhost/ignores-term:1"] = "sha256:ignores-term"
    runtime.behaviours["localhost/ignores-term:1"] = Behaviour(stop_seconds=300.0)  # SIGTERM does nothing
    await kubelet_client.create(PODS, pod_body("slow", NODE, [{"name": "c", "image": "localhost/ignores-term:1"}],
                                               terminationGracePeriodSeconds=30))
    await wait_pod(kubelet_client, "slow", is_ready, timeout=30)
    await kubelet_client.delete(f"{PODS}/slow")
    await asyncio.sleep(2.0)  # the kill with the 30 s grace is under way
    assert [c for _, c in runtime.containers.values() if c.state == ContainerState.RUNNING]
    assert (await kubelet_client.get(f"{PODS}/slow"))["metadata"]["deletionGracePeriodSeconds"] == 30

    started = asyncio.get_running_loop().time()
    await kubelet_client.delete(f"{PODS}/slow", {"gracePeriodSeconds": second})
    while runtime.containers or runtime.sandboxes or (await kubelet_client.get(PODS))["items"]:
        assert asyncio.get_running_loop().time() - started < 10.0, "the shorter grace did not shorten the stop"
        await asyncio.sleep(0.05)
    if second == 1:  # the new grace is honoured too: SIGKILL not before it runs out
        took = asyncio.get_running_loop().time() - started
        assert took >= 0.9, f"SIGKILL came {took:.2f}s after a 1 s grace was asked for"


async def test_crash_loop_and_restart_policies(hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient) -> None:
    _, runtime = hollow
    runtime.images["localhost/crash:1"] = "sha256:crash"
    runtime.images["localhost/done:1"] = "sha256:done"
    runtime.behaviours["localhost/crash:1"] = Behaviour(run_seconds=0.05, exit_code=2)
    runtime.behaviours["localhost/done:1"] = Behaviour(run_seconds=0.05, exit_code=0)
    await kubelet_client.create(PODS, pod_body("crash", NODE, [{"name": "c", "image": "localhost/crash:1"}]))
    await kubelet_client.create(
        PODS, pod_body("never", NODE, [{"name": "c", "image": "localhost/crash:1"}], restartPolicy="Never")
    )
    await kubelet_client.create(
        PODS, pod_body("job", NODE, [{"name": "c", "image": "localhost/done:1"}], restartPolicy="OnFailure")
    )
    pod = await wait_pod(kubelet_client, "crash", lambda p: container_status(p).get("restartCount", 0) >= 3, timeout=30)
    assert container_status(pod)["lastState"]["terminated"]["exitCode"] == 2
    pod = await wait_pod(
        kubelet_client, "crash", lambda p: "waiting" in container_status(p).get("state", {}), timeout=10
    )
    assert container_status(pod)["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    await wait_pod(kubelet_client, "never", lambda p: p["status"].get("phase") == "Failed")
    await wait_pod(kubelet_client, "job", lambda p: p["status"].get("phase") == "Succeeded")


async def test_restart_adopts_without_restarting(
    kubelet_master: LocalCluster, kubelet_client: RestClient, tmp_path: Path
) -> None:
    runtime = FakeRuntime(images=(IMAGE,))
    agent = Agent(_config(tmp_path, kubelet_master), runtime=runtime)
    await agent.start()
    try:
        await kubelet_client.create(PODS, _pod("keep"))
        await wait_pod(kubelet_client, "keep", is_ready)
        before = set(runtime.containers)
        await agent.stop()
        agent = Agent(_config(tmp_path, kubelet_master), runtime=runtime)
        await agent.start()
        await asyncio.sleep(1.0)  # several relists and syncs
        assert set(runtime.containers) == before
        assert container_status(await kubelet_client.get(f"{PODS}/keep"))["restartCount"] == 0
    finally:
        await agent.stop()


async def test_missing_image_with_pull_policy_never(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    await kubelet_client.create(PODS, pod_body("noimage", NODE, [{"name": "c", "image": "localhost/absent:1"}]))
    pod = await wait_pod(
        kubelet_client,
        "noimage",
        lambda p: container_status(p).get("state", {}).get("waiting", {}).get("reason") == "ErrImageNeverPull",
    )
    assert pod["status"]["phase"] == "Pending"


async def test_fake_runtime_contract() -> None:
    runtime = FakeRuntime(images=(IMAGE,))
    pod = SandboxConfig(uid="u1", name="p", namespace="default", hostname="p")
    sandbox = await runtime.create_sandbox(pod)
    config = ContainerConfig(name="c", attempt=0, spec_hash="h", image=IMAGE)
    cid = await runtime.create_container(sandbox.id, pod, config)
    await runtime.start_container(cid)
    [listed] = await runtime.list_pods(uid="u1")
    assert listed.latest("c") is not None and listed.latest("c").state == ContainerState.RUNNING  # type: ignore[union-attr]
    await runtime.stop_container(cid, timeout=1)
    assert (await runtime.list_pods())[0].containers[0].exit_code == 137
    with pytest.raises(ImageNotFound):
        await runtime.create_container(
            sandbox.id, pod, ContainerConfig(name="d", attempt=0, spec_hash="h", image="localhost/none:1")
        )
    await runtime.remove_sandbox(sandbox.id, timeout=1)
    assert await runtime.list_pods() == []
    await runtime.stop()


async def test_a_failed_image_list_keeps_the_reported_images(
    hollow: tuple[Agent, FakeRuntime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Podman answers 500 to an image list while an image is loaded or removed: the node status keeps the
    images it reported (no status write for a passing error), and nothing raises in the status loop."""
    agent, runtime = hollow
    before = (await agent.kubelet.node.build_status())["images"]
    assert before and before[0]["names"][0] == IMAGE

    async def failing_list() -> list[object]:
        raise RuntimeFailure("podman images: image not known")

    monkeypatch.setattr(runtime, "list_images", failing_list)
    assert (await agent.kubelet.node.build_status())["images"] == before


async def test_fails_over_when_its_master_dies(tmp_path: Path) -> None:
    cluster = LocalCluster.build(tmp_path / "three", 3)
    await cluster.start()
    runtime = FakeRuntime(images=(IMAGE,))
    agent = None
    try:
        await cluster.wait_ready()
        config = AgentConfig(
            node_name=NODE,
            data_dir=tmp_path / "agent",
            masters=tuple(cluster.urls),
            relist_period=0.5,
            node_status_interval=1.0,
            lease_renew_interval=1.0,
        )
        agent = Agent(config, runtime=runtime)
        await agent.start()
        async with RestClient(cluster.urls[1], timeout=20.0) as rest:
            await rest.create(PODS, _pod("before"))
            await wait_pod(rest, "before", is_ready)
            assert agent.transport.current_url == cluster.urls[0]
            await cluster.stop(0)  # the master the agent talks to
            await rest.create(PODS, _pod("after"))
            await wait_pod(rest, "after", is_ready, timeout=30)
            assert agent.transport.current_url != cluster.urls[0]
            lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + NODE
            renewed = (await rest.get(lease))["spec"]["renewTime"]
            for _ in range(50):
                if (await rest.get(lease))["spec"]["renewTime"] != renewed:
                    break
                await asyncio.sleep(0.1)
            assert (await rest.get(lease))["spec"]["renewTime"] != renewed, "the heartbeat stopped"
    finally:
        if agent is not None:
            await agent.stop()
        await cluster.stop()


async def test_image_garbage_collection_keeps_what_pods_use(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    agent, runtime = hollow
    runtime.images["localhost/unused:1"] = "sha256:unused"
    await kubelet_client.create(PODS, _pod("user"))
    await wait_pod(kubelet_client, "user", is_ready)
    await agent.kubelet.relist()
    await agent.kubelet.collect_garbage()
    assert "localhost/unused:1" not in runtime.images
    assert IMAGE in runtime.images


async def test_a_status_written_by_someone_else_while_the_kubelets_write_is_in_flight_is_corrected(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet's status write is answered late (injected) while someone else (the node lifecycle
    controller, here the test) writes the pod's status again. The late answer must not make the kubelet
    believe the API holds its own status: its next sync must write it again (it waited for the informer's
    resync, a minute, with the pod shown not ready meanwhile)."""
    agent, _ = hollow
    writer = agent.kubelet.status
    for _ in range(200):  # until then the node lifecycle controller marks the node's pods not ready too
        with contextlib.suppress(errors.NotFound):  # not registered yet
            conditions = ((await kubelet_client.get(f"/api/v1/nodes/{NODE}")).get("status") or {}).get("conditions")
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions or ()):
                break
        await asyncio.sleep(0.05)
    await kubelet_client.create(PODS, _pod("contested"))
    pod = await wait_pod(kubelet_client, "contested", is_ready, timeout=30)
    uid = pod["metadata"]["uid"]
    for _ in range(100):  # nothing of this pod still to write
        if writer.written(uid) == pod["status"] and uid not in writer._pending and uid not in writer._writing:
            break
        await asyncio.sleep(0.05)

    api, update_status = writer._api, writer._api.update_status
    held, answer = asyncio.Event(), asyncio.Event()

    async def late_answer(rtype: Any, obj: dict[str, Any]) -> dict[str, Any]:
        result = await update_status(rtype, obj)
        if obj["metadata"].get("uid") == uid and not held.is_set():  # not the node's status
            held.set()
            await answer.wait()
        return result
    monkeypatch.setattr(api, "update_status", late_answer)
    gate, entered = threading.Event(), threading.Event()
    gate.set()
    write = local_state._write_atomically

    def gated_write(path: Path, data: bytes) -> None:  # a slow disk holds the pod's next sync
        if not gate.is_set():
            entered.set()
            gate.wait(30)
        write(path, data)
    monkeypatch.setattr(local_state, "_write_atomically", gated_write)

    async def not_ready(reason: str) -> dict[str, Any]:
        while True:
            current = await kubelet_client.get(f"{PODS}/contested")
            for condition in current["status"]["conditions"]:
                if condition["type"] in ("Ready", "ContainersReady"):
                    condition.update(status="False", reason=reason)
            with contextlib.suppress(errors.Conflict):  # the kubelet wrote in between
                result: dict[str, Any] = await kubelet_client.replace(f"{PODS}/contested/status", current)
                return result

    try:
        await not_ready("First")  # the kubelet writes its status back; that write is answered late
        await asyncio.wait_for(held.wait(), 10)
        gate.clear()
        second = await not_ready("Second")  # applied after the kubelet's write
        for _ in range(200):  # the kubelet has seen it, and its next sync waits on the disk
            if writer.written(uid) == second["status"] and entered.is_set():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second status never reached the kubelet")
        writes = writer.writes
        answer.set()
        for _ in range(100):
            if writer.writes > writes:
                break
            await asyncio.sleep(0.05)
    finally:
        answer.set()
        gate.set()
    await wait_pod(kubelet_client, "contested", is_ready, timeout=10)


async def test_image_garbage_collection_keeps_the_image_of_a_pod_that_arrives_meanwhile(
    hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient
) -> None:
    """A slow image list (injected): a pod using an image nothing used before arrives while the collector
    waits for it. The collector must judge each image by the pods wanted when it removes it, not by those
    wanted before its awaits (an edge node without a registry could never start that pod again)."""
    agent, runtime = hollow
    arriving = "localhost/arriving:1"
    runtime.images[arriving] = "sha256:arriving"
    list_images = runtime.list_images
    armed = True

    async def slow_list() -> list[ImageInfo]:
        nonlocal armed
        images = await list_images()
        if armed:
            armed = False
            await kubelet_client.create(PODS, pod_body("arriving", NODE, [{"name": "c", "image": arriving}]))
            for _ in range(1000):  # until the kubelet wants it
                if any(p["metadata"]["name"] == "arriving" for p in agent.kubelet.desired.values()):
                    break
                await asyncio.sleep(0.01)
        return images

    await agent.kubelet.relist()
    runtime.list_images = slow_list  # type: ignore[method-assign]
    await agent.kubelet.collect_garbage()
    assert arriving in runtime.images, "the collector removed the image of a pod that arrived meanwhile"
    await wait_pod(kubelet_client, "arriving", is_ready, timeout=30)


async def test_failing_init_container_backs_off(hollow: tuple[Agent, FakeRuntime], kubelet_client: RestClient) -> None:
    _, runtime = hollow
    runtime.images["localhost/crash:1"] = "sha256:crash"
    runtime.behaviours["localhost/crash:1"] = Behaviour(run_seconds=0.05, exit_code=1)
    body = pod_body(
        "init", NODE, [{"name": "c", "image": IMAGE}], initContainers=[{"name": "i", "image": "localhost/crash:1"}]
    )

    def init_status(pod: dict[str, object]) -> dict[str, object]:
        statuses = (pod.get("status") or {}).get("initContainerStatuses") or [{}]  # type: ignore[attr-defined]
        return dict(statuses[0])

    await kubelet_client.create(PODS, body)
    pod = await wait_pod(
        kubelet_client,
        "init",
        lambda p: "waiting" in init_status(p).get("state", {}),
        timeout=30,  # type: ignore[operator]
    )
    assert init_status(pod)["state"]["waiting"]["reason"] == "CrashLoopBackOff"  # type: ignore[index]
    assert pod["status"]["phase"] == "Pending"
    await asyncio.sleep(1.0)
    attempts = [c.attempt for _, c in runtime.containers.values() if c.name == "i"]
    assert max(attempts) < 6, f"the init container restarted without back-off: {attempts}"
