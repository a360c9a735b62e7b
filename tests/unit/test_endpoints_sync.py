"""Endpoints/EndpointSlices tables: readiness, named ports, selectorless services, slice bookkeeping."""

from __future__ import annotations

from typing import Any

from edgek8s.controllers.actions import ENDPOINT_SLICES, ENDPOINTS, Create, Delete, Plan, Update
from edgek8s.controllers.endpoints import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    desired_subsets,
    endpoint_slices_plan,
    endpoints_plan,
)
from tests.support.builders import meta, pod


def service(*, selector: dict[str, str] | None = None, ports: list[dict[str, Any]] | None = None,
            **spec: Any) -> dict[str, Any]:
    full: dict[str, Any] = {"ports": ports if ports is not None else [
        {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}], "clusterIP": "10.0.0.10"}
    if selector is not None:
        full["selector"] = selector
    full.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("svc", labels={"tier": "front"}), "spec": full}


def web_pod(name: str, ip: str, *, port: int = 8080, **kwargs: Any) -> dict[str, Any]:
    obj = pod(name, ip=ip, node_name="n1", **kwargs)
    obj["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": port, "protocol": "TCP"}]
    return obj


SELECTED = {"app": "web"}


def test_ready_and_not_ready_addresses_with_named_port() -> None:
    pods = [web_pod("b", "10.1.0.2"), web_pod("a", "10.1.0.1"), web_pod("c", "10.1.0.3", ready=False),
            web_pod("done", "10.1.0.4", phase="Succeeded"), web_pod("noip", ""),
            web_pod("leaving", "10.1.0.5", deletionTimestamp="2026-01-01T00:00:00Z"),
            web_pod("other", "10.1.0.6", labels={"app": "db"})]
    [subset] = desired_subsets(service(selector=SELECTED), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.1.0.1", "10.1.0.2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.1.0.3"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert subset["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}
    assert subset["addresses"][0]["nodeName"] == "n1"


def test_pods_numbering_a_named_port_differently_get_their_own_subsets() -> None:
    pods = [web_pod("a", "10.1.0.1", port=8080), web_pod("b", "10.1.0.2", port=9090), web_pod("c", "10.1.0.3")]
    pods[2]["spec"]["containers"][0]["ports"] = []  # no port named "web": left out
    subsets = desired_subsets(service(selector=SELECTED), pods)
    assert [(s["ports"][0]["port"], [a["ip"] for a in s["addresses"]]) for s in subsets] == [
        (8080, ["10.1.0.1"]), (9090, ["10.1.0.2"])]


