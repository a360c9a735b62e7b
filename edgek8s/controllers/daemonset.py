"""DaemonSet sync: one pod per node that should run it, rolling updates, status counts. Pure.

``sync_daemon_set(ds, nodes, pods, now)`` returns the Plan for one DaemonSet given every Node and
the pods it controls (as cached). Upstream's ``pkg/controller/daemon``:

- A node *should run* the daemon when the template's nodeSelector and required node affinity match
  it and it has no untolerated NoSchedule/NoExecute taint; a pod already there *may continue* unless
  a NoExecute taint is untolerated. ``unschedulable`` (cordon) does not keep daemons off, as upstream.
- Placement: each pod carries a required node affinity ``matchFields metadata.name In [node]``
  (upstream since 1.12) instead of ``spec.nodeName``, so the scheduler still checks resources and
  host ports: a daemon that does not fit stays Pending with a reason ``kubectl describe`` shows,
  rather than being created straight onto a kubelet that rejects it, fails, and is recreated in a loop.
  Pods get the daemon tolerations upstream adds (not-ready/unreachable NoExecute without a limit,
  pressure and unschedulable NoSchedule), so a daemon is never evicted from its own node.
- Per node: no pod -> create one; failed pods -> delete them (the next sync recreates, rate limited by
  the runner's backoff); more than one -> keep the oldest, delete the rest.
- RollingUpdate: pods whose ``controller-revision-hash`` differs from the template's are old. With
  maxSurge = 0 delete old pods while at most maxUnavailable nodes lack an available pod (unavailable old
  pods first); with maxSurge > 0 create the new pod beside an old one and delete the old once the new is
  available. OnDelete replaces nothing.

Invariants: never mutates its inputs; at most ``burst`` creates per sync (slow start is the runner's
job); the status write is skipped when nothing changed.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s._util.workqueue import ExponentialBackoff
from edgek8s.client.informer import Handlers, Informer, InformerFactory
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import (
    CONTROLLER_REVISIONS,
    DAEMON_SETS,
    NODES,
    PODS,
    Create,
    Delete,
    Emit,
    Plan,
    Update,
)
from edgek8s.controllers.base import enqueue_handlers
from edgek8s.controllers.placement import node_matches, node_taints, required_node_terms, untolerated
from edgek8s.controllers.revisions import HASH_LABEL, sync_history
from edgek8s.controllers.runner import CONTROLLER_UID, PlanLoop, controller_index, enqueue_all, owned_handlers
from edgek8s.model.resources import by_id

_FAILURE_MEMORY = 900.0  # seconds after its last retry that a node's failure count is forgotten
_NO_EXECUTE = ("NoExecute",)
_NO_SCHEDULE_OR_EXECUTE = ("NoSchedule", "NoExecute")
_DAEMON_TOLERATIONS: tuple[tuple[str, str], ...] = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def _daemon_tolerations(pod_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    tolerations = [dict(t) for t in pod_spec.get("tolerations") or ()]
    extra = list(_DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        extra.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in extra:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    return tolerations


def should_run(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run a new daemon pod here, may an existing one continue) for ``node``."""
    if not node_matches(pod_spec, node):
        return False, False
    tolerations = _daemon_tolerations(pod_spec)
    taints = node_taints(node)
    if untolerated(taints, tolerations, _NO_EXECUTE):
        return False, False
    if untolerated(taints, tolerations, _NO_SCHEDULE_OR_EXECUTE):
        return False, True
    return True, True


def _node_affinity_for(pod_spec: dict[str, Any], node_name: str) -> None:
    """Pin ``pod_spec`` to ``node_name``: replace the required terms by matchFields on the name."""
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    # Upstream ReplaceDaemonSetPodNodeNameNodeAffinity: the template's own label terms were already
    # checked against this node, so one term naming the node is equivalent and unambiguous.
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
        ]
    }


def target_node(pod: Mapping[str, Any]) -> str:
    """The node a daemon pod is for: its nodeName once bound, else the one its affinity names."""
    node_name = str(p.spec(pod).get("nodeName") or "")
    if node_name:
        return node_name
    for term in required_node_terms(p.spec(pod)) or ():
        for field in term.get("matchFields") or ():
            values = list(field.get("values") or ())
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


def new_pod(ds: Mapping[str, Any], node_name: str, revision: str) -> dict[str, Any]:
    ref = p.controller_reference(ds, api_version="apps/v1", kind="DaemonSet")
    pod = p.pod_from_template(
        p.spec(ds).get("template") or {},
        owner_ref=ref,
        namespace_=p.namespace(ds),
        generate_name=f"{p.name(ds)}-",
        labels={HASH_LABEL: revision},
    )
    _node_affinity_for(pod["spec"], node_name)
    pod["spec"]["tolerations"] = _daemon_tolerations(pod["spec"])
    return pod


def _revision(pod: Mapping[str, Any]) -> str:
    return str((p.meta(pod).get("labels") or {}).get(HASH_LABEL) or "")


