"""HollowAgents: hollow nodes that also live in time, for the node lifecycle, Job and DaemonSet tests.

On top of ``HollowNodes`` (register Ready nodes, mark bound pods Running/Ready with an IP) each agent:

- renews its Lease in ``kube-node-lease`` every ``lease_interval`` seconds (``HollowNodes``'
  heartbeat), as a kubelet does, unless silenced;
- finishes pods that ask for it: annotation ``hollow.edgek8s.io/run-seconds`` (how long the container
  runs) and ``hollow.edgek8s.io/exit-code`` (0: Succeeded, else Failed), with terminated container
  states as a kubelet reports them;
- can fall silent (``silence``: a powered-off board: no renewals, no status writes, its "containers"
  keep their state locally) and come back (``revive``: posts Ready again, then, as a kubelet does
  on its first relist, kills every local container whose pod is no longer bound to it in the API,
  recording them in ``stale_killed``, and re-reports the pods it still runs);
- terminates pods deleted gracefully (``HollowNodes``), recording them in ``stopped``; a pod evicted
  while its board was away is still terminating in the API when the board returns, so the board
  stops it and issues its final delete, as a kubelet does.

Stateful fake, not a mock: every effect is a real write through a ClusterClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from edgek8s.client.informer import split_key
from edgek8s.client.interface import ClusterClient, Obj
from tests.support.hollow import NODES, PODS, HollowNodes, _now

RUN_SECONDS = "hollow.edgek8s.io/run-seconds"
EXIT_CODE = "hollow.edgek8s.io/exit-code"


class HollowAgents(HollowNodes):
    def __init__(self, client: ClusterClient, names: list[str], *, bind: bool = False,
                 lease_interval: float = 0.2) -> None:
        super().__init__(client, names, bind=bind, heartbeat=lease_interval)
        self.lease_interval = lease_interval
        self.silent: set[str] = set()
        self.local: dict[str, dict[str, str]] = {n: {} for n in names}  # node -> {pod uid: namespace/name}
        self.stale_killed: dict[str, set[str]] = {n: set() for n in names}
        self.stopped: dict[str, set[str]] = {n: set() for n in names}  # pods it terminated (graceful deletion)
        self.finished: dict[str, str] = {}  # uid -> phase
        self._started_at: dict[str, float] = {}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(super().run())
            group.create_task(self._resync_pods())

    async def _resync_pods(self) -> None:
        """A kubelet's status manager: now and then every pod it runs is looked at again."""
        while True:
            await asyncio.sleep(self.lease_interval * 3)
            for name in self.names:
                if name not in self.silent:
                    for key in list(self.local[name].values()):
                        self.queue.add(key)

    def alive(self, name: str) -> bool:
        return name not in self.silent

    def silence(self, name: str) -> None:
        self.silent.add(name)

    async def revive(self, name: str) -> None:
        """The board is back: Ready again, stale containers killed, the pods it still has re-reported."""
        self.silent.discard(name)
        node = await self._client.get(NODES, "", name)
        conditions = [{**c, "status": "True", "reason": "KubeletReady", "message": "hollow node is ready",
                       "lastHeartbeatTime": _now(), "lastTransitionTime": _now()} if c.get("type") == "Ready" else c
                      for c in (node.get("status") or {}).get("conditions") or ()]
        await self._client.update_status(NODES, {**node, "status": {**node["status"], "conditions": conditions}})
        await self.renew_lease(name)
        bound = {p["metadata"]["uid"]: p for p in (await self._client.list(PODS)).items
                 if (p.get("spec") or {}).get("nodeName") == name}
        for uid, key in list(self.local[name].items()):
            pod = bound.get(uid)
            if pod is None:
                self.stale_killed[name].add(key)
                del self.local[name][uid]
            else:
                self.queue.add(key)

    async def _sync(self, key: str) -> None:
        namespace, name = split_key(key)
        pod = self._pods.get(namespace, name)
        if pod is None:
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node in self.silent:
            return  # a dead board writes nothing
        uid = pod["metadata"]["uid"]
        status = pod.get("status") or {}
        if node in self.names and pod["metadata"].get("deletionTimestamp"):
            if self.local[node].pop(uid, None) is not None:  # graceful deletion: stop it, then the final delete
                self.stopped[node].add(key)
            await self._terminate(key, pod)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return  # finished containers stay finished
        if node in self.names and status.get("phase") == "Running":
            await self._running(pod, node, key)
            return
        await super()._sync(key)
        if node in self.names and uid in self.started:
            self.local[node][uid] = key
            self._started_at.setdefault(uid, time.monotonic())
            run_for = _annotation(pod, RUN_SECONDS)
            if run_for is not None:
                self.queue.add_after(key, float(run_for))

    async def _running(self, pod: Obj, node: str, key: str) -> None:
        uid = pod["metadata"]["uid"]
        self.local[node][uid] = key
        started = self._started_at.setdefault(uid, time.monotonic())
        run_for = _annotation(pod, RUN_SECONDS)
        if run_for is not None:
            left = started + float(run_for) - time.monotonic()
            if left > 0:
                self.queue.add_after(key, left)
                return
            await self._finish(pod, node, int(_annotation(pod, EXIT_CODE) or 0))
            return
        ready = next((c for c in pod["status"].get("conditions") or () if c.get("type") == "Ready"), None)
        if ready is None or (ready.get("status") != "True" and ready.get("reason") == "NodeNotReady"):
            # Marked NotReady by the node controller while this board was away: re-report what it sees.
            await self._client.update_status(PODS, {**pod, "status": self._running_status(pod, node)})

    async def _finish(self, pod: Obj, node: str, exit_code: int) -> None:
        now = _now()
        phase = "Succeeded" if exit_code == 0 else "Failed"
        reason = "Completed" if exit_code == 0 else "Error"
        containers = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                       "restartCount": 0, "started": False, "containerID": f"hollow://{pod['metadata']['uid']}",
                       "state": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now,
                                                "finishedAt": now}}} for c in pod["spec"].get("containers") or ()]
        conditions = [{"type": t, "status": "False" if t in ("Ready", "ContainersReady") else "True",
                       "lastProbeTime": None, "lastTransitionTime": now, **({"reason": "PodCompleted"}
                       if t in ("Ready", "ContainersReady") else {})}
                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        status = {**pod["status"], "phase": phase, "conditions": conditions, "containerStatuses": containers}
        await self._client.update_status(PODS, {**pod, "status": status})
        self.finished[pod["metadata"]["uid"]] = phase
        self.local[node].pop(pod["metadata"]["uid"], None)


def _annotation(pod: Obj, key: str) -> Any:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(key)


H = TypeVar("H", bound=HollowNodes)


@contextlib.asynccontextmanager
async def running(hollow: H) -> AsyncIterator[H]:
    """Run ``hollow`` (nodes or agents) for the duration of the block."""
    task = asyncio.create_task(hollow.run())
    try:
        yield hollow
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
