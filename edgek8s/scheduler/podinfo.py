"""What the scheduler needs of a pod, parsed once from its JSON: ``PodInfo``.

Parsing happens when the informer delivers the pod, not per scheduling attempt, so every filter and
score reads typed, pre-validated fields (selectors compiled, quantities in integers). A pod whose
spec cannot be parsed (a malformed quantity or selector that validation let through) gets
``PodInfo.invalid`` set and is reported unschedulable with that message instead of crashing the loop.

Image platforms (``kubernetes.io/arch``): upstream Kubernetes has no record of which platforms an
image exists for; the kubelet only learns it at pull time. edgek8s takes it from the pod annotation
``edgek8s.io/image-platforms`` (e.g. ``"linux/arm64"`` or ``"linux/amd64,linux/arm64"``): the
platforms every image of the pod is available for. It is set where the knowledge lives (the image
build tooling, a Deployment's pod template) and travels with the pod; a pod without it is not
restricted. See ``plugins/node_arch.py``.

Pure; never mutates the object it parses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgek8s.model.quantity import QuantityError
from edgek8s.model.selectors import LabelSelector, Operator, Requirement, SelectorError
from edgek8s.scheduler.resources import ZERO, Resources, pod_requests

IMAGE_PLATFORMS_ANNOTATION = "edgek8s.io/image-platforms"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ANY_IP = "0.0.0.0"

_NODE_OPERATORS = {
    "In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST, "Gt": Operator.GREATER_THAN, "Lt": Operator.LESS_THAN,
}
_NO_LABELS: Mapping[str, str] = {}
_HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return f"{{{self.key}: {self.value}}}"  # upstream's "untolerated taint {key: value}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """Upstream's ``Toleration.ToleratesTaint``."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("Equal", "") and self.value == taint.value


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """Expressions on node labels AND fields on the node (only ``metadata.name``); an empty term
    matches no node, as upstream."""

    expressions: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        if not self.expressions and not self.fields:
            return False
        for requirement in self.expressions:
            if not requirement.matches(labels):
                return False
        return all(requirement.matches({"metadata.name": name}) for requirement in self.fields)


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    selector: LabelSelector
    namespaces: frozenset[str]  # empty with all_namespaces False: none
    all_namespaces: bool
    topology_key: str

    def selects(self, pod: PodInfo) -> bool:
        if not self.all_namespaces and pod.namespace not in self.namespaces:
            return False
        return self.selector.matches(pod.labels)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """One ``topologySpreadConstraints`` entry (``matchLabelKeys`` already folded into ``selector``)."""

    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable: DoNotSchedule (a filter); ScheduleAnyway is a score
    selector: LabelSelector
    min_domains: int = 0  # 0: unset
    honor_node_affinity: bool = True  # nodeAffinityPolicy: Honor (default) / Ignore
    honor_taints: bool = False  # nodeTaintsPolicy: Ignore (default) / Honor
    cache_key: str = ""  # identifies (namespace, selector) for NodeInfo.count_matching

    def selects(self, pod: PodInfo, namespace: str) -> bool:
        """Whether ``pod`` counts for a pod in ``namespace`` (upstream counts its own namespace only)."""
        return pod.namespace == namespace and not pod.deleting and self.selector.matches(pod.labels)


@dataclass(frozen=True, slots=True)
class HostPort:
    protocol: str
    port: int
    ip: str

    def conflicts(self, other: HostPort) -> bool:
        return (self.port == other.port and self.protocol == other.protocol
                and (self.ip == other.ip or ANY_IP in (self.ip, other.ip)))


