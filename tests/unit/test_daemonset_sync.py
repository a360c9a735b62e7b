"""DaemonSet sync tables: placement, taints, duplicates, rolling updates and status."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.controllers.actions import Create, Delete, Emit, Plan, Update
from edgek8s.controllers.daemonset import HASH_LABEL, should_run, sync_daemon_set, target_node
from edgek8s.controllers.pods import template_hash
from tests.support.builders import NOW, meta, node, owner, pod, template

DS_OWNER = owner("DaemonSet", "agent", "apps/v1")


def daemon_set(*, strategy: dict[str, Any] | None = None, min_ready: int = 0, status: dict[str, Any] | None = None,
               **pod_spec: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "template": template(**pod_spec),
                            "updateStrategy": strategy or {"type": "RollingUpdate",
                                                           "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("agent", generation=2), "spec": spec,
            "status": status or {}}


def daemon(name: str, node_name: str, ds: dict[str, Any], *, current: bool = True, **kwargs: Any) -> dict[str, Any]:
    revision = template_hash(ds["spec"]["template"]) if current else "old"
    return pod(name, owners=DS_OWNER, node_name=node_name, labels={"app": "web", HASH_LABEL: revision}, **kwargs)


def creates(plan: Plan) -> list[str]:
    return sorted(target_node(a.body) for a in plan.actions if isinstance(a, Create))


def deletes(plan: Plan) -> list[str]:
    return sorted(a.name for a in plan.actions if isinstance(a, Delete))


def status_of(plan: Plan) -> dict[str, Any] | None:
    updates = [a for a in plan.actions if isinstance(a, Update)]
    return updates[0].body["status"] if updates else None


NODES = [node("n1"), node("n2"), node("n3")]


def test_one_pod_per_node_pinned_by_affinity() -> None:
    ds = daemon_set()
    plan = sync_daemon_set(ds, NODES, [], NOW)
    assert creates(plan) == ["n1", "n2", "n3"]
    body = next(a.body for a in plan.actions if isinstance(a, Create))
    terms = body["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"
    assert "nodeName" not in body["spec"]
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-agent"
    assert body["metadata"]["labels"][HASH_LABEL] == template_hash(ds["spec"]["template"])
    keys = {(t["key"], t["effect"]) for t in body["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in keys
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
    assert status_of(plan) == {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
                               "numberReady": 0, "observedGeneration": 2, "updatedNumberScheduled": 0,
                               "numberAvailable": 0, "numberUnavailable": 3}


NO_SCHEDULE = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
NO_EXECUTE = {"key": "dedicated", "value": "db", "effect": "NoExecute"}


@pytest.mark.parametrize(
    ("pod_spec", "the_node", "expected"),
    [
        ({}, node("n"), (True, True)),
        ({"nodeSelector": {"disk": "ssd"}}, node("n"), (False, False)),
        ({"nodeSelector": {"disk": "ssd"}}, node("n", labels={"disk": "ssd"}), (True, True)),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}]}}}},
         node("n", labels={"kubernetes.io/arch": "amd64"}), (False, False)),
        ({}, node("n", taints=[NO_SCHEDULE]), (False, True)),  # existing pods may stay
        ({}, node("n", taints=[NO_EXECUTE]), (False, False)),
        ({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}, node("n", taints=[NO_EXECUTE]), (True, True)),
        ({"tolerations": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]},
         node("n", taints=[NO_SCHEDULE]), (False, True)),
        # A cordoned or dead node still runs its daemons (upstream's automatic tolerations).
        ({}, node("n", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), (True, True)),
        ({}, node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]), (True, True)),
    ],
)
def test_should_run(pod_spec: dict[str, Any], the_node: dict[str, Any], expected: tuple[bool, bool]) -> None:
    assert should_run(template(**pod_spec)["spec"], the_node) == expected


def test_taints_and_selectors_decide_per_node() -> None:
    ds = daemon_set(nodeSelector={"role": "edge"})
    nodes = [node("n1", labels={"role": "edge"}), node("n2", labels={"role": "edge"}, taints=[NO_SCHEDULE]),
             node("n3", labels={"role": "edge"}, taints=[NO_EXECUTE]), node("n4")]
    pods = [daemon("p2", "n2", ds), daemon("p3", "n3", ds), daemon("p4", "n4", ds)]
    plan = sync_daemon_set(ds, nodes, pods, NOW)
    assert creates(plan) == ["n1"]
    assert deletes(plan) == ["p3", "p4"]  # p2 tolerated before the NoSchedule taint: stays
    status = status_of(plan)
    assert status is not None and status["desiredNumberScheduled"] == 1 and status["numberMisscheduled"] == 3


def test_failed_and_duplicate_pods_and_orphans() -> None:
    ds = daemon_set()
    pods = [
        daemon("failed", "n1", ds, phase="Failed"),
        daemon("old", "n2", ds, age=900), daemon("young", "n2", ds, age=100),
        daemon("ok", "n3", ds),
        daemon("gone", "n9", ds),
        pod("foreign", node_name="n3"),  # not ours
        daemon("leaving", "n3", ds, deletionTimestamp="2026-01-01T11:59:00Z"),
    ]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    assert deletes(plan) == ["failed", "gone", "young"]
    assert creates(plan) == ["n1"]
    assert any(isinstance(a, Emit) and a.reason == "FailedDaemonPod" for a in plan.actions)


def test_unscheduled_pod_counts_for_its_affinity_node() -> None:
    ds = daemon_set()
    pending = sync_daemon_set(ds, NODES, [], NOW).actions[0]
    assert isinstance(pending, Create)
    unbound = {**pending.body, "metadata": {**pending.body["metadata"], "name": "x", "uid": "uid-x",
                                            "creationTimestamp": "2026-01-01T11:00:00Z"}, "status": {}}
    plan = sync_daemon_set(ds, NODES, [unbound], NOW)
    assert creates(plan) == ["n2", "n3"]


@pytest.mark.parametrize(
    ("max_unavailable", "ready_old", "expected_deletes"),
    [
        (1, [True, True, True], 1),
        (2, [True, True, True], 2),
        ("50%", [True, True, True], 2),  # 1.5 rounds up
        (1, [False, True, True], 1),  # the unavailable old pod goes, and uses up the budget
        (2, [False, True, True], 2),
        (1, [False, False, True], 2),  # unavailable ones always go; no available one may
    ],
)
def test_rolling_update_max_unavailable(max_unavailable: Any, ready_old: list[bool], expected_deletes: int) -> None:
    ds = daemon_set(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}})
    pods = [daemon(f"p{i}", f"n{i + 1}", ds, current=False, ready=r) for i, r in enumerate(ready_old)]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    assert len(deletes(plan)) == expected_deletes
    assert creates(plan) == []
    unready = {f"p{i}" for i, r in enumerate(ready_old) if not r}
    assert unready <= set(deletes(plan))


def test_rolling_update_waits_for_a_missing_node_pod() -> None:
    ds = daemon_set()
    pods = [daemon("p1", "n1", ds, current=False), daemon("p2", "n2", ds, current=False)]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    assert creates(plan) == ["n3"] and deletes(plan) == []  # n3 already unavailable: no budget


def test_rolling_update_counts_min_ready_seconds() -> None:
    ds = daemon_set(min_ready=60)
    pods = [daemon("new", "n1", ds, ready_for=10), daemon("p2", "n2", ds, current=False),
            daemon("p3", "n3", ds, current=False)]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    assert deletes(plan) == []  # the new pod is ready but not yet available
    assert plan.requeue_after == 60
    status = status_of(plan)
    assert status is not None and (status["numberReady"], status["numberAvailable"]) == (3, 2)
    assert status["updatedNumberScheduled"] == 1


def test_surge_then_retire() -> None:
    ds = daemon_set(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    old = [daemon(f"p{i}", f"n{i}", ds, current=False) for i in (1, 2, 3)]
    first = sync_daemon_set(ds, NODES, old, NOW)
    assert creates(first) == ["n1"] and deletes(first) == []
    starting = daemon("new1", "n1", ds, ready=False)
    waiting = sync_daemon_set(ds, NODES, [*old, starting], NOW)
    assert creates(waiting) == [] and deletes(waiting) == []  # one surge at a time, old serves meanwhile
    up = daemon("new1", "n1", ds)
    done = sync_daemon_set(ds, NODES, [*old, up], NOW)
    assert deletes(done) == ["p1"] and creates(done) == ["n2"]


def test_on_delete_replaces_nothing() -> None:
    ds = daemon_set(strategy={"type": "OnDelete"})
    pods = [daemon(f"p{i}", f"n{i}", ds, current=False) for i in (1, 2, 3)]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    assert plan.writes() == [a for a in plan.actions if isinstance(a, Update)]
    status = status_of(plan)
    assert status is not None and status["updatedNumberScheduled"] == 0


def test_steady_state_writes_nothing() -> None:
    ds = daemon_set()
    pods = [daemon(f"p{i}", f"n{i}", ds) for i in (1, 2, 3)]
    plan = sync_daemon_set(ds, NODES, pods, NOW)
    status = status_of(plan)
    assert status is not None
    steady = sync_daemon_set({**ds, "status": status}, NODES, pods, NOW)
    assert steady.actions == []


def test_burst_limits_creates() -> None:
    nodes = [node(f"n{i}") for i in range(7)]
    plan = sync_daemon_set(daemon_set(), nodes, [], NOW, burst=5)
    assert len(creates(plan)) == 5 and plan.requeue_after == 0


def test_deleting_daemon_set_does_nothing() -> None:
    ds = daemon_set()
    ds["metadata"]["deletionTimestamp"] = "2026-01-01T11:00:00Z"
    assert sync_daemon_set(ds, NODES, [], NOW).actions == []


def test_failed_daemon_is_replaced_after_the_hold() -> None:
    ds = daemon_set()
    failed = [daemon("failed", "n1", ds, phase="Failed"), daemon("p2", "n2", ds), daemon("p3", "n3", ds)]
    held = sync_daemon_set(ds, NODES, failed, NOW, hold={"n1": 4.0})
    assert deletes(held) == ["failed"] and creates(held) == [] and held.requeue_after == 4.0
    assert creates(sync_daemon_set(ds, NODES, failed[1:], NOW)) == ["n1"]
