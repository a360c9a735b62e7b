"""ReplicaSet controller: keep ``spec.replicas`` active pods per ReplicaSet, as upstream's replica_set.go.

sync(ns/name), level-triggered over the informers' caches:
1. claim pods: active pods of the namespace controlled by this ReplicaSet (ownerReference uid), adopt
   orphans its selector matches, release ours that it no longer matches (patches pinned to the cached
   resourceVersion: a changed pod is simply re-examined on the next sync);
2. unless expectations of an earlier sync are pending (the cache has not shown its creates/deletes
   yet), create the missing pods in slow-start batches or delete the surplus, preferring pods that are
   unscheduled, pending, not ready, ready for less time, restarted more, newer;
3. write status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, ReplicaFailure condition) when it changed.

Cached objects are never mutated: pods are built from the template by copying.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.events import EventRecorder, rfc3339
from edgek8s.client.informer import (
    Handlers,
    Informer,
    InformerFactory,
    index_by_controller_uid,
    index_orphans_by_namespace,
    key_of,
    split_key,
)
from edgek8s.client.interface import ClusterClient, DeleteOptions, Obj
from edgek8s.controllers.base import (
    Expectations,
    claim,
    controller_ref,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    owner_reference,
    parse_time,
    run_workers,
    slow_start_batch,
)
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.model.selectors import LabelSelector
from edgek8s.registry.patch import clone_json

logger = logging.getLogger(__name__)

PODS = by_id(resource_id("", "pods"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
CONTROLLER_UID = "controller-uid"
ORPHANS = "orphans"
_PHASE_RANK = {"": 0, "Pending": 0, "Unknown": 1, "Running": 2}


def pod_from_template(owner: Obj, template: Obj) -> Obj:
    """A new pod for ``owner`` (copied from its template; the cached owner is not touched)."""
    template_meta = template.get("metadata") or {}
    meta: dict[str, Any] = {
        "generateName": f"{owner['metadata']['name']}-",
        "namespace": owner["metadata"]["namespace"],
        "labels": clone_json(template_meta.get("labels") or {}),
        "ownerReferences": [owner_reference(owner)],
    }
    if template_meta.get("annotations"):
        meta["annotations"] = clone_json(template_meta["annotations"])
    if template_meta.get("finalizers"):
        meta["finalizers"] = list(template_meta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": clone_json(template.get("spec") or {})}


def deletion_order(pods: list[Obj], now: float) -> list[Obj]:
    """Pods in the order upstream deletes them (ActivePods sort): the least useful first."""

    def rank(pod: Obj) -> tuple[Any, ...]:
        spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod.get("metadata") or {}
        ready = is_pod_ready(pod)
        ready_since = 0.0
        if ready:
            for cond in status.get("conditions") or ():
                if cond.get("type") == "Ready":
                    ready_since = parse_time(cond.get("lastTransitionTime")) or 0.0
        restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
        created = parse_time(meta.get("creationTimestamp")) or now
        return (
            bool(spec.get("nodeName")),  # unscheduled first
            _PHASE_RANK.get(str(status.get("phase") or ""), 2),  # pending < unknown < running
            ready,  # not ready first
            -ready_since,  # ready for less time first
            -restarts,  # more restarts first
            -created,  # newer first
        )

    return sorted(pods, key=rank)


def replica_status(rs: Obj, pods: list[Obj], now: float) -> dict[str, Any]:
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully_labeled = sum(
        1 for p in pods if all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v
                               for k, v in template_labels.items())
    )
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_pod_available(p, min_ready, now)),
        "observedGeneration": int((rs.get("metadata") or {}).get("generation") or 0),
    }
    return {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}


class ReplicaSetController:
    name = "replicaset-controller"

    def __init__(self, *, workers: int = 5, burst_replicas: int = 500, clock: Callable[[], float] = time.time) -> None:
        self._workers = workers
        self._burst = burst_replicas
        self._clock = clock

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        sync = _ReplicaSetSync(client, informers, burst=self._burst, clock=self._clock)
        await sync.rs.wait_synced()
        await sync.pods.wait_synced()
        async with asyncio.TaskGroup() as group:
            group.create_task(sync.recorder.run(), name="replicaset-events")
            group.create_task(run_workers(sync.queue, sync.sync, workers=self._workers, name=self.name))


class _ReplicaSetSync:
    """One leadership term of the controller: its queue, expectations and handlers."""

    def __init__(self, client: ClusterClient, informers: InformerFactory, *, burst: int,
                 clock: Callable[[], float]) -> None:
        self.client = client
        self.burst = burst
        self.clock = clock
        self.queue: WorkQueue[str] = WorkQueue(name="replicaset")
        self.expectations = Expectations()
        self.recorder = EventRecorder(client, component="replicaset-controller")
        self.rs: Informer = informers.informer(REPLICASETS)
        self.pods: Informer = informers.informer(PODS, indexers={CONTROLLER_UID: index_by_controller_uid,
                                                                 ORPHANS: index_orphans_by_namespace})
        self.rs.add_handlers(Handlers(on_add=self._enqueue, on_update=self._rs_updated, on_delete=self._rs_deleted))
        self.pods.add_handlers(Handlers(on_add=self._pod_added, on_update=self._pod_updated,
                                        on_delete=self._pod_deleted))

    # --- handlers (cheap: enqueue keys) ---------------------------------------------------------------

    def _enqueue(self, rs: Obj) -> None:
        self.queue.add(key_of(rs))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self._enqueue(new)

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.forget(key_of(rs))
        self._enqueue(rs)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        namespace = pod["metadata"].get("namespace") or ""
        rs = self.rs.get(namespace, str(ref.get("name")))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return key_of(rs)

    def _enqueue_selecting(self, pod: Obj) -> None:
        """An orphan: every ReplicaSet of its namespace whose selector matches may adopt it."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for rs in self.rs.list(meta.get("namespace") or ""):
            selector = (rs.get("spec") or {}).get("selector")
            if selector and LabelSelector.from_dict(selector).matches(labels):
                self._enqueue(rs)

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None and is_pod_active(pod):
            self._enqueue_selecting(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old is new:  # resync: owners are resynced themselves
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if (new_key is not None and new["metadata"].get("deletionTimestamp")
                and not old["metadata"].get("deletionTimestamp")):
            self.expectations.deletion_observed(new_key, new["metadata"]["uid"])
        if old_key is not None and old_key != new_key:
            self.queue.add(old_key)
        if new_key is not None:
            self.queue.add(new_key)
            min_ready = int(((self.rs.get_by_key(new_key) or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready and is_pod_ready(new) and not is_pod_ready(old):
                self.queue.add_after(new_key, min_ready + 1)  # it becomes available then
        elif controller_ref(new) is None and (old_key is not None or old["metadata"].get("labels")
                                              != new["metadata"].get("labels")):
            self._enqueue_selecting(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, pod["metadata"]["uid"])
            self.queue.add(key)

    # --- sync -------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        rs = self.rs.get(namespace, name)
        if rs is None:
            self.expectations.forget(key)
            return
        selector_spec = (rs.get("spec") or {}).get("selector")
        if not selector_spec:
            return  # validation should have refused it; an empty selector would claim every pod
        selector = LabelSelector.from_dict(selector_spec)
        pods = await self._claim_pods(rs, selector)
        failure: Exception | None = None
        if self.expectations.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            failure = await self._manage_replicas(key, rs, pods)
        await self._update_status(rs, pods, failure)
        if failure is not None:
            raise failure

    async def _claim_pods(self, rs: Obj, selector: LabelSelector) -> list[Obj]:
        meta = rs["metadata"]
        # Ours (whatever their labels now) and orphans of the namespace: never a scan of all its pods.
        candidates = [*self.pods.by_index(CONTROLLER_UID, meta["uid"]), *self.pods.by_index(ORPHANS, meta["namespace"])]
        return await claim(self.client, PODS, rs, [p for p in candidates if is_pod_active(p)], selector)

    async def _manage_replicas(self, key: str, rs: Obj, pods: list[Obj]) -> Exception | None:
        wanted = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(pods) - wanted
        if diff < 0:
            count = min(-diff, self.burst)
            self.expectations.expect_creations(key, count)
            template = (rs.get("spec") or {}).get("template") or {}

            async def create() -> None:
                created = await self.client.create(PODS, pod_from_template(rs, template))
                self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

            done, failure = await slow_start_batch(count, 1, create)
            for _ in range(count - done):
                self.expectations.creation_observed(key)  # never coming
            if failure is not None:
                message = getattr(failure, "message", str(failure))
                self.recorder.warning(rs, "FailedCreate", f"Error creating: {message}")
            return failure
        if diff > 0:
            victims = deletion_order(pods, self.clock())[: min(diff, self.burst)]
            self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in victims])
            results = await asyncio.gather(*(self._delete_pod(key, rs, p) for p in victims), return_exceptions=True)
            for result in results:
                if isinstance(result, errors.Fenced) or (isinstance(result, BaseException)
                                                         and not isinstance(result, Exception)):
                    raise result
            failures = [r for r in results if isinstance(r, Exception)]
            return failures[0] if failures else None
        return None

    async def _delete_pod(self, key: str, rs: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["namespace"], meta["name"], options=DeleteOptions(uid=meta["uid"]))
        except errors.NotFound:
            self.expectations.deletion_observed(key, meta["uid"])
            return
        except errors.Fenced:
            raise
        except errors.StatusError as exc:
            self.expectations.deletion_observed(key, meta["uid"])
            self.recorder.warning(rs, "FailedDelete", f"Error deleting: {exc.message}")
            raise
        self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def _update_status(self, rs: Obj, pods: list[Obj], failure: Exception | None) -> None:
        now = self.clock()
        status = replica_status(rs, pods, now)
        current = rs.get("status") or {}
        conditions = [c for c in current.get("conditions") or () if c.get("type") != "ReplicaFailure"]
        if failure is not None and isinstance(failure, errors.StatusError):
            conditions.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                               "reason": "FailedCreate", "message": failure.message})
        if conditions:
            status["conditions"] = conditions
        if status == current:
            return
        try:
            await self.client.update_status(REPLICASETS, {**rs, "status": status})
        except errors.NotFound:
            return
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            self.queue.add_after(key_of(rs), float(min_ready))
