"""The kubelet: the pods bound to this node, kept running through a ContainerRuntime.

```
 API (list+watch pods with spec.nodeName=<node>) ──┐            local state (pods, configmaps, secrets)
                                                   ├─► desired ─► PodWorkers (one task per uid) ─► PodSyncer
 relist of the runtime every relist_period ────────┘      ▲                                        │
   (a changed container wakes its pod's worker;           └──── probes (liveness/readiness) ◄──────┘
    a runtime pod with no desired pod is killed)                  StatusWriter ─► API (only changes)
```
Graceful deletion: a pod with ``deletionTimestamp`` leaves the desired set at once (nothing restarts
it, not even autonomy mode after a restart: it is saved locally as terminating); its worker stops the
containers within the remaining grace (``termination``) and then issues the final delete (grace 0,
uid precondition) that removes it from the API.

Edge autonomy: desired pods are saved locally before any container is created for them, so after a
restart with every master unreachable the agent restores them from disk, and a runtime pod absent from
both the API and the local state is an orphan for certain. When the API answers again, a fresh list
replaces the desired set: pods deleted meanwhile are killed, healthy ones are left alone (sync_pod is
idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from edgek8s._util.backoff import Backoff
from edgek8s._util.memory import release_free_memory
from edgek8s._util.supervise import keep_running
from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import Handlers, Informer, resource_version, without_managed_fields
from edgek8s.client.interface import ClusterClient, DeleteOptions
from edgek8s.config import AgentConfig
from edgek8s.kubelet.local_state import LocalState
from edgek8s.kubelet.node_status import NodeStatusManager
from edgek8s.kubelet.pod_sync import PodSyncer, RuntimeCache
from edgek8s.kubelet.pod_workers import PodWorkers
from edgek8s.kubelet.probes import ProbeManager
from edgek8s.kubelet.runtime import ContainerRuntime, ContainerState, RuntimeFailure, RuntimePod
from edgek8s.kubelet.sources import ObjectSource
from edgek8s.kubelet.status import PODS, StatusWriter
from edgek8s.kubelet.termination import forced_grace, is_terminating, remaining_grace
from edgek8s.kubelet.volumes import VolumeManager
from edgek8s.model import errors

logger = logging.getLogger(__name__)
Obj = dict[str, Any]


def _uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


class Kubelet:
    def __init__(self, config: AgentConfig, api: ClusterClient, runtime: ContainerRuntime, *, node_ip: str) -> None:
        self.config = config
        self.api = api
        self.runtime = runtime
        self.node_ip = node_ip
        self.local = LocalState(config.data_dir / "state")
        self.cache = RuntimeCache()
        self.source = ObjectSource(api, self.local)
        self.events = EventRecorder(api, component="kubelet", host=config.node_name)
        self.status = StatusWriter(api)
        self.probes = ProbeManager(runtime, self._probe_changed, self._probe_failed)
        self.volumes = VolumeManager(config.data_dir / "pods", self.source)
        self.syncer = PodSyncer(runtime=runtime, volumes=self.volumes, source=self.source, probes=self.probes,
                                backoff=Backoff(config.backoff_initial, config.backoff_max), events=self.events,
                                status=self.status, host_ip=lambda: self.node_ip, cache=self.cache)
        self.workers = PodWorkers(sync=self._sync, kill=self._kill, resync_period=config.resync_period)
        self.node = NodeStatusManager(config, api, node_ip=node_ip, runtime_version=runtime.version,
                                      images=self._node_images, on_disk_pressure=self.collect_garbage)
        self.desired: dict[str, Obj] = {}
        self.terminating: dict[str, float] = {}  # uid -> grace its pending or running kill was given
        self.runtime_pods: dict[str, RuntimePod] = {}
        self._images_reported: list[Obj] = []
        self._snapshot: dict[str, tuple[tuple[str, str, int | None], ...]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.pods_seen = asyncio.Event()
        # Only this node's pods; informer handlers only queue (they run inside the informer's task). Status
        # writes send only spec and status, so the pods' managedFields (half their memory) are not kept.
        self.pods = Informer(api, PODS, field_selector=f"spec.nodeName={config.node_name}",
                             resync=config.resync_period, transform=without_managed_fields)
        self._changes: asyncio.Queue[tuple[str, Obj]] = asyncio.Queue()
        self.pods.add_handlers(Handlers(on_add=lambda pod: self._changes.put_nowait(("set", pod)),
                                        on_update=self._pod_updated,
                                        on_delete=lambda pod: self._changes.put_nowait(("delete", pod))))

    def _pod_updated(self, old: Obj, pod: Obj) -> None:
        if _uid(old) != _uid(pod):
            # A relist after the watch expired: the name was deleted and taken by a new pod meanwhile. The
            # informer (keyed by name) calls that an update; the old pod must still be stopped.
            self._changes.put_nowait(("delete", old))
        self._changes.put_nowait(("set", pod))

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(RuntimeFailure):
            # Before any worker: what already runs is adopted, never duplicated.
            await self.relist(reconcile=False)
        for pod in await self.local.load_all("pods"):
            if is_terminating(pod):  # it was being deleted: finish that, never run it again
                self._terminate(pod)
                continue
            self.desired[_uid(pod)] = pod
            self.status.seed(_uid(pod), pod.get("status") or {}, resource_version(pod))
            self.workers.update(pod)
        if self.desired:
            logger.info("restored %d pods from local state", len(self.desired))
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "kubelet-informer": self.pods.run, "kubelet-pods": self._apply_changes,
            "kubelet-first-sync": self._first_sync,
            "kubelet-relist": self._relist_loop, "kubelet-status": self.status.run,
            "kubelet-events": self.events.run, "kubelet-register": self.node.register,
            "kubelet-node-status": self.node.status_loop, "kubelet-lease": self.node.lease_loop,
        }
        for name, loop in loops.items():  # a loop that raises is logged and restarted, never lost silently
            self._tasks.append(asyncio.create_task(keep_running(name, loop, logger=logger), name=name))

    async def stop(self) -> None:
        """Stop the agent's loops; pods keep running (a restarted agent adopts them)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.workers.stop()
        await self.probes.stop()

    # -- desired state -----------------------------------------------------------------------------

    async def _set_desired(self, pod: Obj) -> None:
        uid = _uid(pod)
        if is_terminating(pod):
            newly = uid not in self.terminating
            # Out of the desired set (its kill pending) before the save awaits: a relist or probe wake-up
            # meanwhile would otherwise sync the old spec, and its save, called after this one, would win
            # and leave a running pod on disk for a restart during an outage to run again.
            self._terminate(pod)
            if newly:
                await self.local.save("pods", pod)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and uid not in self.desired:
            return  # finished before this agent knew it; nothing to run
        self.desired[uid] = pod
        self.status.seed(uid, pod.get("status") or {}, resource_version(pod))
        self.workers.update(pod)

    def _terminate(self, pod: Obj) -> None:
        """Stop a deleted pod within its remaining grace; a later, shorter grace (a second delete) shortens
        the kill under way, or replaces the one still queued."""
        uid = _uid(pod)
        self.desired.pop(uid, None)
        grace = remaining_grace(pod)
        if uid in self.terminating and self.terminating[uid] <= grace:
            return
        self.terminating[uid] = grace
        if not self.syncer.shorten_grace(uid, grace):
            self.workers.kill(uid, pod, grace=grace)

    async def _forget(self, uid: str, pod: Obj | None) -> None:
        """The pod is gone from the API (final delete, force delete, deleted while away)."""
        known = self.desired.pop(uid, None)
        if uid in self.terminating:  # usually the echo of our own final delete; else a force delete
            self.syncer.shorten_grace(uid, forced_grace(pod))  # of a pod being stopped: its kill hurries
            return
        if known is None and uid not in self.workers.uids() and uid not in self.cache.pods:
            return  # nothing of it runs here (a relist would still catch a leftover)
        grace = forced_grace(pod)
        self.terminating[uid] = grace
        self.workers.kill(uid, pod, grace=grace)

    async def _first_sync(self) -> None:
        """Once the API has answered a list: pods restored from local state that it no longer has were
        deleted while this agent was down or cut off (the informer never had them, so never says so)."""
        await self.pods.wait_synced()
        self._changes.put_nowait(("synced", {}))

    async def _apply_changes(self) -> None:
        """Informer changes, in order, handed to the pods' workers (each saves its pod locally first)."""
        while True:
            kind, pod = await self._changes.get()
            if kind == "synced":
                known = {_uid(p) for p in self.pods.list()}
                for uid in [u for u in self.desired if u not in known]:
                    gone = self.desired[uid]
                    logger.info("pod %s/%s is gone from the API; stopping it", gone["metadata"].get("namespace"),
                                gone["metadata"]["name"])
                    await self._forget(uid, gone)
                    await self._delete_local(uid, gone)
                continue
            if kind == "delete":
                await self._forget(_uid(pod), pod)
                await self._delete_local(_uid(pod), pod)
                continue
            pod = {"apiVersion": "v1", "kind": "Pod", **pod}  # the cache's object is never mutated
            await self._set_desired(pod)
            self.pods_seen.set()

    # -- workers -----------------------------------------------------------------------------------

    async def _sync(self, pod: Obj) -> float | None:
        # Saved by the pod's own worker, before any container is created for it: saves of different pods
        # run side by side, and one pod's fsync never holds up the informer's next change (measured: two
        # fsyncs per save, one save per status change, in one queue, were a serial stage of pod startup).
        if _uid(pod) in self.terminating:
            return None  # a worker that took this pod just before its kill was queued: the kill comes next
        await self.local.save("pods", pod)
        try:
            return (await self.syncer.sync_pod(pod)).requeue_after
        except RuntimeFailure as exc:
            logger.warning("sync of pod %s/%s: %s", pod["metadata"].get("namespace"), pod["metadata"]["name"], exc)
            return 2.0

    async def _kill(self, uid: str, pod: Obj | None, grace: float | None) -> None:
        try:
            await self._kill_and_finish(uid, pod, grace)
        finally:
            self.terminating.pop(uid, None)

    async def _kill_and_finish(self, uid: str, pod: Obj | None, grace: float | None) -> None:
        await self.syncer.kill_pod(uid, pod, grace=grace)
        self.status.forget(uid)
        if pod is not None:
            meta = pod["metadata"]
            await self._delete_local(uid, pod)
            if is_terminating(pod):  # graceful deletion: the kubelet has the last word
                # Unreachable masters: the informer's resync brings the pod back here and this is retried.
                with contextlib.suppress(errors.StatusError):
                    await self.api.delete(PODS, str(meta.get("namespace")), meta["name"],
                                          options=DeleteOptions(uid=uid, grace_period_seconds=0))

    async def _delete_local(self, uid: str, pod: Obj) -> None:
        """Remove ``pod``'s local record, unless its name already belongs to a newer pod: records are kept by
        namespace and name, and a pod force-deleted and created again has its new uid's record saved by its
        own worker, often before the old pod's kill ends (a restart during an outage would otherwise kill
        the new pod as an orphan). The informer's cache knows the newer pod before the desired set does."""
        meta = pod["metadata"]
        namespace, name = str(meta.get("namespace", "")), str(meta["name"])
        current = self.pods.get(namespace, name)
        if current is not None and _uid(current) != uid:
            return
        await self.local.delete("pods", namespace, name)

    def _probe_failed(self, uid: str, kind: str, message: str) -> None:
        pod = self.desired.get(uid)
        if pod is not None:  # repeats aggregate into one Event's count
            what = {"livenessProbe": "Liveness", "readinessProbe": "Readiness", "startupProbe": "Startup"}[kind]
            self.events.event(pod, "Warning", "Unhealthy", f"{what} probe failed: {message.strip()[:200]}")

    def _probe_changed(self, uid: str) -> None:
        pod = self.desired.get(uid)
        if pod is not None:
            self.workers.update(pod)

    # -- relist (PLEG) -----------------------------------------------------------------------------

    async def relist(self, *, reconcile: bool = True) -> None:
        """One list of the runtime: the cache syncs read, wake-ups for pods whose containers changed, and
        (``reconcile``) kills of runtime pods no desired pod owns."""
        started = time.monotonic()
        pods = await self.runtime.list_pods()
        current = {rp.uid: rp for rp in pods}
        self.cache.pods = dict(current)
        self.cache.listed_at = started
        if not reconcile:
            return
        self.node.runtime_ok = True
        for uid, rp in current.items():
            snapshot = tuple(sorted((c.id, c.state.value, c.exit_code) for c in rp.containers))
            snapshot += tuple((s.id, str(s.ready), None) for s in rp.sandboxes)
            changed = self._snapshot.get(uid) != snapshot
            self._snapshot[uid] = snapshot
            if uid in self.desired:
                if changed:
                    self.workers.update(self.desired[uid])
            elif uid not in self.workers.uids():
                logger.info("removing runtime pod %s: no such pod on this node", uid)
                self.workers.kill(uid, None, grace=2.0)
        for uid in [u for u in self._snapshot if u not in current]:
            del self._snapshot[uid]
            if uid in self.desired:
                self.workers.update(self.desired[uid])  # its sandbox vanished: recreate
        self.runtime_pods = current

    async def _relist_loop(self) -> None:
        """A full relist every ``relist_period``; between them, container starts and deaths the runtime
        reports wake their pod's worker at once (with a fresh read of that pod)."""
        while True:
            try:
                await self.relist()
            except RuntimeFailure as exc:
                self.node.runtime_ok = False
                logger.warning("relist failed: %s", exc)
            release_free_memory()
            deadline = time.monotonic() + self.config.relist_period
            while (left := deadline - time.monotonic()) > 0:
                try:
                    changed = await self.runtime.wait_changes(left)
                except RuntimeFailure:
                    changed = set()
                    await asyncio.sleep(left)
                for uid in changed:
                    if uid in self.desired:
                        self.syncer.invalidate(uid)
                        self.workers.update(self.desired[uid])

    # -- images and garbage ------------------------------------------------------------------------

    async def _node_images(self) -> list[Obj]:
        """The node status's image list; a failed list (Podman answers 500 while an image is being loaded or
        removed) keeps the last one, so a passing error costs no status write."""
        try:
            images = await self.runtime.list_images()
        except RuntimeFailure:
            return self._images_reported
        images.sort(key=lambda i: i.size, reverse=True)
        self._images_reported = [{"names": [*i.names, i.id][:5], "sizeBytes": i.size} for i in images[:50]]
        return self._images_reported

    async def collect_garbage(self) -> None:
        """Under disk pressure: remove exited containers of pods that no longer run, then unused images."""
        in_use = {c.image_id for rp in self.runtime_pods.values() for c in rp.containers}
        for rp in self.runtime_pods.values():
            for c in rp.containers:
                newest = rp.latest(c.name, init=c.init)
                if c.state == ContainerState.EXITED and newest is not None and newest.id != c.id:
                    with contextlib.suppress(RuntimeFailure):
                        await self.runtime.remove_container(c.id)
        try:
            images = await self.runtime.list_images()
        except RuntimeFailure:
            return  # the next check under disk pressure tries again
        for image in images:
            # The pods wanted now, not before the awaits above: a pod that arrived meanwhile may need an
            # image nothing ran yet, and an edge node without a registry could never get it back.
            wanted = {str(c.get("image")) for pod in self.desired.values()
                      for c in [*(pod["spec"].get("containers") or []), *(pod["spec"].get("initContainers") or [])]}
            keep = any(n in wanted or "podman-pause" in n for n in image.names)
            if image.id in in_use or keep:
                continue
            with contextlib.suppress(RuntimeFailure):
                await self.runtime.remove_image(image.id)
                logger.info("image GC removed %s", ", ".join(image.names) or image.id[:12])
