"""Preemption on its own: which node, which victims (minimal, least important), and when none."""

from __future__ import annotations

from typing import Any

from edgek8s.scheduler.plugins import default_framework
from edgek8s.scheduler.podinfo import pod_info
from edgek8s.scheduler.preemption import find_preemption
from tests.support.objects import make_node, make_pod
from tests.unit.test_scheduler_plugins import snapshot_of

SMALL = {"cpu": "2", "memory": "4Gi", "pods": "110"}


def placed(name: str, node: str, cpu: str, priority: int) -> dict[str, Any]:
    return make_pod(name, node_name=node, requests={"cpu": cpu}, priority=priority)


def preempt(pod: dict[str, Any], nodes: list[dict[str, Any]],
            pods: list[dict[str, Any]]) -> tuple[str, list[str]] | None:
    snapshot = snapshot_of(nodes, pods)
    info = pod_info(pod)
    framework = default_framework()
    assert framework.schedule(info, snapshot).node is None, "the pod must fit nowhere as things are"
    found = find_preemption(info, snapshot, framework.checks_for(info, snapshot))
    return None if found is None else (found.node, sorted(v.name for v in found.victims))


def test_minimal_victims_the_least_important_first() -> None:
    pods = [placed("low-a", "n1", "500m", 1), placed("low-b", "n1", "500m", 1), placed("mid", "n1", "1", 5)]
    urgent = make_pod("urgent", requests={"cpu": "1"}, priority=10)
    # Freeing 1 CPU: both priority-1 pods go, the priority-5 one is reprieved first (most important).
    assert preempt(urgent, [make_node("n1", allocatable=SMALL)], pods) == ("n1", ["low-a", "low-b"])
    small = make_pod("small", requests={"cpu": "500m"}, priority=10)
    found = preempt(small, [make_node("n1", allocatable=SMALL)], pods)
    assert found is not None and len(found[1]) == 1 and found[1][0].startswith("low-")


def test_node_with_the_least_important_victims_wins() -> None:
    nodes = [make_node("n1", allocatable=SMALL), make_node("n2", allocatable=SMALL), make_node("n3", allocatable=SMALL)]
    pods = [placed("a", "n1", "2", 5), placed("b", "n2", "1", 1), placed("c", "n2", "1", 1), placed("d", "n3", "2", 1)]
    # n2 and n3 both cost priority-1 victims; n3 needs one, n2 two.
    assert preempt(make_pod("p", requests={"cpu": "2"}, priority=10), nodes, pods) == ("n3", ["d"])


def test_equal_or_higher_priority_is_never_a_victim() -> None:
    pods = [placed("peer", "n1", "2", 10)]
    pod = make_pod("p", requests={"cpu": "1"}, priority=10)
    assert preempt(pod, [make_node("n1", allocatable=SMALL)], pods) is None


def test_never_policy_and_filters_preemption_cannot_fix() -> None:
    pods = [placed("low", "n1", "2", 0)]
    never = make_pod("p", requests={"cpu": "1"}, priority=10)
    never["spec"]["preemptionPolicy"] = "Never"
    assert preempt(never, [make_node("n1", allocatable=SMALL)], pods) is None
    elsewhere = make_pod("q", requests={"cpu": "1"}, priority=10, node_selector={"disk": "ssd"})
    nodes = [make_node("n1", allocatable=SMALL), make_node("n2", allocatable=SMALL, labels={"disk": "ssd"})]
    pods.append(placed("low2", "n2", "2", 0))
    assert preempt(elsewhere, nodes, pods) == ("n2", ["low2"])


def test_host_port_conflict_is_resolved_by_preemption() -> None:
    holder = make_pod("holder", node_name="n1", host_ports=[8080], priority=0)
    wants = make_pod("wants", host_ports=[8080], priority=100)
    assert preempt(wants, [make_node("n1")], [holder]) == ("n1", ["holder"])