def _delete(pod: Mapping[str, Any]) -> Delete:
    return Delete(resource=PODS, namespace=p.namespace(pod), name=p.name(pod), uid=p.uid(pod))


def sync_daemon_set(
    ds: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
    *,
    burst: int = 100,
    hold: Mapping[str, float] | None = None,
    revision: str = "",
) -> Plan:
    """``hold``: nodes where a daemon failed lately -> seconds to wait before creating another there
    (upstream's failedPodsBackoff: a pod the kubelet keeps rejecting is not recreated in a hot loop).
    ``revision``: the current ControllerRevision's hash (``revisions.sync_history``); by default the
    template's own hash, which is what a new revision gets."""
    plan = Plan()
    hold = hold or {}
    if p.is_deleting(ds):
        return plan
    ds_spec = p.spec(ds)
    template = ds_spec.get("template") or {}
    pod_spec = p.spec(template)
    revision = revision or p.template_hash(template)
    min_ready = p.int_field(ds_spec, "minReadySeconds", 0)
    by_node: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        if p.controlled_by(pod, p.uid(ds)) and not p.is_deleting(pod):
            by_node.setdefault(target_node(pod), []).append(pod)

    creates: list[str] = []
    deletes: list[Mapping[str, Any]] = []
    desired = scheduled = misscheduled = ready = updated = available = 0
    # Per node that should run: (its kept pod or None) for the rolling update below.
    kept: dict[str, Mapping[str, Any] | None] = {}
    surging = 0  # nodes where a new pod runs beside an old one that waits for it
    node_names = set()
    for node in sorted(nodes, key=p.name):
        node_name = p.name(node)
        node_names.add(node_name)
        run, keep_running = should_run(pod_spec, node)
        here = by_node.get(node_name, [])
        if not keep_running:
            deletes.extend(here)
            misscheduled += bool(here)
            continue
        if not run and not here:
            continue
        if not run:  # tolerated before a NoSchedule taint came: may stay, is not desired
            misscheduled += 1
            continue
        desired += 1
        failed = [pod for pod in here if p.phase(pod) == "Failed"]
        deletes.extend(failed)
        if failed:
            plan.actions.append(Emit(involved=dict(ds), type="Warning", reason="FailedDaemonPod",
                                     message=f"Found failed daemon pod {p.namespace(ds)}/{p.name(failed[0])} "
                                             f"on node {node_name}, will try to kill it"))
        alive = p.by_creation(pod for pod in here if p.phase(pod) != "Failed")
        if not alive:
            if hold.get(node_name, 0.0) > 0:
                plan.requeue(hold[node_name])
            else:
                creates.append(node_name)
            kept[node_name] = None
            continue
        # Keep a pod of the current revision if there is one (a surge), else the oldest.
        current = [pod for pod in alive if _revision(pod) == revision]
        keep = current[0] if current else alive[0]
        extras = [pod for pod in alive if pod is not keep]
        old_beside_new = [pod for pod in extras if _revision(pod) != revision]
        if current and old_beside_new and not p.is_available(keep, min_ready, now):
            # A surge in progress: the old pod serves until the new one is available.
            extras = [pod for pod in extras if pod not in old_beside_new]
            surging += 1
        deletes.extend(extras)
        kept[node_name] = keep
        scheduled += 1
        ready += p.is_ready(keep)
        available += p.is_available(keep, min_ready, now)
        updated += _revision(keep) == revision
    for node_name, here in by_node.items():
        if node_name not in node_names:  # the node is gone: its pods are orphans
            deletes.extend(here)

    _rolling_update(ds, kept, revision, min_ready, now, creates=creates, deletes=deletes, surging=surging)
    for node_name in creates[:burst]:
        plan.actions.append(Create(resource=PODS, namespace=p.namespace(ds), body=new_pod(ds, node_name, revision)))
    if len(creates) > burst:
        plan.requeue(0)
    seen: set[str] = set()
    for pod in deletes:
        if p.uid(pod) not in seen:
            seen.add(p.uid(pod))
            plan.actions.append(_delete(pod))

    new_status = {
        "currentNumberScheduled": scheduled,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
        "observedGeneration": p.meta(ds).get("generation", 1),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }
    old_status = dict(p.status(ds))
    merged = {**old_status, **new_status}
    if merged != old_status:
        body = {**ds, "status": merged}
        plan.actions.append(Update(resource=DAEMON_SETS, body=body, status=True))
    if min_ready > 0 and ready > available:
        plan.requeue(min_ready)
    return plan


