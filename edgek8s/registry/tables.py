"""Server-side ``Table`` rendering (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``).

Role: turn stored objects into the ``meta.k8s.io/v1`` ``Table`` kubectl asks for on ``get``; kubectl
prints the cells verbatim, so every cell (including ``Age``) is computed here, from ``now``.
Reference: kubernetes pkg/printers/internalversion/printers.go (columns and cell logic, Kubernetes
1.32), pkg/printers/storage (the apiserver always prints "wide": priority-1 cells are always sent),
k8s.io/apiserver endpoints/handlers/response.go (``includeObject``), k8s.io/apimachinery
util/duration (``HumanDuration``).

Invariants:
- Pure: stdlib plus ``edgek8s.model``; no I/O, no clock (``now`` is a parameter).
- A row has one cell per column definition, priority 0 and 1 alike; cells are ``str`` or ``int``.
- Objects are JSON-shaped dicts as served (v1 field names); missing or mistyped fields read as Go's
  zero values, so a half-filled object still prints.  Defaults the real apiserver applies before
  storing (``spec.replicas`` 1, Service type ClusterIP and port protocol TCP, Secret type Opaque,
  Namespace phase Active) are applied when the field is absent.
- Rows share sub-dicts (``metadata``, the object for ``includeObject=Object``) with the input
  objects: serialise the table, do not mutate it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgek8s.model.errors import BadRequest
from edgek8s.model.selectors import LabelSelector, SelectorError
from edgek8s.model.timestamps import parse_time as _parse_time
from edgek8s.model.validation import go_quote as _go_quote

__all__ = [
    "INCLUDE_METADATA",
    "INCLUDE_NONE",
    "INCLUDE_OBJECT",
    "column_definitions",
    "human_duration",
    "table_for_list",
    "table_for_object",
]

INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"
_INCLUDE_POLICIES = frozenset({INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT, ""})

_TABLE_API_VERSION = "meta.k8s.io/v1"
_NONE = "<none>"
_UNKNOWN = "<unknown>"

Cell = str | int
_Row = tuple[list[Cell], list[dict[str, str]] | None]  # cells, row conditions
_Printer = Callable[[Mapping[str, Any], datetime.datetime], _Row]


# --- durations -------------------------------------------------------------------------------------


def human_duration(delta: datetime.timedelta) -> str:
    """``duration.HumanDuration``: ~2-3 significant figures, e.g. ``90s``, ``3m5s``, ``5h1m``, ``2d3h``, ``2y1d``.

    Up to 2s in the future counts as now (``0s``); further is ``<invalid>``.
    """
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    # Go's int(d.Seconds()) truncates toward zero.
    seconds = micros // 1_000_000 if micros >= 0 else -(-micros // 1_000_000)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years = hours // 24 // 365
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{years}y" if rest == 0 else f"{years}y{rest}d"
    return f"{years}y"


def _aware(now: datetime.datetime) -> datetime.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=datetime.UTC)


def _since(value: object, now: datetime.datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a zero time, else the human duration up to ``now``."""
    when = _parse_time(value)
    return _UNKNOWN if when is None else human_duration(now - when)


# --- reading JSON-shaped objects -----------------------------------------------------------------


