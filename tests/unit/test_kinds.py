"""The stored-only kinds (ServiceAccount, RBAC, networking.k8s.io/v1): defaults, validation, Tables, and the
access review's mapping onto the authorizer. kubectl's view of the same is in tests/e2e/test_kubectl_kinds.py."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from edgek8s.api.authn import USER, User
from edgek8s.api.authz import Attributes, decide
from edgek8s.api.impersonation import impersonate, wants_impersonation
from edgek8s.api.reviews import BASIC_RULES, NODE_RULES, NON_RESOURCE_RULES, review_attributes
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.registry.patch import apply_patch
from edgek8s.registry.strategy import prepare_create, prepare_update
from edgek8s.registry.tables import table_for_object

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)
META = {"name": "x", "creationTimestamp": "2025-06-01T11:55:00Z"}
RBAC = "rbac.authorization.k8s.io"
NET = "networking.k8s.io"


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    table = table_for_object(kind, {"metadata": META, **obj}, now=NOW)
    [row] = table["rows"]
    assert len(row["cells"]) == len(table["columnDefinitions"])
    return list(row["cells"])


def create(group: str, plural: str, body: dict[str, Any], namespace: str = "ns") -> dict[str, Any]:
    rtype = by_id(resource_id(group, plural))
    return prepare_create(rtype, {"apiVersion": rtype.api_version, "kind": rtype.kind, **body},
                          namespace=namespace if rtype.namespaced else "")


def causes(group: str, plural: str, body: dict[str, Any]) -> list[str]:
    with pytest.raises(errors.Invalid) as caught:
        create(group, plural, body)
    return [f"{c.field}: {c.message}" for c in caught.value.causes]


def test_tables() -> None:
    assert cells("ServiceAccount", {"secrets": [{"name": "a"}]}) == ["x", 1, "5m"]
    assert cells("Role", {}) == ["x", "2025-06-01T11:55:00Z"]
    binding = {"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
        {"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}, {"kind": "Group", "name": "g"},
        {"kind": "ServiceAccount", "name": "s", "namespace": "n"}, {"kind": "Other", "name": "o"}]}
    assert cells("ClusterRoleBinding", binding) == ["x", "ClusterRole/view", "5m", "a, b", "g", "n/s"]
    ingress = {"spec": {"rules": [{"host": f"h{i}"} for i in range(5)], "tls": [{}]},
               "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}, {"hostname": "lb"}, {"ip": "10.0.0.1"}]}}}
    assert cells("Ingress", ingress) == ["x", "<none>", "h0,h1,h2 + 2 more...", "10.0.0.1,10.0.0.2,lb", "80, 443", "5m"]
    assert cells("Ingress", {"spec": {"ingressClassName": "c", "rules": [{}]}})[1:5] == ["c", "*", "", "80"]
    parameters = {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}
    assert cells("IngressClass", {"spec": {"controller": "c", "parameters": parameters}}) == [
        "x", "c", "IngressParameters.k8s.example.com/p", "5m"]
    assert cells("NetworkPolicy", {"spec": {"podSelector": {}}}) == ["x", "<none>", "5m"]


def test_defaults() -> None:
    binding = create(RBAC, "rolebindings", {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
                                            "subjects": [{"kind": "User", "name": "u"},
                                                         {"kind": "ServiceAccount", "name": "s"}]})
    assert binding["roleRef"]["apiGroup"] == RBAC
    assert binding["subjects"] == [{"kind": "User", "name": "u", "apiGroup": RBAC},
                                   {"kind": "ServiceAccount", "name": "s"}]
    policy = create(NET, "networkpolicies", {"metadata": {"name": "p"}, "spec": {
        "podSelector": {}, "egress": [{"ports": [{"port": 53}, {"port": 53, "protocol": "UDP"}]}]}})
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["protocol"] for p in policy["spec"]["egress"][0]["ports"]] == ["TCP", "UDP"]
    klass = create(NET, "ingressclasses", {"metadata": {"name": "c"}, "spec": {
        "controller": "x/y", "parameters": {"kind": "K", "name": "n"}}})
    assert klass["spec"]["parameters"]["scope"] == "Cluster"


def test_validation() -> None:
    assert causes(RBAC, "roles", {"metadata": {"name": "a/b"}, "rules": [
        {"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}]}) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'",
        'rules[0].nonResourceURLs: Invalid value: ["/x"]: namespaced rules cannot apply to non-resource URLs',
        'rules[0].nonResourceURLs: Invalid value: ["/x"]: rules cannot apply to both regular resources and '
        "non-resource URLs"]
    assert causes(RBAC, "clusterrolebindings", {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": ""},
                                                "subjects": [{"kind": "ServiceAccount", "name": "s"}]}) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "roleRef.name: Required value", "subjects[0].namespace: Required value"]
    assert causes(NET, "networkpolicies", {"metadata": {"name": "p"}, "spec": {
        "policyTypes": ["Sideways"], "ingress": [{"ports": [{"protocol": "ICMP"}]}]}}) == [
        'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Egress", "Ingress"',
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"']
    assert causes(NET, "ingresses", {"metadata": {"name": "i"}, "spec": {}}) == [
        "spec: Invalid value: []: either `defaultBackend` or `rules` must be specified"]
    assert causes(NET, "ingressclasses", {"metadata": {"name": "c"}, "spec": {}}) == ["spec.controller: Required value"]
    create(RBAC, "clusterroles", {"metadata": {"name": "system:aggregate-to-view"},
                                  "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]})


class NoPods:
    """A cluster without pods, as the node authorizer sees it."""

    def pod_node(self, namespace: str, name: str) -> str | None:
        return None

    def node_references(self, node: str, plural: str, namespace: str, name: str) -> bool:
        return False


def test_access_review_answers_from_the_authorizer() -> None:
    node = User(name="system:node:n1", groups=("system:nodes",))
    admin = User(name="admin", groups=("system:masters",))

    def allowed(user: User, spec: dict[str, Any]) -> str | None:
        return decide(user, review_attributes(spec), NoPods())

    create_deployments = {"resourceAttributes": {"verb": "create", "group": "apps", "resource": "deployments",
                                                 "namespace": "default"}}
    assert allowed(admin, create_deployments) is None
    assert allowed(node, create_deployments) == "node 'n1' cannot create deployments"
    assert allowed(node, {"resourceAttributes": {"verb": "list", "resource": "services"}}) is None
    assert allowed(node, {"resourceAttributes": {"verb": "list", "resource": "pods",
                                                 "fieldSelector": {"rawSelector": "spec.nodeName=n1"}}}) is None
    assert allowed(node, {"nonResourceAttributes": {"verb": "get", "path": "/healthz"}}) is None
    for bad in ({}, {"resourceAttributes": {}, "nonResourceAttributes": {}}, {"resourceAttributes": "x"}):
        with pytest.raises(errors.Invalid, match="exactly one of nonResourceAttributes or resourceAttributes"):
            review_attributes(bad)


def test_immutable_fields_on_update() -> None:
    binding = create(RBAC, "rolebindings", {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"}})
    rtype = by_id(resource_id(RBAC, "rolebindings"))
    changed = {**binding, "roleRef": {**binding["roleRef"], "name": "other"}}
    with pytest.raises(errors.Invalid) as caught:
        prepare_update(rtype, changed, namespace="ns", name="b", subresource=None, old=lambda: binding)
    assert caught.value.message == (
        'RoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: '
        '{"APIGroup":"rbac.authorization.k8s.io","Kind":"Role","Name":"other"}: cannot change roleRef')
    prepare_update(rtype, {**binding, "subjects": [{"kind": "Group", "name": "g"}]}, namespace="ns", name="b",
                   subresource=None, old=lambda: binding)
    klass = create(NET, "ingressclasses", {"metadata": {"name": "c"}, "spec": {"controller": "a/b"}})
    with pytest.raises(errors.Invalid, match=r'spec\.controller: Invalid value: "a/c": field is immutable'):
        prepare_update(by_id(resource_id(NET, "ingressclasses")), {**klass, "spec": {"controller": "a/c"}},
                       namespace="", name="c", subresource=None, old=lambda: klass)


def test_strategic_merge_patch_replaces_rules_and_merges_metadata_lists() -> None:
    role = {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "r", "finalizers": ["a"]},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
    patch = (b'{"metadata": {"finalizers": ["b"]}, '
             b'"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}')
    patched = apply_patch(role, patch, "application/strategic-merge-patch+json", kind="Role",
                          api_version=f"{RBAC}/v1")
    assert sorted(patched["metadata"]["finalizers"]) == ["a", "b"]  # merged, not replaced
    assert patched["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def test_rules_review_lists_only_what_the_authorizer_allows() -> None:
    node = User(name="system:node:n1", groups=("system:nodes",))
    other = User(name="someone", groups=())
    for user, rules in ((node, NODE_RULES + BASIC_RULES), (other, BASIC_RULES)):
        for rule in rules:
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for plural in rule["resources"]:
                        attributes = Attributes(verb=verb, path="", group=group, plural=plural)
                        assert decide(user, attributes, NoPods()) is None, (user, verb, group, plural)
        for rule in NON_RESOURCE_RULES:
            for url in rule["nonResourceURLs"]:
                assert decide(user, Attributes(verb="GET", path=url.replace("*", "v1")), NoPods()) is None, url
    assert decide(other, Attributes(verb="list", path="", plural="nodes"), NoPods()) is not None


def test_impersonation_is_for_admins_and_kubernetes_paths_only() -> None:
    admin = User(name="admin", groups=("system:masters",))
    headers = CIMultiDict([("Impersonate-User", "system:node:n1"), ("Impersonate-Group", "system:nodes"),
                           ("Impersonate-Group", "devs")])
    request = make_mocked_request("GET", "/api/v1/pods", headers=headers)
    assert wants_impersonation(request)
    assert impersonate(request, admin, privileged=True) == User("system:node:n1", ("system:nodes", "devs"))
    assert request[USER] == User("system:node:n1", ("system:nodes", "devs"))
    node = User(name="system:node:n1", groups=("system:nodes",))
    with pytest.raises(errors.Forbidden, match='User "system:node:n1" cannot impersonate resource "users"'):
        impersonate(make_mocked_request("GET", "/api/v1/pods", headers=headers), node, privileged=False)
    with pytest.raises(errors.BadRequest, match="not supported on edgek8s's own endpoints"):
        impersonate(make_mocked_request("POST", "/edgek8s/v1/renew", headers=headers), admin, privileged=True)
    with pytest.raises(errors.BadRequest, match="without impersonating a user"):
        impersonate(make_mocked_request("GET", "/api", headers={"Impersonate-Group": "g"}), admin, privileged=True)
    assert not wants_impersonation(make_mocked_request("GET", "/api"))
