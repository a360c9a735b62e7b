"""Upstream's defaulting: minimal objects come out exactly as kube-apiserver's SetDefaults_* leave them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from edgek8s.registry import schema
from edgek8s.registry.defaults import VOLUME_SOURCES, apply_defaults, image_tag

SHA = "sha256:" + "a" * 64

DEFAULTED_CONTAINER = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
DEFAULTED_TEMPLATE_SPEC = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}

# (id, kind, apiVersion, given, expected): "expected" is upstream's object after defaulting.
CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "minimal pod",
        "Pod", "v1",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {
             "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always",
                             "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
             "dnsPolicy": "ClusterFirst",
             "enableServiceLinks": True,
             "restartPolicy": "Always",
             "schedulerName": "default-scheduler",
             "securityContext": {},
             "terminationGracePeriodSeconds": 30,
         }},
    ),
    (
        "minimal deployment",
        "Deployment", "apps/v1",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
             "revisionHistoryLimit": 10,
             "progressDeadlineSeconds": 600,
             "template": {
                 "metadata": {"labels": {"app": "web"}},
                 "spec": {
                     "containers": [{"name": "nginx", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                     "terminationMessagePath": "/dev/termination-log",
                                     "terminationMessagePolicy": "File"}],
                     "dnsPolicy": "ClusterFirst",
                     "restartPolicy": "Always",
                     "schedulerName": "default-scheduler",
                     "securityContext": {},
                     "terminationGracePeriodSeconds": 30,
                 },
             },
         }},
    ),
    (
        "minimal service",
        "Service", "v1",
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"},
                  "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                  "sessionAffinity": "None",
                  "type": "ClusterIP",
                  "internalTrafficPolicy": "Cluster"}},
    ),
    (
        "minimal secret",
        "Secret", "v1",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}, "type": "Opaque"},
    ),
    (
        "minimal namespace",
        "Namespace", "v1",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
         "status": {"phase": "Active"}},
    ),
    (
        "namespace without a name (generateName) gets no label",
        "Namespace", "v1",
        {"metadata": {"generateName": "ns-"}},
        {"metadata": {"generateName": "ns-"}, "status": {"phase": "Active"}},
    ),
    (
        "replicaset",
        "ReplicaSet", "apps/v1",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}},
        {"spec": {"replicas": 1, "template": {"spec": {
            "containers": [{"name": "c", "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent",
                            **DEFAULTED_CONTAINER}],
            **DEFAULTED_TEMPLATE_SPEC}}}},
    ),
    (
        "daemonset",
        "DaemonSet", "apps/v1",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
        {"spec": {
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10,
            "template": {"spec": {
                "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Always", **DEFAULTED_CONTAINER}],
                **DEFAULTED_TEMPLATE_SPEC}}}},
    ),
    (
        "daemonset OnDelete gets no rollingUpdate",
        "DaemonSet", "apps/v1",
        {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": {"spec": {}}}},
        {"spec": {"updateStrategy": {"type": "OnDelete"}, "revisionHistoryLimit": 10,
                  "template": {"spec": DEFAULTED_TEMPLATE_SPEC}}},
    ),
    (
        "deployment Recreate gets no rollingUpdate",
        "Deployment", "apps/v1",
        {"spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "template": {"spec": {}}}},
        {"spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 10,
                  "progressDeadlineSeconds": 600, "template": {"spec": DEFAULTED_TEMPLATE_SPEC}}},
    ),
    (
        "job",
        "Job", "batch/v1",
        {"metadata": {"name": "j"},
         "spec": {"template": {"metadata": {"labels": {"app": "j"}},
                               "spec": {"containers": [{"name": "c", "image": "perl:5.34"}],
                                        "restartPolicy": "Never"}}}},
        {"metadata": {"name": "j", "labels": {"app": "j"}},
         "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                  "suspend": False, "podReplacementPolicy": "TerminatingOrFailed",
                  "template": {"metadata": {"labels": {"app": "j"}}, "spec": {
                      "containers": [{"name": "c", "image": "perl:5.34", "imagePullPolicy": "IfNotPresent",
                                      **DEFAULTED_CONTAINER}],
                      **DEFAULTED_TEMPLATE_SPEC, "restartPolicy": "Never"}}}},
    ),
    (
        "job with parallelism, per-index backoff and a pod failure policy",
        "Job", "batch/v1",
        {"metadata": {"labels": {"team": "x"}},
         "spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
                  "podFailurePolicy": {"rules": [{"action": "Ignore",
                                                  "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                  "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"restartPolicy": "Never"}}}},
        {"metadata": {"labels": {"team": "x"}},
         "spec": {"parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
                  "backoffLimit": 2147483647, "suspend": False, "podReplacementPolicy": "Failed",
                  "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
                      {"type": "DisruptionTarget", "status": "True"}]}]},
                  "template": {"metadata": {"labels": {"app": "j"}},
                               "spec": {**DEFAULTED_TEMPLATE_SPEC, "restartPolicy": "Never"}}}},
    ),
    (
        "cronjob (its job template is not defaulted as a Job)",
        "CronJob", "batch/v1",
        {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}},
        {"spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                  "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                  "jobTemplate": {"spec": {"template": {"spec": {
                      "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "Always",
                                      **DEFAULTED_CONTAINER}],
                      **DEFAULTED_TEMPLATE_SPEC, "restartPolicy": "OnFailure"}}}}}},
    ),
    (
        "endpoints",
        "Endpoints", "v1",
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]},
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                      "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}]},
    ),
    (
        "endpointslice",
        "EndpointSlice", "discovery.k8s.io/v1",
        {"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}, {"name": "dns", "protocol": "UDP"}]},
        {"addressType": "IPv4", "endpoints": [],
         "ports": [{"port": 80, "name": "", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}]},
    ),
    (
        "node allocatable defaults to capacity",
        "Node", "v1",
        {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}},
        {"metadata": {"name": "n"},
         "status": {"capacity": {"cpu": "4", "memory": "8Gi"}, "allocatable": {"cpu": "4", "memory": "8Gi"}}},
    ),
    (
        "node without status is left alone",
        "Node", "v1", {"metadata": {"name": "n"}}, {"metadata": {"name": "n"}},
    ),
    ("configmap: nothing visible", "ConfigMap", "v1", {"metadata": {"name": "c"}}, {"metadata": {"name": "c"}}),
    ("lease: nothing", "Lease", "coordination.k8s.io/v1", {"spec": {}}, {"spec": {}}),
    ("event: nothing", "Event", "v1", {"reason": "x"}, {"reason": "x"}),
    ("unknown kind: nothing", "Widget", "example.com/v1", {"spec": {}}, {"spec": {}}),
    ("wrong apiVersion: nothing", "Deployment", "extensions/v1beta1", {"spec": {}}, {"spec": {}}),
]


@pytest.mark.parametrize(("kind", "api_version", "given", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_defaults(kind: str, api_version: str, given: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = copy.deepcopy(given)
    apply_defaults(kind, api_version, obj)
    assert obj == expected
    # Idempotent: a second pass (as on every update of a stored object) changes nothing.
    apply_defaults(kind, api_version, obj)
    assert obj == expected


def _pod_with(container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [container or {"name": "c", "image": "nginx:1"}]}
    pod_spec.update(spec)
    obj = {"spec": pod_spec}
    apply_defaults("Pod", "v1", obj)
    return pod_spec


def test_container_details() -> None:
    spec = _pod_with({
        "name": "c", "image": "nginx:1",
        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "C", "value": "x"}],
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"grpc": {"port": 9090}, "periodSeconds": 5},
        "startupProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 30},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}, "postStart": {"exec": {"command": ["x"]}}},
    })
    container = spec["containers"][0]
    assert container["env"] == [
        {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "C", "value": "x"},
    ]
    probe_defaults = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["livenessProbe"] == {**probe_defaults, "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}}
    assert container["readinessProbe"] == {**probe_defaults, "periodSeconds": 5,
                                           "grpc": {"port": 9090, "service": ""}}
    assert container["startupProbe"] == {**probe_defaults, "failureThreshold": 30, "tcpSocket": {"port": "http"}}
    assert container["lifecycle"] == {
        "preStop": {"httpGet": {"port": 80, "path": "/stop", "scheme": "HTTP"}},
        "postStart": {"exec": {"command": ["x"]}},
    }


def test_pod_requests_default_to_limits_but_templates_do_not() -> None:
    container = {"name": "c", "image": "i:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                             "requests": {"cpu": "500m"}}}
    spec = _pod_with(copy.deepcopy(container), initContainers=[{"name": "i", "image": "i:1",
                                                                "resources": {"limits": {"memory": "64Mi"}}}])
    assert spec["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"},
                                                  "requests": {"cpu": "500m", "memory": "1Gi"}}
    assert spec["initContainers"][0]["resources"] == {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}
    deployment = {"spec": {"template": {"spec": {"containers": [copy.deepcopy(container)]}}}}
    apply_defaults("Deployment", "apps/v1", deployment)
    template_spec = deployment["spec"]["template"]["spec"]
    assert template_spec["containers"][0]["resources"] == container["resources"]
    assert "enableServiceLinks" not in template_spec


def test_host_network_pod_ports_get_host_ports() -> None:
    spec = _pod_with({"name": "c", "image": "i:1", "ports": [{"containerPort": 53, "protocol": "UDP"},
                                                             {"containerPort": 80, "hostPort": 8080}]},
                     hostNetwork=True)
    assert spec["containers"][0]["ports"] == [{"containerPort": 53, "protocol": "UDP", "hostPort": 53},
                                              {"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]


def test_volumes() -> None:
    spec = _pod_with(volumes=[
        {"name": "scratch"},
        {"name": "cm", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "host", "hostPath": {"path": "/data"}},
        {"name": "dapi", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "proj", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"configMap": {"name": "c"}},
        ]}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        {"name": "img", "image": {"reference": "quay.io/x/artifact:v1"}},
        {"name": "rbd", "rbd": {"monitors": ["m"], "image": "i"}},
        {"name": "iscsi", "iscsi": {"targetPortal": "t", "iqn": "q", "lun": 0}},
    ])
    assert spec["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "cm", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
        {"name": "host", "hostPath": {"path": "/data", "type": ""}},
        {"name": "dapi", "downwardAPI": {"defaultMode": 420, "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"}}]}},
        {"name": "proj", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}]}},
            {"configMap": {"name": "c"}},
        ]}},
        {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                                                                        "volumeMode": "Filesystem"}}}},
        {"name": "img", "image": {"reference": "quay.io/x/artifact:v1", "pullPolicy": "IfNotPresent"}},
        {"name": "rbd", "rbd": {"monitors": ["m"], "image": "i", "pool": "rbd", "user": "admin",
                                "keyring": "/etc/ceph/keyring"}},
        {"name": "iscsi", "iscsi": {"targetPortal": "t", "iqn": "q", "lun": 0, "iscsiInterface": "default"}},
    ]


def test_volume_sources_match_the_schema() -> None:
    """The emptyDir rule needs every VolumeSource member; the schema is the list upstream has."""
    types = json.loads(schema.SCHEMA_PATH.read_text())["types"]
    assert set(types["V1Volume"]) - {"name"} == VOLUME_SOURCES


SERVICE_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("NodePort", {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]},
     {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}], "sessionAffinity": "None",
      "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}),
    ("LoadBalancer", {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 0, "protocol": "TCP"}]},
     {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 443, "protocol": "TCP"}],
      "sessionAffinity": "None", "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
      "allocateLoadBalancerNodePorts": True}),
    ("ClusterIP with externalIPs is externally accessible", {"externalIPs": ["192.0.2.1"]},
     {"externalIPs": ["192.0.2.1"], "type": "ClusterIP", "sessionAffinity": "None",
      "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"}),
    ("ExternalName", {"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}),
    ("ClientIP affinity gets its timeout", {"sessionAffinity": "ClientIP"},
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
      "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}),
    ("ClientIP timeout kept", {"sessionAffinity": "ClientIP",
                               "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
      "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}),
    ("no affinity drops its config", {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     {"sessionAffinity": "None", "type": "ClusterIP", "internalTrafficPolicy": "Cluster"}),
    ("user's policies kept", {"type": "NodePort", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local"},
     {"type": "NodePort", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
      "sessionAffinity": "None"}),
]


@pytest.mark.parametrize(("given", "expected"), [c[1:] for c in SERVICE_CASES], ids=[c[0] for c in SERVICE_CASES])
def test_service_spec(given: dict[str, Any], expected: dict[str, Any]) -> None:
    obj = {"spec": copy.deepcopy(given)}
    apply_defaults("Service", "v1", obj)
    assert obj["spec"] == expected


def test_load_balancer_ingress_ip_mode() -> None:
    obj: dict[str, Any] = {"spec": {"type": "LoadBalancer"},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "lb.example.com"},
                                                   {"ip": "192.0.2.2", "ipMode": "Proxy"}]}}}
    apply_defaults("Service", "v1", obj)
    assert obj["status"]["loadBalancer"]["ingress"] == [
        {"ip": "192.0.2.1", "ipMode": "VIP"}, {"hostname": "lb.example.com"}, {"ip": "192.0.2.2", "ipMode": "Proxy"}]


# Every defaulted field, set by the user to something else (including Go zero values of pointer
# fields): defaulting must leave each one as it was.
USER_SET: list[tuple[str, str, str, dict[str, Any]]] = [
    ("pod", "Pod", "v1", {"spec": {
        "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
                        "terminationMessagePath": "/tmp/log", "terminationMessagePolicy": "FallbackToLogsOnError",
                        "ports": [{"containerPort": 80, "protocol": "SCTP"}],
                        "livenessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 5, "periodSeconds": 7,
                                          "successThreshold": 1, "failureThreshold": 9}}],
        "dnsPolicy": "Default", "restartPolicy": "Never", "schedulerName": "mine",
        "securityContext": {"runAsUser": 1000}, "terminationGracePeriodSeconds": 0, "enableServiceLinks": False,
        "volumes": [{"name": "s", "secret": {"secretName": "s", "defaultMode": 0}},
                    {"name": "h", "hostPath": {"path": "/x", "type": "Directory"}}]}}),
    ("deployment", "Deployment", "apps/v1", {"spec": {
        "replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 60,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {"spec": {"dnsPolicy": "None", "restartPolicy": "Always", "schedulerName": "s",
                              "securityContext": {}, "terminationGracePeriodSeconds": 5}}}}),
    ("service", "Service", "v1", {"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                                           "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
                                           "ports": [{"port": 80, "targetPort": 8080, "protocol": "UDP"}],
                                           "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                                           "allocateLoadBalancerNodePorts": False}}),
    ("secret", "Secret", "v1", {"type": "kubernetes.io/tls"}),
    ("namespace", "Namespace", "v1", {"metadata": {"name": "n", "labels": {"kubernetes.io/metadata.name": "n",
                                                                          "team": "a"}},
                                      "status": {"phase": "Terminating"}}),
    ("job", "Job", "batch/v1", {"metadata": {"labels": {"mine": "x"}}, "spec": {
        "completions": 5, "parallelism": 0, "backoffLimit": 0, "completionMode": "Indexed", "suspend": True,
        "podReplacementPolicy": "Failed", "template": {"metadata": {"labels": {"app": "j"}}, "spec": {
            "dnsPolicy": "Default", "restartPolicy": "Never", "schedulerName": "s", "securityContext": {},
            "terminationGracePeriodSeconds": 1}}}}),
    ("cronjob", "CronJob", "batch/v1", {"spec": {
        "concurrencyPolicy": "Forbid", "suspend": True, "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0,
        "jobTemplate": {"spec": {"template": {"spec": {
            "dnsPolicy": "Default", "restartPolicy": "Never", "schedulerName": "s", "securityContext": {},
            "terminationGracePeriodSeconds": 1}}}}}}),
    ("daemonset", "DaemonSet", "apps/v1", {"spec": {
        "revisionHistoryLimit": 1,
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 2}},
        "template": {"spec": {"dnsPolicy": "Default", "restartPolicy": "Always", "schedulerName": "s",
                              "securityContext": {}, "terminationGracePeriodSeconds": 1}}}}),
    ("endpointslice", "EndpointSlice", "discovery.k8s.io/v1", {"ports": [{"name": "x", "protocol": "UDP"}]}),
]


@pytest.mark.parametrize(("kind", "api_version", "obj"), [c[1:] for c in USER_SET], ids=[c[0] for c in USER_SET])
def test_user_values_are_never_overwritten(kind: str, api_version: str, obj: dict[str, Any]) -> None:
    defaulted = copy.deepcopy(obj)
    apply_defaults(kind, api_version, defaulted)
    assert defaulted == obj


def test_null_means_unset() -> None:
    obj: dict[str, Any] = {"spec": {"replicas": None, "strategy": None, "template": {"spec": None}}}
    apply_defaults("Deployment", "apps/v1", obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    assert obj["spec"]["template"]["spec"] == DEFAULTED_TEMPLATE_SPEC


@pytest.mark.parametrize(
    "obj",
    [{"spec": "x"}, {"spec": {"containers": "x", "volumes": [1, None]}},
     {"spec": {"containers": [{"name": "c", "image": 5, "ports": "x", "env": [None]}]}}],
    ids=["spec", "lists", "container"],
)
def test_wrong_types_do_not_crash(obj: dict[str, Any]) -> None:
    apply_defaults("Pod", "v1", obj)


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("docker.io/library/nginx", "latest", "Always"),
        ("localhost:5000/team/app", "latest", "Always"),
        ("localhost:5000/team/app:v2", "v2", "IfNotPresent"),
        ("[::1]:5000/app:v1", "v1", "IfNotPresent"),
        (f"nginx@{SHA}", "", "IfNotPresent"),
        (f"nginx:latest@{SHA}", "latest", "Always"),
        ("nginx@sha256:abc", "", "IfNotPresent"),  # a digest of the wrong length does not parse
        ("Nginx", "", "IfNotPresent"),  # upper case in a repository name does not parse
        ("registry.example.com/Team/app", "", "IfNotPresent"),
        ("a" * 64, "", "IfNotPresent"),  # a bare image ID is refused
        ("", "", "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    spec = _pod_with({"name": "c", "image": image})
    assert spec["containers"][0]["imagePullPolicy"] == policy
