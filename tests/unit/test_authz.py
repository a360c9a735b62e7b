"""The authorizer's decision tables: masters, nodes (Node authorizer + NodeRestriction), join tokens."""

from __future__ import annotations

import pytest

from edgek8s.api.authn import User
from edgek8s.api.authz import Attributes, decide, pod_references

ADMIN = User("admin", ("system:masters",))
NODE_A = User("system:node:a", ("system:nodes",))
NODE_WITHOUT_GROUP = User("system:node:a", ())
TOKEN = User("system:bootstrap:abcdef", ("system:bootstrappers", "system:bootstrappers:edgek8s:worker"))
SOMEONE = User("jane", ("developers",))


class Graph:
    """Pods p-a (on a, uses secret s-a, configmap c-a, claim v-a) and p-b (on b, uses secret s-b)."""

    pods = {("default", "p-a"): "a", ("default", "p-b"): "b"}
    refs = {("a", "secrets", "default", "s-a"), ("a", "configmaps", "default", "c-a"),
            ("a", "persistentvolumeclaims", "default", "v-a"), ("b", "secrets", "default", "s-b")}

    def pod_node(self, namespace: str, name: str) -> str | None:
        return self.pods.get((namespace, name))

    def node_references(self, node: str, plural: str, namespace: str, name: str) -> bool:
        return (node, plural, namespace, name) in self.refs


def attrs(verb: str, plural: str, *, name: str = "", ns: str = "", sub: str = "", group: str = "",
          fs: str = "") -> Attributes:
    return Attributes(verb=verb, path="/x", group=group, plural=plural, namespace=ns, name=name, subresource=sub,
                      field_selector=fs)


