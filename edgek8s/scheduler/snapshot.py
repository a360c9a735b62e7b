"""The scheduler's view of the cluster: nodes and the pods placed on them, updated incrementally.

``Snapshot`` is fed by informer events (``upsert_node``, ``remove_node``, ``add_pod``,
``remove_pod``) and by the scheduler itself (``assume``/``forget``), so a scheduling cycle reads
ready-made per-node sums instead of rebuilding them from every pod. ``NodeInfo`` keeps, per node,
the summed requests, used host ports, pods per owner and the pods carrying required anti-affinity.

Assume-then-bind: a pod counts on its node as soon as it is assumed (before the binding write
commits); ``forget`` takes it off when the binding fails. When the informer later reports the pod
bound, ``add_pod`` confirms it (same node) or moves it (another scheduler won).

Invariants: every placed pod is on exactly one NodeInfo; a pod bound to a node the scheduler has
not seen yet is kept on a placeholder (``present=False``) that is never a candidate and becomes the
real node when the Node arrives. Single-threaded (the event loop); never holds the API's objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any

from edgek8s.model.quantity import QuantityError
from edgek8s.scheduler.podinfo import HostPort, PodInfo, Taint
from edgek8s.scheduler.resources import ZERO, parse_resource_list

ARCH_LABEL = "kubernetes.io/arch"
_JUST_READY = {"Ready": "True"}
OS_LABEL = "kubernetes.io/os"
_MAX_CACHED_COUNTS = 64


class NodeInfo:
    """One node and what is placed on it. Plugins read it; only ``Snapshot`` changes it."""

    __slots__ = (
        "_counts",
        "allocatable",
        "anti_affinity_pods",
        "conditions",
        "generation",
        "labels",
        "name",
        "nonzero_requested",
        "owners",
        "pods",
        "ports",
        "present",
        "requested",
        "taints",
        "unschedulable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.labels: Mapping[str, str] = {}
        self.allocatable = ZERO
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.conditions: Mapping[str, str] = {}  # condition type -> status ("True"/"False"/"Unknown")
        self.present = False
        self.requested = ZERO
        self.nonzero_requested = ZERO
        self.pods: dict[str, PodInfo] = {}
        self.ports: Counter[HostPort] = Counter()
        self.owners: Counter[str] = Counter()
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        self.generation = 0
        self._counts: dict[Hashable, tuple[int, int]] = {}

    def count_matching(self, key: Hashable, matches: Callable[[PodInfo], bool]) -> int:
        """How many placed pods ``matches`` accepts, remembered under ``key`` until the node changes
        (``key`` must identify ``matches``: a topology spread constraint's selector and namespace).
        Scheduling a burst changes one node per pod, so the others answer from the cache."""
        cached = self._counts.get(key)
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        count = sum(1 for pod in self.pods.values() if matches(pod))
        if len(self._counts) >= _MAX_CACHED_COUNTS:
            self._counts.clear()  # bounded: selectors come and go with rollouts
        self._counts[key] = (self.generation, count)
        return count

    def without(self, keys: Collection[str]) -> NodeInfo:
        """A copy of this node without the pods ``keys`` (what-if for preemption; the snapshot is untouched)."""
        clone = NodeInfo(self.name)
        clone.labels, clone.allocatable, clone.taints = self.labels, self.allocatable, self.taints
        clone.unschedulable, clone.conditions, clone.present = self.unschedulable, self.conditions, self.present
        for key, pod in self.pods.items():
            if key not in keys:
                clone.add(pod)
        return clone

    def set_node(self, obj: Mapping[str, Any]) -> bool:
        """Take the Node's fields; True when anything a filter or score reads has changed (a heartbeat
        that only moves timestamps returns False)."""
        before = (self.present, self.labels, self.allocatable, self.taints, self.unschedulable, self.conditions)
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        labels = meta.get("labels")
        self.labels = dict(labels) if isinstance(labels, Mapping) else {}
        try:
            self.allocatable = parse_resource_list(status.get("allocatable") or status.get("capacity"))
        except QuantityError:
            self.allocatable = ZERO  # a node reporting garbage takes nothing
        self.taints = tuple(
            Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
            for t in spec.get("taints") or () if isinstance(t, Mapping)
        )
        self.unschedulable = bool(spec.get("unschedulable"))
        self.conditions = {
            str(c.get("type")): str(c.get("status")) for c in status.get("conditions") or () if isinstance(c, Mapping)
        }
        self.present = True
        self.generation += 1
        return before != (self.present, self.labels, self.allocatable, self.taints, self.unschedulable,
                          self.conditions)

    def add(self, pod: PodInfo) -> None:
        self.pods[pod.key] = pod
        self.requested += pod.requests
        self.nonzero_requested += pod.nonzero
        for port in pod.host_ports:
            self.ports[port] += 1
        if pod.owner:
            self.owners[pod.owner] += 1
        if pod.anti_affinity:
            self.anti_affinity_pods[pod.key] = pod
        self.generation += 1

    def remove(self, key: str) -> PodInfo | None:
        pod = self.pods.pop(key, None)
        if pod is None:
            return None
        self.requested -= pod.requests
        self.nonzero_requested -= pod.nonzero
        for port in pod.host_ports:
            self.ports[port] -= 1
            if self.ports[port] <= 0:
                del self.ports[port]
        if pod.owner:
            self.owners[pod.owner] -= 1
            if self.owners[pod.owner] <= 0:
                del self.owners[pod.owner]
        self.anti_affinity_pods.pop(key, None)
        self.generation += 1
        return pod

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)}, requested={self.requested})"


class Snapshot:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}  # placed pod key -> node name
        self._assumed: set[str] = set()
        self._candidates: list[NodeInfo] | None = None
        self._anti_affinity_nodes: set[str] = set()
        self._tainted: set[str] = set()
        self._cordoned: set[str] = set()
        self._unusual: set[str] = set()
        self._priorities: Counter[int] = Counter()  # priority -> placed pods with it

    # --- reads (plugins) --------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        """Present nodes in name order (cached until the set of nodes changes)."""
        if self._candidates is None:
            self._candidates = [n for _, n in sorted(self._nodes.items()) if n.present]
        return self._candidates

    def node(self, name: str) -> NodeInfo | None:
        found = self._nodes.get(name)
        return found if found is not None and found.present else None

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def nodes_with_anti_affinity_pods(self) -> list[NodeInfo]:
        return [self._nodes[name] for name in sorted(self._anti_affinity_nodes)]

    def placed_pods(self) -> int:
        return len(self._pod_node)

    def has_pods_below(self, priority: int) -> bool:
        """Some placed pod has a lower priority (else preemption has nothing to look at)."""
        return any(p < priority for p in self._priorities)

    # --- nodes (informer) -------------------------------------------------------------------------

    def upsert_node(self, obj: Mapping[str, Any]) -> bool:
        """Add or update a node; True when its scheduling-relevant fields changed."""
        name = str((obj.get("metadata") or {}).get("name", ""))
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if not info.present:
            self._candidates = None
        changed = info.set_node(obj)
        self._classify(info)
        return changed

    def _classify(self, info: NodeInfo) -> None:
        name = info.name
        for flagged, applies in ((self._tainted, info.present and bool(info.taints)),
                                 (self._cordoned, info.present and info.unschedulable),
                                 (self._unusual, info.present and info.conditions != _JUST_READY)):
            if applies:
                flagged.add(name)
            else:
                flagged.discard(name)

    # Plugins skip a check no node can fail (most clusters: no taints, no cordons, all nodes Ready).
    @property
    def any_tainted(self) -> bool:
        return bool(self._tainted)

    @property
    def any_cordoned(self) -> bool:
        return bool(self._cordoned)

    @property
    def any_not_just_ready(self) -> bool:
        """Some node has a condition other than Ready=True (not ready, pressure, or no Ready at all)."""
        return bool(self._unusual)

    def remove_node(self, name: str) -> None:
        """The Node object is gone; pods still bound to it stay counted on a placeholder until they go."""
        info = self._nodes.get(name)
        if info is None:
            return
        info.present = False
        self._candidates = None
        self._classify(info)
        if not info.pods:
            del self._nodes[name]

    # --- pods -------------------------------------------------------------------------------------

    def add_pod(self, pod: PodInfo) -> None:
        """A pod the API shows bound to ``pod.node_name`` (added, or updated: labels may change)."""
        assert pod.node_name, "only bound pods are placed"
        self.remove_pod(pod.key)
        self._place(pod, pod.node_name)

    def assume(self, pod: PodInfo, node_name: str) -> None:
        """Count ``pod`` on ``node_name`` before its binding commits."""
        self.remove_pod(pod.key)
        self._place(pod, node_name)
        self._assumed.add(pod.key)

    def confirm(self, key: str, node_name: str) -> bool:
        """The informer shows an assumed pod bound where it was assumed: it stays, now for good (no
        re-parse). False when it is not assumed there (bound elsewhere, or never assumed)."""
        if key in self._assumed and self._pod_node.get(key) == node_name:
            self._assumed.discard(key)
            return True
        return False

    def forget(self, key: str) -> None:
        """The binding of an assumed pod failed: take it off its node (a confirmed pod stays)."""
        if key in self._assumed:
            self.remove_pod(key)

    def remove_pod(self, key: str) -> None:
        self._assumed.discard(key)
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        info = self._nodes[node_name]
        removed = info.remove(key)
        if removed is not None:
            self._priorities[removed.priority] -= 1
            if self._priorities[removed.priority] <= 0:
                del self._priorities[removed.priority]
        if not info.anti_affinity_pods:
            self._anti_affinity_nodes.discard(node_name)
        if not info.present and not info.pods:
            del self._nodes[node_name]

    def _place(self, pod: PodInfo, node_name: str) -> None:
        info = self._nodes.get(node_name)
        if info is None:
            info = self._nodes[node_name] = NodeInfo(node_name)
        info.add(pod)
        self._pod_node[pod.key] = node_name
        self._priorities[pod.priority] += 1
        if pod.anti_affinity:
            self._anti_affinity_nodes.add(node_name)
