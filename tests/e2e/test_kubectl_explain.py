"""`kubectl explain` (v1.32, OpenAPI v3) against edgek8s: rows of docs/compatibility.md.

kubectl reads `/openapi/v3`, then the group-version document at the `?hash=` URL listed there, and renders the
kind's schema: what it prints must be upstream's text (the documents are upstream's, trimmed to the served
kinds), its own errors must be its usual ones, and its disk cache must keep the immutable documents.
Client-side apply computes its strategic merge patch from the same schemas, as against upstream.
"""

from __future__ import annotations

import pytest

from edgek8s.model.resources import BUILTIN_RESOURCES, REVIEW_RESOURCES
from tests.e2e.kubectl_support import Kubectl, manifest

compat = pytest.mark.compat


@compat("kubectl explain", "pods")
def test_explain_pods(kubectl: Kubectl) -> None:
    out = kubectl("explain", "pods").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n")
    assert "Pod is a collection of containers that can run on a host." in out
    for field in ("apiVersion\t<string>", "kind\t<string>", "metadata\t<ObjectMeta>", "spec\t<PodSpec>",
                  "status\t<PodStatus>"):
        assert f"\n  {field}\n" in out, field


@compat("kubectl explain", "deployment.spec.strategy.rollingUpdate")
def test_explain_field_path(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                          "FIELD: rollingUpdate <RollingUpdateDeployment>\n")
    assert "Spec to control the desired behavior of rolling update." in out
    assert "\n  maxSurge\t<IntOrString>\n    The maximum number of pods that can be scheduled above" in out
    assert "\n  maxUnavailable\t<IntOrString>\n" in out


@compat("kubectl explain", "--recursive")
def test_explain_recursive(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployments", "--recursive").stdout
    assert ("\n    strategy\t<DeploymentStrategy>\n      rollingUpdate\t<RollingUpdateDeployment>\n"
            "        maxSurge\t<IntOrString>\n        maxUnavailable\t<IntOrString>\n      type\t<string>\n") in out
    assert "\n    template\t<PodTemplateSpec> -required-\n" in out and "\n      spec\t<PodSpec>\n" in out
    assert "\n        containers\t<[]Container> -required-\n" in out


@compat("kubectl explain", "--api-version, every served kind")
def test_explain_every_served_kind(kubectl: Kubectl) -> None:
    out = kubectl("explain", "cronjobs", "--api-version=batch/v1").stdout
    assert out.startswith("GROUP:      batch\nKIND:       CronJob\nVERSION:    v1\n")
    for rtype in BUILTIN_RESOURCES + REVIEW_RESOURCES:
        resource = rtype.plural  # `explain` takes RESOURCE[.FIELD]: the group comes from --api-version
        out = kubectl("explain", resource, f"--api-version={rtype.api_version}").stdout
        assert f"KIND:       {rtype.kind}\nVERSION:    {rtype.version}\n\nDESCRIPTION:\n" in out, resource
        assert "\n  metadata\t<ObjectMeta>" in out, resource


@compat("kubectl explain", "unknown field / unknown resource")
def test_explain_unknown(kubectl: Kubectl) -> None:
    field = kubectl("explain", "pods.spec.nosuchfield", check=False)
    assert field.returncode == 1 and field.stderr == 'error: field "nosuchfield" does not exist\n'
    resource = kubectl("explain", "nosuchkinds", check=False)
    assert resource.returncode == 1
    assert resource.stderr == 'the server doesn\'t have a resource type "nosuchkinds"\n'  # as upstream: no prefix


@compat("kubectl explain", "OpenAPI from kubectl's cache (?hash= immutable)")
def test_explain_uses_cached_documents(kubectl: Kubectl) -> None:
    kubectl("explain", "leases")
    again = kubectl("explain", "leases", "-v=8").stderr
    marker = "/openapi/v3/apis/coordination.k8s.io/v1?hash="
    assert marker in again, again
    request = again[again.index(marker):]
    headers = request.split("GET https://")[0]
    assert "X-From-Cache: 1" in headers, headers  # answered from kubectl's disk cache, not the server
    assert "Cache-Control: public, immutable" in headers, headers


@compat("kubectl apply", "patch computed from the OpenAPI v3 schemas (no /openapi/v2)")
def test_apply_uses_openapi_v3_schemas(kubectl: Kubectl, ns: str) -> None:
    container = {"name": "c", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "oa", "namespace": ns},
                  "spec": {"selector": {"matchLabels": {"app": "oa"}},
                           "template": {"metadata": {"labels": {"app": "oa"}}, "spec": {"containers": [container]}}}}
    kubectl("apply", "-f", "-", input=manifest(deployment))
    container.update(image="nginx:1.26", env=[{"name": "B", "value": "2"}])
    sidecar = {"name": "s", "image": "busybox:1.36"}
    deployment["spec"]["template"]["spec"]["containers"] = [sidecar, container]
    applied = kubectl("apply", "-f", "-", "-v=6", input=manifest(deployment))
    assert "deployment.apps/oa configured" in applied.stdout
    assert "/openapi/v3/apis/apps/v1?hash=" in applied.stderr and "/openapi/v2" not in applied.stderr
    assert "warning" not in applied.stderr.lower(), applied.stderr
    live = kubectl.json("get", "deployment", "oa", "-n", ns)["spec"]["template"]["spec"]["containers"]
    # containers merge by name (x-kubernetes-patch-merge-key), env by name, in the manifest's order
    assert [(c["name"], c["image"], c.get("env")) for c in live] == [
        ("s", "busybox:1.36", None), ("c", "nginx:1.26", [{"name": "B", "value": "2"}])]
