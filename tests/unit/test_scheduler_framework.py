"""The framework (filter -> score -> normalize -> pick) and the incremental snapshot."""

from __future__ import annotations

from collections import Counter

from edgek8s.scheduler.framework import Decision
from edgek8s.scheduler.plugins import default_framework
from edgek8s.scheduler.podinfo import pod_info
from edgek8s.scheduler.snapshot import Snapshot
from tests.support.objects import make_node, make_pod, node_taint


def cluster(*nodes: dict[str, object]) -> Snapshot:
    snapshot = Snapshot()
    for node in nodes:
        snapshot.upsert_node(node)  # type: ignore[arg-type]
    return snapshot


def test_unschedulable_message_counts_each_node_once_in_upstream_format() -> None:
    snapshot = cluster(
        make_node("a", allocatable={"cpu": "1", "memory": "1Gi", "pods": "10"}),
        make_node("b", unschedulable=True),
        make_node("c", taints=[node_taint("dedicated", value="db")]),
        make_node("d", ready="False"),
        make_node("e", allocatable={"cpu": "1", "memory": "1Gi", "pods": "10"}),
    )
    decision = default_framework().schedule(pod_info(make_pod("p", requests={"cpu": "2"})), snapshot)
    assert decision.node is None
    assert decision.message() == (
        "0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable, "
        "2 Insufficient cpu."
    )


def test_no_nodes() -> None:
    decision = default_framework().schedule(pod_info(make_pod("p")), Snapshot())
    assert decision == Decision(None, 0, Counter())
    assert decision.message() == "0/0 nodes are available."


def test_invalid_pod_is_reported_on_every_node() -> None:
    pod = pod_info(make_pod("p", requests={"cpu": "lots"}))
    decision = default_framework().schedule(pod, cluster(make_node("a"), make_node("b")))
    assert decision.node is None
    assert decision.message().startswith("0/2 nodes are available: 2 invalid pod spec: quantities must match")


def test_choice_among_equal_nodes_is_deterministic_per_pod_and_spreads_pods() -> None:
    snapshot = cluster(*(make_node(f"n{i}") for i in range(10)))
    framework = default_framework(seed=7)
    pods = [pod_info(make_pod(f"p{i}", uid=f"uid-{i}")) for i in range(40)]
    first = [framework.schedule(p, snapshot).node for p in pods]
    assert first == [framework.schedule(p, snapshot).node for p in pods]
    assert len(set(first)) > 5  # equal nodes share the pods instead of all going to the first one
    assert [default_framework(seed=8).schedule(p, snapshot).node for p in pods] != first


def test_assumed_pods_count_against_the_node() -> None:
    snapshot = cluster(make_node("a"), make_node("b"))
    framework = default_framework()
    placed = []
    for i in range(3):
        pod = pod_info(make_pod(f"p{i}", requests={"cpu": "3"}))
        decision = framework.schedule(pod, snapshot)
        if decision.node is not None:
            snapshot.assume(pod, decision.node)
        placed.append(decision.node)
    assert sorted(n for n in placed if n) == ["a", "b"]
    assert placed[2] is None
    snapshot.forget("default/p0")
    pod = pod_info(make_pod("p3", requests={"cpu": "3"}))
    assert framework.schedule(pod, snapshot).node == placed[0]


def test_scores_combine_spread_and_least_allocated() -> None:
    snapshot = cluster(make_node("a"), make_node("b"), make_node("c"))
    framework = default_framework()
    nodes = []
    for i in range(6):
        pod = pod_info(make_pod(f"p{i}", owner_uid="rs", requests={"cpu": "100m", "memory": "64Mi"}))
        node = framework.schedule(pod, snapshot).node
        assert node is not None
        snapshot.assume(pod, node)
        nodes.append(node)
    assert Counter(nodes) == {"a": 2, "b": 2, "c": 2}