def _map(obj: object, key: str) -> Mapping[str, Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _opt_map(obj: object, key: str) -> Mapping[str, Any] | None:
    """A nested object, or None when absent (Go's nil pointer)."""
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _list(obj: object, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, list) else []


def _maps(obj: object, key: str) -> list[Mapping[str, Any]]:
    return [item for item in _list(obj, key) if isinstance(item, Mapping)]


def _str(obj: object, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) else ""


def _int(obj: object, key: str, default: int = 0) -> int:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _bool(obj: object, key: str) -> bool:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value is True


def _name(obj: Mapping[str, Any]) -> str:
    return _str(_map(obj, "metadata"), "name")


def _age(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    return _since(_map(obj, "metadata").get("creationTimestamp"), now)


# --- shared cell formats ---------------------------------------------------------------------------


def _format_labels(labels: object) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, comma-joined; ``<none>`` when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return _NONE
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _selector_string(selector: object) -> str | None:
    """``metav1.LabelSelectorAsSelector(s).String()``; None when the selector is invalid."""
    if selector is not None and not isinstance(selector, Mapping):
        return None
    try:
        return str(LabelSelector.from_dict(selector))
    except SelectorError:
        return None


def _format_label_selector(selector: object) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` for an empty or null selector, ``<error>`` if invalid."""
    text = _selector_string(selector)
    if text is None:
        return "<error>"
    return text or _NONE


def _containers_and_images(pod_template: Mapping[str, Any]) -> tuple[str, str]:
    """``layoutContainerCells`` over ``spec.template.spec.containers``."""
    containers = _maps(_map(pod_template, "spec"), "containers")
    return ",".join(_str(c, "name") for c in containers), ",".join(_str(c, "image") for c in containers)


def _join_host_port(host: str, port: int) -> str:
    """Go's ``net.JoinHostPort``: brackets hosts containing a colon (IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- column descriptions (the v1 API's field documentation, as upstream's SwaggerDoc) --------------

_DESCRIPTIONS: dict[str, str] = {
    "name": (
        "Name must be unique within a namespace. Is required when creating resources, although some resources"
        " may allow a client to request the generation of an appropriate name automatically. Name is "
        "primarily intended for creation idempotence and configuration definition. Cannot be updated. More "
        "info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
    ),
    "creationTimestamp": (
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is "
        "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
        "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
        "Null for lists. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    ),
    "pod.podIP": (
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."
    ),
    "pod.nodeName": (
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for "
        "scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this "
        "node becomes responsible for the lifecycle of this pod. This field should not be used to express a "
        "desire for the pod to be scheduled on a specific node. "
        "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename"
    ),
    "pod.nominatedNodeName": (
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be "
        "scheduled right away as preemption victims receive their graceful termination periods. This field "
        "does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the "
        "pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the "
        "resources on this node to a higher priority pod that is created after preemption. As a result, this "
        "field may be different than PodSpec.nodeName when the pod is scheduled."
    ),
    "pod.readinessGates": (
        "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its "
        'containers are ready AND all conditions specified in the readiness gates have status equal to "True"'
        " More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates"
    ),
    "pod.nodeSelector": (
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must "
        "match a node's labels for the pod to be scheduled on that node. More info: "
        "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"
    ),
    "node.kubeletVersion": "Kubelet Version reported by the node.",
    "node.addresses": (
        "List of addresses reachable to the node. Queried from cloud provider, if available. More info: "
        "https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as "
        "mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is "
        "merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an "
        "example. Consumers should assume that addresses can change during the lifetime of a Node. However, "
        "there are some exceptions where this may not be possible, such as Pods that inherit a Node's address"
        " in its own status or consumers of the downward API (status.hostIP)."
    ),
    "node.osImage": "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    "node.kernelVersion": "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    "node.containerRuntimeVersion": (
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."
    ),
    "event.lastTimestamp": "The time at which the most recent occurrence of this event was recorded.",
    "event.type": "Type of this event (Normal, Warning), new types could be added in the future",
    "event.reason": (
        "This should be a short, machine understandable string that gives the reason for the transition into "
        "the object's current status."
    ),
    "event.fieldPath": (
        "If referring to a piece of an object instead of an entire object, this string should contain a valid"
        " JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the "
        "object reference is to a container within a pod, this would take on a value like: "
        '"spec.containers{name}" (where "name" refers to the name of the container that triggered the event) '
        'or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). This'
        " syntax is chosen only to have some well-defined way of referencing a part of an object."
    ),
    "event.message": "A human-readable description of the status of this operation.",
    "event.firstTimestamp": "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
    "event.count": "The number of times this event has occurred.",
    "secret.type": (
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"
    ),
    "secret.data": (
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. "
        "The serialized form of the secret data is a base64 encoded string, representing the arbitrary "
        "(possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"
    ),
    "configmap.data": (
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or "
        "'.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data "
        "must not overlap with the keys in the BinaryData field, this is enforced during validation process."
    ),
    "service.type": (
        "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, "
        'ClusterIP, NodePort, and LoadBalancer. "ClusterIP" allocates a cluster-internal IP address for '
        "load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, "
        'by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is "None", no '
        "virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual "
        'IP. "NodePort" builds on ClusterIP and allocates a port on every node which routes to the same '
        'endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an external load-balancer '
        "(if supported in the current cloud) which routes to the same endpoints as the clusterIP. "
        '"ExternalName" aliases this service to the specified externalName. Several other fields do not apply'
        " to ExternalName services. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"
    ),
    "service.clusterIP": (
        "clusterIP is the IP address of the service and is usually assigned randomly. If an address is "
        "specified manually, is in-range (as per system configuration), and is not in use, it will be "
        "allocated to the service; otherwise creation of the service will fail. This field may not be changed"
        " through updates unless the type field is also being changed to ExternalName (which requires this "
        "field to be blank) or the type field is being changed from ExternalName (in which case this field "
        'may optionally be specified, as describe above).  Valid values are "None", empty string (""), or a '
        'valid IP address. Setting this to "None" makes a "headless service" (no virtual IP), which is useful'
        " when direct endpoint connections are preferred and proxying is not required.  Only applies to types"
        " ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type "
        "ExternalName, creation will fail. This field will be wiped when updating a Service to type "
        "ExternalName. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
    ),
    "service.externalIPs": (
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for "
        "this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that "
        "traffic arrives at a node with this IP.  A common example is external load-balancers that are not "
        "part of the Kubernetes system."
    ),
    "service.ports": (
        "The list of ports that are exposed by this service. More info: "
        "https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"
    ),
    "service.selector": (
        "Route service traffic to pods with label keys and values matching this selector. If empty or not "
        "present, the service is assumed to have an external process managing its endpoints, which Kubernetes"
        " will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is "
        "ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"
    ),
    "endpoints.subsets": (
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to"
        " the IPs they share. A single address with multiple ports, some of which are ready and some of which"
        " are not (because they come from different containers) will result in the address being displayed in"
        " different subsets for the different ports. No address will appear in both Addresses and "
        "NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."
    ),
    "deployment.updatedReplicas": (
        "Total number of non-terminating pods targeted by this deployment that have the desired template spec."
    ),
    "deployment.availableReplicas": (
        "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this"
        " deployment."
    ),
    "replicaset.specReplicas": (
        "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and "
        "unspecified. Defaults to 1. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "replicaset.replicas": (
        "Replicas is the most recently observed number of non-terminating pods. More info: "
        "https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"
    ),
    "replicaset.readyReplicas": (
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."
    ),
    "daemonset.desiredNumberScheduled": (
        "The total number of nodes that should be running the daemon pod (including nodes correctly running "
        "the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "daemonset.currentNumberScheduled": (
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. "
        "More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
    ),
    "daemonset.numberReady": (
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the"
        " daemon pod running with a Ready Condition."
    ),
    "daemonset.updatedNumberScheduled": "The total number of nodes that are running updated daemon pod",
    "daemonset.numberAvailable": (
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
        "running and available (ready for at least spec.minReadySeconds)"
    ),
    "priorityclass.value": (
        "value represents the integer value of this priority class. This is the actual priority that pods "
        "receive when they have the name of this class in their pod spec."
    ),
    "priorityclass.globalDefault": (
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for "
        "pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. "
        "However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the "
        "smallest value of such global default PriorityClasses will be used as the default priority."
    ),
    "priorityclass.preemptionPolicy": (
        "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, "
        "PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."
    ),
    "lease.holderIdentity": (
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader "
        "Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name "
        "field."
    ),
    "event.involvedObject": "The object that this event is about.",
    "job.succeeded": (
        "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. "
        "However, it may decrease in reaction to scale down of elastic indexed jobs."
    ),
    "job.selector": (
        "A label query over pods that should match the pod count. Normally, the system sets this field for you. "
        "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "cronjob.schedule": "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
    "cronjob.timeZone": (
        "The time zone name for the given schedule, see "
        "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to "
        "the time zone of the kube-controller-manager process. The set of valid time zone names and the time "
        "zone offset is loaded from the system-wide time zone database by the API server during CronJob "
        "validation and the controller manager during execution. If no system-wide time zone database can be "
        "found a bundled version of the database is used instead. If the time zone name becomes invalid during "
        "the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating "
        "new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be "
        "found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"
    ),
    "cronjob.suspend": (
        "This flag tells the controller to suspend subsequent executions, it does not apply to already started "
        "executions.  Defaults to false."
    ),
    "cronjob.active": "A list of pointers to currently running jobs.",
    "cronjob.lastScheduleTime": "Information when was the last time the job was successfully scheduled.",
    "endpointslice.addressType": (
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice "
        "must be the same type. This field is immutable after creation. The following address types are "
        "currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: "
        "Represents a Fully Qualified Domain Name."
    ),
    "endpointslice.ports": (
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a "
        "unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined "
        "with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports."
    ),
    "endpointslice.endpoints": (
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 "
        "endpoints."
    ),
    "event.source": "The component reporting this event. Should be a short machine understandable string.",
    "deployment.selector": (
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones "
        "affected by this deployment. It must match the pod template's labels."
    ),
    "replicaset.selector": (
        "Selector is a label query over pods that should match the replica count. Label keys and values that "
        "must match in order to be controlled by this replica set. It must match the pod template's labels. "
        "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
    "daemonset.selector": (
        "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It"
        " must match the pod template's labels. More info: "
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
    ),
}


# --- columns ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    type: str
    description: str
    priority: int = 0
    format: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


_NAME = _Column("Name", "string", _DESCRIPTIONS["name"], format="name")
_AGE = _Column("Age", "string", _DESCRIPTIONS["creationTimestamp"])
_CONTAINERS = _Column("Containers", "string", "Names of each container in the template.", priority=1)
_IMAGES = _Column("Images", "string", "Images referenced by each container in the template.", priority=1)


def _wide(name: str, type_: str, key: str) -> _Column:
    return _Column(name, type_, _DESCRIPTIONS[key], priority=1)


_COLUMNS: dict[str, tuple[_Column, ...]] = {
    "Pod": (
        _NAME,
        _Column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        _Column("Status", "string", "The aggregate status of the containers in this pod."),
        _Column(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container "
            "in this pod has restarted.",
        ),
        _AGE,
        _wide("IP", "string", "pod.podIP"),
        _wide("Node", "string", "pod.nodeName"),
        _wide("Nominated Node", "string", "pod.nominatedNodeName"),
        _wide("Readiness Gates", "string", "pod.readinessGates"),
    ),
    "Node": (
        _NAME,
        _Column("Status", "string", "The status of the node"),
        _Column("Roles", "string", "The roles of the node"),
        _AGE,
        _Column("Version", "string", _DESCRIPTIONS["node.kubeletVersion"]),
        _wide("Internal-IP", "string", "node.addresses"),
        _wide("External-IP", "string", "node.addresses"),
        _wide("OS-Image", "string", "node.osImage"),
        _wide("Kernel-Version", "string", "node.kernelVersion"),
        _wide("Container-Runtime", "string", "node.containerRuntimeVersion"),
    ),
    "Namespace": (_NAME, _Column("Status", "string", "The status of the namespace"), _AGE),
    "Deployment": (
        _NAME,
        _Column("Ready", "string", "Number of the pod with ready state"),
        _Column("Up-to-date", "string", _DESCRIPTIONS["deployment.updatedReplicas"]),
        _Column("Available", "string", _DESCRIPTIONS["deployment.availableReplicas"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _wide("Selector", "string", "deployment.selector"),
    ),
    "ReplicaSet": (
        _NAME,
        _Column("Desired", "integer", _DESCRIPTIONS["replicaset.specReplicas"]),
        _Column("Current", "integer", _DESCRIPTIONS["replicaset.replicas"]),
        _Column("Ready", "integer", _DESCRIPTIONS["replicaset.readyReplicas"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _wide("Selector", "string", "replicaset.selector"),
    ),
    "DaemonSet": (
        _NAME,
        _Column("Desired", "integer", _DESCRIPTIONS["daemonset.desiredNumberScheduled"]),
        _Column("Current", "integer", _DESCRIPTIONS["daemonset.currentNumberScheduled"]),
        _Column("Ready", "integer", _DESCRIPTIONS["daemonset.numberReady"]),
        _Column("Up-to-date", "integer", _DESCRIPTIONS["daemonset.updatedNumberScheduled"]),
        _Column("Available", "integer", _DESCRIPTIONS["daemonset.numberAvailable"]),
        _Column("Node Selector", "string", _DESCRIPTIONS["pod.nodeSelector"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _wide("Selector", "string", "daemonset.selector"),
    ),
    "Service": (
        _NAME,
        _Column("Type", "string", _DESCRIPTIONS["service.type"]),
        _Column("Cluster-IP", "string", _DESCRIPTIONS["service.clusterIP"]),
        _Column("External-IP", "string", _DESCRIPTIONS["service.externalIPs"]),
        _Column("Port(s)", "string", _DESCRIPTIONS["service.ports"]),
        _AGE,
        _wide("Selector", "string", "service.selector"),
    ),
    "Endpoints": (_NAME, _Column("Endpoints", "string", _DESCRIPTIONS["endpoints.subsets"]), _AGE),
    "ConfigMap": (_NAME, _Column("Data", "string", _DESCRIPTIONS["configmap.data"]), _AGE),
    "Secret": (
        _NAME,
        _Column("Type", "string", _DESCRIPTIONS["secret.type"]),
        _Column("Data", "string", _DESCRIPTIONS["secret.data"]),
        _AGE,
    ),
    "Event": (
        _Column("Last Seen", "string", _DESCRIPTIONS["event.lastTimestamp"]),
        _Column("Type", "string", _DESCRIPTIONS["event.type"]),
        _Column("Reason", "string", _DESCRIPTIONS["event.reason"]),
        _Column("Object", "string", _DESCRIPTIONS["event.involvedObject"]),
        _wide("Subobject", "string", "event.fieldPath"),
        _wide("Source", "string", "event.source"),
        _Column("Message", "string", _DESCRIPTIONS["event.message"]),
        _wide("First Seen", "string", "event.firstTimestamp"),
        _wide("Count", "string", "event.count"),
        _Column("Name", "string", _DESCRIPTIONS["name"], priority=1, format="name"),
    ),
    "Lease": (_NAME, _Column("Holder", "string", _DESCRIPTIONS["lease.holderIdentity"]), _AGE),
    "PriorityClass": (_NAME, _Column("Value", "integer", _DESCRIPTIONS["priorityclass.value"]),
                      _Column("Global-Default", "boolean", _DESCRIPTIONS["priorityclass.globalDefault"]), _AGE,
                      _Column("PreemptionPolicy", "string", _DESCRIPTIONS["priorityclass.preemptionPolicy"])),
    "ControllerRevision": (_NAME, _Column("Controller", "string", "Controller of the object"),
                           _Column("Revision", "number", "Revision indicates the revision of the state represented "
                                                         "by Data."), _AGE),
    "Job": (
        _NAME,
        _Column("Status", "string", "Status of the job."),
        _Column("Completions", "string", _DESCRIPTIONS["job.succeeded"]),
        _Column("Duration", "string", "Time required to complete the job."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _wide("Selector", "string", "job.selector"),
    ),
    "PodDisruptionBudget": (
        _NAME,
        _Column("Min Available", "string", "The minimum number of pods that must be available simultaneously. "
                                           "This can be either an integer or a string specifying a percentage, "
                                           "e.g. \"28%\"."),
        _Column("Max Unavailable", "string", "The maximum number of pods that may be unavailable simultaneously. "
                                             "This can be either an integer or a string specifying a percentage, "
                                             "e.g. \"28%\"."),
        _Column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        _AGE,
    ),
    "CronJob": (
        _NAME,
        _Column("Schedule", "string", _DESCRIPTIONS["cronjob.schedule"]),
        _Column("Timezone", "string", _DESCRIPTIONS["cronjob.timeZone"]),
        _Column("Suspend", "boolean", _DESCRIPTIONS["cronjob.suspend"]),
        _Column("Active", "integer", _DESCRIPTIONS["cronjob.active"]),
        _Column("Last Schedule", "string", _DESCRIPTIONS["cronjob.lastScheduleTime"]),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        _wide("Selector", "string", "job.selector"),
    ),
    "EndpointSlice": (
        _NAME,
        _Column("AddressType", "string", _DESCRIPTIONS["endpointslice.addressType"]),
        _Column("Ports", "string", _DESCRIPTIONS["endpointslice.ports"]),
        _Column("Endpoints", "string", _DESCRIPTIONS["endpointslice.endpoints"]),
        _AGE,
    ),
    "ServiceAccount": (_NAME, _Column("Secrets", "string", "Secrets is a list of the secrets in the same namespace "
                                      "that pods running using this ServiceAccount are allowed to use."), _AGE),
    **dict.fromkeys(("Role", "ClusterRole"),
                    (_NAME, _Column("Created At", "date", _DESCRIPTIONS["creationTimestamp"]))),
    **{kind: (_NAME, _Column("Role", "string", "RoleRef can reference a Role in the current namespace or a "
                             "ClusterRole in the global namespace."), _AGE,
              *(_Column(what, "string", f"{what} in the {kind[0].lower()}{kind[1:]}", priority=1)
                for what in ("Users", "Groups", "ServiceAccounts")))
       for kind in ("RoleBinding", "ClusterRoleBinding")},
    "Ingress": (
        _NAME,
        _Column("Class", "string", "The name of the IngressClass resource that should be used for additional "
                "configuration"),
        _Column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        _Column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        _Column("Ports", "string", "Ports of TLS configurations that open"),
        _AGE,
    ),
    "IngressClass": (
        _NAME,
        _Column("Controller", "string", "Controller that is responsible for handling this class"),
        _Column("Parameters", "string", "A reference to a resource with additional parameters"),
        _AGE,
    ),
    "NetworkPolicy": (_NAME, _Column("Pod-Selector", "string", "Selects the pods to which this NetworkPolicy object "
                                     "applies."), _AGE),
}
_DEFAULT_COLUMNS: tuple[_Column, ...] = (_NAME, _AGE)


# --- pods ------------------------------------------------------------------------------------------

_POD_SUCCEEDED_CONDITIONS = [
    {"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}
]
_POD_FAILED_CONDITIONS = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
_NODE_UNREACHABLE_POD_REASON = "NodeLost"


def _finished_at(status: Mapping[str, Any]) -> datetime.datetime | None:
    """``lastTerminationState.terminated.finishedAt`` of a container status, None when absent."""
    terminated = _opt_map(_map(status, "lastTerminationState"), "terminated")
    return None if terminated is None else _parse_time(terminated.get("finishedAt"))


def _later(current: datetime.datetime | None, candidate: datetime.datetime | None) -> datetime.datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or current < candidate else current


def _has_condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    """True when the first condition of ``type_`` has status True."""
    for condition in conditions:
        if _str(condition, "type") == type_:
            return _str(condition, "status") == "True"
    return False


def _terminated_reason(terminated: Mapping[str, Any], prefix: str) -> str:
    reason = _str(terminated, "reason")
    if reason:
        return prefix + reason
    signal = _int(terminated, "signal")
    if signal != 0:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(terminated, 'exitCode')}"


def _print_pod(pod: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status, meta = _map(pod, "spec"), _map(pod, "status"), _map(pod, "metadata")
    conditions = _maps(status, "conditions")
    init_specs = _maps(spec, "initContainers")
    restartable = {_str(c, "name") for c in init_specs if _str(c, "restartPolicy") == "Always"}

    restarts = 0
    restartable_restarts = 0
    total = len(_maps(spec, "containers")) + len(restartable)
    ready = 0
    last_restart: datetime.datetime | None = None
    last_restartable_restart: datetime.datetime | None = None

    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    if any(_str(c, "type") == "PodScheduled" and _str(c, "reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    row_conditions = None
    if phase == "Succeeded":
        row_conditions = _POD_SUCCEEDED_CONDITIONS
    elif phase == "Failed":
        row_conditions = _POD_FAILED_CONDITIONS

    initializing = False
    for index, container in enumerate(_maps(status, "initContainerStatuses")):
        count = _int(container, "restartCount")
        finished = _finished_at(container)
        restarts += count
        last_restart = _later(last_restart, finished)
        is_restartable = _str(container, "name") in restartable
        if is_restartable:
            restartable_restarts += count
            last_restartable_restart = _later(last_restartable_restart, finished)
        state = _map(container, "state")
        terminated = _opt_map(state, "terminated")
        waiting = _opt_map(state, "waiting")
        if terminated is not None and _int(terminated, "exitCode") == 0:
            continue
        if is_restartable and _bool(container, "started"):
            if _bool(container, "ready"):
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and _str(waiting, "reason") not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting, "reason")
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _has_condition(conditions, "Initialized"):
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for container in reversed(_maps(status, "containerStatuses")):
            restarts += _int(container, "restartCount")
            last_restart = _later(last_restart, _finished_at(container))
            state = _map(container, "state")
            terminated = _opt_map(state, "terminated")
            waiting = _opt_map(state, "waiting")
            if waiting is not None and _str(waiting, "reason"):
                reason = _str(waiting, "reason")
            elif terminated is not None:
                reason = _terminated_reason(terminated, "")
            elif _bool(container, "ready") and _opt_map(state, "running") is not None:
                has_running = True
                ready += 1
        # A container still running after another completed: the pod is not "Completed" yet.
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") is not None:
        if _str(status, "reason") == _NODE_UNREACHABLE_POD_REASON:
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ips = _maps(status, "podIPs")
    # The v1 -> internal conversion makes status.podIP authoritative over podIPs[0].
    pod_ip = _str(status, "podIP") or (_str(pod_ips[0], "ip") if pod_ips else "")
    gates = _maps(spec, "readinessGates")
    readiness_gates = _NONE
    if gates:
        true_gates = 0
        for gate in gates:
            for condition in conditions:
                if _str(condition, "type") == _str(gate, "conditionType"):
                    if _str(condition, "status") == "True":
                        true_gates += 1
                    break
        readiness_gates = f"{true_gates}/{len(gates)}"
    cells: list[Cell] = [
        _str(meta, "name"),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip or _NONE,
        _str(spec, "nodeName") or _NONE,
        _str(status, "nominatedNodeName") or _NONE,
        readiness_gates,
    ]
    return cells, row_conditions


def _has_condition_true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    """True when any condition of ``type_`` has status True (upstream's ``hasPodReadyCondition``)."""
    return any(_str(c, "type") == type_ and _str(c, "status") == "True" for c in conditions)


# --- other kinds -----------------------------------------------------------------------------------


def _node_roles(labels: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/") :]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and isinstance(value, str) and value:
            roles.add(value)
    return ",".join(sorted(roles)) or _NONE


def _node_address(status: Mapping[str, Any], type_: str) -> str:
    for address in _maps(status, "addresses"):
        if _str(address, "type") == type_:
            return _str(address, "address")
    return _NONE


def _print_node(node: Mapping[str, Any], now: datetime.datetime) -> _Row:
    status = _map(node, "status")
    ready: Mapping[str, Any] | None = None
    for condition in _maps(status, "conditions"):  # the last Ready condition wins, as in upstream's map
        if _str(condition, "type") == "Ready":
            ready = condition
    states = ["Unknown" if ready is None else "Ready" if _str(ready, "status") == "True" else "NotReady"]
    if _bool(_map(node, "spec"), "unschedulable"):
        states.append("SchedulingDisabled")
    info = _map(status, "nodeInfo")
    cells: list[Cell] = [
        _name(node),
        ",".join(states),
        _node_roles(_map(_map(node, "metadata"), "labels")),
        _age(node, now),
        _str(info, "kubeletVersion"),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        _str(info, "osImage") or _UNKNOWN,
        _str(info, "kernelVersion") or _UNKNOWN,
        _str(info, "containerRuntimeVersion") or _UNKNOWN,
    ]
    return cells, None


def _print_namespace(namespace: Mapping[str, Any], now: datetime.datetime) -> _Row:
    phase = _str(_map(namespace, "status"), "phase") or "Active"  # the apiserver sets it on create
    return [_name(namespace), phase, _age(namespace, now)], None


def _replicas(spec: Mapping[str, Any]) -> int:
    """``spec.replicas``, which the apiserver defaults to 1."""
    return _int(spec, "replicas", 1)


def _print_deployment(deployment: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(deployment, "spec"), _map(deployment, "status")
    containers, images = _containers_and_images(_map(spec, "template"))
    selector = _selector_string(spec.get("selector"))
    cells: list[Cell] = [
        _name(deployment),
        f"{_int(status, 'readyReplicas')}/{_replicas(spec)}",
        _int(status, "updatedReplicas"),
        _int(status, "availableReplicas"),
        _age(deployment, now),
        containers,
        images,
        "<invalid>" if selector is None else selector,
    ]
    return cells, None


def _print_replica_set(replica_set: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(replica_set, "spec"), _map(replica_set, "status")
    containers, images = _containers_and_images(_map(spec, "template"))
    cells: list[Cell] = [
        _name(replica_set),
        _replicas(spec),
        _int(status, "replicas"),
        _int(status, "readyReplicas"),
        _age(replica_set, now),
        containers,
        images,
        _format_label_selector(spec.get("selector")),
    ]
    return cells, None


def _print_daemon_set(daemon_set: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(daemon_set, "spec"), _map(daemon_set, "status")
    template = _map(spec, "template")
    containers, images = _containers_and_images(template)
    cells: list[Cell] = [
        _name(daemon_set),
        _int(status, "desiredNumberScheduled"),
        _int(status, "currentNumberScheduled"),
        _int(status, "numberReady"),
        _int(status, "updatedNumberScheduled"),
        _int(status, "numberAvailable"),
        _format_labels(_map(template, "spec").get("nodeSelector")),
        _age(daemon_set, now),
        containers,
        images,
        _format_label_selector(spec.get("selector")),
    ]
    return cells, None


def _load_balancer_ips(status: Mapping[str, Any]) -> list[str]:
    """``loadBalancerStatusStringer`` (wide, so never clipped): each ingress's IP or hostname, sorted, unique."""
    found: set[str] = set()
    for ingress in _maps(_map(status, "loadBalancer"), "ingress"):
        value = _str(ingress, "ip") or _str(ingress, "hostname")
        if value:
            found.add(value)
    return sorted(found)


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    external_ips = [ip for ip in _list(spec, "externalIPs") if isinstance(ip, str)]
    service_type = _service_type(spec)
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or _NONE
    if service_type == "LoadBalancer":
        addresses = _load_balancer_ips(status) + external_ips
        return ",".join(addresses) or "<pending>"
    if service_type == "ExternalName":
        return _str(spec, "externalName")
    return _UNKNOWN


def _service_type(spec: Mapping[str, Any]) -> str:
    return _str(spec, "type") or "ClusterIP"  # the apiserver's default


def _service_ports(spec: Mapping[str, Any]) -> str:
    pieces = []
    for port in _maps(spec, "ports"):
        protocol = _str(port, "protocol") or "TCP"
        node_port = _int(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{_int(port, 'port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{_int(port, 'port')}/{protocol}")
    return ",".join(pieces) or _NONE


def _print_service(service: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(service, "spec"), _map(service, "status")
    cluster_ips = [ip for ip in _list(spec, "clusterIPs") if isinstance(ip, str)]
    cluster_ip = cluster_ips[0] if cluster_ips else _str(spec, "clusterIP")
    cells: list[Cell] = [
        _name(service),
        _service_type(spec),
        cluster_ip or _NONE,
        _service_external_ip(spec, status),
        _service_ports(spec),
        _age(service, now),
        _format_labels(spec.get("selector")),
    ]
    return cells, None


_MAX_ENDPOINTS = 3


def _format_endpoints(endpoints: Mapping[str, Any]) -> str:
    """``formatEndpoints``: up to 3 ``ip:port`` (or bare IPs for port-less subsets), then ``+ N more...``."""
    subsets = _maps(endpoints, "subsets")
    if not subsets:
        return _NONE
    shown: list[str] = []
    more = False
    count = 0
    for subset in subsets:
        addresses = [_str(address, "ip") for address in _maps(subset, "addresses")]
        ports = _maps(subset, "ports")
        if not ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == _MAX_ENDPOINTS:
                    more = True
                    break
                shown.append(ip)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == _MAX_ENDPOINTS:
                    more = True
                    break
                shown.append(_join_host_port(ip, _int(port, "port")))
    text = ",".join(shown)
    return f"{text} + {count - _MAX_ENDPOINTS} more..." if more else text


def _print_endpoints(endpoints: Mapping[str, Any], now: datetime.datetime) -> _Row:
    return [_name(endpoints), _format_endpoints(endpoints), _age(endpoints, now)], None


def _print_config_map(config_map: Mapping[str, Any], now: datetime.datetime) -> _Row:
    count = len(_map(config_map, "data")) + len(_map(config_map, "binaryData"))
    return [_name(config_map), count, _age(config_map, now)], None


def _print_secret(secret: Mapping[str, Any], now: datetime.datetime) -> _Row:
    # stringData is merged into data when a v1 Secret is converted, so its keys count too.
    keys = set(_map(secret, "data")) | set(_map(secret, "stringData"))
    secret_type = _str(secret, "type") or "Opaque"  # the apiserver's default
    return [_name(secret), secret_type, len(keys), _age(secret, now)], None


def _event_source(event: Mapping[str, Any]) -> str:
    """``formatEventSource``: component (or reportingComponent), then ``, host`` (or reportingInstance)."""
    source = _map(event, "source")
    component = _str(source, "component") or _str(event, "reportingComponent")
    host = _str(source, "host") or _str(event, "reportingInstance")
    return f"{component}, {host}" if host else component


def _print_event(event: Mapping[str, Any], now: datetime.datetime) -> _Row:
    if _parse_time(event.get("firstTimestamp")) is not None:
        first_seen = _since(event.get("firstTimestamp"), now)
    else:
        first_seen = _since(event.get("eventTime"), now)
    if _parse_time(event.get("lastTimestamp")) is not None:
        last_seen = _since(event.get("lastTimestamp"), now)
    else:
        last_seen = first_seen
    count = _int(event, "count")
    series = _opt_map(event, "series")
    if series is not None:
        last_seen = _since(series.get("lastObservedTime"), now)
        count = _int(series, "count")
    elif count == 0:
        count = 1  # singleton events have no count in the events.k8s.io API
    involved = _map(event, "involvedObject")
    kind = _str(involved, "kind").lower()
    target = f"{kind}/{_str(involved, 'name')}" if _str(involved, "name") else kind
    cells: list[Cell] = [
        last_seen,
        _str(event, "type"),
        _str(event, "reason"),
        target,
        _str(involved, "fieldPath"),
        _event_source(event),
        _str(event, "message").strip(),
        first_seen,
        count,
        _name(event),
    ]
    return cells, None


def _print_lease(lease: Mapping[str, Any], now: datetime.datetime) -> _Row:
    return [_name(lease), _str(_map(lease, "spec"), "holderIdentity"), _age(lease, now)], None


def _print_priority_class(pc: Mapping[str, Any], now: datetime.datetime) -> _Row:
    return [_name(pc), _int(pc, "value"), pc.get("globalDefault") is True, _age(pc, now),
            _str(pc, "preemptionPolicy")], None


def _print_controller_revision(revision: Mapping[str, Any], now: datetime.datetime) -> _Row:
    controller = "<none>"
    for ref in _maps(_map(revision, "metadata"), "ownerReferences"):
        if ref.get("controller"):
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "").lower()
            controller = f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return [_name(revision), controller, _int(revision, "revision"), _age(revision, now)], None


# --- batch and discovery ---------------------------------------------------------------------------


def _job_status(job: Mapping[str, Any]) -> str:
    """``printJob``'s Status column, in upstream's order of precedence."""
    conditions = _maps(_map(job, "status"), "conditions")
    if _has_condition_true(conditions, "Complete"):
        return "Complete"
    if _has_condition_true(conditions, "Failed"):
        return "Failed"
    if _map(job, "metadata").get("deletionTimestamp"):
        return "Terminating"
    if _has_condition_true(conditions, "Suspended"):
        return "Suspended"
    if _has_condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _print_job(job: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(job, "spec"), _map(job, "status")
    succeeded = _int(status, "succeeded")
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec, 'completions')}"
    elif _int(spec, "parallelism") > 1:
        completions = f"{succeeded}/1 of {_int(spec, 'parallelism')}"
    else:
        completions = f"{succeeded}/1"
    started, finished = _parse_time(status.get("startTime")), _parse_time(status.get("completionTime"))
    duration = "" if started is None else human_duration((finished or now) - started)
    containers, images = _containers_and_images(_map(spec, "template"))
    cells: list[Cell] = [_name(job), _job_status(job), completions, duration, _age(job, now), containers, images,
                         _format_label_selector(spec.get("selector"))]
    return cells, None


def _print_cron_job(cron_job: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(cron_job, "spec"), _map(cron_job, "status")
    job_spec = _map(_map(spec, "jobTemplate"), "spec")
    last = status.get("lastScheduleTime")
    suspend = spec.get("suspend")
    containers, images = _containers_and_images(_map(job_spec, "template"))
    cells: list[Cell] = [
        _name(cron_job),
        _str(spec, "schedule"),
        _str(spec, "timeZone") or _NONE,
        ("True" if suspend else "False") if isinstance(suspend, bool) else "<unset>",  # printBoolPtr
        len(_list(status, "active")),
        _since(last, now) if last else _NONE,
        _age(cron_job, now),
        containers,
        images,
        _format_label_selector(job_spec.get("selector")),
    ]
    return cells, None


def _print_pod_disruption_budget(budget: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec, status = _map(budget, "spec"), _map(budget, "status")
    cells: list[Cell] = [
        _name(budget),
        str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
        str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
        int(status.get("disruptionsAllowed") or 0),
        _age(budget, now),
    ]
    return cells, None


def _list_with_more(shown: list[str], count: int) -> str:
    """``listWithMoreString``: the first 3, ``+ N more...`` beyond, ``<unset>`` for none."""
    text = ",".join(shown[:_MAX_ENDPOINTS])
    if count > _MAX_ENDPOINTS:
        return f"{text} + {count - _MAX_ENDPOINTS} more..."
    return text or "<unset>"


def _print_endpoint_slice(endpoint_slice: Mapping[str, Any], now: datetime.datetime) -> _Row:
    ports = [str(p["port"]) if isinstance(p.get("port"), int) else (p.get("name") or "*")
             for p in _maps(endpoint_slice, "ports")]
    addresses = [str(a) for e in _maps(endpoint_slice, "endpoints") for a in _list(e, "addresses")]
    cells: list[Cell] = [_name(endpoint_slice), _str(endpoint_slice, "addressType"),
                         _list_with_more(ports, len(ports)), _list_with_more(addresses, len(addresses)),
                         _age(endpoint_slice, now)]
    return cells, None


def _print_service_account(account: Mapping[str, Any], now: datetime.datetime) -> _Row:
    return [_name(account), len(_list(account, "secrets")), _age(account, now)], None


def _print_role(role: Mapping[str, Any], _now: datetime.datetime) -> _Row:
    created = _parse_time(_map(role, "metadata").get("creationTimestamp"))
    stamp = created.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
    return [_name(role), stamp], None


def _print_role_binding(binding: Mapping[str, Any], now: datetime.datetime) -> _Row:
    """``printRoleBinding`` with ``rbac.SubjectsStrings``: users, groups and ``namespace/name`` accounts."""
    ref = _map(binding, "roleRef")
    subjects: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in _maps(binding, "subjects"):
        kind, name = _str(subject, "kind"), _str(subject, "name")
        if kind in subjects:
            subjects[kind].append(f"{_str(subject, 'namespace')}/{name}" if kind == "ServiceAccount" else name)
    cells: list[Cell] = [_name(binding), f"{_str(ref, 'kind')}/{_str(ref, 'name')}", _age(binding, now)]
    return cells + [", ".join(names) for names in subjects.values()], None


def _print_ingress(ingress: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec = _map(ingress, "spec")
    rules = _maps(spec, "rules")
    hosts = [_str(rule, "host") for rule in rules[:3] if _str(rule, "host")]
    host_cell = ",".join(hosts) or "*"
    if len(rules) > 3:
        host_cell += f" + {len(rules) - 3} more..."
    points = {_str(p, "ip") or _str(p, "hostname") for p in _maps(_map(_map(ingress, "status"), "loadBalancer"),
                                                                    "ingress")}
    cells: list[Cell] = [_name(ingress), _str(spec, "ingressClassName") or _NONE, host_cell,
                         ",".join(sorted(points - {""})), "80, 443" if _list(spec, "tls") else "80", _age(ingress, now)]
    return cells, None


def _print_ingress_class(ingress_class: Mapping[str, Any], now: datetime.datetime) -> _Row:
    spec = _map(ingress_class, "spec")
    parameters = _opt_map(spec, "parameters")
    shown = _NONE
    if parameters is not None:
        group = parameters.get("apiGroup")
        shown = _str(parameters, "kind") + (f".{group}" if isinstance(group, str) else "") + "/" + _str(
            parameters, "name")
    return [_name(ingress_class), _str(spec, "controller"), shown, _age(ingress_class, now)], None


def _print_network_policy(policy: Mapping[str, Any], now: datetime.datetime) -> _Row:
    selector = _map(_map(policy, "spec"), "podSelector")
    return [_name(policy), _format_label_selector(selector), _age(policy, now)], None


def _print_default(obj: Mapping[str, Any], now: datetime.datetime) -> _Row:
    return [_name(obj), _age(obj, now)], None


_PRINTERS: dict[str, _Printer] = {
    "Pod": _print_pod,
    "Node": _print_node,
    "Namespace": _print_namespace,
    "Deployment": _print_deployment,
    "ReplicaSet": _print_replica_set,
    "DaemonSet": _print_daemon_set,
    "Service": _print_service,
    "Endpoints": _print_endpoints,
    "ConfigMap": _print_config_map,
    "Secret": _print_secret,
    "Event": _print_event,
    "Lease": _print_lease,
    "ControllerRevision": _print_controller_revision,
    "PriorityClass": _print_priority_class,
    "Job": _print_job,
    "CronJob": _print_cron_job,
    "PodDisruptionBudget": _print_pod_disruption_budget,
    "EndpointSlice": _print_endpoint_slice,
    "ServiceAccount": _print_service_account,
    "Role": _print_role,
    "ClusterRole": _print_role,
    "RoleBinding": _print_role_binding,
    "ClusterRoleBinding": _print_role_binding,
    "Ingress": _print_ingress,
    "IngressClass": _print_ingress_class,
    "NetworkPolicy": _print_network_policy,
}


# --- tables ----------------------------------------------------------------------------------------


def column_definitions(kind: str) -> list[dict[str, Any]]:
    """The ``columnDefinitions`` of ``kind``'s table (``Name``, ``Age`` for kinds without a printer)."""
    return [column.as_dict() for column in _COLUMNS.get(kind, _DEFAULT_COLUMNS)]


def _check_include_object(include_object: str) -> str:
    if include_object not in _INCLUDE_POLICIES:
        raise BadRequest(
            "Unable to convert to Table as requested: includeObject: Invalid value: "
            f"{_go_quote(include_object)}: must be 'Metadata', 'Object', 'None', or empty"
        )
    return include_object or INCLUDE_METADATA


def _row(kind: str, obj: Mapping[str, Any], now: datetime.datetime, include_object: str) -> dict[str, Any]:
    cells, conditions = _PRINTERS.get(kind, _print_default)(obj, now)
    row: dict[str, Any] = {"cells": cells}
    if conditions is not None:
        row["conditions"] = [dict(condition) for condition in conditions]
    if include_object == INCLUDE_METADATA:
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": _TABLE_API_VERSION,
            "metadata": dict(_map(obj, "metadata")),
        }
    elif include_object == INCLUDE_OBJECT:
        row["object"] = obj
    return row


def _table(kind: str, metadata: dict[str, Any], rows: list[dict[str, Any]], headers: bool) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": _TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": column_definitions(kind) if headers else None,
        "rows": rows,
    }


def table_for_list(
    kind: str,
    objects: list[dict[str, Any]],
    *,
    now: datetime.datetime,
    include_object: str = INCLUDE_METADATA,
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
) -> dict[str, Any]:
    """The ``Table`` for a list of ``kind`` objects, in the given order.

    ``include_object`` is the ``?includeObject=`` value: ``Metadata`` (or empty) puts a
    ``PartialObjectMetadata`` in each row, ``Object`` the object itself, ``None`` nothing.  Any
    other value raises ``BadRequest`` with upstream's message.  The list metadata is upstream's
    ``ListMeta``: empty ``resourceVersion``/``continue`` and a None ``remaining`` are left out.
    """
    policy = _check_include_object(include_object)
    now = _aware(now)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return _table(kind, metadata, [_row(kind, obj, now, policy) for obj in objects], headers=True)


def table_for_object(
    kind: str,
    obj: dict[str, Any],
    *,
    now: datetime.datetime,
    include_object: str = INCLUDE_METADATA,
    headers: bool = True,
) -> dict[str, Any]:
    """The one-row ``Table`` for a single ``get`` or a watch event.

    Its ``metadata.resourceVersion`` is the object's, as upstream's.  ``headers=False`` sends
    ``columnDefinitions: null``, as the apiserver does for every watch event after the first.
    """
    policy = _check_include_object(include_object)
    now = _aware(now)
    resource_version = _str(_map(obj, "metadata"), "resourceVersion")
    metadata: dict[str, Any] = {"resourceVersion": resource_version} if resource_version else {}
    return _table(kind, metadata, [_row(kind, obj, now, policy)], headers=headers)