@dataclass(frozen=True, slots=True, kw_only=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    resource_version: str = ""
    node_name: str = ""
    scheduler_name: str = "default-scheduler"
    priority: int = 0
    preempts: bool = True  # spec.preemptionPolicy is not Never
    labels: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""  # uid of the controlling owner, for spreading
    requests: Resources = ZERO
    nonzero: Resources = ZERO
    host_ports: tuple[HostPort, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    required_node_terms: tuple[NodeSelectorTerm, ...] | None = None  # None: no required node affinity
    preferred_node_terms: tuple[tuple[int, NodeSelectorTerm], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    anti_affinity: tuple[PodAffinityTerm, ...] = ()
    affinity: tuple[PodAffinityTerm, ...] = ()
    spread: tuple[SpreadConstraint, ...] = ()
    platforms: frozenset[str] | None = None  # "os/arch" the images exist for; None: unknown
    deleting: bool = False
    invalid: str = ""  # why the spec could not be parsed; never scheduled while set

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def fits_node_affinity(self, labels: Mapping[str, str], name: str) -> bool:
        """``spec.nodeSelector`` and required node affinity both hold for a node (upstream's
        ``RequiredNodeAffinity.Match``), as the NodeSelector and NodeAffinity filters decide."""
        if any(labels.get(key) != value for key, value in self.node_selector.items()):
            return False
        terms = self.required_node_terms
        return terms is None or any(term.matches(labels, name) for term in terms)

    def untolerated(self, taints: tuple[Taint, ...]) -> Taint | None:
        """The first ``NoSchedule``/``NoExecute`` taint none of the pod's tolerations tolerates."""
        for taint in taints:
            if taint.effect in _HARD_EFFECTS and not any(t.tolerates(taint) for t in self.tolerations):
                return taint
        return None


def _strings(value: Any, what: str) -> Mapping[str, str]:
    if value is None:
        return _NO_LABELS
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(f"{what} must be a map of strings")
    return dict(value)


def _node_requirement(expression: Any, *, fields: bool) -> Requirement:
    if not isinstance(expression, Mapping):
        raise ValueError("a node selector requirement must be an object")
    operator = _NODE_OPERATORS.get(str(expression.get("operator")))
    if operator is None:
        raise ValueError(f"unsupported node selector operator {expression.get('operator')!r}")
    key = str(expression.get("key", ""))
    values = tuple(str(v) for v in expression.get("values") or ())
    if fields:
        if key != "metadata.name":
            raise ValueError(f"unsupported field {key!r} in matchFields (only metadata.name)")
        if operator not in (Operator.IN, Operator.NOT_IN) or len(values) != 1:
            raise ValueError("matchFields supports In/NotIn with exactly one value")
        return Requirement(key, operator, values)
    return Requirement.new(key, operator, values)


def parse_node_selector_term(term: Any) -> NodeSelectorTerm:
    if not isinstance(term, Mapping):
        raise ValueError("a node selector term must be an object")
    return NodeSelectorTerm(
        expressions=tuple(_node_requirement(e, fields=False) for e in term.get("matchExpressions") or ()),
        fields=tuple(_node_requirement(e, fields=True) for e in term.get("matchFields") or ()),
    )


def _pod_affinity_terms(terms: Any, namespace: str) -> tuple[PodAffinityTerm, ...]:
    parsed = []
    for term in terms or ():
        if not isinstance(term, Mapping) or not term.get("topologyKey"):
            raise ValueError("a pod affinity term needs a topologyKey")
        namespaces = frozenset(str(n) for n in term.get("namespaces") or ())
        # An empty namespaceSelector ({}) selects every namespace; other namespace selectors would
        # need namespace labels and are not supported (the listed namespaces still apply).
        all_namespaces = term.get("namespaceSelector") == {}
        if not namespaces and term.get("namespaceSelector") is None:
            namespaces = frozenset({namespace})
        parsed.append(PodAffinityTerm(
            selector=LabelSelector.from_dict(term.get("labelSelector")),
            namespaces=namespaces,
            all_namespaces=all_namespaces,
            topology_key=str(term["topologyKey"]),
        ))
    return tuple(parsed)


_WHEN_UNSATISFIABLE = {"DoNotSchedule": True, "ScheduleAnyway": False}
_POLICIES = {None: None, "Honor": True, "Ignore": False}


def _spread_constraints(
    constraints: Any, labels: Mapping[str, str], namespace: str
) -> tuple[SpreadConstraint, ...]:
    parsed = []
    for constraint in constraints or ():
        if not isinstance(constraint, Mapping) or not constraint.get("topologyKey"):
            raise ValueError("a topology spread constraint needs a topologyKey")
        max_skew = constraint.get("maxSkew")
        hard = _WHEN_UNSATISFIABLE.get(str(constraint.get("whenUnsatisfiable")))
        min_domains = constraint.get("minDomains") or 0
        affinity_policy = _POLICIES.get(constraint.get("nodeAffinityPolicy"), "bad")
        taints_policy = _POLICIES.get(constraint.get("nodeTaintsPolicy"), "bad")
        if not isinstance(max_skew, int) or max_skew < 1:
            raise ValueError("topologySpreadConstraints maxSkew must be an integer of at least 1")
        if hard is None:
            raise ValueError("topologySpreadConstraints whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway")
        if not isinstance(min_domains, int) or min_domains < 0 or (min_domains and not hard):
            raise ValueError("topologySpreadConstraints minDomains must be a positive integer, with DoNotSchedule")
        if affinity_policy == "bad" or taints_policy == "bad":
            raise ValueError("topologySpreadConstraints node policies must be Honor or Ignore")
        selector = constraint.get("labelSelector")
        keys = [str(k) for k in constraint.get("matchLabelKeys") or () if str(k) in labels]
        if keys and isinstance(selector, Mapping):  # upstream ANDs "key in (the pod's value)"
            extra = [{"key": k, "operator": "In", "values": [labels[k]]} for k in keys]
            selector = {**selector, "matchExpressions": [*(selector.get("matchExpressions") or ()), *extra]}
        parsed.append(SpreadConstraint(
            max_skew=max_skew, topology_key=str(constraint["topologyKey"]), hard=hard,
            selector=LabelSelector.from_dict(selector), min_domains=min_domains,
            honor_node_affinity=affinity_policy is not False, honor_taints=taints_policy is True,
            cache_key=f"{namespace}/{json.dumps(selector, sort_keys=True)}",
        ))
    return tuple(parsed)


def _host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    ports = []
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or ():
            for port in (container.get("ports") or ()) if isinstance(container, Mapping) else ():
                host_port = port.get("hostPort") if isinstance(port, Mapping) else None
                if isinstance(host_port, int) and host_port > 0:
                    ports.append(HostPort(str(port.get("protocol") or "TCP"), host_port,
                                          str(port.get("hostIP") or ANY_IP)))
    return tuple(ports)


def _tolerations(spec: Mapping[str, Any]) -> tuple[Toleration, ...]:
    return tuple(
        Toleration(key=str(t.get("key") or ""), operator=str(t.get("operator") or "Equal"),
                   value=str(t.get("value") or ""), effect=str(t.get("effect") or ""))
        for t in spec.get("tolerations") or () if isinstance(t, Mapping)
    )


def _owner(meta: Mapping[str, Any]) -> str:
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""


def _platforms(annotations: Mapping[str, str]) -> frozenset[str] | None:
    text = annotations.get(IMAGE_PLATFORMS_ANNOTATION)
    if text is None:
        return None
    platforms = frozenset(p.strip() for p in text.split(",") if p.strip())
    for platform in platforms:
        if platform.count("/") not in (1, 2):
            raise ValueError(f"{IMAGE_PLATFORMS_ANNOTATION}: {platform!r} is not os/arch[/variant]")
    return platforms


def _placed_fields(spec: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """What a pod already on a node contributes to the snapshot: its requests, host ports and the
    anti-affinity other pods must respect. (A new leader parses every bound pod before it schedules.)"""
    requests, nonzero = pod_requests(spec)
    affinity = spec.get("affinity") or {}
    return {
        "requests": requests,
        "nonzero": nonzero,
        "host_ports": _host_ports(spec),
        "anti_affinity": _pod_affinity_terms(
            (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"),
            namespace),
    }


def _scheduling_fields(meta: Mapping[str, Any], spec: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    requests, nonzero = pod_requests(spec)
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    required_terms = None
    if required is not None:
        required_terms = tuple(parse_node_selector_term(t) for t in required.get("nodeSelectorTerms") or ())
    preferred = tuple(
        (int(p.get("weight", 0)), parse_node_selector_term(p.get("preference") or {}))
        for p in node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or ()
    )
    return {
        "requests": requests,
        "nonzero": nonzero,
        "host_ports": _host_ports(spec),
        "node_selector": _strings(spec.get("nodeSelector"), "spec.nodeSelector"),
        "required_node_terms": required_terms,
        "preferred_node_terms": preferred,
        "tolerations": _tolerations(spec),
        "anti_affinity": _pod_affinity_terms(
            (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"),
            namespace),
        "affinity": _pod_affinity_terms(
            (affinity.get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution"), namespace),
        "spread": _spread_constraints(spec.get("topologySpreadConstraints"),
                                      _strings(meta.get("labels"), "metadata.labels"), namespace),
        "platforms": _platforms(_strings(meta.get("annotations"), "metadata.annotations")),
    }


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    """Parse a Pod object; never raises for a malformed spec (see ``PodInfo.invalid``). A bound pod
    (``spec.nodeName`` set) gets only what it contributes to its node (``_placed_fields``)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    namespace = str(meta.get("namespace", ""))
    labels = meta.get("labels")
    base: dict[str, Any] = {
        "namespace": namespace,
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "resource_version": str(meta.get("resourceVersion", "")),
        "node_name": str(spec.get("nodeName") or ""),
        "scheduler_name": str(spec.get("schedulerName") or "default-scheduler"),
        "priority": spec.get("priority") if isinstance(spec.get("priority"), int) else 0,
        "preempts": spec.get("preemptionPolicy") != "Never",
        "labels": dict(labels) if isinstance(labels, Mapping) else {},
        "owner": _owner(meta),
        "deleting": bool(meta.get("deletionTimestamp")),
    }
    try:
        base.update(_placed_fields(spec, namespace) if base["node_name"] else
                    _scheduling_fields(meta, spec, namespace))
    except (QuantityError, SelectorError, ValueError, TypeError, AttributeError) as exc:
        base["invalid"] = f"invalid pod spec: {exc}"
    return PodInfo(**base)
