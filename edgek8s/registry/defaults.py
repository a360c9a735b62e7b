"""Upstream's defaulting (``SetDefaults_*`` and ``+default`` markers) for the kinds edgek8s serves.

kube-apiserver fills these in when it decodes a create or update body, before validation, so
``kubectl get -o yaml`` shows them and controllers can rely on them. This module does the same on
the JSON form, in place. It mirrors pkg/apis/{core,apps,batch,discovery,rbac,networking}/v1 defaults.go and the
generated walk (zz_generated.defaults.go) that applies them to every nested place a type occurs:
the pod spec of a Pod and of every template (Deployment, ReplicaSet, DaemonSet, Job, CronJob).

The rules of Go's zero values are kept: a *pointer* field is defaulted only when absent or null (a
user's ``0`` or ``false`` stays), a plain string or number field also when it is ``""`` or ``0``.
Values of the wrong JSON type are left alone, for validation to reject. Defaulting twice is the
same as defaulting once, and a value the user set is never replaced (the one exception is
upstream's own: a Namespace's ``kubernetes.io/metadata.name`` label always equals its name).

Left out, because upstream does them elsewhere or they do not show: the Service IP family fields
and cluster IPs (the service REST storage), Pod ``priority``/``serviceAccountName``/tolerations
(admission plugins), rounding of resource quantities to milli-units, pod-level resources (an alpha
gate), and ``data: {}`` on a ConfigMap (an empty map is omitted on the wire).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Final

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: Final = 30
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
DEFAULT_VOLUME_MODE: Final = 0o644  # 420: SecretVolumeSourceDefaultMode and its siblings
DEFAULT_CLIENT_IP_AFFINITY_SECONDS: Final = 10800
DEFAULT_TOKEN_EXPIRATION_SECONDS: Final = 3600
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
MAX_INT32: Final = 2**31 - 1

# Every member of core/v1 VolumeSource: a volume that sets none of them gets an emptyDir.
VOLUME_SOURCES: Final = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
})

Obj = dict[str, Any]


# --- navigation: Go's pointer and value semantics on JSON -------------------------------------------


def _struct(parent: Obj, key: str) -> Obj | None:
    """A non-pointer struct field: created when absent or null; None when it has the wrong type."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _pointer(parent: Obj | None, key: str) -> Obj | None:
    """A pointer-to-struct field: the object when present, else None (never created)."""
    if parent is None:
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _each(parent: Obj | None, key: str) -> Iterator[Obj]:
    """The objects of a list field (nulls and wrongly typed items skipped)."""
    if parent is None:
        return
    items = parent.get(key)
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                yield item


def _unset_string(obj: Obj, key: str, value: Any) -> None:
    """A plain string field (Go zero value ``""``)."""
    if obj.get(key) in (None, ""):
        obj[key] = value


def _unset_pointer(obj: Obj, key: str, value: Any) -> None:
    """A pointer field: only absent or null counts as unset."""
    if obj.get(key) is None:
        obj[key] = value


def _unset_number(obj: Obj, key: str, value: int) -> None:
    """A plain integer field (Go zero value ``0``)."""
    current = obj.get(key)
    if current is None or (type(current) is int and current == 0):
        obj[key] = value


# --- image references (k8s.io/kubernetes/pkg/util/parsers.ParseImageName) --------------------------

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):(?P<hex>[0-9a-fA-F]{32,}))?",
    re.ASCII,
)
_DIGEST_HEX_LENGTHS: Final = {"sha256": 64, "sha384": 96, "sha512": 128}
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)


def image_tag(image: str) -> str:
    """The tag upstream reads from an image reference: ``latest`` when it has neither tag nor digest.

    ``""`` for a reference with only a digest, and for one that does not parse (upstream ignores the
    error there and so treats it as not ``latest``).
    """
    if _IDENTIFIER.fullmatch(image):
        return ""
    match = _REFERENCE.fullmatch(image)
    if match is None or len(match["name"]) > 255:
        return ""
    if match["algorithm"] is not None:
        hex_length = _DIGEST_HEX_LENGTHS.get(match["algorithm"])
        if hex_length != len(match["hex"]) or match["hex"] != match["hex"].lower():
            return ""  # go-digest accepts only these algorithms, in lower-case hex
        return match["tag"] or ""
    return match["tag"] or "latest"


def _pull_policy(image: Any) -> str:
    return "Always" if isinstance(image, str) and image_tag(image) == "latest" else "IfNotPresent"


# --- core/v1 ----------------------------------------------------------------------------------------


def _field_selector(selector: Obj | None) -> None:  # SetDefaults_ObjectFieldSelector
    if selector is not None:
        _unset_string(selector, "apiVersion", "v1")


def _http_get(action: Obj | None) -> None:  # SetDefaults_HTTPGetAction
    if action is not None:
        _unset_string(action, "path", "/")
        _unset_string(action, "scheme", "HTTP")


