"""Node lifecycle: notice dead nodes, taint them, evict their pods after the tolerated time. Pure.

Upstream's ``pkg/controller/nodelifecycle`` and its taint-eviction controller, reduced to three pure
steps the runner calls per node:

1. ``observe`` - a node is alive while its Lease in ``kube-node-lease`` (``spec.renewTime``) or its
   Ready condition's ``lastHeartbeatTime`` keeps changing. The time of a change is the time *this
   controller saw it* (a monotonic clock), never the timestamp written by the node: a Pi without an RTC
   may boot with a clock hours off, and a skewed node must neither look dead nor immortal. A new leader
   starts every node's clock afresh, as upstream does, so a failover never evicts anything at once.
2. ``node_plan`` - no heartbeat for ``grace_period`` (scaled up for a node Lease longer than
   upstream's 40 s, ``Heartbeat.grace``) -> the node's conditions become ``Unknown``
   (``NodeStatusUnknown``) and its Ready pods ``Ready=False`` (so Endpoints drop them at once).
   Ready ``False`` -> taints ``node.kubernetes.io/not-ready`` NoSchedule + NoExecute; ``Unknown`` ->
   ``node.kubernetes.io/unreachable`` NoSchedule + NoExecute (``timeAdded`` stamped); ``True`` -> no
   such taints; a cordoned node (``spec.unschedulable``) gets ``node.kubernetes.io/unschedulable``
   NoSchedule (upstream's TaintNodesByCondition). One write per node per sync (status first; taints
   on the next pass, a watch event away), so no write is computed from a version the previous one
   replaced.
3. ``eviction_plan`` - for each NoExecute taint: a pod that does not tolerate it is deleted now; one
   that tolerates it for ``tolerationSeconds`` at ``timeAdded + tolerationSeconds``. A pod without a
   toleration of its own for not-ready/unreachable gets the default (``default_toleration_seconds``),
   the role of upstream's DefaultTolerationSeconds admission (300 s there). ``timeAdded`` is a
   ``metav1.Time`` (whole seconds), so a toleration may run out up to 1 s early, as upstream's. When
   the node is Ready again the taints go and nothing more is evicted: pods still there are left alone.
   Evictions are graceful deletions, so a lost node's kubelet would never finish them: a terminating
   pod on a not-ready/unreachable node whose grace has run out (``deletionTimestamp`` passed) is
   force-deleted (grace 0), as upstream's pod GC does for terminating pods on out-of-service nodes, so
   it does not hang in Terminating. Pods of nodes that no longer exist are force-deleted too.

Defaults for a LAN of Pis (``NodeLifecycleSettings``, ``--node-monitor-grace-period``,
``--default-toleration-seconds``): the agent renews its Lease every 10 s, as upstream's kubelet (each
renewal is a Raft write fsynced on every master, so renewing faster would double every idle node's
SD-card writes); a node is declared lost after 30 s, three missed renewals, which still covers a Raft
leader failover (~1-2 s) plus an SD-card stall on the board, against upstream's 40 s sized for
cloud networks. Pods are evicted 60 s after that: a Pi 4 reboots and its agent renews again within
~45 s, so a reboot does not reshuffle the cluster, while a powered-off board has its work elsewhere
in ~90 s rather than upstream's ~5.7 min (40 s + 300 s).

Disruption guard (upstream's "full disruption" mode): when no node at all is Ready, the fault is far
likelier on the masters' side of the network than on every board at once, so nothing is evicted.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.informer import Handlers, Informer, InformerFactory, index_by_node_name, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import LEASES, NODES, PODS, Delete, Emit, Plan, Update
from edgek8s.controllers.placement import tolerates
from edgek8s.controllers.runner import PlanLoop
from edgek8s.model.resources import by_id
from edgek8s.model.timestamps import format_time, parse_time

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_CONDITION_TAINTS = {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute"), (UNREACHABLE, "NoSchedule"),
                     (UNREACHABLE, "NoExecute"), (UNSCHEDULABLE, "NoSchedule")}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLifecycleSettings:
    grace_period: float = 30.0  # seconds without a heartbeat before a node is Unknown
    default_toleration_seconds: int = 60  # pods without their own toleration for not-ready/unreachable
    eviction_burst: int = 50  # pod deletions per node per sync


UPSTREAM_NODE_LEASE_SECONDS = 40.0  # KubeletConfiguration nodeLeaseDurationSeconds' default


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    lease_renew: str
    node_heartbeat: str
    seen_at: float  # monotonic seconds when a change was last observed
    lease_duration: float = 0.0  # the Lease's leaseDurationSeconds (0: no Lease)

    def grace(self, settings: NodeLifecycleSettings) -> float:
        """Silence tolerated. The grace period is meant for upstream's 40 s node Lease (renewed every
        quarter of it); a node whose agent was configured with a longer Lease (``--node-lease-duration-
        seconds``, to save SD-card writes) renews proportionally less often, so gets proportionally more,
        and is not declared lost between two renewals. A Lease of 40 s or less changes nothing."""
        return settings.grace_period * max(1.0, self.lease_duration / UPSTREAM_NODE_LEASE_SECONDS)


def _ready_heartbeat(node: Mapping[str, Any]) -> str:
    cond = p.condition(node, "Ready") or {}
    return str(cond.get("lastHeartbeatTime") or "")


def observe(
    previous: Heartbeat | None, node: Mapping[str, Any], lease: Mapping[str, Any] | None, now_mono: float
) -> Heartbeat:
    """The node's heartbeat record after looking at its current Node and Lease."""
    renew = str(p.spec(lease).get("renewTime") or "") if lease is not None else ""
    duration = p.spec(lease).get("leaseDurationSeconds") if lease is not None else None
    beat = _ready_heartbeat(node)
    if previous is None or renew != previous.lease_renew or beat != previous.node_heartbeat:
        return Heartbeat(lease_renew=renew, node_heartbeat=beat, seen_at=now_mono,
                         lease_duration=float(duration) if isinstance(duration, int | float) else 0.0)
    return previous