def test_publish_not_ready_and_headless_without_ports() -> None:
    pods = [web_pod("a", "10.1.0.1", ready=False)]
    [subset] = desired_subsets(service(selector=SELECTED, publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.1.0.1"] and "notReadyAddresses" not in subset
    [headless] = desired_subsets(service(selector=SELECTED, ports=[], clusterIP="None"), [web_pod("a", "10.1.0.1")])
    assert "ports" not in headless and headless["addresses"][0]["ip"] == "10.1.0.1"


def only(plan: Plan) -> Create | Update | Delete:
    [action] = plan.actions
    assert isinstance(action, Create | Update | Delete)
    return action


def test_endpoints_object_lifecycle() -> None:
    svc = service(selector=SELECTED)
    pods = [web_pod("a", "10.1.0.1")]
    create = only(endpoints_plan(svc, ("default", "svc"), pods, None))
    assert isinstance(create, Create) and create.resource == ENDPOINTS
    assert create.body["metadata"] == {"name": "svc", "namespace": "default", "labels": {"tier": "front"}}
    stored = {**create.body, "metadata": {**create.body["metadata"], "uid": "uid-ep", "resourceVersion": "9"}}
    assert endpoints_plan(svc, ("default", "svc"), pods, stored).actions == []
    update = only(endpoints_plan(svc, ("default", "svc"), [], stored))
    assert isinstance(update, Update) and "subsets" not in update.body
    assert update.body["metadata"]["resourceVersion"] == "9"
    delete = only(endpoints_plan(None, ("default", "svc"), pods, stored))
    assert isinstance(delete, Delete) and delete.uid == "uid-ep"


def test_selectorless_service_is_left_alone() -> None:
    users = {"metadata": {"name": "svc", "namespace": "default"}, "subsets": [{"addresses": [{"ip": "192.0.2.1"}]}]}
    assert endpoints_plan(service(), ("default", "svc"), [web_pod("a", "10.1.0.1")], users).actions == []
    assert endpoint_slices_plan(service(), [web_pod("a", "10.1.0.1")], []).actions == []


def slices(plan: Plan) -> list[dict[str, Any]]:
    return [a.body for a in plan.actions if isinstance(a, Create | Update) and a.resource == ENDPOINT_SLICES]


def stored_slice(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "name": name, "uid": f"uid-{name}", "resourceVersion": "3"}}


def test_endpoint_slice_conditions_and_labels() -> None:
    svc = service(selector=SELECTED)
    pods = [web_pod("a", "10.1.0.1"), web_pod("b", "10.1.0.2", ready=False),
            web_pod("c", "10.1.0.3", deletionTimestamp="2026-01-01T00:00:00Z")]
    [body] = slices(endpoint_slices_plan(svc, pods, []))
    assert body["addressType"] == "IPv4" and body["metadata"]["generateName"] == "svc-"
    assert body["metadata"]["labels"] == {"tier": "front", SERVICE_NAME_LABEL: "svc", MANAGED_BY_LABEL: MANAGED_BY}
    assert body["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert body["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [(e["addresses"][0], e["conditions"]) for e in body["endpoints"]] == [
        ("10.1.0.1", {"ready": True, "serving": True, "terminating": False}),
        ("10.1.0.2", {"ready": False, "serving": False, "terminating": False}),
        ("10.1.0.3", {"ready": False, "serving": True, "terminating": True}),
    ]


def test_slices_are_chunked_updated_in_place_and_trimmed() -> None:
    svc = service(selector=SELECTED)
    pods = [web_pod(f"p{i}", f"10.1.0.{i + 1}") for i in range(5)]
    first = endpoint_slices_plan(svc, pods, [], max_per_slice=2)
    assert [len(b["endpoints"]) for b in slices(first)] == [2, 2, 1]
    existing = [stored_slice(b, f"svc-{i}") for i, b in enumerate(slices(first))]
    assert endpoint_slices_plan(svc, pods, existing, max_per_slice=2).actions == []
    shrunk = endpoint_slices_plan(svc, pods[:3], existing, max_per_slice=2)
    assert [a.name for a in shrunk.actions if isinstance(a, Delete)] == ["svc-2"]
    [update] = [a for a in shrunk.actions if isinstance(a, Update)]
    assert update.body["metadata"]["name"] == "svc-1" and update.body["metadata"]["resourceVersion"] == "3"


def test_placeholder_slice_and_port_change_reuses_it() -> None:
    svc = service(selector=SELECTED)
    [placeholder] = slices(endpoint_slices_plan(svc, [], []))
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    stored = stored_slice(placeholder, "svc-abc")
    [update] = endpoint_slices_plan(svc, [web_pod("a", "10.1.0.1")], [stored]).actions
    assert isinstance(update, Update) and update.body["metadata"]["name"] == "svc-abc"
    assert update.body["ports"][0]["port"] == 8080


def test_service_losing_its_selector_drops_our_slices() -> None:
    stored = stored_slice(slices(endpoint_slices_plan(service(selector=SELECTED), [], []))[0], "svc-x")
    [delete] = endpoint_slices_plan(service(), [], [stored]).actions
    assert isinstance(delete, Delete) and delete.name == "svc-x"
