"""Pure pieces of the kubelet: back-off, $(VAR) expansion, pod phase and conditions, pod worker coalescing,
status writes in flight, node arch labels, the agent's Podman settings and times."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from typing import Any

import pytest

from edgek8s._util.backoff import Backoff
from edgek8s.config import ConfigError, PodmanConfig
from edgek8s.kubelet.node_status import node_arch
from edgek8s.kubelet.pod_workers import PodWorkers
from edgek8s.kubelet.podman_host import resolve, write_config
from edgek8s.kubelet.podman_runtime import _time
from edgek8s.kubelet.podspec import expand, sandbox_config, spec_hash
from edgek8s.kubelet.runtime import ContainerState, ContainerStatus, RuntimePod, SandboxStatus
from edgek8s.kubelet.status import StatusWriter, SyncOutcome, Waiting, pod_status, qos_class
from edgek8s.kubelet.termination import FORCED_GRACE_S, forced_grace, remaining_grace


def test_backoff_doubles_to_the_maximum_and_resets() -> None:
    now = [0.0]
    backoff = Backoff(10.0, 40.0, clock=lambda: now[0])
    assert backoff.remaining("k") == 0.0  # the first restart is immediate
    delays = []
    for _ in range(5):
        backoff.record_restart("k")
        delays.append(backoff.remaining("k"))
        now[0] += delays[-1]
    assert delays == [10.0, 20.0, 40.0, 40.0, 40.0]
    now[0] += 81.0  # quiet for more than twice the maximum: start over
    assert backoff.remaining("k") == 0.0
    backoff.record_restart("k")
    assert backoff.remaining("k") == 10.0


def test_expand_like_upstream() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"


def test_sandbox_ports_and_spec_hash() -> None:
    pod = {"metadata": {"uid": "u", "name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080},
                                                                         {"containerPort": 81}]}]}}
    config = sandbox_config(pod)
    assert [(p.container_port, p.host_port) for p in config.ports] == [(80, 8080)]
    container = pod["spec"]["containers"][0]  # type: ignore[index]
    assert spec_hash(container) == spec_hash(dict(container))
    assert spec_hash(container) != spec_hash({**container, "image": "j"})


def _container(name: str, state: ContainerState, *, attempt: int = 0, exit_code: int | None = None,
               init: bool = False) -> ContainerStatus:
    return ContainerStatus(id=f"{name}{attempt}", name=name, attempt=attempt, spec_hash="h", init=init, state=state,
                           image="i", image_id="sha256:1", exit_code=exit_code, reason="Error" if exit_code else "",
                           started_at="2026-01-01T00:00:00Z")


def _pod(policy: str = "Always", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"uid": "u", "name": "p", "namespace": "default"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a", "image": "i"}], **spec}}


SANDBOX = (SandboxStatus(id="s", uid="u", name="p", namespace="default", ready=True, ip="10.0.0.2"),)


@pytest.mark.parametrize(("policy", "state", "code", "phase"), [
    ("Always", ContainerState.RUNNING, None, "Running"),
    ("Never", ContainerState.EXITED, 0, "Succeeded"),
    ("Never", ContainerState.EXITED, 1, "Failed"),
    ("OnFailure", ContainerState.EXITED, 0, "Succeeded"),
    ("Always", ContainerState.EXITED, 1, "Running"),
])
def test_phase(policy: str, state: ContainerState, code: int | None, phase: str) -> None:
    rp = RuntimePod(uid="u", sandboxes=SANDBOX, containers=(_container("a", state, exit_code=code),))
    status = pod_status(_pod(policy), rp, SyncOutcome(ready={"a0": True}), host_ip="192.0.2.1", previous={})
    assert status["phase"] == phase
    assert status["podIP"] == "10.0.0.2" and status["hostIP"] == "192.0.2.1"


def test_crash_loop_status_and_stable_conditions() -> None:
    rp = RuntimePod(uid="u", sandboxes=SANDBOX, containers=(
        _container("a", ContainerState.EXITED, attempt=0, exit_code=1),
        _container("a", ContainerState.EXITED, attempt=1, exit_code=1)))
    outcome = SyncOutcome(waiting={"a": Waiting(reason="CrashLoopBackOff", message="back-off 10s")})
    first = pod_status(_pod(), rp, outcome, host_ip="h", previous={})
    status = first["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1 and status["restartCount"] == 1
    assert first["phase"] == "Running"
    again = pod_status(_pod(), rp, outcome, host_ip="h", previous=first)
    assert again == first  # nothing changed: identical status, so no write


def test_init_containers_gate_initialized() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "i"}])
    rp = RuntimePod(uid="u", sandboxes=SANDBOX,
                    containers=(_container("init", ContainerState.RUNNING, init=True),))
    status = pod_status(pod, rp, SyncOutcome(), host_ip="h", previous={})
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert status["phase"] == "Pending" and conditions["Initialized"] == "False"


def test_qos_class() -> None:
    def pod(resources: dict[str, Any]) -> dict[str, Any]:
        return {"spec": {"containers": [{"name": "a", "resources": resources}]}}
    assert qos_class(pod({})) == "BestEffort"
    assert qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Guaranteed"
    assert qos_class(pod({"requests": {"cpu": "1"}})) == "Burstable"


async def test_pod_workers_coalesce_and_never_overwrite_a_kill() -> None:
    seen: list[tuple[str, Any]] = []
    gate = asyncio.Event()

    async def sync(pod: dict[str, Any]) -> float | None:
        seen.append(("sync", pod["v"]))
        await gate.wait()
        return None

    async def kill(uid: str, pod: dict[str, Any] | None, grace: float | None) -> None:
        seen.append(("kill", pod["v"] if pod else None))

    workers = PodWorkers(sync=sync, kill=kill, resync_period=60.0)
    pod = {"metadata": {"uid": "u"}, "v": 1}
    workers.update(pod)
    await asyncio.sleep(0.01)  # the first sync is running (blocked on the gate)
    for v in (2, 3, 4):
        workers.update({**pod, "v": v})  # coalesced: only the latest pending update is kept
    workers.kill("u", {**pod, "v": 5})
    workers.update({**pod, "v": 6})  # a pending kill is never overwritten
    gate.set()
    for _ in range(100):
        if workers.uids():
            await asyncio.sleep(0.01)
    assert seen == [("sync", 1), ("kill", 5)]
    await workers.stop()


async def test_stop_ends_a_worker_woken_in_the_same_loop_step() -> None:
    """An update that wakes a waiting worker, then a stop (cancel) before the worker runs: the worker ends.
    With ``asyncio.wait_for`` on Python 3.11 the cancellation was lost and the stop hung (an agent's
    shutdown in CI) until the worker's next sync, and then for good."""
    synced = asyncio.Event()

    async def sync(pod: dict[str, Any]) -> float | None:
        synced.set()
        return None

    async def kill(uid: str, pod: dict[str, Any] | None, grace: float | None) -> None:
        return None

    workers = PodWorkers(sync=sync, kill=kill, resync_period=60.0)
    pod = {"metadata": {"uid": "u"}, "v": 1}
    workers.update(pod)
    await asyncio.wait_for(synced.wait(), 5.0)
    await asyncio.sleep(0.01)  # the worker waits for its next update
    workers.update({**pod, "v": 2})  # sets its wake-up event ...
    stopping = asyncio.create_task(workers.stop())  # ... and the stop cancels it before it runs
    done, _ = await asyncio.wait({stopping}, timeout=5.0)
    if not done:
        stopping.cancel()  # (cancelling the stop's await cancels the worker a second time)
        await asyncio.wait({stopping}, timeout=5.0)
    assert done, "the stop hung: the worker lost its cancellation"
    assert not workers.uids()