NODE_TABLE = [
    # pods
    (attrs("get", "pods", ns="default", name="p-a"), True),
    (attrs("get", "pods", ns="default", name="p-b"), False),
    (attrs("get", "pods", ns="default", name="missing"), False),
    (attrs("list", "pods"), False),
    (attrs("list", "pods", fs="spec.nodeName=a"), True),
    (attrs("watch", "pods", fs="spec.nodeName=a,status.phase!=Failed"), True),
    (attrs("watch", "pods", fs="spec.nodeName=b"), False),
    (attrs("list", "pods", fs="spec.nodeName!=a"), False),
    (attrs("update", "pods", ns="default", name="p-a", sub="status"), True),
    (attrs("patch", "pods", ns="default", name="p-a", sub="status"), True),
    (attrs("patch", "pods", ns="default", name="p-b", sub="status"), False),
    (attrs("update", "pods", ns="default", name="p-a"), False),
    (attrs("delete", "pods", ns="default", name="p-a"), True),
    (attrs("delete", "pods", ns="default", name="p-b"), False),
    (attrs("deletecollection", "pods", ns="default"), False),
    (attrs("create", "pods", ns="default"), False),
    (attrs("create", "pods", ns="default", name="p-a", sub="eviction"), False),
    # nodes
    (attrs("get", "nodes", name="b"), True),
    (attrs("list", "nodes"), True),
    (attrs("watch", "nodes"), True),
    (attrs("create", "nodes"), True),  # the body's name is checked separately
    (attrs("update", "nodes", name="a"), True),
    (attrs("patch", "nodes", name="a", sub="status"), True),
    (attrs("patch", "nodes", name="b", sub="status"), False),
    (attrs("update", "nodes", name="b"), False),
    (attrs("delete", "nodes", name="a"), False),
    # leases
    (attrs("create", "leases", group="coordination.k8s.io", ns="kube-node-lease"), True),
    (attrs("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="a"), True),
    (attrs("get", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="a"), True),
    (attrs("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="b"), False),
    (attrs("update", "leases", group="coordination.k8s.io", ns="default", name="a"), False),
    (attrs("list", "leases", group="coordination.k8s.io", ns="kube-node-lease"), False),
    # events
    (attrs("create", "events", ns="default"), True),
    (attrs("patch", "events", ns="default", name="e"), True),
    (attrs("update", "events", ns="default", name="e"), True),
    (attrs("delete", "events", ns="default", name="e"), False),
    (attrs("list", "events"), False),
    # what the node's pods reference
    (attrs("get", "secrets", ns="default", name="s-a"), True),
    (attrs("get", "secrets", ns="default", name="s-b"), False),
    (attrs("get", "secrets", ns="kube-system", name="s-a"), False),
    (attrs("watch", "secrets", ns="default", fs="metadata.name=s-a"), True),
    (attrs("list", "secrets", ns="default"), False),
    (attrs("update", "secrets", ns="default", name="s-a"), False),
    (attrs("get", "configmaps", ns="default", name="c-a"), True),
    (attrs("get", "configmaps", ns="default", name="c-b"), False),
    (attrs("get", "persistentvolumeclaims", ns="default", name="v-a"), True),
    # networking
    (attrs("list", "services"), True),
    (attrs("watch", "endpoints"), True),
    (attrs("list", "endpointslices", group="discovery.k8s.io"), True),
    (attrs("create", "services", ns="default"), False),
    # everything else
    (attrs("list", "namespaces"), False),
    (attrs("create", "deployments", group="apps", ns="default"), False),
    (attrs("get", "daemonsets", group="apps", ns="default", name="x"), False),
]


@pytest.mark.parametrize(("request_attributes", "allowed"), NODE_TABLE)
def test_node_decisions(request_attributes: Attributes, allowed: bool) -> None:
    assert (decide(NODE_A, request_attributes, Graph()) is None) is allowed


@pytest.mark.parametrize(("request_attributes", "_"), NODE_TABLE)
def test_masters_may_do_anything(request_attributes: Attributes, _: bool) -> None:
    assert decide(ADMIN, request_attributes, Graph()) is None


@pytest.mark.parametrize("user", [TOKEN, SOMEONE, NODE_WITHOUT_GROUP])
def test_others_get_nothing_on_resources(user: User) -> None:
    for request_attributes, _ in NODE_TABLE:
        assert decide(user, request_attributes, Graph()) is not None


@pytest.mark.parametrize(
    ("user", "verb", "path", "allowed"),
    [
        (TOKEN, "POST", "/edgek8s/v1/join", True),
        (TOKEN, "GET", "/edgek8s/v1/join", False),
        (TOKEN, "POST", "/edgek8s/v1/renew", False),
        (TOKEN, "GET", "/api", False),
        (NODE_A, "POST", "/edgek8s/v1/renew", True),
        (NODE_A, "POST", "/edgek8s/v1/join", False),
        (NODE_A, "GET", "/apis", True),
        (NODE_A, "GET", "/openapi/v3", True),
        (NODE_A, "POST", "/edgek8s/v1/members", False),
        (NODE_A, "GET", "/edgek8s/v1/snapshot", False),
        (ADMIN, "POST", "/edgek8s/v1/members", True),
        (NODE_A, "GET", "/version", True),
        (NODE_A, "GET", "/edgek8s/v1/cluster-info", True),
        (TOKEN, "GET", "/healthz", True),
        (SOMEONE, "GET", "/readyz", True),
        (SOMEONE, "POST", "/version", False),
    ],
)
def test_non_resource_paths(user: User, verb: str, path: str, allowed: bool) -> None:
    assert (decide(user, Attributes(verb=verb, path=path), Graph()) is None) is allowed


def test_pod_references_cover_volumes_env_and_pull_secrets() -> None:
    pod = {"spec": {
        "volumes": [{"secret": {"secretName": "vol-secret"}}, {"configMap": {"name": "vol-cm"}},
                    {"projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                               {"configMap": {"name": "proj-cm"}}]}},
                    {"persistentVolumeClaim": {"claimName": "claim"}}],
        "imagePullSecrets": [{"name": "pull"}],
        "initContainers": [{"envFrom": [{"secretRef": {"name": "init-secret"}}]}],
        "containers": [{"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}],
                        "envFrom": [{"configMapRef": {"name": "from-cm"}}]}],
    }}
    assert pod_references(pod, "secrets") == {"vol-secret", "proj-secret", "pull", "init-secret", "env-secret"}
    assert pod_references(pod, "configmaps") == {"vol-cm", "proj-cm", "env-cm", "from-cm"}
    assert pod_references(pod, "persistentvolumeclaims") == {"claim"}