def _probe(probe: Obj | None) -> None:  # SetDefaults_Probe, and the handlers inside
    if probe is None:
        return
    _unset_number(probe, "timeoutSeconds", 1)
    _unset_number(probe, "periodSeconds", 10)
    _unset_number(probe, "successThreshold", 1)
    _unset_number(probe, "failureThreshold", 3)
    _http_get(_pointer(probe, "httpGet"))
    grpc = _pointer(probe, "grpc")
    if grpc is not None:
        _unset_pointer(grpc, "service", "")


def _container(container: Obj) -> None:  # SetDefaults_Container and its generated walk
    if container.get("imagePullPolicy") in (None, ""):
        container["imagePullPolicy"] = _pull_policy(container.get("image"))
    _unset_string(container, "terminationMessagePath", "/dev/termination-log")
    _unset_string(container, "terminationMessagePolicy", "File")
    for port in _each(container, "ports"):
        _unset_string(port, "protocol", "TCP")
    for env in _each(container, "env"):
        value_from = _pointer(env, "valueFrom")
        _field_selector(_pointer(value_from, "fieldRef"))
        file_key = _pointer(value_from, "fileKeyRef")
        if file_key is not None:
            _unset_pointer(file_key, "optional", False)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_pointer(container, probe))
    lifecycle = _pointer(container, "lifecycle")
    for hook in ("postStart", "preStop"):
        _http_get(_pointer(_pointer(lifecycle, hook), "httpGet"))