def test_node_arch_labels() -> None:
    assert node_arch("x86_64") == "amd64"
    assert node_arch("aarch64") == "arm64"
    assert node_arch("armv7l") == "arm"


def test_podman_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--pod-cidr"):
        PodmanConfig(pod_cidr="10.1.2.0/30")
    with pytest.raises(ConfigError, match="--oci-runtime"):
        PodmanConfig(oci_runtime="kata")
    host = resolve(PodmanConfig(run_dir=tmp_path / "run"), tmp_path / "data")
    write_config(host)
    text = host.containers_conf.read_text()
    assert f'runtime = "{host.oci_runtime}"' in text and f'cgroup_manager = "{host.cgroup_manager}"' in text
    assert 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' in text
    assert str(tmp_path / "data") in host.storage_conf.read_text()
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v1 or hybrid: crun refuses it
        assert host.oci_runtime == "runc"
    if not Path("/run/systemd/system").is_dir():
        assert host.cgroup_manager == "cgroupfs"
    assert len(host.bridge) <= 15


def test_the_kubelet_stops_a_terminating_pod_within_what_is_left_of_its_grace() -> None:
    now = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)

    def marked(deadline: str, grace: int | None) -> dict[str, Any]:
        return {"metadata": {"deletionTimestamp": deadline, "deletionGracePeriodSeconds": grace}}

    assert remaining_grace(marked("2024-05-01T12:00:20Z", 30), now) == 20.0  # 10 s already spent
    assert remaining_grace(marked("2024-05-01T12:01:00Z", 30), now) == 30.0  # never more than the grace
    assert remaining_grace(marked("2024-05-01T11:59:00Z", 30), now) == 1.0  # overdue (or skewed): 1 s
    assert remaining_grace(marked("garbage", 7), now) == 7.0
    assert remaining_grace(marked("2024-05-01T12:00:20Z", 0), now) == FORCED_GRACE_S
    assert forced_grace(None) == FORCED_GRACE_S  # gone from the API while running: a short grace
    assert forced_grace(marked("2024-05-01T12:00:01Z", 30)) <= FORCED_GRACE_S