def test_arm64_only_image_never_lands_on_amd64() -> None:
    snapshot = cluster(*(make_node(f"x{i}", arch="amd64") for i in range(5)), make_node("pi", arch="arm64"))
    framework = default_framework()
    for i in range(5):
        pod = pod_info(make_pod(f"p{i}", annotations={"edgek8s.io/image-platforms": "linux/arm64"}))
        assert framework.schedule(pod, snapshot).node == "pi"


def test_snapshot_keeps_pods_of_unknown_nodes_until_the_node_arrives() -> None:
    snapshot = Snapshot()
    snapshot.add_pod(pod_info(make_pod("a", node_name="late", requests={"cpu": "3"})))
    assert snapshot.nodes() == [] and snapshot.node("late") is None
    snapshot.upsert_node(make_node("late"))
    info = snapshot.node("late")
    assert info is not None and info.requested.cpu == 3000 and info.requested.pods == 1
    snapshot.remove_node("late")
    assert snapshot.nodes() == []
    snapshot.remove_pod("default/a")
    snapshot.upsert_node(make_node("late"))
    info = snapshot.node("late")
    assert info is not None and info.requested.cpu == 0


def test_confirmation_moves_a_pod_another_scheduler_placed() -> None:
    snapshot = cluster(make_node("a"), make_node("b"))
    pod = pod_info(make_pod("p", requests={"cpu": "1"}, host_ports=[80], owner_uid="rs"))
    snapshot.assume(pod, "a")
    assert snapshot.is_assumed(pod.key)
    snapshot.add_pod(pod_info(make_pod("p", node_name="b", requests={"cpu": "1"}, host_ports=[80], owner_uid="rs")))
    a, b = snapshot.node("a"), snapshot.node("b")
    assert a is not None and b is not None
    assert (a.requested.cpu, len(a.ports), dict(a.owners)) == (0, 0, {})
    assert (b.requested.cpu, len(b.ports), dict(b.owners)) == (1000, 1, {"rs": 1})
    assert not snapshot.is_assumed(pod.key)
    snapshot.forget(pod.key)  # confirmed: forget leaves it
    assert snapshot.node_of(pod.key) == "b"


def test_node_heartbeat_is_not_a_scheduling_change() -> None:
    snapshot = Snapshot()
    node = make_node("a")
    assert snapshot.upsert_node(node)
    node["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-01-01T00:00:10Z"
    assert not snapshot.upsert_node(node)
    assert snapshot.upsert_node(make_node("a", labels={"disk": "ssd"}))
    assert snapshot.upsert_node(make_node("a", labels={"disk": "ssd"}, unschedulable=True))


def test_confirm_keeps_an_assumed_pod_only_where_it_was_assumed() -> None:
    snapshot = cluster(make_node("a"), make_node("b"))
    pod = pod_info(make_pod("p", requests={"cpu": "1"}))
    snapshot.assume(pod, "a")
    assert not snapshot.confirm(pod.key, "b")
    assert snapshot.confirm(pod.key, "a")
    assert not snapshot.is_assumed(pod.key)
    snapshot.forget(pod.key)
    a = snapshot.node("a")
    assert a is not None and a.requested.cpu == 1000


def test_checks_no_node_can_fail_are_skipped_and_come_back_when_one_can() -> None:
    snapshot = cluster(make_node("a"), make_node("b"))
    assert not (snapshot.any_cordoned or snapshot.any_tainted or snapshot.any_not_just_ready)
    snapshot.upsert_node(make_node("b", unschedulable=True, taints=[node_taint("k")], ready="False"))
    assert snapshot.any_cordoned and snapshot.any_tainted and snapshot.any_not_just_ready
    decision = default_framework().schedule(pod_info(make_pod("p")), snapshot)
    assert decision.node == "a" and decision.reasons == {"node(s) were unschedulable": 1}
    snapshot.remove_node("b")
    assert not (snapshot.any_cordoned or snapshot.any_tainted or snapshot.any_not_just_ready)
