"""The resource types edgek8s serves, and how objects are keyed and selected.

A resource is identified by group and plural name (``apps/deployments``; the core group is ``""``);
an object by resource, namespace (``""`` for cluster-scoped) and name. ``selectable_fields`` gives the
field values a field selector may use for each resource, as upstream's field label conversion does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NewType

ResourceId = NewType("ResourceId", str)  # "<group>/<plural>", "/pods" for the core group


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    # Derived once here: requests read them several times each (a create ~10 times).
    id: ResourceId = field(init=False, repr=False, compare=False)
    api_version: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", resource_id(self.group, self.plural))
        object.__setattr__(self, "api_version", f"{self.group}/{self.version}" if self.group else self.version)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def resource_id(group: str, plural: str) -> ResourceId:
    return ResourceId(f"{group}/{plural}")


_ALL = ("all",)

BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(group="", version="v1", plural="namespaces", kind="Namespace", namespaced=False,
                 short_names=("ns",), verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    ResourceType(group="", version="v1", plural="nodes", kind="Node", namespaced=False, short_names=("no",)),
    ResourceType(group="", version="v1", plural="pods", kind="Pod", namespaced=True, short_names=("po",),
                 categories=_ALL),
    ResourceType(group="", version="v1", plural="services", kind="Service", namespaced=True,
                 short_names=("svc",), categories=_ALL),
    ResourceType(group="", version="v1", plural="endpoints", kind="Endpoints", namespaced=True,
                 short_names=("ep",), has_status=False),
    ResourceType(group="", version="v1", plural="configmaps", kind="ConfigMap", namespaced=True,
                 short_names=("cm",), has_status=False),
    ResourceType(group="", version="v1", plural="secrets", kind="Secret", namespaced=True, has_status=False),
    ResourceType(group="", version="v1", plural="events", kind="Event", namespaced=True, short_names=("ev",),
                 has_status=False),
    ResourceType(group="apps", version="v1", plural="deployments", kind="Deployment", namespaced=True,
                 short_names=("deploy",), categories=_ALL),
    ResourceType(group="apps", version="v1", plural="replicasets", kind="ReplicaSet", namespaced=True,
                 short_names=("rs",), categories=_ALL),
    ResourceType(group="apps", version="v1", plural="daemonsets", kind="DaemonSet", namespaced=True,
                 short_names=("ds",), categories=_ALL),
    ResourceType(group="apps", version="v1", plural="controllerrevisions", kind="ControllerRevision",
                 namespaced=True, has_status=False),
    ResourceType(group="coordination.k8s.io", version="v1", plural="leases", kind="Lease", namespaced=True,
                 has_status=False),
    ResourceType(group="batch", version="v1", plural="jobs", kind="Job", namespaced=True, categories=_ALL),
    ResourceType(group="batch", version="v1", plural="cronjobs", kind="CronJob", namespaced=True,
                 short_names=("cj",), categories=_ALL),
    ResourceType(group="policy", version="v1", plural="poddisruptionbudgets", kind="PodDisruptionBudget",
                 namespaced=True, short_names=("pdb",)),
    ResourceType(group="discovery.k8s.io", version="v1", plural="endpointslices", kind="EndpointSlice",
                 namespaced=True, has_status=False),
    # Stored and served so existing manifests apply; none of them is enforced (docs/kinds.md).
    ResourceType(group="", version="v1", plural="serviceaccounts", kind="ServiceAccount", namespaced=True,
                 short_names=("sa",), has_status=False),
    *(ResourceType(group="rbac.authorization.k8s.io", version="v1", plural=kind.lower() + "s", kind=kind,
                   namespaced=not kind.startswith("Cluster"), has_status=False)
      for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")),
    ResourceType(group="networking.k8s.io", version="v1", plural="ingresses", kind="Ingress", namespaced=True,
                 short_names=("ing",)),
    ResourceType(group="networking.k8s.io", version="v1", plural="ingressclasses", kind="IngressClass",
                 namespaced=False, has_status=False),
    ResourceType(group="networking.k8s.io", version="v1", plural="networkpolicies", kind="NetworkPolicy",
                 namespaced=True, short_names=("netpol",), has_status=False),
    ResourceType(group="scheduling.k8s.io", version="v1", plural="priorityclasses", kind="PriorityClass",
                 namespaced=False, short_names=("pc",), has_status=False),
)

_BY_ID: dict[ResourceId, ResourceType] = {r.id: r for r in BUILTIN_RESOURCES}

# Served by the API from kubelet measurements (api/metrics.py), never stored: listed in discovery only.
METRICS_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(group="metrics.k8s.io", version="v1beta1", plural="nodes", kind="NodeMetrics", namespaced=False,
                 has_status=False, verbs=("get", "list")),
    ResourceType(group="metrics.k8s.io", version="v1beta1", plural="pods", kind="PodMetrics", namespaced=True,
                 has_status=False, verbs=("get", "list")),
)


# Create-only reviews answered from the request (api/reviews.py), never stored.
REVIEW_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(group="authorization.k8s.io", version="v1", plural="selfsubjectaccessreviews",
                 kind="SelfSubjectAccessReview", namespaced=False, has_status=False, verbs=("create",)),
    ResourceType(group="authorization.k8s.io", version="v1", plural="selfsubjectrulesreviews",
                 kind="SelfSubjectRulesReview", namespaced=False, has_status=False, verbs=("create",)),
    ResourceType(group="authentication.k8s.io", version="v1", plural="selfsubjectreviews",
                 kind="SelfSubjectReview", namespaced=False, has_status=False, verbs=("create",)),
)


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    found = _BY_ID.get(resource_id(group, plural))
    if found is None or found.version != version:
        return None
    return found


def by_id(rid: ResourceId) -> ResourceType:
    return _BY_ID[rid]


# --- field selectors ---------------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], *path: str) -> str:
    current: Any = obj
    for part in path:
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def _pod_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    return {
        "spec.nodeName": _get(obj, "spec", "nodeName"),
        "spec.restartPolicy": _get(obj, "spec", "restartPolicy"),
        "spec.schedulerName": _get(obj, "spec", "schedulerName"),
        "spec.serviceAccountName": _get(obj, "spec", "serviceAccountName"),
        "spec.hostNetwork": _get(obj, "spec", "hostNetwork") or "false",
        "status.phase": _get(obj, "status", "phase"),
        "status.podIP": _get(obj, "status", "podIP"),
        "status.nominatedNodeName": _get(obj, "status", "nominatedNodeName"),
    }


def _event_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    fields = {
        f"involvedObject.{f}": _get(obj, "involvedObject", f)
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    fields.update(
        {
            "reason": _get(obj, "reason"),
            "reportingComponent": _get(obj, "reportingComponent"),
            "source": _get(obj, "source", "component"),
            "type": _get(obj, "type"),
        }
    )
    return fields


_EXTRA_FIELDS: dict[ResourceId, Callable[[Mapping[str, Any]], dict[str, str]]] = {
    resource_id("", "pods"): _pod_fields,
    resource_id("", "events"): _event_fields,
    resource_id("", "nodes"): lambda o: {"spec.unschedulable": _get(o, "spec", "unschedulable") or "false"},
    resource_id("", "namespaces"): lambda o: {"status.phase": _get(o, "status", "phase")},
    resource_id("", "secrets"): lambda o: {"type": _get(o, "type")},
    resource_id("apps", "replicasets"): lambda o: {"status.replicas": _get(o, "status", "replicas")},
}


def extra_selectable_fields(rid: ResourceId, obj: Mapping[str, Any]) -> dict[str, str] | None:
    """Field-selector values of ``obj`` beyond metadata.name/namespace; None for resources with none."""
    extra = _EXTRA_FIELDS.get(rid)
    return None if extra is None else extra(obj)


def selectable_fields(rid: ResourceId, obj: Mapping[str, Any]) -> dict[str, str]:
    """Field-selector values of ``obj``: metadata.name/namespace for all, plus per-resource fields."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": str(meta.get("name", "")), "metadata.namespace": str(meta.get("namespace", ""))}
    fields.update(extra_selectable_fields(rid, obj) or {})
    return fields


def supported_fields(rid: ResourceId) -> frozenset[str]:
    """The field names a field selector may name for this resource."""
    return frozenset(selectable_fields(rid, {}))