class _SlowApi:
    """update_status that hangs for one pod until released; the others answer at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.written: list[str] = []

    async def update_status(self, _rtype: Any, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["metadata"]["name"] == "slow":
            await self.release.wait()
        self.written.append(obj["metadata"]["name"])
        return obj


async def test_status_writes_do_not_wait_for_the_slowest_of_a_batch() -> None:
    api = _SlowApi()
    writer = StatusWriter(api)  # type: ignore[arg-type]
    writer.parallel = 2
    for name in ("slow", "a", "b", "c"):
        writer.set({"metadata": {"name": name, "namespace": "ns", "uid": name}}, {"phase": "Running"})
    task = asyncio.create_task(writer.run())
    for _ in range(200):
        if len(api.written) == 3:
            break
        await asyncio.sleep(0.01)
    assert api.written == ["a", "b", "c"]  # one slot stays busy with "slow"; the other keeps going
    api.release.set()
    for _ in range(200):
        if len(api.written) == 4:
            break
        await asyncio.sleep(0.01)
    assert api.written[-1] == "slow" and writer.written("slow") == {"phase": "Running"}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_podman_times_from_a_list_and_an_inspect_agree() -> None:
    # Podman's list gives unix seconds, an inspect RFC 3339 with nanoseconds and the service's offset.
    assert _time(1795937225) == "2026-11-29T07:27:05Z"
    assert _time("2026-11-29T07:27:05.408462174Z") == "2026-11-29T07:27:05Z"
    assert _time("2026-11-29T08:27:05.408462174+01:00") == "2026-11-29T07:27:05Z"
    assert _time("0001-01-01T00:00:00Z") == "" and _time(0) == "" and _time("garbage") == ""