def _volume(volume: Obj) -> None:  # SetDefaults_Volume and the volume sources' defaults
    if all(volume.get(source) is None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    image = _pointer(volume, "image")
    if image is not None and image.get("pullPolicy") in (None, ""):
        image["pullPolicy"] = _pull_policy(image.get("reference"))
    host_path = _pointer(volume, "hostPath")
    if host_path is not None:
        _unset_pointer(host_path, "type", "")  # HostPathUnset
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        obj = _pointer(volume, source)
        if obj is not None:
            _unset_pointer(obj, "defaultMode", DEFAULT_VOLUME_MODE)
    for item in _each(_pointer(volume, "downwardAPI"), "items"):
        _field_selector(_pointer(item, "fieldRef"))
    for projection in _each(_pointer(volume, "projected"), "sources"):
        for item in _each(_pointer(projection, "downwardAPI"), "items"):
            _field_selector(_pointer(item, "fieldRef"))
        token = _pointer(projection, "serviceAccountToken")
        if token is not None:
            _unset_pointer(token, "expirationSeconds", DEFAULT_TOKEN_EXPIRATION_SECONDS)
    iscsi = _pointer(volume, "iscsi")
    if iscsi is not None:
        _unset_string(iscsi, "iscsiInterface", "default")
    rbd = _pointer(volume, "rbd")
    if rbd is not None:
        _unset_string(rbd, "pool", "rbd")
        _unset_string(rbd, "user", "admin")
        _unset_string(rbd, "keyring", "/etc/ceph/keyring")
    azure_disk = _pointer(volume, "azureDisk")
    if azure_disk is not None:
        _unset_pointer(azure_disk, "cachingMode", "ReadWrite")
        _unset_pointer(azure_disk, "fsType", "ext4")
        _unset_pointer(azure_disk, "readOnly", False)
        _unset_pointer(azure_disk, "kind", "Shared")
    scale_io = _pointer(volume, "scaleIO")
    if scale_io is not None:
        _unset_string(scale_io, "storageMode", "ThinProvisioned")
        _unset_string(scale_io, "fsType", "xfs")
    claim_template = _pointer(_pointer(volume, "ephemeral"), "volumeClaimTemplate")
    if claim_template is not None:
        claim_spec = _struct(claim_template, "spec")
        if claim_spec is not None:  # SetDefaults_PersistentVolumeClaimSpec
            _unset_pointer(claim_spec, "volumeMode", "Filesystem")


def _pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and the walk below it: what a Pod and every pod template get."""
    _unset_string(spec, "dnsPolicy", "ClusterFirst")
    _unset_string(spec, "restartPolicy", "Always")
    _unset_pointer(spec, "securityContext", {})
    _unset_pointer(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS)
    _unset_string(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for volume in _each(spec, "volumes"):
        _volume(volume)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _each(spec, key):
            _container(container)


def _template_spec(parent: Obj | None, key: str = "template") -> None:
    """A PodTemplateSpec value field: upstream defaults its spec even when it was left out."""
    template = _struct(parent, key) if parent is not None else None
    spec = _struct(template, "spec") if template is not None else None
    if spec is not None:
        _pod_spec(spec)


def _pod(obj: Obj) -> None:  # SetObjectDefaults_Pod
    spec = _struct(obj, "spec")
    if spec is None:
        return
    # SetDefaults_Pod: only for a Pod, not for a template.
    for key in ("containers", "initContainers"):
        for container in _each(spec, key):
            resources = _pointer(container, "resources")
            limits = _pointer(resources, "limits")
            if resources is None or not limits:
                continue
            requests = resources.get("requests")
            if requests is None:
                requests = resources["requests"] = {}
            if isinstance(requests, dict):
                for name, quantity in limits.items():
                    requests.setdefault(name, quantity)
    _unset_pointer(spec, "enableServiceLinks", True)
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _each(spec, key):
                for port in _each(container, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort", 0)
    _pod_spec(spec)


def _service(obj: Obj) -> None:  # SetDefaults_Service
    spec = _struct(obj, "spec")
    if spec is None:
        return
    _unset_string(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client_ip = _pointer(_pointer(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    _unset_string(spec, "type", "ClusterIP")
    service_type = spec["type"]
    for port in _each(spec, "ports"):
        _unset_string(port, "protocol", "TCP")
        target = port.get("targetPort")
        number = port.get("port", 0)
        if (target is None or target == "" or (type(target) is int and target == 0)) and type(number) is int:
            port["targetPort"] = number
    external_ips = spec.get("externalIPs")
    externally_accessible = service_type in ("LoadBalancer", "NodePort") or (
        service_type == "ClusterIP" and isinstance(external_ips, list) and len(external_ips) > 0
    )
    if externally_accessible:
        _unset_string(spec, "externalTrafficPolicy", "Cluster")
    if service_type in ("NodePort", "LoadBalancer", "ClusterIP"):
        _unset_pointer(spec, "internalTrafficPolicy", "Cluster")
    if service_type == "LoadBalancer":
        _unset_pointer(spec, "allocateLoadBalancerNodePorts", True)
        for ingress in _each(_pointer(_pointer(obj, "status"), "loadBalancer"), "ingress"):
            if ingress.get("ip") not in (None, "") and ingress.get("ipMode") is None:
                ingress["ipMode"] = "VIP"


def _secret(obj: Obj) -> None:  # SetDefaults_Secret
    _unset_string(obj, "type", "Opaque")


def _namespace(obj: Obj) -> None:  # SetDefaults_Namespace, SetDefaults_NamespaceStatus
    meta = _struct(obj, "metadata")
    if meta is not None:
        name = meta.get("name")
        if isinstance(name, str) and name:
            labels = meta.get("labels")
            if labels is None:
                labels = meta["labels"] = {}
            if isinstance(labels, dict):
                labels[NAMESPACE_NAME_LABEL] = name
    status = _struct(obj, "status")
    if status is not None:
        _unset_string(status, "phase", "Active")


def _node(obj: Obj) -> None:  # SetDefaults_NodeStatus
    status = _pointer(obj, "status")
    if status is None:
        return
    capacity = status.get("capacity")
    if status.get("allocatable") is None and isinstance(capacity, dict) and capacity:
        status["allocatable"] = dict(capacity)


def _endpoints(obj: Obj) -> None:  # SetDefaults_Endpoints
    for subset in _each(obj, "subsets"):
        for port in _each(subset, "ports"):
            _unset_string(port, "protocol", "TCP")


# --- apps/v1 ----------------------------------------------------------------------------------------


def _deployment(obj: Obj) -> None:  # SetDefaults_Deployment
    spec = _struct(obj, "spec")
    if spec is None:
        return
    _unset_pointer(spec, "replicas", 1)
    strategy = _struct(spec, "strategy")
    if strategy is not None:
        _unset_string(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            _unset_pointer(strategy, "rollingUpdate", {})
            rolling = _pointer(strategy, "rollingUpdate")
            if rolling is not None:
                _unset_pointer(rolling, "maxUnavailable", "25%")
                _unset_pointer(rolling, "maxSurge", "25%")
    _unset_pointer(spec, "revisionHistoryLimit", 10)
    _unset_pointer(spec, "progressDeadlineSeconds", 600)
    _template_spec(spec)


def _daemon_set(obj: Obj) -> None:  # SetDefaults_DaemonSet
    spec = _struct(obj, "spec")
    if spec is None:
        return
    strategy = _struct(spec, "updateStrategy")
    if strategy is not None:
        _unset_string(strategy, "type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            _unset_pointer(strategy, "rollingUpdate", {})
            rolling = _pointer(strategy, "rollingUpdate")
            if rolling is not None:
                _unset_pointer(rolling, "maxUnavailable", 1)
                _unset_pointer(rolling, "maxSurge", 0)
    _unset_pointer(spec, "revisionHistoryLimit", 10)
    _template_spec(spec)


def _replica_set(obj: Obj) -> None:  # SetDefaults_ReplicaSet
    spec = _struct(obj, "spec")
    if spec is None:
        return
    _unset_pointer(spec, "replicas", 1)
    _template_spec(spec)


# --- batch/v1 ---------------------------------------------------------------------------------------


def _pod_failure_policy(spec: Obj) -> None:  # SetDefaults_PodFailurePolicyOnPodConditionsPattern
    for rule in _each(_pointer(spec, "podFailurePolicy"), "rules"):
        for pattern in _each(rule, "onPodConditions"):
            _unset_string(pattern, "status", "True")


def _job(obj: Obj) -> None:  # SetDefaults_Job
    spec = _struct(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _unset_pointer(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template_meta = _pointer(_pointer(spec, "template"), "metadata")
    labels = template_meta.get("labels") if template_meta is not None else None
    if isinstance(labels, dict) and labels:
        meta = _struct(obj, "metadata")
        if meta is not None and not meta.get("labels"):
            # Upstream shares the template's map here; a copy keeps later edits to one from the other.
            meta["labels"] = dict(labels)
    _unset_pointer(spec, "completionMode", "NonIndexed")
    _unset_pointer(spec, "suspend", False)
    _pod_failure_policy(spec)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if _pointer(spec, "podFailurePolicy") else "TerminatingOrFailed"
    _template_spec(spec)


def _cron_job(obj: Obj) -> None:  # SetDefaults_CronJob
    spec = _struct(obj, "spec")
    if spec is None:
        return
    _unset_string(spec, "concurrencyPolicy", "Allow")
    _unset_pointer(spec, "suspend", False)
    _unset_pointer(spec, "successfulJobsHistoryLimit", 3)
    _unset_pointer(spec, "failedJobsHistoryLimit", 1)
    job_template = _struct(spec, "jobTemplate")
    job_spec = _struct(job_template, "spec") if job_template is not None else None
    if job_spec is not None:  # a JobSpec, not a Job: SetDefaults_Job does not run here
        _pod_failure_policy(job_spec)
        _template_spec(job_spec)


# --- discovery.k8s.io/v1 ----------------------------------------------------------------------------


def _endpoint_slice(obj: Obj) -> None:  # SetDefaults_EndpointPort
    for port in _each(obj, "ports"):
        _unset_pointer(port, "name", "")
        _unset_pointer(port, "protocol", "TCP")


def _priority_class(obj: Obj) -> None:  # SetDefaults_PriorityClass
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


# --- rbac.authorization.k8s.io/v1, networking.k8s.io/v1 --------------------------------------------

RBAC_GROUP: Final = "rbac.authorization.k8s.io"


def _role_binding(obj: Obj) -> None:  # SetDefaults_(Cluster)RoleBinding, SetDefaults_Subject
    role_ref = _struct(obj, "roleRef")
    if role_ref is not None:
        _unset_string(role_ref, "apiGroup", RBAC_GROUP)
    for subject in _each(obj, "subjects"):
        if subject.get("kind") in ("User", "Group"):
            _unset_string(subject, "apiGroup", RBAC_GROUP)


def _network_policy(obj: Obj) -> None:  # SetDefaults_NetworkPolicy, SetDefaults_NetworkPolicyPort
    spec = _struct(obj, "spec")
    if spec is None:
        return
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in _each(spec, direction):
            for port in _each(rule, "ports"):
                _unset_pointer(port, "protocol", "TCP")


def _ingress_class(obj: Obj) -> None:  # SetDefaults_IngressClass
    parameters = _pointer(_pointer(obj, "spec"), "parameters")
    if parameters is not None:
        _unset_pointer(parameters, "scope", "Cluster")


_DEFAULTERS: Final[dict[tuple[str, str], Callable[[Obj], None]]] = {
    ("v1", "Pod"): _pod,
    ("scheduling.k8s.io/v1", "PriorityClass"): _priority_class,
    ("v1", "Service"): _service,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
    ("v1", "Node"): _node,
    ("v1", "Endpoints"): _endpoints,
    ("apps/v1", "Deployment"): _deployment,
    ("apps/v1", "ReplicaSet"): _replica_set,
    ("apps/v1", "DaemonSet"): _daemon_set,
    ("batch/v1", "Job"): _job,
    ("batch/v1", "CronJob"): _cron_job,
    ("discovery.k8s.io/v1", "EndpointSlice"): _endpoint_slice,
    (f"{RBAC_GROUP}/v1", "RoleBinding"): _role_binding,
    (f"{RBAC_GROUP}/v1", "ClusterRoleBinding"): _role_binding,
    ("networking.k8s.io/v1", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io/v1", "IngressClass"): _ingress_class,
}


def apply_defaults(kind: str, api_version: str, obj: dict[str, Any]) -> None:
    """Fill in upstream's defaults on ``obj`` in place (a no-op for kinds without any)."""
    defaulter = _DEFAULTERS.get((api_version, kind))
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)
