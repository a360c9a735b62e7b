"""`kubectl explain` (v1.32, OpenAPI v3) against edgek8s: rows of docs/compatibility.md.

kubectl reads `/openapi/v3`, then the group-version document at the `?hash=` URL listed there, and renders the
kind's schema: what it prints must be upstream's text (the documents are upstream's, trimmed to the served
kinds), its own errors must be its usual ones, and its disk cache must keep the immutable documents.
"""

from __future__ import annotations

import pytest

from edgek8s.model.resources import BUILTIN_RESOURCES, REVIEW_RESOURCES
from tests.e2e.kubectl_support import Kubectl

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
