"""Deployment controller: ReplicaSets per pod template, rolled over by strategy (upstream's deployment/).

sync(ns/name), level-triggered over the informers' caches (arithmetic in ``rollout``):
1. claim ReplicaSets (ownerReference uid; adopt matching orphans, release ones the selector dropped);
2. paused, or spec.replicas changed (a scaling event): scale the active ReplicaSets proportionally;
3. RollingUpdate: create/scale the new ReplicaSet up to replicas+maxSurge pods in all, scale old ones
   down while at least replicas-maxUnavailable stay available (unhealthy old replicas first);
   Recreate: scale old ReplicaSets to zero, wait for their pods to go, then scale the new one up;
4. status, ``Available``/``Progressing`` conditions (progressDeadlineSeconds, paused), and history
   beyond revisionHistoryLimit deleted once the rollout is complete.

The new ReplicaSet's name is ``<deployment>-<hash of its template>``: every master computes the same,
so a create retried after a failover is AlreadyExists, never a second ReplicaSet. Each ReplicaSet
carries ``deployment.kubernetes.io/revision``; ``kubectl rollout undo`` copies an old template back,
the controller finds that ReplicaSet and gives it the next revision.

Writes are pinned to the cached resourceVersion: a stale cache gives Conflict and a retry, never a
decision on outdated counts. Cached objects are never mutated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.events import EventRecorder, rfc3339
from edgek8s.client.informer import Handlers, Informer, InformerFactory, index_by_controller_uid, key_of, split_key
from edgek8s.client.interface import ClusterClient, DeleteOptions, Obj
from edgek8s.controllers import rollout as ro
from edgek8s.controllers.base import claim, controller_ref, owner_reference, parse_time, run_workers
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.model.selectors import LabelSelector
from edgek8s.registry.patch import clone_json

logger = logging.getLogger(__name__)

PODS = by_id(resource_id("", "pods"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
DEPLOYMENTS = by_id(resource_id("apps", "deployments"))
CONTROLLER_UID = "controller-uid"


class DeploymentController:
    name = "deployment-controller"

    def __init__(self, *, workers: int = 5, clock: Callable[[], float] = time.time) -> None:
        self._workers = workers
        self._clock = clock

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        sync = _DeploymentSync(client, informers, clock=self._clock)
        for informer in (sync.deployments, sync.rss, sync.pods):
            await informer.wait_synced()
        async with asyncio.TaskGroup() as group:
            group.create_task(sync.recorder.run(), name="deployment-events")
            group.create_task(run_workers(sync.queue, sync.sync, workers=self._workers, name=self.name))


class _DeploymentSync:
    def __init__(self, client: ClusterClient, informers: InformerFactory, *, clock: Callable[[], float]) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[str] = WorkQueue(name="deployment")
        self.recorder = EventRecorder(client, component="deployment-controller")
        self.deployments: Informer = informers.informer(DEPLOYMENTS)
        self.rss: Informer = informers.informer(REPLICASETS, indexers={CONTROLLER_UID: index_by_controller_uid})
        self.pods: Informer = informers.informer(PODS, indexers={CONTROLLER_UID: index_by_controller_uid})
        enqueue = self._enqueue
        self.deployments.add_handlers(Handlers(on_add=enqueue, on_update=lambda _o, d: enqueue(d), on_delete=enqueue))
        self.rss.add_handlers(Handlers(on_add=self._rs_changed, on_update=self._rs_updated,
                                       on_delete=self._rs_changed))
        self.pods.add_handlers(Handlers(on_delete=self._pod_deleted))

    # --- handlers ---------------------------------------------------------------------------------

    def _enqueue(self, deployment: Obj) -> None:
        self.queue.add(key_of(deployment))

    def _owner(self, rs: Obj) -> Obj | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        deployment = self.deployments.get(rs["metadata"].get("namespace") or "", str(ref.get("name")))
        if deployment is None or deployment["metadata"].get("uid") != ref.get("uid"):
            return None
        return deployment

    def _rs_changed(self, rs: Obj) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self._enqueue(owner)
        elif controller_ref(rs) is None:
            labels = (rs.get("metadata") or {}).get("labels") or {}
            for deployment in self.deployments.list(rs["metadata"].get("namespace") or ""):
                selector = (deployment.get("spec") or {}).get("selector")
                if selector and LabelSelector.from_dict(selector).matches(labels):
                    self._enqueue(deployment)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if old is new:
            return
        if controller_ref(old) != controller_ref(new):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the old pods to go: their deletion moves it on."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(pod["metadata"].get("namespace") or "", str(ref.get("name")))
        if rs is not None:
            owner = self._owner(rs)
            if owner is not None and ro.is_recreate(owner):
                self._enqueue(owner)

    # --- sync ---------------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        deployment = self.deployments.get(namespace, name)
        if deployment is None:
            return
        if not (deployment.get("spec") or {}).get("selector"):
            self.recorder.warning(deployment, "SelectingAll", "This deployment is selecting all pods. "
                                  "A non-empty selector is required.")
            return
        rss = await self._claim_replica_sets(deployment)
        if deployment["metadata"].get("deletionTimestamp"):
            new_rs = ro.find_new_replica_set(deployment, rss)
            await self._sync_status(key, deployment, rss, new_rs)
            return
        spec = deployment.get("spec") or {}
        if spec.get("paused") or self._is_scaling_event(deployment, rss):
            await self._sync_scale(key, deployment, rss)
        elif ro.is_recreate(deployment):
            await self._recreate(key, deployment, rss)
        else:
            await self._rolling(key, deployment, rss)

    async def _claim_replica_sets(self, deployment: Obj) -> list[Obj]:
        selector = LabelSelector.from_dict(deployment["spec"]["selector"])
        return await claim(self.client, REPLICASETS, deployment, self.rss.list(deployment["metadata"]["namespace"]),
                           selector)

    def _is_scaling_event(self, deployment: Obj, rss: list[Obj]) -> bool:
        desired = str(ro.replicas(deployment))
        for rs in rss:
            if ro.replicas(rs) == 0:
                continue
            annotated = ro.annotations_of(rs).get(ro.DESIRED_REPLICAS)
            if annotated is not None and annotated != desired:
                return True
        return False

    # --- the new ReplicaSet and revisions ---------------------------------------------------------------

    async def _new_and_old(self, deployment: Obj, rss: list[Obj], *, create: bool
                           ) -> tuple[Obj, Obj | None, list[Obj], bool]:
        """(deployment, new ReplicaSet or None, old ReplicaSets, whether the new one was created now)."""
        new_rs = ro.find_new_replica_set(deployment, rss)
        old = [rs for rs in rss if rs is not new_rs]
        new_revision = max((ro.revision(rs) for rs in old), default=0) + 1
        created_now = False
        min_ready = (deployment.get("spec") or {}).get("minReadySeconds")
        if new_rs is not None:
            wanted = ro.replica_set_annotations(deployment, ro.annotations_of(new_rs), new_revision)
            if wanted != ro.annotations_of(new_rs) or (new_rs.get("spec") or {}).get("minReadySeconds") != min_ready:
                updated = clone_json(new_rs)
                updated["metadata"]["annotations"] = wanted
                if min_ready is None:
                    updated["spec"].pop("minReadySeconds", None)
                else:
                    updated["spec"]["minReadySeconds"] = min_ready
                new_rs = await self.client.update(REPLICASETS, updated)
        elif create:
            new_rs = await self._create_new_rs(deployment, old, new_revision)
            created_now = True
        if new_rs is not None:
            deployment = await self._set_revision(deployment, ro.revision(new_rs))
        return deployment, new_rs, old, created_now

    async def _create_new_rs(self, deployment: Obj, old: list[Obj], new_revision: int) -> Obj:
        spec = deployment["spec"]
        collisions = int((deployment.get("status") or {}).get("collisionCount") or 0)
        pod_hash = ro.template_hash(spec["template"], collisions)
        template = clone_json(spec["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[ro.POD_TEMPLATE_HASH] = pod_hash
        selector = clone_json(spec["selector"])
        selector.setdefault("matchLabels", {})[ro.POD_TEMPLATE_HASH] = pod_hash
        name = f"{deployment['metadata']['name']}-{pod_hash}"
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                         "labels": clone_json(template["metadata"]["labels"]),
                         "annotations": ro.replica_set_annotations(deployment, {}, new_revision),
                         "ownerReferences": [owner_reference(deployment)]},
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        if spec.get("minReadySeconds") is not None:
            rs["spec"]["minReadySeconds"] = spec["minReadySeconds"]
        rs["spec"]["replicas"] = ro.new_rs_replicas(deployment, old, rs)
        try:
            created = await self.client.create(REPLICASETS, rs)
        except errors.AlreadyExists:
            existing = await self.client.get(REPLICASETS, rs["metadata"]["namespace"], name)
            ref = controller_ref(existing)
            if (ref is not None and ref.get("uid") == deployment["metadata"]["uid"]
                    and ro.equal_ignore_hash(existing["spec"].get("template") or {}, spec["template"])):
                return existing  # ours, from an earlier attempt (or an earlier leader)
            status = clone_json(deployment.get("status") or {})
            status["collisionCount"] = collisions + 1
            await self.client.update_status(DEPLOYMENTS, {**deployment, "status": status})
            raise errors.Conflict(f"hash collision for ReplicaSet {name}; retrying with a new hash") from None
        self.recorder.normal(deployment, "ScalingReplicaSet",
                             f"Scaled up replica set {name} from 0 to {created['spec']['replicas']}")
        return created

    async def _set_revision(self, deployment: Obj, revision: int) -> Obj:
        if ro.annotations_of(deployment).get(ro.REVISION) == str(revision):
            return deployment
        updated = clone_json(deployment)
        updated["metadata"].setdefault("annotations", {})[ro.REVISION] = str(revision)
        result: Obj = await self.client.update(DEPLOYMENTS, updated)
        return result

    async def _scale(self, deployment: Obj, rs: Obj, count: int) -> Obj:
        if ro.replicas(rs) == count and ro.annotations_of(rs).get(ro.DESIRED_REPLICAS) == str(ro.replicas(deployment)):
            return rs
        updated = clone_json(rs)
        before = ro.replicas(rs)
        updated["spec"]["replicas"] = count
        updated["metadata"]["annotations"] = ro.replicas_annotations(deployment, ro.annotations_of(rs))
        result: Obj = await self.client.update(REPLICASETS, updated)
        if before != count:
            direction = "up" if count > before else "down"
            self.recorder.normal(deployment, "ScalingReplicaSet",
                                 f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {count}")
        return result

    async def _scale_all(self, deployment: Obj, rss: list[Obj], targets: dict[str, int]) -> list[Obj]:
        """Scale the named ReplicaSets; returns the list with the written objects in place."""
        result = []
        for rs in rss:
            name = rs["metadata"]["name"]
            result.append(await self._scale(deployment, rs, targets[name]) if name in targets else rs)
        return result

    # --- strategies -----------------------------------------------------------------------------------

    async def _rolling(self, key: str, deployment: Obj, rss: list[Obj]) -> None:
        deployment, new_rs, old, created_now = await self._new_and_old(deployment, rss, create=True)
        assert new_rs is not None
        desired = ro.replicas(deployment)
        if ro.replicas(new_rs) != desired:
            all_rss = [*old, new_rs]
            target = desired if ro.replicas(new_rs) > desired else ro.new_rs_replicas(deployment, all_rss, new_rs)
            if target != ro.replicas(new_rs):
                new_rs = await self._scale(deployment, new_rs, target)
                await self._sync_status(key, deployment, [*old, new_rs], new_rs, created_now=created_now)
                return
        if sum(ro.replicas(rs) for rs in old) > 0:
            budget = ro.old_scale_down_budget([*old, new_rs], new_rs, deployment)
            if budget > 0:
                cleanup = ro.cleanup_unhealthy([rs for rs in old if ro.replicas(rs) > 0], budget)
                old = await self._scale_all(deployment, old, cleanup)
                downs = ro.scale_down_old([*old, new_rs], [rs for rs in old if ro.replicas(rs) > 0], deployment)
                old = await self._scale_all(deployment, old, downs)
                if cleanup or downs:
                    await self._sync_status(key, deployment, [*old, new_rs], new_rs, created_now=created_now)
                    return
        await self._finish(key, deployment, old, new_rs, created_now)

    async def _recreate(self, key: str, deployment: Obj, rss: list[Obj]) -> None:
        deployment, new_rs, old, _ = await self._new_and_old(deployment, rss, create=False)
        active_old = [rs for rs in old if ro.replicas(rs) > 0]
        if active_old:
            old = await self._scale_all(deployment, old, {rs["metadata"]["name"]: 0 for rs in active_old})
            await self._sync_status(key, deployment, [*old, *([new_rs] if new_rs else [])], new_rs)
            return
        if any((p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
               for rs in old for p in self.pods.by_index(CONTROLLER_UID, rs["metadata"]["uid"])):
            await self._sync_status(key, deployment, [*old, *([new_rs] if new_rs else [])], new_rs)
            return  # old pods still running: wait for their deletion events
        created_now = False
        if new_rs is None:
            deployment, new_rs, old, created_now = await self._new_and_old(deployment, rss, create=True)
            assert new_rs is not None
        if ro.replicas(new_rs) != ro.replicas(deployment):
            new_rs = await self._scale(deployment, new_rs, ro.replicas(deployment))
        await self._finish(key, deployment, old, new_rs, created_now)

    async def _sync_scale(self, key: str, deployment: Obj, rss: list[Obj]) -> None:
        """Paused or scaled: resize without rolling (upstream's sync + scale)."""
        deployment, new_rs, old, _ = await self._new_and_old(deployment, rss, create=False)
        all_rss = [*old, *([new_rs] if new_rs is not None else [])]
        active = [rs for rs in all_rss if ro.replicas(rs) > 0]
        desired = ro.replicas(deployment)
        if len(active) <= 1:
            target = active[0] if active else (new_rs or max(old, key=ro.created, default=None))
            if target is not None:
                scaled = await self._scale(deployment, target, desired)
                all_rss = [scaled if rs is target else rs for rs in all_rss]
        elif new_rs is not None and ro.replicas(new_rs) == desired and ro.status_of(new_rs, "availableReplicas") \
                == desired:
            all_rss = await self._scale_all(deployment, all_rss, {rs["metadata"]["name"]: 0 for rs in active
                                                                  if rs is not new_rs})
        else:
            all_rss = await self._scale_all(deployment, all_rss, ro.proportional_scale(deployment, active))
        new_rs = next((rs for rs in all_rss if new_rs is not None and rs["metadata"]["uid"]
                       == new_rs["metadata"]["uid"]), None)
        if (deployment.get("spec") or {}).get("paused"):
            await self._cleanup_history(deployment, [rs for rs in all_rss if rs is not new_rs])
        await self._sync_status(key, deployment, all_rss, new_rs)

    async def _finish(self, key: str, deployment: Obj, old: list[Obj], new_rs: Obj, created_now: bool) -> None:
        all_rss = [*old, new_rs]
        if ro.is_complete(deployment, ro.deployment_status(deployment, all_rss, new_rs)):
            await self._cleanup_history(deployment, old)
        await self._sync_status(key, deployment, all_rss, new_rs, created_now=created_now)

    async def _cleanup_history(self, deployment: Obj, old: list[Obj]) -> None:
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        for rs in ro.history_to_delete(old, int(limit)):
            meta = rs["metadata"]
            try:
                await self.client.delete(REPLICASETS, meta["namespace"], meta["name"],
                                         options=DeleteOptions(uid=meta["uid"], resource_version=int(
                                             meta["resourceVersion"])))
            except errors.Fenced:
                raise
            except (errors.NotFound, errors.Conflict):
                continue

    # --- status ----------------------------------------------------------------------------------------

    async def _sync_status(self, key: str, deployment: Obj, all_rss: list[Obj], new_rs: Obj | None, *,
                           created_now: bool = False) -> None:
        now = self.clock()
        stamp = rfc3339(now)
        spec = deployment.get("spec") or {}
        status = ro.deployment_status(deployment, all_rss, new_rs)
        current = deployment.get("status") or {}
        if current.get("conditions"):
            status["conditions"] = clone_json(current["conditions"])
        if int(status.get("availableReplicas") or 0) >= ro.min_available(deployment):
            ro.set_condition(status, "Available", "True", "MinimumReplicasAvailable",
                             "Deployment has minimum availability.", stamp)
        else:
            ro.set_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.", stamp)
        deadline = spec.get("progressDeadlineSeconds")
        progressing = ro.get_condition(status, "Progressing")
        rs_name = "" if new_rs is None else new_rs["metadata"]["name"]
        complete = ro.is_complete(deployment, status)
        requeue_after: float | None = None
        if spec.get("paused"):
            if progressing is None or progressing.get("reason") != "DeploymentPaused":
                ro.set_condition(status, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
        elif deadline is None:
            ro.remove_condition(status, "Progressing")
        elif created_now:
            ro.set_condition(status, "Progressing", "True", "NewReplicaSetCreated",
                             f'Created new replica set "{rs_name}"', stamp)
            requeue_after = float(deadline)
        elif complete:
            ro.set_condition(status, "Progressing", "True", "NewReplicaSetAvailable",
                             f'ReplicaSet "{rs_name}" has successfully progressed.', stamp)
        elif progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
            pass  # stays failed until the template changes or progress resumes below
        elif ro.is_progressing(deployment, status) or progressing is None or progressing.get("reason") in (
                "DeploymentPaused", "DeploymentResumed"):
            ro.set_condition(status, "Progressing", "True", "ReplicaSetUpdated",
                             f'ReplicaSet "{rs_name}" is progressing.', stamp)
            for cond in status["conditions"]:
                if cond["type"] == "Progressing":
                    cond["lastUpdateTime"] = stamp  # progress was made now: the deadline restarts
            requeue_after = float(deadline)
        else:
            since = parse_time(progressing.get("lastUpdateTime")) or now
            if since + float(deadline) <= now:
                ro.set_condition(status, "Progressing", "False", "ProgressDeadlineExceeded",
                                 f'ReplicaSet "{rs_name}" has timed out progressing.', stamp)
                self.recorder.warning(deployment, "ProgressDeadlineExceeded",
                                      f'ReplicaSet "{rs_name}" has timed out progressing.')
            else:
                requeue_after = since + float(deadline) - now
        if (progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded"
                and ro.is_progressing(deployment, status) and not spec.get("paused")):
            ro.set_condition(status, "Progressing", "True", "ReplicaSetUpdated",
                             f'ReplicaSet "{rs_name}" is progressing.', stamp)
        if status != current:
            try:
                await self.client.update_status(DEPLOYMENTS, {**deployment, "status": status})
            except errors.NotFound:
                return
        if requeue_after is not None and not complete:
            self.queue.add_after(key, requeue_after + 1.0)