def _rolling_update(
    ds: Mapping[str, Any],
    kept: dict[str, Mapping[str, Any] | None],
    revision: str,
    min_ready: int,
    now: datetime.datetime,
    *,
    creates: list[str],
    deletes: list[Mapping[str, Any]],
    surging: int,
) -> None:
    strategy = p.spec(ds).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return
    rolling = strategy.get("rollingUpdate") or {}
    desired = len(kept)
    max_surge = p.scaled_value(rolling.get("maxSurge"), desired, round_up=True, default=0)
    max_unavailable = p.scaled_value(rolling.get("maxUnavailable"), desired, round_up=True, default=1)
    if max_surge == 0 and max_unavailable == 0:
        max_unavailable = 1  # validation forbids both zero; never stall a rollout on a bad object
    old = {n: pod for n, pod in kept.items() if pod is not None and _revision(pod) != revision}
    if not old:
        return
    unavailable = sum(1 for pod in kept.values() if pod is None or not p.is_available(pod, min_ready, now))
    if max_surge == 0:
        # Unavailable old pods cost nothing to replace; then available ones within the budget.
        for _, pod in sorted(old.items()):
            if not p.is_available(pod, min_ready, now):
                deletes.append(pod)
        budget = max_unavailable - unavailable
        for _, pod in sorted(old.items()):
            if budget <= 0:
                break
            if p.is_available(pod, min_ready, now):
                deletes.append(pod)
                budget -= 1
        return
    # Surge: start a new pod beside old ones, up to maxSurge nodes at a time.
    for node_name, pod in sorted(old.items()):
        if surging >= max_surge:
            break
        if not p.is_available(pod, min_ready, now):
            deletes.append(pod)  # an unavailable old pod protects nothing
            continue
        creates.append(node_name)
        surging += 1


# --- the loop -----------------------------------------------------------------------------------------


class DaemonSetController(PlanLoop):
    """Informers: DaemonSets (keys), Pods (by controller uid), Nodes (any change re-syncs every DaemonSet)."""

    name = "daemonset-controller"

    def __init__(self, *, clock: Clock | None = None, burst: int = 100) -> None:
        super().__init__()
        self._clock = clock or SystemClock()
        self._burst = burst
        # Per "<ds uid>/<node>": 1 s doubling to 15 min between replacing failed daemons (upstream's).
        self._failures: ExponentialBackoff[str] = ExponentialBackoff(base=1.0, cap=900.0, jitter=0.0)
        self._retry_at: dict[str, float] = {}
        self._ds: Informer | None = None
        self._nodes: Informer | None = None
        self._pods: Informer | None = None
        self._revisions: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._ds = informers.informer(by_id(DAEMON_SETS))
        self._nodes = informers.informer(by_id(NODES))
        self._pods = controller_index(informers.informer(by_id(PODS)))
        self._ds.add_handlers(enqueue_handlers(self.queue))
        self.primary = self._ds
        self._pods.add_handlers(owned_handlers(self, self._ds, "DaemonSet", track=True))
        self._revisions = controller_index(informers.informer(by_id(CONTROLLER_REVISIONS)))
        self._revisions.add_handlers(owned_handlers(self, self._ds, "DaemonSet", track=False))
        every_ds = enqueue_all(self, self._ds)
        self._nodes.add_handlers(Handlers(on_add=lambda _n: every_ds(), on_update=_if_changed(every_ds),
                                          on_delete=lambda _n: every_ds()))
        return []

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._ds is not None and self._nodes is not None and self._pods is not None
        assert self._revisions is not None
        ds = self._ds.get_by_key(key)
        if ds is None:
            return None
        pods = self._pods.by_index(CONTROLLER_UID, p.uid(ds))
        if p.is_deleting(ds):
            return Plan(), ds
        # History first: the revision must exist before pods carry its hash.
        revision, plan = sync_history(ds, self._revisions.by_index(CONTROLLER_UID, p.uid(ds)), pods)
        return plan.merge(sync_daemon_set(ds, self._nodes.list(), pods, self._clock.now(), burst=self._burst,
                                          hold=self._hold(p.uid(ds), pods), revision=revision)), ds

    def _hold(self, ds_uid: str, pods: list[Obj]) -> dict[str, float]:
        """Nodes where creating a daemon must wait: a failed one was just seen there."""
        mono = self._clock.monotonic()
        hold: dict[str, float] = {}
        failed_on = {target_node(pod) for pod in pods if p.phase(pod) == "Failed" and not p.is_deleting(pod)}
        for node_name in failed_on:
            key = f"{ds_uid}/{node_name}"
            if self._retry_at.get(key, 0.0) <= mono:
                self._retry_at[key] = mono + self._failures.when(key)
        for key, at in list(self._retry_at.items()):
            uid, _, node_name = key.partition("/")
            if uid == ds_uid and at > mono:
                hold[node_name] = at - mono
            elif at + _FAILURE_MEMORY < mono:  # quiet for long: start the doubling afresh next time
                del self._retry_at[key]
                self._failures.forget(key)
        return hold


def _if_changed(callback: Callable[[], None]) -> Callable[[Obj, Obj], None]:
    """An on_update handler for Nodes: only labels, taints or readiness matter, not heartbeats."""

    def changed(old: Obj, new: Obj) -> None:
        if old is new or (p.meta(old).get("labels") != p.meta(new).get("labels")
                          or p.spec(old) != p.spec(new)
                          or (p.condition(old, "Ready") or {}).get("status")
                          != (p.condition(new, "Ready") or {}).get("status")):
            callback()

    return changed
