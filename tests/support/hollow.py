"""HollowNodes: a stateful fake for kubelets (as kubemark's hollow nodes), for controller tests.

It registers Ready Node objects and, for every pod bound to one of them, writes what a kubelet would:
phase Running, Ready/ContainersReady/Initialized conditions, container statuses, pod IP. With
``bind=True`` it also binds pending pods round-robin (a stand-in where no scheduler runs). Pods whose
image contains ``hollow/never-ready`` stay Pending (a container that never starts). With
``start_delay``, a pod turns Running only that long after its node first saw it bound, as a container
takes time to pull and start on a real node (a rollout then cannot finish in a few hundred ms). It goes
through a ``ClusterClient`` (in-process or HTTP) like any other component, so everything it does is a
real write through the API path. Nothing is faked below it. A pod being deleted gracefully
(``deletionTimestamp``) on a live hollow node gets the kubelet's final delete (grace 0, uid
precondition) after ``termination_delay`` seconds (its containers "stopping"); a node that is not
``alive`` never finishes it, as a powered-off board would not.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
from typing import Any

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.informer import Handlers, InformerFactory, key_of, split_key
from edgek8s.client.interface import ClusterClient, DeleteOptions, Obj
from edgek8s.controllers.base import run_workers
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

PODS = by_id(resource_id("", "pods"))
NODES = by_id(resource_id("", "nodes"))
LEASES = by_id(resource_id("coordination.k8s.io", "leases"))
UNREADY_IMAGE = "hollow/never-ready"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(name: str, index: int, taints: list[Obj] | None = None) -> Obj:
    capacity = {"cpu": "8", "memory": "16Gi", "pods": "250"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/arch": "amd64",
                                              "kubernetes.io/os": "linux"}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "hollow node is ready", "lastHeartbeatTime": _now(),
                            "lastTransitionTime": _now()}],
            "addresses": [{"type": "InternalIP", "address": f"10.254.0.{index + 1}"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "v1.32.0-hollow",
                         "containerRuntimeVersion": "hollow://1", "osImage": "hollow", "kernelVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
        },
    }


class HollowNodes:
    def __init__(self, client: ClusterClient, names: list[str], *, bind: bool = False,
                 taints: list[Obj] | None = None, heartbeat: float | None = None, start_delay: float = 0.0,
                 termination_delay: float = 0.0) -> None:
        self._client = client
        self._termination_delay = termination_delay
        self._start_delay = start_delay
        self._starting: dict[str, float] = {}  # uid -> loop time its node first saw it bound (with start_delay)
        self._stopping: dict[str, float] = {}  # uid -> loop time its node first saw it terminating
        self.names = names
        self._taints = taints
        self._heartbeat_interval = heartbeat  # renew kube-node-lease Leases as kubelets do (None: never)
        self._bind = bind
        self._round_robin = itertools.cycle(names)
        self._ips = itertools.count(2)
        self.queue: WorkQueue[str] = WorkQueue(name="hollow")
        self.started: set[str] = set()  # uids marked running

    async def register(self) -> None:
        for i, name in enumerate(self.names):
            with contextlib.suppress(errors.AlreadyExists):
                await self._client.create(NODES, node_object(name, i, self._taints))

    async def run(self) -> None:
        await self.register()
        informers = InformerFactory(self._client)
        pods = informers.informer(PODS)
        pods.add_handlers(Handlers(on_add=lambda p: self.queue.add(key_of(p)),
                                   on_update=lambda _o, p: self.queue.add(key_of(p)),
                                   on_delete=lambda p: self._starting.pop(p["metadata"].get("uid", ""), None)))
        self._pods = pods

        async def sync(key: str) -> None:
            await self._sync(key)

        async with asyncio.TaskGroup() as group:
            group.create_task(informers.run())
            group.create_task(run_workers(self.queue, sync, workers=4, name="hollow"))
            if self._heartbeat_interval is not None:
                group.create_task(self._heartbeat(self._heartbeat_interval))

    async def _heartbeat(self, interval: float) -> None:
        """Each node's Lease in kube-node-lease, renewed every ``interval`` (what the node lifecycle
        controller watches to tell a live node from a lost one)."""
        while True:
            for name in self.names:
                if self.alive(name):
                    with contextlib.suppress(errors.StatusError):
                        await self.renew_lease(name)
            await asyncio.sleep(interval)

    def alive(self, name: str) -> bool:
        """Whether node ``name`` heartbeats (a subclass can power a board off)."""
        return True

    async def renew_lease(self, name: str) -> None:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}
        try:
            await self._client.create(LEASES, lease)
        except errors.AlreadyExists:
            await self._client.patch(LEASES, "kube-node-lease", name, {"spec": {"renewTime": now}})

    async def _sync(self, key: str) -> None:
        namespace, name = split_key(key)
        pod = self._pods.get(namespace, name)
        if pod is None:
            return
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(key, pod)
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            if self._bind:
                with contextlib.suppress(errors.Conflict, errors.NotFound):
                    await self._client.bind(namespace, name, node=next(self._round_robin), uid=pod["metadata"]["uid"])
            return
        if node not in self.names or (pod.get("status") or {}).get("phase") == "Running":
            return
        if any(UNREADY_IMAGE in c.get("image", "") for c in pod["spec"].get("containers") or ()):
            return  # a pod that never starts, for progress-deadline tests
        if self._start_delay > 0:
            now = asyncio.get_running_loop().time()
            started = self._starting.setdefault(pod["metadata"]["uid"], now)
            if now < started + self._start_delay:
                self.queue.add_after(key, started + self._start_delay - now)
                return
        await self._client.update_status(PODS, {**pod, "status": self._running_status(pod, node)})
        self.started.add(pod["metadata"]["uid"])
        self._starting.pop(pod["metadata"]["uid"], None)

    async def _terminate(self, key: str, pod: Obj) -> None:
        """The kubelet's part of a graceful deletion: containers stop, then the final delete."""
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.names or not self.alive(str(node)) or not pod["metadata"].get("deletionGracePeriodSeconds"):
            return
        uid = pod["metadata"]["uid"]
        if self._termination_delay > 0:
            now = asyncio.get_running_loop().time()
            since = self._stopping.setdefault(uid, now)
            if now < since + self._termination_delay:
                self.queue.add_after(key, since + self._termination_delay - now)
                return
        self._stopping.pop(uid, None)
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await self._client.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"],
                                      options=DeleteOptions(uid=uid, grace_period_seconds=0))

    def _running_status(self, pod: Obj, node: str) -> dict[str, Any]:
        now = _now()
        conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        containers = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                       "restartCount": 0, "started": True, "containerID": f"hollow://{pod['metadata']['uid']}",
                       "state": {"running": {"startedAt": now}}} for c in pod["spec"].get("containers") or ()]
        n = next(self._ips)
        return {"phase": "Running", "conditions": conditions, "hostIP": "10.254.0.1",
                "podIP": f"10.244.{n // 250}.{n % 250 + 1}", "startTime": now, "containerStatuses": containers,
                "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort")}