def ready_status(node: Mapping[str, Any]) -> str:
    """``True``, ``False`` or ``Unknown`` (also for a node that never reported Ready)."""
    return str((p.condition(node, "Ready") or {}).get("status") or "Unknown")


def _wanted_taints(ready: str, unschedulable: bool) -> set[tuple[str, str]]:
    wanted = {(UNSCHEDULABLE, "NoSchedule")} if unschedulable else set()
    if ready == "False":
        wanted |= {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    elif ready == "Unknown":
        wanted |= {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    return wanted


def node_plan(
    node: Mapping[str, Any],
    heartbeat: Heartbeat,
    now_mono: float,
    now: datetime.datetime,
    settings: NodeLifecycleSettings,
) -> Plan:
    plan = Plan()
    now_text = format_time(now)
    silent_for = now_mono - heartbeat.seen_at
    grace = heartbeat.grace(settings)
    conditions = [dict(c) for c in p.status(node).get("conditions") or ()]
    if silent_for >= grace:
        changed = False
        if not any(c.get("type") == "Ready" for c in conditions):
            conditions.append({"type": "Ready", "status": "Unknown", "lastHeartbeatTime": now_text,
                               "lastTransitionTime": now_text, "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status."})
            changed = True
        for cond in conditions:
            if cond.get("status") != "Unknown":
                cond.update(status="Unknown", lastTransitionTime=now_text, reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.")
                changed = True
        if changed:
            plan.actions.append(Update(resource=NODES, body={**node, "status": {**p.status(node),
                                                                               "conditions": conditions}},
                                       status=True))
            plan.actions.append(Emit(involved=dict(node), type="Normal", reason="NodeNotReady",
                                     message=f"Node {p.name(node)} status is now: NodeNotReady"))
            return plan
    else:
        plan.requeue(grace - silent_for)
    taints = [dict(t) for t in p.spec(node).get("taints") or ()]
    have = {(t.get("key"), t.get("effect")) for t in taints if (t.get("key"), t.get("effect")) in _CONDITION_TAINTS}
    want = _wanted_taints(ready_status(node), bool(p.spec(node).get("unschedulable")))
    if have != want:
        kept = [t for t in taints if (t.get("key"), t.get("effect")) not in _CONDITION_TAINTS or
                (t.get("key"), t.get("effect")) in want]
        for key, effect in sorted(want - have):
            taint: dict[str, Any] = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now_text
            kept.append(taint)
        node_spec = {**p.spec(node), "taints": kept}
        if not kept:
            node_spec.pop("taints")
        plan.actions.append(Update(resource=NODES, body={**node, "spec": node_spec}))
    return plan


def mark_pods_not_ready(node: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime.datetime) -> Plan:
    """Ready=False on the node's ready pods while the node is Unknown (upstream ``MarkPodsNotReady``)."""
    plan = Plan()
    if ready_status(node) != "Unknown":
        return plan
    now_text = format_time(now)
    for pod in pods:
        if not p.is_ready(pod) or p.is_terminal(pod):
            continue
        conditions = [dict(c) for c in p.status(pod).get("conditions") or ()]
        for cond in conditions:
            if cond.get("type") in ("Ready", "ContainersReady"):
                cond.update(status="False", lastTransitionTime=now_text, reason="NodeNotReady")
        plan.actions.append(Update(resource=PODS, body={**pod, "status": {**p.status(pod), "conditions": conditions}},
                                   status=True))
    return plan


def _eviction_time(
    pod: Mapping[str, Any], taint: Mapping[str, Any], settings: NodeLifecycleSettings
) -> datetime.datetime | float | None:
    """When ``taint`` evicts ``pod``: a time, ``0.0`` for now, None for never."""
    tolerations = [t for t in p.spec(pod).get("tolerations") or () if isinstance(t, Mapping)]
    matching = [t for t in tolerations if tolerates(t, taint)]
    if not matching:
        if taint.get("key") not in (NOT_READY, UNREACHABLE):
            return 0.0
        matching = [{"tolerationSeconds": settings.default_toleration_seconds}]
    seconds = [t.get("tolerationSeconds") for t in matching]
    if any(not isinstance(s, int) for s in seconds):
        return None  # tolerated forever
    added = parse_time(taint.get("timeAdded"))
    if added is None:
        return 0.0
    return added + datetime.timedelta(seconds=max(0, min(int(s) for s in seconds if isinstance(s, int))))


def eviction_plan(
    node: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
    settings: NodeLifecycleSettings,
    *,
    evictions_allowed: bool = True,
) -> Plan:
    """Delete the node's pods whose tolerations of its NoExecute taints have run out."""
    plan = Plan()
    taints = [t for t in p.spec(node).get("taints") or () if isinstance(t, Mapping) and t.get("effect") == "NoExecute"]
    if not taints:
        return plan
    lost = any(t.get("key") in (NOT_READY, UNREACHABLE) for t in taints)
    for pod in pods:
        if p.is_deleting(pod):
            if lost:
                _force_when_overdue(pod, now, plan)
            continue
        due: datetime.datetime | None = None
        now_due = False
        for taint in taints:
            when = _eviction_time(pod, taint, settings)
            if when is None:
                continue
            if isinstance(when, float) or when <= now:
                now_due = True
                break
            due = when if due is None or when < due else due
        if now_due:
            if not evictions_allowed:
                plan.requeue(settings.grace_period)
                continue
            if len(plan.writes()) >= settings.eviction_burst:
                plan.requeue(0)
                break
            plan.actions.append(Delete(resource=PODS, namespace=p.namespace(pod), name=p.name(pod), uid=p.uid(pod)))
            plan.actions.append(Emit(involved=dict(pod), type="Normal", reason="TaintManagerEviction",
                                     message=f"Marking for deletion Pod {p.namespace(pod)}/{p.name(pod)}"))
        elif due is not None:
            plan.requeue((due - now).total_seconds())
    return plan


def _force_when_overdue(pod: Mapping[str, Any], now: datetime.datetime, plan: Plan) -> None:
    """A terminating pod its (lost) kubelet cannot finish: force-delete it once its grace ran out."""
    meta = p.meta(pod)
    if not meta.get("deletionGracePeriodSeconds"):
        return  # held by finalizers only: deleting it again changes nothing
    deadline = parse_time(meta.get("deletionTimestamp"))
    if deadline is not None and deadline > now:
        plan.requeue((deadline - now).total_seconds())
        return
    plan.actions.append(Delete(resource=PODS, namespace=p.namespace(pod), name=p.name(pod), uid=p.uid(pod),
                               grace_period=0))


class OrphanQuarantine:
    """Which missing nodes have been missing long enough for their pods to go (upstream's pod GC: 40 s).

    A pod created with ``spec.nodeName`` just before its node registers is not an orphan: a node name
    counts as gone only once this controller has seen it absent for ``period`` seconds in a row.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._absent_since: dict[str, float] = {}

    def gone(self, absent: set[str], mono: float) -> set[str]:
        self._absent_since = {name: self._absent_since.get(name, mono) for name in absent}
        return {name for name, since in self._absent_since.items() if mono - since >= self.period}


def orphaned_pods(pods: Sequence[Mapping[str, Any]], node_names: set[str]) -> Plan:
    """Force-delete pods bound to nodes that no longer exist (upstream's pod GC of orphans: no kubelet
    will ever finish their graceful deletion)."""
    plan = Plan()
    for pod in pods:
        node_name = p.spec(pod).get("nodeName")
        if node_name and node_name not in node_names and (
                not p.is_deleting(pod) or p.meta(pod).get("deletionGracePeriodSeconds")):
            plan.actions.append(Delete(resource=PODS, namespace=p.namespace(pod), name=p.name(pod), uid=p.uid(pod),
                                       grace_period=0))
    return plan


# --- the loop -----------------------------------------------------------------------------------------

ORPHANS_KEY = "\x00orphans"  # not a node name: the sweep of pods bound to nodes that are gone
LEASE_NAMESPACE = "kube-node-lease"
NODE_NAME_INDEX = "node-name"


class NodeLifecycleController(PlanLoop):
    """Informers: Nodes (keys), Leases in kube-node-lease (a renewal re-syncs its node), Pods by node."""

    name = "node-lifecycle-controller"
    track_expectations = False  # it deletes pods it does not own; its keys are nodes

    def __init__(self, *, settings: NodeLifecycleSettings | None = None, clock: Clock | None = None,
                 orphan_sweep: float = 30.0, orphan_quarantine: float = 40.0) -> None:
        super().__init__()
        self._orphan_quarantine = orphan_quarantine
        self._quarantine = OrphanQuarantine(orphan_quarantine)
        self.settings = settings or NodeLifecycleSettings()
        self._clock = clock or SystemClock()
        self._orphan_sweep = orphan_sweep
        self._heartbeats: dict[str, Heartbeat] = {}
        self._nodes: Informer | None = None
        self._leases: Informer | None = None
        self._pods: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._heartbeats = {}  # a new term starts every node's grace afresh
        self._quarantine = OrphanQuarantine(self._orphan_quarantine)  # and every missing node's quarantine
        self._nodes = informers.informer(by_id(NODES))
        self._leases = informers.informer(by_id(LEASES))
        self._pods = informers.informer(by_id(PODS), indexers={NODE_NAME_INDEX: index_by_node_name})
        queue = self.queue

        def node_deleted(node: Obj) -> None:
            queue.add(key_of(node))
            queue.add(ORPHANS_KEY)

        self._nodes.add_handlers(Handlers(on_add=lambda n: queue.add(key_of(n)),
                                          on_update=lambda _o, n: queue.add(key_of(n)), on_delete=node_deleted))

        def lease_changed(lease: Obj) -> None:
            if p.namespace(lease) == LEASE_NAMESPACE:
                queue.add(p.name(lease))

        self._leases.add_handlers(Handlers(on_add=lease_changed, on_update=lambda _o, n: lease_changed(n)))

        def pod_changed(pod: Obj) -> None:
            node_name = p.spec(pod).get("nodeName")
            if node_name:
                queue.add(str(node_name))

        self._pods.add_handlers(Handlers(on_add=pod_changed, on_update=lambda _o, n: pod_changed(n)))
        return [self._sweep_orphans]

    async def _sweep_orphans(self) -> None:
        while True:
            await asyncio.sleep(self._orphan_sweep)
            self.queue.add(ORPHANS_KEY)

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._nodes is not None and self._leases is not None and self._pods is not None
        if key == ORPHANS_KEY:
            names = set(self._nodes.keys())
            bound = [pod for pod in self._pods.list() if p.spec(pod).get("nodeName")]
            absent = {str(p.spec(pod)["nodeName"]) for pod in bound} - names
            gone = self._quarantine.gone(absent, self._clock.monotonic())
            return orphaned_pods(bound, names | (absent - gone)), None
        node = self._nodes.get("", key)
        if node is None:
            self._heartbeats.pop(key, None)
            return None
        mono, now = self._clock.monotonic(), self._clock.now()
        heartbeat = observe(self._heartbeats.get(key), node, self._leases.get(LEASE_NAMESPACE, key), mono)
        self._heartbeats[key] = heartbeat
        plan = node_plan(node, heartbeat, mono, now, self.settings)
        if plan.writes():
            return plan, node
        pods = self._pods.by_index(NODE_NAME_INDEX, key)
        allowed = any(ready_status(n) == "True" for n in self._nodes.list())
        plan.merge(mark_pods_not_ready(node, pods, now))
        plan.merge(eviction_plan(node, pods, now, self.settings, evictions_allowed=allowed))
        return plan, node
