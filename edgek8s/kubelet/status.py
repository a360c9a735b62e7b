"""Pod status from what the runtime reports: phase, conditions, container statuses (upstream's
``generateAPIPodStatus`` and ``getPhase``), and ``StatusWriter``, which writes a pod's status only when
it changed, from its own task, so a slow or unreachable API never stalls a pod worker.

Condition ``lastTransitionTime`` and ``startTime`` are carried over from the previous status, so an
unchanged pod produces an identical status (and no write).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from edgek8s.client.informer import resource_version
from edgek8s.client.interface import ClusterClient
from edgek8s.kubelet.runtime import ContainerState, ContainerStatus, RuntimePod
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
PODS = by_id(resource_id("", "pods"))


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True, kw_only=True)
class Waiting:
    reason: str
    message: str = ""


@dataclass(slots=True, kw_only=True)
class SyncOutcome:
    """What the pod worker decided, beyond what the runtime shows."""

    waiting: dict[str, Waiting] = field(default_factory=dict)  # container name -> why it is not running
    ready: dict[str, bool] = field(default_factory=dict)  # container id -> readiness
    started: dict[str, bool] = field(default_factory=dict)  # container id -> startup probe passed
    pod_ip: str = ""
    failed_message: str = ""


def _terminated(c: ContainerStatus) -> Obj:
    state: Obj = {"exitCode": c.exit_code if c.exit_code is not None else 0, "reason": c.reason or "Error",
                  "containerID": f"podman://{c.id}"}
    if c.started_at:
        state["startedAt"] = c.started_at
    if c.finished_at:
        state["finishedAt"] = c.finished_at
    return state


def _container_status(spec: Obj, rp: RuntimePod, outcome: SyncOutcome, *, init: bool) -> Obj:
    name = str(spec["name"])
    latest = rp.latest(name, init=init)
    status: Obj = {"name": name, "image": spec.get("image", ""), "imageID": "", "ready": False,
                   "restartCount": 0, "started": False, "state": {}, "lastState": {}}
    instances = sorted((c for c in rp.containers if c.name == name and c.init == init), key=lambda c: c.attempt)
    waiting = outcome.waiting.get(name)
    if latest is None:
        status["state"] = {"waiting": {"reason": waiting.reason if waiting else "ContainerCreating",
                                       **({"message": waiting.message} if waiting and waiting.message else {})}}
        return status
    status["restartCount"] = latest.attempt
    status["imageID"] = latest.image_id
    status["containerID"] = f"podman://{latest.id}"
    previous = instances[-2] if len(instances) > 1 else None
    if latest.state == ContainerState.RUNNING:
        status["state"] = {"running": {"startedAt": latest.started_at}}
        status["ready"] = outcome.ready.get(latest.id, False)
        status["started"] = outcome.started.get(latest.id, True)
        if previous is not None and previous.state == ContainerState.EXITED:
            status["lastState"] = {"terminated": _terminated(previous)}
    elif latest.state == ContainerState.EXITED:
        if waiting is not None:  # exited and waiting for its restart (back-off)
            status["state"] = {"waiting": {"reason": waiting.reason, **({"message": waiting.message}
                                                                          if waiting.message else {})}}
            status["lastState"] = {"terminated": _terminated(latest)}
        else:
            status["state"] = {"terminated": _terminated(latest)}
            if previous is not None and previous.state == ContainerState.EXITED:
                status["lastState"] = {"terminated": _terminated(previous)}
    else:
        status["state"] = {"waiting": {"reason": waiting.reason if waiting else "ContainerCreating"}}
    if init:
        status["started"] = latest.state == ContainerState.RUNNING
    return status


def _phase(pod: Obj, statuses: list[Obj], init_statuses: list[Obj]) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    for status in init_statuses:
        terminated = status["state"].get("terminated")
        if terminated and terminated["exitCode"] == 0:
            continue
        last = (status.get("lastState") or {}).get("terminated")
        if policy == "Never" and ((terminated and terminated["exitCode"] != 0) or last):
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state = status["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif status.get("lastState", {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, previous: dict[str, Obj], reason: str = "") -> Obj:
    status = "True" if ok else "False"
    old = previous.get(kind)
    unchanged = old and old.get("status") == status and old.get("lastTransitionTime")
    when = old["lastTransitionTime"] if old and unchanged else now_rfc3339()
    condition: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason and not ok:
        condition["reason"] = reason
    return condition


def pod_status(pod: Obj, rp: RuntimePod, outcome: SyncOutcome, *, host_ip: str, previous: Obj | None = None) -> Obj:
    """The status to report; ``previous`` is the last status computed (default: the pod's own)."""
    spec = pod.get("spec") or {}
    old: Obj = previous if previous is not None else (pod.get("status") or {})
    init_statuses = [_container_status(c, rp, outcome, init=True) for c in spec.get("initContainers") or []]
    statuses = [_container_status(c, rp, outcome, init=False) for c in spec.get("containers") or []]
    phase = "Failed" if outcome.failed_message else _phase(pod, statuses, init_statuses)
    before = {c.get("type"): c for c in old.get("conditions") or []}
    initialized = all("terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0 for s in init_statuses)
    containers_ready = bool(statuses) and all(s["ready"] for s in statuses)
    if phase == "Succeeded":
        containers_ready = False
    not_ready = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
    conditions = [
        _condition("PodReadyToStartContainers", rp.sandbox is not None and rp.sandbox.ready, before),
        _condition("Initialized", initialized, before, "ContainersNotInitialized"),
        _condition("Ready", containers_ready, before, not_ready),
        _condition("ContainersReady", containers_ready, before, not_ready),
        _condition("PodScheduled", True, before),
    ]
    status: Obj = {
        "phase": phase, "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": old.get("startTime") or now_rfc3339(), "containerStatuses": statuses,
        "qosClass": qos_class(pod),
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    pod_ip = outcome.pod_ip or (rp.sandbox.ip if rp.sandbox else "") or old.get("podIP", "")
    if spec.get("hostNetwork"):
        pod_ip = host_ip
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if outcome.failed_message:
        status["message"] = outcome.failed_message
    return status


def qos_class(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get("cpu") and lim.get("memory") and req.get("cpu", lim["cpu"]) == lim["cpu"]
        and req.get("memory", lim["memory"]) == lim["memory"]
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


class StatusWriter:
    """Latest status per pod uid, written by one task; unchanged statuses are never written."""

    def __init__(self, api: ClusterClient, *, retry: float = 2.0) -> None:
        self._api = api
        self._retry = retry
        self._written: dict[str, Obj] = {}  # uid -> the status the API has (as far as we know)
        self._written_rv: dict[str, int] = {}  # uid -> resourceVersion of the pod that status is from
        self._pending: dict[str, tuple[Obj, Obj]] = {}  # uid -> (pod, status)
        self._writing: set[str] = set()  # uids with a write in flight
        self._wake = asyncio.Event()
        self.writes = 0
        self.parallel = 8  # writes in flight: a burst of new pods is not serialised behind Raft round trips

    def seed(self, uid: str, status: Obj, rv: int) -> None:
        """What the API had for ``uid`` at ``rv`` (from a list or watch): an equal status is not rewritten,
        and one someone else changed (e.g. the node lifecycle controller) is written again by the next sync.
        Versions order what is known: a copy older than what a write of ours returned (an echo arriving
        late) is not what the API has, and a write of ours answered after a newer copy was seen (someone
        else wrote after it) leaves that copy in place, or the next sync would not write again."""
        if status and uid not in self._pending and rv >= self._written_rv.get(uid, 0):
            self._written[uid] = status
            self._written_rv[uid] = rv

    def set(self, pod: Obj, status: Obj) -> None:
        uid = pod["metadata"]["uid"]
        if self._written.get(uid) == status:
            self._pending.pop(uid, None)
            return
        self._pending[uid] = (pod, status)
        self._wake.set()

    def forget(self, uid: str) -> None:
        self._written.pop(uid, None)
        self._written_rv.pop(uid, None)
        self._pending.pop(uid, None)

    def written(self, uid: str) -> Obj | None:
        return self._written.get(uid)

    async def _write(self, uid: str, pod: Obj, status: Obj) -> bool:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": meta["name"],
                "namespace": meta.get("namespace", "default"), "uid": uid}, "spec": pod.get("spec"),
                "status": status}
        try:
            stored = await self._api.update_status(PODS, body)
        except errors.NotFound:
            return True  # the pod is gone; its worker will be told
        except errors.StatusError as exc:
            if uid not in self._pending:  # a newer status supersedes this one
                self._pending[uid] = (pod, status)
            logger.debug("status of %s/%s not written: %s", meta.get("namespace"), meta["name"], exc.message)
            return False
        rv = resource_version(stored)
        if rv >= self._written_rv.get(uid, 0):
            self._written[uid] = status
            self._written_rv[uid] = rv
        self.writes += 1
        return True

    async def run(self) -> None:
        """Up to ``parallel`` writes in flight, each started as soon as a slot frees (a burst of new pods
        is not held behind the slowest write of a batch); never two writes of one pod at once."""
        async with asyncio.TaskGroup() as group:
            while True:
                await self._wake.wait()
                self._wake.clear()
                free = self.parallel - len(self._writing)
                for uid in [u for u in self._pending if u not in self._writing][:max(0, free)]:
                    pod, status = self._pending.pop(uid)
                    self._writing.add(uid)
                    group.create_task(self._write_one(uid, pod, status))

    async def _write_one(self, uid: str, pod: Obj, status: Obj) -> None:
        try:
            if not await self._write(uid, pod, status):
                await asyncio.sleep(self._retry)  # the API is failing: this slot backs off
        finally:
            self._writing.discard(uid)
            if self._pending:
                self._wake.set()
