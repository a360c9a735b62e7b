"""Node lifecycle tables: heartbeats by observation, Unknown after the grace, taints, evictions."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from edgek8s.controllers.actions import NODES, PODS, Delete, Plan, Update
from edgek8s.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    Heartbeat,
    NodeLifecycleSettings,
    OrphanQuarantine,
    eviction_plan,
    mark_pods_not_ready,
    node_plan,
    observe,
    orphaned_pods,
)
from tests.support.builders import NOW, node, pod, ts

SETTINGS = NodeLifecycleSettings(grace_period=20.0, default_toleration_seconds=60)


def lease(renew: str, duration: int = 40) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"renewTime": renew, "leaseDurationSeconds": duration}}


def test_heartbeats_are_timed_by_the_observer_not_the_node_clock() -> None:
    n = node("n1", heartbeat="1999-01-01T00:00:00Z")  # a Pi that booted without NTP
    first = observe(None, n, lease("1999-01-01T00:00:00Z"), now_mono=100.0)
    assert first.seen_at == 100.0
    assert observe(first, n, lease("1999-01-01T00:00:00Z"), now_mono=130.0) is first  # nothing changed
    renewed = observe(first, n, lease("1999-01-01T00:00:05Z"), now_mono=131.0)
    assert renewed.seen_at == 131.0
    beat = observe(renewed, node("n1", heartbeat="1999-01-01T00:00:09Z"), lease("1999-01-01T00:00:05Z"), 140.0)
    assert beat.seen_at == 140.0


def updates(plan: Plan) -> list[Update]:
    return [a for a in plan.actions if isinstance(a, Update)]


def taint_keys(plan: Plan) -> set[tuple[str, str]]:
    [update] = updates(plan)
    assert not update.status and update.resource == NODES
    return {(t["key"], t["effect"]) for t in update.body["spec"].get("taints", [])}


def test_silent_node_becomes_unknown_then_unreachable_tainted() -> None:
    beat = Heartbeat(lease_renew="x", node_heartbeat="y", seen_at=100.0)
    healthy = node_plan(node("n1"), beat, 110.0, NOW, SETTINGS)
    assert healthy.actions == [] and healthy.requeue_after == 10.0
    stale = node_plan(node("n1"), beat, 120.0, NOW, SETTINGS)
    [update] = updates(stale)
    assert update.status
    [ready] = update.body["status"]["conditions"]
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    assert ready["lastTransitionTime"] == ts(0)
    # Next pass, from the written status: taints, NoExecute ones stamped with timeAdded.
    unknown = node("n1", ready="Unknown")
    tainted = node_plan(unknown, beat, 121.0, NOW, SETTINGS)
    assert taint_keys(tainted) == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    no_execute = next(t for t in updates(tainted)[0].body["spec"]["taints"] if t["effect"] == "NoExecute")
    assert no_execute["timeAdded"] == ts(0)


@pytest.mark.parametrize(
    ("ready", "existing", "expected"),
    [
        ("False", [], {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}),
        ("Unknown", [{"key": NOT_READY, "effect": "NoExecute"}], {(UNREACHABLE, "NoSchedule"),
                                                                  (UNREACHABLE, "NoExecute")}),
        ("True", [{"key": UNREACHABLE, "effect": "NoExecute"}, {"key": "mine", "effect": "NoSchedule"}],
         {("mine", "NoSchedule")}),
    ],
)
def test_condition_taints(ready: str, existing: list[dict[str, Any]], expected: set[tuple[str, str]]) -> None:
    beat = Heartbeat(lease_renew="", node_heartbeat="", seen_at=100.0)
    plan = node_plan(node("n1", ready=ready, taints=existing), beat, 101.0, NOW, SETTINGS)
    assert taint_keys(plan) == expected


def test_cordon_taint_follows_unschedulable() -> None:
    beat = Heartbeat(lease_renew="", node_heartbeat="", seen_at=100.0)
    cordoned = node("n1")
    cordoned["spec"]["unschedulable"] = True
    assert taint_keys(node_plan(cordoned, beat, 101.0, NOW, SETTINGS)) == {(UNSCHEDULABLE, "NoSchedule")}
    uncordoned = node("n1", taints=[{"key": UNSCHEDULABLE, "effect": "NoSchedule"}])
    assert taint_keys(node_plan(uncordoned, beat, 101.0, NOW, SETTINGS)) == set()


def test_ready_node_without_condition_taints_writes_nothing() -> None:
    beat = Heartbeat(lease_renew="", node_heartbeat="", seen_at=100.0)
    assert node_plan(node("n1", taints=[{"key": "mine", "effect": "NoSchedule"}]), beat, 101.0, NOW,
                     SETTINGS).actions == []


def unreachable_node(added_ago: float) -> dict[str, Any]:
    return node("n1", ready="Unknown", taints=[{"key": UNREACHABLE, "effect": "NoSchedule"},
                                               {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": ts(added_ago)}])


def tolerating(seconds: int | None) -> dict[str, Any]:
    toleration: dict[str, Any] = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return {"tolerations": [toleration]}


@pytest.mark.parametrize(
    ("pod_spec", "added_ago", "evicted", "requeue"),
    [
        ({}, 30.0, False, 30.0),  # the default 60 s
        ({}, 60.0, True, None),
        (tolerating(300), 60.0, False, 240.0),  # the pod's own toleration wins
        (tolerating(0), 0.0, True, None),
        (tolerating(None), 9999.0, False, None),  # tolerated forever (daemons)
        ({"tolerations": [{"key": "other", "operator": "Exists"}]}, 30.0, False, 30.0),
    ],
)
def test_eviction_after_toleration(pod_spec: dict[str, Any], added_ago: float, evicted: bool,
                                   requeue: float | None) -> None:
    victim = pod("p", node_name="n1")
    victim["spec"].update(pod_spec)
    plan = eviction_plan(unreachable_node(added_ago), [victim], NOW, SETTINGS)
    assert bool([a for a in plan.actions if isinstance(a, Delete)]) is evicted
    assert plan.requeue_after == requeue


def test_untolerated_custom_no_execute_taint_evicts_at_once() -> None:
    n = node("n1", taints=[{"key": "maintenance", "effect": "NoExecute"}])
    plan = eviction_plan(n, [pod("p", node_name="n1")], NOW, SETTINGS)
    [delete] = [a for a in plan.actions if isinstance(a, Delete)]
    assert (delete.resource, delete.name, delete.uid) == (PODS, "p", "uid-p")


def test_ready_node_evicts_nothing_and_guard_pauses() -> None:
    assert eviction_plan(node("n1"), [pod("p", node_name="n1")], NOW, SETTINGS).actions == []
    paused = eviction_plan(unreachable_node(600), [pod("p", node_name="n1")], NOW, SETTINGS, evictions_allowed=False)
    assert paused.actions == [] and paused.requeue_after == SETTINGS.grace_period


def test_eviction_burst() -> None:
    pods = [pod(f"p{i}", node_name="n1") for i in range(5)]
    plan = eviction_plan(unreachable_node(600), pods, NOW, NodeLifecycleSettings(eviction_burst=3))
    assert len(plan.writes()) == 3 and plan.requeue_after == 0


def test_pods_of_an_unknown_node_are_marked_not_ready() -> None:
    pods = [pod("ready", node_name="n1"), pod("waiting", node_name="n1", ready=False),
            pod("done", node_name="n1", phase="Succeeded")]
    plan = mark_pods_not_ready(node("n1", ready="Unknown"), pods, NOW)
    [update] = updates(plan)
    assert update.status and update.body["metadata"]["name"] == "ready"
    assert update.body["status"]["conditions"][0]["status"] == "False"
    assert mark_pods_not_ready(node("n1"), pods, NOW).actions == []


def test_orphaned_pods() -> None:
    pods = [pod("a", node_name="n1"), pod("b", node_name="gone"), pod("c")]
    assert [a.name for a in orphaned_pods(pods, {"n1"}).actions if isinstance(a, Delete)] == ["b"]


def test_now_is_after_the_grace_exactly() -> None:
    beat = Heartbeat(lease_renew="", node_heartbeat="", seen_at=0.0)
    assert updates(node_plan(node("n1"), beat, 20.0, NOW + datetime.timedelta(seconds=1), SETTINGS))


def test_orphan_quarantine_waits_for_a_node_missing_the_whole_period() -> None:
    quarantine = OrphanQuarantine(40.0)
    assert quarantine.gone({"late", "dead"}, 0.0) == set()
    assert quarantine.gone({"dead"}, 30.0) == set()  # "late" registered meanwhile: forgotten
    assert quarantine.gone({"late", "dead"}, 40.0) == {"dead"}  # "late" missing again: its clock restarts
    assert quarantine.gone({"late", "dead"}, 79.0) == {"dead"}
    assert quarantine.gone({"late", "dead"}, 80.0) == {"late", "dead"}


def terminating(name: str, deadline_in: float, grace: int = 30) -> dict[str, Any]:
    victim = pod(name, node_name="n1")
    victim["metadata"].update(deletionTimestamp=ts(-deadline_in), deletionGracePeriodSeconds=grace)
    return victim


def test_a_lost_nodes_terminating_pods_are_force_deleted_once_their_grace_ran_out() -> None:
    overdue = terminating("overdue", -1)
    pending = terminating("pending", 12)
    plan = eviction_plan(unreachable_node(600), [overdue, pending], NOW, SETTINGS)
    [delete] = [a for a in plan.actions if isinstance(a, Delete)]
    assert (delete.name, delete.uid, delete.grace_period) == ("overdue", "uid-overdue", 0)
    assert plan.requeue_after == 12
    # A node with only a custom NoExecute taint still has its kubelet: it finishes its own pods.
    custom = node("n1", taints=[{"key": "maintenance", "effect": "NoExecute"}])
    assert eviction_plan(custom, [overdue], NOW, SETTINGS).actions == []
    # Held by finalizers only (grace already 0): a delete would change nothing.
    held = terminating("held", -5, grace=0)
    assert eviction_plan(unreachable_node(600), [held], NOW, SETTINGS).actions == []


def test_orphaned_pods_are_force_deleted_even_when_terminating() -> None:
    stuck = terminating("stuck", 30)
    stuck["spec"]["nodeName"] = "gone"
    plan = orphaned_pods([stuck, pod("b", node_name="gone")], {"n1"})
    assert [(a.name, a.grace_period) for a in plan.actions if isinstance(a, Delete)] == [("stuck", 0), ("b", 0)]


@pytest.mark.parametrize(
    ("duration", "healthy_at", "unknown_at"),
    [
        pytest.param(40, 19.9, 20.0, id="upstream-40s-lease-keeps-the-grace"),
        pytest.param(10, 19.9, 20.0, id="shorter-lease-keeps-the-grace"),
        pytest.param(80, 39.9, 40.0, id="80s-lease-renewed-every-20s-doubles-it"),
        pytest.param(160, 79.9, 80.0, id="160s-lease"),
    ],
)
def test_a_longer_node_lease_gets_a_proportionally_longer_grace(
    duration: int, healthy_at: float, unknown_at: float
) -> None:
    beat = observe(None, node("n1"), lease("1999-01-01T00:00:00Z", duration), now_mono=0.0)
    assert beat.lease_duration == duration
    healthy = node_plan(node("n1"), beat, healthy_at, NOW, SETTINGS)
    assert healthy.actions == [] and healthy.requeue_after == pytest.approx(unknown_at - healthy_at)
    [update] = updates(node_plan(node("n1"), beat, unknown_at, NOW, SETTINGS))
    assert update.body["status"]["conditions"][0]["status"] == "Unknown"


def test_a_node_without_a_lease_has_the_plain_grace() -> None:
    beat = observe(None, node("n1"), None, now_mono=0.0)
    assert beat.lease_duration == 0.0
    assert updates(node_plan(node("n1"), beat, SETTINGS.grace_period, NOW, SETTINGS))
