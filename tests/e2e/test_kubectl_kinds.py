"""The real kubectl v1.32 with the kinds edgek8s stores but does not enforce: ServiceAccount, RBAC, Ingress,
IngressClass, NetworkPolicy, and the reviews behind `kubectl auth` (docs/kinds.md). Rows of docs/compatibility.md.

What is asserted is what kubectl prints against kube-apiserver 1.32: generators' objects (sent as protobuf),
server-side Tables, upstream's validation messages, ServiceAccount admission's 403, and a typical install
manifest mixing all of these with a Deployment, Service and ConfigMap applied client- and server-side.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgek8s.pki.certs import issue, read_pair, write_pair
from edgek8s.pki.layout import Layout
from tests.e2e.kubectl_support import AGE, Cluster, Kubectl, manifest, parse_table, split_cells, unique
from tests.e2e.streams_support import Worker

compat = pytest.mark.compat
RBAC = "rbac.authorization.k8s.io"
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def wait_for(kubectl: Kubectl, *args: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = kubectl(*args, check=False)
        if result.returncode == 0:
            return result.stdout
        assert time.monotonic() < deadline, f"kubectl {' '.join(args)} kept failing: {result.stderr}"
        time.sleep(0.2)


def rows_by_name(output: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    header, rows = parse_table(output)
    return header, {row["NAME"]: row for row in rows}


# --- ServiceAccount ------------------------------------------------------------------------------------


@compat("kubectl create serviceaccount", "(and the default ServiceAccount of every namespace)")
def test_create_serviceaccount(kubectl: Kubectl, ns: str) -> None:
    wait_for(kubectl, "get", "serviceaccount", "default", "-n", ns)  # the serviceaccounts controller's
    assert kubectl("create", "serviceaccount", "bot", "-n", ns).stdout == "serviceaccount/bot created\n"
    header, rows = rows_by_name(kubectl("get", "sa", "-n", ns).stdout)
    assert header == ["NAME", "SECRETS", "AGE"] and sorted(rows) == ["bot", "default"]
    assert rows["bot"]["SECRETS"] == "0" and AGE.match(rows["bot"]["AGE"])
    for system in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(kubectl, "get", "serviceaccount", "default", "-n", system)
    uid = kubectl.json("get", "sa", "default", "-n", ns)["metadata"]["uid"]
    kubectl("delete", "sa", "default", "-n", ns)
    wait_for(kubectl, "get", "serviceaccount", "default", "-n", ns)  # recreated, as upstream's controller does
    assert kubectl.json("get", "sa", "default", "-n", ns)["metadata"]["uid"] != uid


@compat("kubectl create token", "(refused: edgek8s issues no service account tokens)")
def test_create_token_is_refused_clearly(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "serviceaccount", "bot", "-n", ns)
    result = kubectl("create", "token", "bot", "-n", ns, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: failed to create token: edgek8s does not issue service account tokens (TokenRequest is not "
        "supported; see docs/kinds.md)")


@compat("kubectl run", "ServiceAccount admission: default account, unknown account 403, imagePullSecrets")
def test_pod_service_account_admission(kubectl: Kubectl, ns: str) -> None:
    kubectl("run", "plain", "--image=busybox:1.36", "-n", ns)
    spec = kubectl.json("get", "pod", "plain", "-n", ns)["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    overrides = '{"apiVersion": "v1", "spec": {"serviceAccountName": "ghost"}}'
    result = kubectl("run", "haunted", "--image=busybox:1.36", "-n", ns, f"--overrides={overrides}", check=False)
    assert (result.returncode, result.stderr.strip()) == (1, (
        f'Error from server (Forbidden): pods "haunted" is forbidden: error looking up service account '
        f'{ns}/ghost: serviceaccount "ghost" not found'))
    kubectl("create", "serviceaccount", "ghost", "-n", ns)
    kubectl("run", "haunted", "--image=busybox:1.36", "-n", ns, f"--overrides={overrides}")
    assert kubectl.json("get", "pod", "haunted", "-n", ns)["spec"]["serviceAccountName"] == "ghost"
    # The documented way to pull private images: the account's imagePullSecrets go to its pods.
    wait_for(kubectl, "get", "serviceaccount", "default", "-n", ns)
    kubectl("patch", "serviceaccount", "default", "-n", ns, "-p", '{"imagePullSecrets": [{"name": "regcred"}]}')
    kubectl("run", "private", "--image=registry.example/app:1", "-n", ns)
    assert kubectl.json("get", "pod", "private", "-n", ns)["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    own = '{"apiVersion": "v1", "spec": {"imagePullSecrets": [{"name": "mine"}]}}'
    kubectl("run", "own", "--image=registry.example/app:1", "-n", ns, f"--overrides={own}")
    assert kubectl.json("get", "pod", "own", "-n", ns)["spec"]["imagePullSecrets"] == [{"name": "mine"}]


@compat("kubectl create deployment", "naming a ServiceAccount created later (FailedCreate events, then the pod)")
def test_deployment_waits_for_its_service_account(kubectl: Kubectl, ns: str) -> None:
    deployment = yaml.safe_load(kubectl("create", "deployment", "late", "--image=nginx:1.25", "-n", ns,
                                        "--dry-run=client", "-o", "yaml").stdout)
    deployment["spec"]["template"]["spec"]["serviceAccountName"] = "late"
    kubectl("create", "-n", ns, "-f", "-", input=manifest(deployment))
    deadline = time.monotonic() + 30
    while "error looking up service account" not in (events := kubectl("get", "events", "-n", ns).stdout):
        assert time.monotonic() < deadline, f"no FailedCreate event: {events}"
        time.sleep(0.3)
    assert "FailedCreate" in events and kubectl.json("get", "pods", "-n", ns)["items"] == []
    kubectl("create", "serviceaccount", "late", "-n", ns)
    while not (pods := kubectl.json("get", "pods", "-n", ns)["items"]):
        assert time.monotonic() < deadline + 30, "the ReplicaSet did not create its pod once the account existed"
        time.sleep(0.3)
    assert pods[0]["spec"]["serviceAccountName"] == "late"


# --- RBAC ----------------------------------------------------------------------------------------------


@compat("kubectl create role | clusterrole | rolebinding | clusterrolebinding", "(protobuf bodies; get -o wide)")
def test_create_rbac_generators(kubectl: Kubectl, ns: str) -> None:
    cluster_role, cluster_binding = unique("reader"), unique("readers")
    out = kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods,pods/log", "-n", ns).stdout
    assert out == f"role.{RBAC}/pod-reader created\n"
    kubectl("create", "clusterrole", cluster_role, "--verb=get", "--resource=nodes", "--non-resource-url=/healthz")
    kubectl("create", "rolebinding", "pod-readers", "--role=pod-reader", "--user=alice", "--group=devs",
            f"--serviceaccount={ns}:bot", "-n", ns)
    kubectl("create", "clusterrolebinding", cluster_binding, f"--clusterrole={cluster_role}", "--group=devs")
    try:
        role = kubectl.json("get", "role", "pod-reader", "-n", ns)
        assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
        binding = kubectl.json("get", "rolebinding", "pod-readers", "-n", ns)
        assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"}
        assert binding["subjects"] == [
            {"apiGroup": RBAC, "kind": "User", "name": "alice"}, {"apiGroup": RBAC, "kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "bot", "namespace": ns}]
        header, rows = rows_by_name(kubectl("get", "roles", "-n", ns).stdout)
        assert header == ["NAME", "CREATED AT"] and CREATED_AT.match(rows["pod-reader"]["CREATED AT"])
        header, rows = rows_by_name(kubectl("get", "rolebindings", "-n", ns, "-o", "wide").stdout)
        assert header == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
        row = rows["pod-readers"]
        assert (row["ROLE"], row["USERS"], row["GROUPS"], row["SERVICEACCOUNTS"]) == (
            "Role/pod-reader", "alice", "devs", f"{ns}/bot")
        _, rows = rows_by_name(kubectl("get", "clusterrolebinding", cluster_binding, "-o", "wide").stdout)
        assert rows[cluster_binding]["ROLE"] == f"ClusterRole/{cluster_role}"
        rules = kubectl.json("get", "clusterrole", cluster_role)["rules"]
        assert {"nonResourceURLs": ["/healthz"], "verbs": ["get"]} in rules
    finally:
        kubectl("delete", "clusterrolebinding", cluster_binding, "--ignore-not-found")
        kubectl("delete", "clusterrole", cluster_role, "--ignore-not-found")


@compat("errors", "Invalid (Role rules, RoleBinding roleRef and its immutability, Ingress paths)")
def test_rbac_and_ingress_validation(kubectl: Kubectl, ns: str) -> None:
    bad = [
        ({"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "r"}, "rules": [{"resources": ["pods"]}]},
         'The Role "r" is invalid: \n* rules[0].verbs: Required value: verbs must contain at least one value\n'
         "* rules[0].apiGroups: Required value: resource rules must supply at least one api group"),
        ({"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "b"},
          "roleRef": {"kind": "Secret", "name": "x"}, "subjects": [{"kind": "Robot", "name": "r2"}]},
         'The RoleBinding "b" is invalid: \n* roleRef.kind: Unsupported value: "Secret": supported values: '
         '"ClusterRole", "Role"\n* subjects[0].kind: Unsupported value: "Robot": supported values: '
         '"ServiceAccount", "User", "Group"'),
        ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
          "spec": {"rules": [{"http": {"paths": [{"path": "a", "pathType": "Prefix",
                                                  "backend": {"service": {"name": "s"}}}]}}]}},
         'The Ingress "i" is invalid: \n* spec.rules[0].http.paths[0].path: Invalid value: "a": must be an absolute '
         "path\n* spec.rules[0].http.paths[0].backend: Required value: port name or port number is required"),
    ]
    for doc, message in bad:
        result = kubectl("create", "-n", ns, "-f", "-", input=manifest(doc), check=False)
        assert (result.returncode, result.stderr.strip()) == (1, message)
    assert kubectl("get", "roles,rolebindings,ingresses", "-n", ns, "-o", "name").stdout == ""
    kubectl("create", "rolebinding", "viewers", "--clusterrole=view", "--group=devs", "-n", ns)
    result = kubectl("patch", "rolebinding", "viewers", "-n", ns, "--type=merge", "-p",
                     '{"roleRef": {"name": "edit"}}', check=False)
    assert (result.returncode, result.stderr.strip()) == (1, (
        'The RoleBinding "viewers" is invalid: roleRef: Invalid value: {"APIGroup":"rbac.authorization.k8s.io",'
        '"Kind":"ClusterRole","Name":"edit"}: cannot change roleRef'))


def node_kubeconfig(cluster: Cluster, tmp_path: Path) -> tuple[str, Path]:
    """A kubeconfig with a fresh node certificate (system:node:<name> in system:nodes) from the cluster CA."""
    first = Layout(cluster.state_dir / "master-1")
    node = unique("cani")
    write_pair(issue(read_pair(first.ca_cert, first.ca_key), common_name=f"system:node:{node}",
                     organizations=["system:nodes"], client=True), tmp_path / "node.crt", tmp_path / "node.key")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode((tmp_path / "node.crt").read_bytes()).decode(),
        "client-key-data": base64.b64encode((tmp_path / "node.key").read_bytes()).decode()}
    (tmp_path / "node.kubeconfig").write_text(yaml.safe_dump(config))
    return node, tmp_path / "node.kubeconfig"


@compat("kubectl auth can-i", "(answered by edgek8s's authorizer: admin yes, node no)")
def test_auth_can_i(kubectl: Kubectl, edgek8s_cluster: Cluster, tmp_path: Path) -> None:
    assert kubectl("auth", "can-i", "create", "deployments").stdout == "yes\n"
    assert kubectl("auth", "can-i", "delete", "clusterroles").stdout == "yes\n"
    node, config = node_kubeconfig(edgek8s_cluster, tmp_path)
    result = kubectl("auth", "can-i", "create", "deployments", "--kubeconfig", str(config), check=False)
    assert (result.returncode, result.stdout) == (1, f"no - node '{node}' cannot create deployments\n")
    assert kubectl("auth", "can-i", "list", "services", "--kubeconfig", str(config)).stdout == "yes\n"


@compat("kubectl auth can-i", "--as --as-group (admins impersonate; a node may not)")
def test_auth_can_i_impersonating(kubectl: Kubectl, edgek8s_cluster: Cluster, tmp_path: Path) -> None:
    as_node = ("--as=system:node:n1", "--as-group=system:nodes")
    result = kubectl("auth", "can-i", "create", "deployments", *as_node, check=False)
    assert (result.returncode, result.stdout) == (1, "no - node 'n1' cannot create deployments\n")
    assert kubectl("auth", "can-i", "watch", "endpointslices", *as_node).stdout == "yes\n"
    result = kubectl("get", "pods", "-A", *as_node, check=False)
    assert result.stderr.strip() == ("Error from server (Forbidden): system:node:n1 is forbidden: node 'n1' can only "
                                     "list/watch pods with fieldSelector spec.nodeName=n1")
    node, config = node_kubeconfig(edgek8s_cluster, tmp_path)
    result = kubectl("get", "nodes", "--as=admin", "--kubeconfig", str(config), check=False)
    assert result.stderr.strip().endswith(
        f'users "admin" is forbidden: User "system:node:{node}" cannot impersonate resource "users" in API group "" '
        "at the cluster scope")


@compat("kubectl auth can-i", "--list (admin: everything; node: its unconditional rules, incomplete)")
def test_auth_can_i_list(kubectl: Kubectl, edgek8s_cluster: Cluster, tmp_path: Path) -> None:
    assert kubectl("auth", "can-i", "--list").stdout.splitlines() == [
        "Resources   Non-Resource URLs   Resource Names   Verbs",
        "*.*         []                  []               [*]",
        "            [*]                 []               [*]"]
    _node, config = node_kubeconfig(edgek8s_cluster, tmp_path)
    result = kubectl("auth", "can-i", "--list", "--kubeconfig", str(config))
    rules = {cells[0]: cells[-1] for cells in (split_cells(line) for line in result.stdout.splitlines()[1:])
             if not cells[0].startswith("[")}
    assert rules["nodes"] == rules["services"] == "[get list watch]" and rules["events"] == "[create update patch]"
    assert "pods" not in rules and "secrets" not in rules
    assert result.stderr.startswith("Warning: the list may be incomplete: access to pods")


@compat("kubectl auth whoami", "")
def test_auth_whoami(kubectl: Kubectl) -> None:
    header, rows = parse_table(kubectl("auth", "whoami").stdout)
    assert header == ["ATTRIBUTE", "VALUE"]
    assert {r["ATTRIBUTE"]: r["VALUE"] for r in rows} == {
        "Username": "admin", "Groups": "[system:masters system:authenticated]"}


# --- networking.k8s.io ---------------------------------------------------------------------------------


@compat("kubectl create ingress", "--class --rule (with tls) --default-backend")
def test_create_ingress(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("create", "ingress", "web", "--class=nginx", "--rule=foo.example/bar=svc1:8080,tls=web-cert",
                  "--rule=bar.example/*=svc2:http", "--default-backend=fallback:80", "-n", ns).stdout
    assert out == "ingress.networking.k8s.io/web created\n"
    spec = kubectl.json("get", "ingress", "web", "-n", ns)["spec"]
    assert spec["ingressClassName"] == "nginx" and spec["tls"] == [{"hosts": ["foo.example"], "secretName": "web-cert"}]
    assert spec["rules"][1]["http"]["paths"] == [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc2", "port": {"name": "http"}}}}]
    assert spec["defaultBackend"] == {"service": {"name": "fallback", "port": {"number": 80}}}
    header, rows = rows_by_name(kubectl("get", "ing", "-n", ns).stdout)
    assert header == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    row = rows["web"]
    assert (row["CLASS"], row["HOSTS"], row["ADDRESS"], row["PORTS"]) == (
        "nginx", "foo.example,bar.example", "", "80, 443")


# --- a typical install manifest ------------------------------------------------------------------------


def install_manifest(ns: str, cluster_name: str) -> list[dict[str, Any]]:
    """What a Helm chart renders for a small web app: account, RBAC, config, workload, service, ingress,
    network policy (protocols given: an omitted one defaults to TCP and makes every client-side re-apply
    "configured", against kube-apiserver too)."""
    labels = {"app": "shop"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "shop"}},
        {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "shop-config"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "shop-config"},
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "shop-config"},
         "subjects": [{"kind": "ServiceAccount", "name": "shop"}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": cluster_name},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": cluster_name},
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_name},
         "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shop"}, "data": {"mode": "edge"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"serviceAccountName": "shop",
                                        "containers": [{"name": "web", "image": "nginx:1.25",
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop"},
         "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": cluster_name},
         "spec": {"controller": "example.com/ingress"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop"},
         "spec": {"ingressClassName": cluster_name, "rules": [{"host": "shop.example", "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": "shop", "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "shop"},
         "spec": {"podSelector": {"matchLabels": labels},
                  "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80, "protocol": "TCP"}]}]}},
    ]


EXPECTED_NAMES = [
    "serviceaccount/shop", "role.{RBAC}/shop-config", "rolebinding.{RBAC}/shop-config", "clusterrole.{RBAC}/{c}",
    "clusterrolebinding.{RBAC}/{c}", "configmap/shop", "deployment.apps/shop", "service/shop",
    "ingressclass.networking.k8s.io/{c}", "ingress.networking.k8s.io/shop", "networkpolicy.networking.k8s.io/shop",
]


def _check_installed(kubectl: Kubectl, ns: str, cluster_name: str) -> None:
    # The Deployment's pod runs as the manifest's account (admission found it), and the tables print.
    deadline = time.monotonic() + 30
    while not (pods := kubectl.json("get", "pods", "-n", ns, "-l", "app=shop")["items"]):
        assert time.monotonic() < deadline, "the Deployment made no pod"
        time.sleep(0.3)
    assert pods[0]["spec"]["serviceAccountName"] == "shop"
    header, rows = rows_by_name(kubectl("get", "networkpolicies", "-n", ns).stdout)
    assert header == ["NAME", "POD-SELECTOR", "AGE"] and rows["shop"]["POD-SELECTOR"] == "app=shop"
    policy = kubectl.json("get", "netpol", "shop", "-n", ns)
    assert policy["spec"]["policyTypes"] == ["Ingress"]  # upstream's default
    header, rows = rows_by_name(kubectl("get", "ingressclass", cluster_name).stdout)
    assert header == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert (rows[cluster_name]["CONTROLLER"], rows[cluster_name]["PARAMETERS"]) == ("example.com/ingress", "<none>")
    service = kubectl.json("get", "service", "shop", "-n", ns)
    assert re.match(r"^10\.\d+\.\d+\.\d+$", service["spec"]["clusterIP"])


@pytest.mark.parametrize("server_side", [False, True], ids=["client-side", "server-side"])
@compat("kubectl apply", "-f install manifest: ServiceAccount, RBAC, Ingress, NetworkPolicy, Deployment, Service")
def test_apply_install_manifest(kubectl: Kubectl, ns: str, tmp_path: Path, server_side: bool) -> None:
    cluster_name = unique("shop")
    path = tmp_path / "install.yaml"
    path.write_text(yaml.safe_dump_all(install_manifest(ns, cluster_name)))
    flags = ["--server-side"] if server_side else []
    names = [n.format(RBAC=RBAC, c=cluster_name) for n in EXPECTED_NAMES]
    try:
        first = kubectl("apply", "-n", ns, "-f", str(path), *flags).stdout.splitlines()
        verb = "serverside-applied" if server_side else "created"
        assert first == [f"{name} {verb}" for name in names]
        _check_installed(kubectl, ns, cluster_name)
        again = kubectl("apply", "-n", ns, "-f", str(path), *flags).stdout.splitlines()
        verb = "serverside-applied" if server_side else "unchanged"
        assert again == [f"{name} {verb}" for name in names]
    finally:
        kubectl("delete", "clusterrolebinding,clusterrole,ingressclass", cluster_name, "--ignore-not-found")


@compat("kubectl create", "-f Pod with serviceAccountName and automountServiceAccountToken (runs; no token mounted)")
def test_pod_with_service_account_runs_without_a_token(worker: Worker, ns: str) -> None:
    worker.kubectl("create", "serviceaccount", "runner", "-n", ns)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner"},
           "spec": {"nodeName": worker.node, "serviceAccountName": "runner", "automountServiceAccountToken": True,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": worker.image, "imagePullPolicy": "Never",
                                    "command": ["sh", "-c", "sleep 3600"]}]}}
    worker.kubectl("create", "-n", ns, "-f", "-", input=manifest(pod))
    running = worker.wait_for(ns, "runner", lambda p: (p.get("status") or {}).get("phase") == "Running", "Running")
    assert running["spec"]["serviceAccountName"] == "runner"
    assert [v["name"] for v in running["spec"].get("volumes") or []] == []  # no kube-api-access-* volume
    out = worker.kubectl("exec", "runner", "-n", ns, "--", "sh", "-c",
                         "test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo token || echo none")
    assert out.stdout == "none\n"
