"""Each scheduler plugin on its own, table-driven: (pod, node, placed pods) -> reason or score."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.scheduler.framework import FilterPlugin, ScorePlugin
from edgek8s.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from edgek8s.scheduler.plugins.least_allocated import LeastAllocated
from edgek8s.scheduler.plugins.node_affinity import NodeAffinity
from edgek8s.scheduler.plugins.node_arch import NodeArchitecture
from edgek8s.scheduler.plugins.node_name import NodeName
from edgek8s.scheduler.plugins.node_ports import NodePorts
from edgek8s.scheduler.plugins.node_readiness import NodeReadiness
from edgek8s.scheduler.plugins.node_resources_fit import NodeResourcesFit
from edgek8s.scheduler.plugins.node_selector import NodeSelector
from edgek8s.scheduler.plugins.node_unschedulable import NodeUnschedulable
from edgek8s.scheduler.plugins.selector_spread import SelectorSpread
from edgek8s.scheduler.plugins.taint_toleration import TaintToleration
from edgek8s.scheduler.podinfo import pod_info
from edgek8s.scheduler.snapshot import Snapshot
from tests.support.objects import make_node, make_pod, node_taint

AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


def snapshot_of(nodes: list[dict[str, Any]], placed: Any) -> Snapshot:
    snapshot = Snapshot()
    for node in nodes:
        snapshot.upsert_node(node)
    for other in placed:
        snapshot.add_pod(pod_info(other))
    return snapshot


def run_filter(plugin: FilterPlugin, pod: dict[str, Any], node: dict[str, Any],
               placed: list[dict[str, Any]] = ()) -> str | None:  # type: ignore[assignment]
    snapshot = snapshot_of([node], placed)
    check = plugin.check_for(pod_info(pod), snapshot)
    if check is None:
        return None
    info = snapshot.node(node["metadata"]["name"])
    assert info is not None
    return check(info)


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def one(*expressions: dict[str, Any]) -> dict[str, Any]:
    return required({"matchExpressions": list(expressions)})


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)} if values else {"key": key, "operator": operator}


@pytest.mark.parametrize(
    ("pod", "node", "reason"),
    [
        (make_pod("p"), make_node("n1"), None),
        (make_pod("p", node_name="n1"), make_node("n1"), None),
        (make_pod("p", node_name="n2"), make_node("n1"), "node(s) didn't match the requested node name"),
    ],
)
def test_node_name(pod: dict[str, Any], node: dict[str, Any], reason: str | None) -> None:
    assert run_filter(NodeName(), pod, node) == reason


@pytest.mark.parametrize(
    ("pod", "node", "reason"),
    [
        (make_pod("p"), make_node("n"), None),
        (make_pod("p"), make_node("n", unschedulable=True), "node(s) were unschedulable"),
        (make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                     "effect": "NoSchedule"}]), make_node("n", unschedulable=True), None),
        (make_pod("p", tolerations=[{"operator": "Exists"}]), make_node("n", unschedulable=True), None),
    ],
)
def test_node_unschedulable(pod: dict[str, Any], node: dict[str, Any], reason: str | None) -> None:
    assert run_filter(NodeUnschedulable(), pod, node) == reason


NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"


@pytest.mark.parametrize(
    ("pod", "node", "reason"),
    [
        (make_pod("p"), make_node("n"), None),
        (make_pod("p"), make_node("n", ready="False"), NOT_READY),
        (make_pod("p"), make_node("n", ready="Unknown"),
         "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
        (make_pod("p", tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]),
         make_node("n", ready="False"), None),
        (make_pod("p"), make_node("n", conditions={"DiskPressure": "True"}),
         "node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }"),
        (make_pod("p"), make_node("n", conditions={"DiskPressure": "False", "MemoryPressure": "False"}), None),
        # The controller's taint is already there: TaintToleration reports it, not this plugin.
        (make_pod("p"), make_node("n", ready="False", taints=[node_taint("node.kubernetes.io/not-ready")]), None),
        (make_pod("p"), {"metadata": {"name": "n"}, "status": {"allocatable": {"pods": "1"}}}, NOT_READY),
    ],
)
def test_node_readiness(pod: dict[str, Any], node: dict[str, Any], reason: str | None) -> None:
    assert run_filter(NodeReadiness(), pod, node) == reason


@pytest.mark.parametrize(
    ("tolerations", "taints", "reason"),
    [
        (None, None, None),
        (None, [node_taint("dedicated", value="gpu")], "node(s) had untolerated taint {dedicated: gpu}"),
        (None, [node_taint("k", effect="NoExecute")], "node(s) had untolerated taint {k: }"),
        (None, [node_taint("k", effect="PreferNoSchedule")], None),
        ([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
         [node_taint("dedicated", value="gpu")], None),
        ([{"key": "dedicated", "value": "cpu"}], [node_taint("dedicated", value="gpu")],
         "node(s) had untolerated taint {dedicated: gpu}"),
        ([{"key": "dedicated", "operator": "Exists"}], [node_taint("dedicated", value="gpu")], None),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], [node_taint("dedicated", value="gpu")],
         "node(s) had untolerated taint {dedicated: gpu}"),
        ([{"operator": "Exists"}], [node_taint("a"), node_taint("b", effect="NoExecute")], None),
        ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 300}], [node_taint("node.kubernetes.io/not-ready", effect="NoExecute")], None),
    ],
)
def test_taint_toleration_filter(tolerations: Any, taints: Any, reason: str | None) -> None:
    pod, node = make_pod("p", tolerations=tolerations), make_node("n", taints=taints)
    assert run_filter(TaintToleration(), pod, node) == reason


@pytest.mark.parametrize(
    ("pod", "labels", "reason"),
    [
        (make_pod("p"), {}, None),
        (make_pod("p", node_selector={"disk": "ssd"}), {"disk": "ssd"}, None),
        (make_pod("p", node_selector={"disk": "ssd"}), {"disk": "hdd"}, AFFINITY_REASON),
        (make_pod("p", node_selector={"disk": "ssd", "zone": "a"}), {"disk": "ssd"}, AFFINITY_REASON),
        (make_pod("p", node_selector={"kubernetes.io/arch": "amd64"}), {}, AFFINITY_REASON),
    ],
)
def test_node_selector(pod: dict[str, Any], labels: dict[str, str], reason: str | None) -> None:
    assert run_filter(NodeSelector(), pod, make_node("n", labels=labels)) == reason


@pytest.mark.parametrize(
    ("affinity", "labels", "reason"),
    [
        (one(expr("zone", "In", "a", "b")), {"zone": "b"}, None),
        (one(expr("zone", "In", "a", "b")), {"zone": "c"}, AFFINITY_REASON),
        (one(expr("zone", "In", "a")), {}, AFFINITY_REASON),
        (one(expr("zone", "NotIn", "a")), {"zone": "b"}, None),
        (one(expr("zone", "NotIn", "a")), {}, None),
        (one(expr("zone", "NotIn", "a")), {"zone": "a"}, AFFINITY_REASON),
        (one(expr("gpu", "Exists")), {"gpu": "x"}, None),
        (one(expr("gpu", "Exists")), {}, AFFINITY_REASON),
        (one(expr("gpu", "DoesNotExist")), {}, None),
        (one(expr("gpu", "DoesNotExist")), {"gpu": "x"}, AFFINITY_REASON),
        (one(expr("cores", "Gt", "2")), {"cores": "4"}, None),
        (one(expr("cores", "Gt", "4")), {"cores": "4"}, AFFINITY_REASON),
        (one(expr("cores", "Lt", "8")), {"cores": "4"}, None),
        (one(expr("cores", "Lt", "8")), {"cores": "many"}, AFFINITY_REASON),
        # terms are ORed, expressions in a term ANDed
        (required({"matchExpressions": [expr("zone", "In", "x")]}, {"matchExpressions": [expr("gpu", "Exists")]}),
         {"gpu": "1"}, None),
        (required({"matchExpressions": [expr("zone", "In", "a"), expr("gpu", "Exists")]}), {"zone": "a"},
         AFFINITY_REASON),
        (required({"matchFields": [expr("metadata.name", "In", "n")]}), {}, None),
        (required({"matchFields": [expr("metadata.name", "In", "other")]}), {}, AFFINITY_REASON),
        (required({"matchFields": [expr("metadata.name", "NotIn", "n")]}), {}, AFFINITY_REASON),
        (required({}), {}, AFFINITY_REASON),  # an empty term matches no node
        (required(), {}, AFFINITY_REASON),  # no term: nothing matches
    ],
)
def test_node_affinity_required(affinity: dict[str, Any], labels: dict[str, str], reason: str | None) -> None:
    assert run_filter(NodeAffinity(), make_pod("p", affinity=affinity), make_node("n", labels=labels)) == reason


def test_node_affinity_invalid_operator_makes_the_pod_invalid() -> None:
    pod = pod_info(make_pod("p", affinity=required({"matchExpressions": [expr("zone", "Near", "a")]})))
    assert "unsupported node selector operator" in pod.invalid


FOUR_CPU = {"cpu": "4", "memory": "4Gi", "pods": "3", "ephemeral-storage": "10Gi"}


@pytest.mark.parametrize(
    ("pod", "placed", "reason"),
    [
        (make_pod("p", requests={"cpu": "1", "memory": "1Gi"}), [], None),
        (make_pod("p", requests={"cpu": "4"}), [], None),
        (make_pod("p", requests={"cpu": "4001m"}), [], "Insufficient cpu"),
        (make_pod("p", requests={"cpu": "2"}), [make_pod("a", node_name="n", requests={"cpu": "2500m"})],
         "Insufficient cpu"),
        (make_pod("p", requests={"memory": "3Gi"}), [make_pod("a", node_name="n", requests={"memory": "1025Mi"})],
         "Insufficient memory"),
        (make_pod("p", requests={"ephemeral-storage": "11Gi"}), [], "Insufficient ephemeral-storage"),
        (make_pod("p"), [make_pod(f"a{i}", node_name="n") for i in range(3)], "Too many pods"),
        (make_pod("p"), [make_pod(f"a{i}", node_name="n") for i in range(2)], None),
        # init containers: the largest one counts when it exceeds the sum of the app containers
        (make_pod("p", requests={"cpu": "1"}, init_requests=[{"cpu": "3"}, {"cpu": "4500m"}]), [], "Insufficient cpu"),
        (make_pod("p", requests={"cpu": "1"}, init_requests=[{"cpu": "3"}]), [], None),
        (make_pod("p", requests={"cpu": "500m"}),
         [make_pod("a", node_name="n", requests={"cpu": "1"}, init_requests=[{"cpu": "3600m"}])], "Insufficient cpu"),
    ],
)
def test_node_resources_fit(pod: dict[str, Any], placed: list[dict[str, Any]], reason: str | None) -> None:
    assert run_filter(NodeResourcesFit(), pod, make_node("n", allocatable=FOUR_CPU), placed) == reason


def test_sidecar_init_containers_add_to_the_request() -> None:
    pod = make_pod("p", requests={"cpu": "1"}, init_requests=[{"cpu": "1"}])
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    assert pod_info(pod).requests.cpu == 2000


@pytest.mark.parametrize(
    ("pod", "placed", "reason"),
    [
        (make_pod("p", host_ports=[8080]), [], None),
        (make_pod("p", host_ports=[8080]), [make_pod("a", node_name="n", host_ports=[8080])],
         "node(s) didn't have free ports for the requested pod ports"),
        (make_pod("p", host_ports=[8080]), [make_pod("a", node_name="n", host_ports=[8081])], None),
        (make_pod("p"), [make_pod("a", node_name="n", host_ports=[8080])], None),
    ],
)
def test_node_ports(pod: dict[str, Any], placed: list[dict[str, Any]], reason: str | None) -> None:
    assert run_filter(NodePorts(), pod, make_node("n"), placed) == reason


def test_node_ports_protocol_and_ip() -> None:
    udp = make_pod("a", node_name="n", host_ports=[53])
    udp["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert run_filter(NodePorts(), make_pod("p", host_ports=[53]), make_node("n"), [udp]) is None
    pinned = make_pod("a", node_name="n", host_ports=[80])
    pinned["spec"]["containers"][0]["ports"][0]["hostIP"] = "10.0.0.1"
    other_ip = make_pod("p", host_ports=[80])
    other_ip["spec"]["containers"][0]["ports"][0]["hostIP"] = "10.0.0.2"
    assert run_filter(NodePorts(), other_ip, make_node("n"), [pinned]) is None
    assert run_filter(NodePorts(), make_pod("p", host_ports=[80]), make_node("n"), [pinned]) is not None


ARM_ONLY = {"edgek8s.io/image-platforms": "linux/arm64"}
ARCH_REASON = "node(s) didn't match the image's platforms (linux/arm64)"


@pytest.mark.parametrize(
    ("annotations", "node", "reason"),
    [
        (None, make_node("n", arch="amd64"), None),
        (ARM_ONLY, make_node("n", arch="arm64"), None),
        (ARM_ONLY, make_node("n", arch="amd64"), ARCH_REASON),
        ({"edgek8s.io/image-platforms": "linux/amd64,linux/arm64/v8"}, make_node("n", arch="arm64"), None),
        ({"edgek8s.io/image-platforms": "linux/arm/v7"}, make_node("n", arch="arm64"),
         "node(s) didn't match the image's platforms (linux/arm)"),
        (ARM_ONLY, {"metadata": {"name": "n"}, "status": {}}, ARCH_REASON),  # no arch label: not trusted
    ],
)
def test_node_arch(annotations: Any, node: dict[str, Any], reason: str | None) -> None:
    assert run_filter(NodeArchitecture(), make_pod("p", annotations=annotations), node) == reason


def test_malformed_platforms_make_the_pod_invalid() -> None:
    assert pod_info(make_pod("p", annotations={"edgek8s.io/image-platforms": "arm64"})).invalid


def anti(labels: dict[str, str], key: str = "kubernetes.io/hostname", kind: str = "podAntiAffinity") -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}


@pytest.mark.parametrize(
    ("pod", "placed", "reason"),
    [
        (make_pod("p", labels={"app": "db"}, affinity=anti({"app": "db"})), [], None),
        (make_pod("p", labels={"app": "db"}, affinity=anti({"app": "db"})),
         [make_pod("a", node_name="n", labels={"app": "db"})], "node(s) didn't match pod anti-affinity rules"),
        (make_pod("p", labels={"app": "db"}, affinity=anti({"app": "db"})),
         [make_pod("a", node_name="n", labels={"app": "web"})], None),
        # a pod in another namespace is not selected by a term without namespaces
        (make_pod("p", labels={"app": "db"}, affinity=anti({"app": "db"})),
         [make_pod("a", namespace="other", node_name="n", labels={"app": "db"})], None),
        # symmetry: the placed pod's anti-affinity keeps this pod away
        (make_pod("p", labels={"app": "db"}),
         [make_pod("a", node_name="n", labels={"x": "y"}, affinity=anti({"app": "db"}))],
         "node(s) didn't satisfy existing pods anti-affinity rules"),
        (make_pod("p", labels={"app": "web"}),
         [make_pod("a", node_name="n", labels={"x": "y"}, affinity=anti({"app": "db"}))], None),
        # required affinity: a matching pod must be in the domain; the first pod of a group may go anywhere
        (make_pod("p", labels={"app": "web"}, affinity=anti({"app": "cache"}, kind="podAffinity")), [],
         "node(s) didn't match pod affinity rules"),
        (make_pod("p", labels={"app": "web"}, affinity=anti({"app": "cache"}, kind="podAffinity")),
         [make_pod("a", node_name="n", labels={"app": "cache"})], None),
        (make_pod("p", labels={"app": "web"}, affinity=anti({"app": "web"}, kind="podAffinity")), [], None),
    ],
)
def test_inter_pod_affinity(pod: dict[str, Any], placed: list[dict[str, Any]], reason: str | None) -> None:
    assert run_filter(InterPodAffinity(), pod, make_node("n"), placed) == reason


def test_anti_affinity_by_zone_covers_every_node_of_the_zone() -> None:
    snapshot = Snapshot()
    for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        snapshot.upsert_node(make_node(name, labels={"topology.kubernetes.io/zone": zone}))
    snapshot.add_pod(pod_info(make_pod("db0", node_name="a1", labels={"app": "db"})))
    zone_anti = anti({"app": "db"}, key="topology.kubernetes.io/zone")
    pod = pod_info(make_pod("db1", labels={"app": "db"}, affinity=zone_anti))
    check = InterPodAffinity().check_for(pod, snapshot)
    assert check is not None
    assert [check(n) for n in snapshot.nodes()] == [
        "node(s) didn't match pod anti-affinity rules", "node(s) didn't match pod anti-affinity rules", None]


def scores(plugin: ScorePlugin, pod: dict[str, Any], nodes: list[dict[str, Any]],
           placed: list[dict[str, Any]] = ()) -> list[int] | None:  # type: ignore[assignment]
    snapshot = snapshot_of(nodes, placed)
    scorer = plugin.scorer_for(pod_info(pod), snapshot)
    if scorer is None:
        return None
    return plugin.normalize([scorer(n) for n in snapshot.nodes()])


def test_least_allocated_prefers_the_emptier_node() -> None:
    nodes = [make_node("n1"), make_node("n2")]
    placed = [make_pod("a", node_name="n1", requests={"cpu": "2", "memory": "2Gi"})]
    result = scores(LeastAllocated(), make_pod("p", requests={"cpu": "1", "memory": "1Gi"}), nodes, placed)
    assert result == [25, 75]


def test_least_allocated_counts_best_effort_pods_as_non_zero() -> None:
    nodes = [make_node("n1"), make_node("n2")]
    placed = [make_pod(f"a{i}", node_name="n1") for i in range(10)]
    result = scores(LeastAllocated(), make_pod("p"), nodes, placed)
    assert result is not None and result[0] < result[1]


def test_selector_spread() -> None:
    nodes = [make_node("n1"), make_node("n2"), make_node("n3")]
    placed = [make_pod("a", node_name="n1", owner_uid="rs1"), make_pod("b", node_name="n1", owner_uid="rs1"),
              make_pod("c", node_name="n2", owner_uid="rs1"), make_pod("d", node_name="n3", owner_uid="rs2")]
    assert scores(SelectorSpread(), make_pod("p", owner_uid="rs1"), nodes, placed) == [0, 50, 100]
    assert scores(SelectorSpread(), make_pod("p"), nodes, placed) is None


def test_preferred_node_affinity() -> None:
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
        {"weight": 20, "preference": {"matchExpressions": [expr("zone", "In", "a")]}},
    ]}}
    nodes = [make_node("n1", labels={"disk": "ssd"}), make_node("n2", labels={"zone": "a"}),
             make_node("n3", labels={"disk": "ssd", "zone": "a"}), make_node("n4")]
    assert scores(NodeAffinity(), make_pod("p", affinity=affinity), nodes) == [80, 20, 100, 0]


def test_prefer_no_schedule_taints_score_lower() -> None:
    nodes = [make_node("n1", taints=[node_taint("a", "PreferNoSchedule"), node_taint("b", "PreferNoSchedule")]),
             make_node("n2", taints=[node_taint("a", "PreferNoSchedule")]), make_node("n3")]
    assert scores(TaintToleration(), make_pod("p"), nodes) == [0, 50, 100]
    tolerant = make_pod("p", tolerations=[{"key": "a", "operator": "Exists"}])
    assert scores(TaintToleration(), tolerant, nodes) == [0, 100, 100]
