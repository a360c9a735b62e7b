"""Pure rollout arithmetic of the Deployment controller (tables, as upstream's deployment util tests)."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.controllers import rollout as ro


def dep(replicas: int, surge: Any = "25%", unavailable: Any = "25%", strategy: str = "RollingUpdate",
        **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec.update(extra)
    return {"kind": "Deployment", "metadata": {"name": "d", "generation": 1}, "spec": spec}


def rs(name: str, replicas: int, available: int = 0, created: str = "2024-01-01T00:00:00Z",
       revision: int = 0, status_replicas: int | None = None) -> dict[str, Any]:
    return {"kind": "ReplicaSet",
            "metadata": {"name": name, "creationTimestamp": created, "generation": 1,
                         "annotations": {ro.REVISION: str(revision)}},
            "spec": {"replicas": replicas},
            "status": {"availableReplicas": available, "observedGeneration": 1,
                       "replicas": replicas if status_replicas is None else status_replicas}}


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 10, True, 0), ("100%", 7, False, 7),
    (None, 5, True, 0), ("4", 5, True, 4),
])
def test_scaled_value(value: Any, total: int, up: bool, expected: int) -> None:
    assert ro.scaled_value(value, total, round_up=up) == expected


@pytest.mark.parametrize(("deployment", "expected"), [
    (dep(10), (3, 2)), (dep(4, 0, 0), (0, 1)), (dep(1), (1, 0)), (dep(3, strategy="Recreate"), (0, 3)),
])
def test_fenceposts(deployment: dict[str, Any], expected: tuple[int, int]) -> None:
    assert ro.fenceposts(deployment) == expected


@pytest.mark.parametrize(("deployment", "old", "new", "expected"), [
    (dep(10, 3), [rs("a", 10)], rs("b", 0), 3),       # surge of 3 above 10
    (dep(10, 3), [rs("a", 10)], rs("b", 3), 3),       # at the surge limit: no more
    (dep(10, 3), [rs("a", 5)], rs("b", 3), 8),        # old scaled down: room for 5 more
    (dep(10, 3), [rs("a", 0)], rs("b", 9), 10),       # never above replicas
    (dep(4, strategy="Recreate"), [rs("a", 0)], rs("b", 0), 4),
])
def test_new_rs_replicas(deployment: dict[str, Any], old: list[dict[str, Any]], new: dict[str, Any],
                         expected: int) -> None:
    assert ro.new_rs_replicas(deployment, [*old, new], new) == expected


def test_old_replica_sets_scale_down_within_availability() -> None:
    d = dep(10, 3, 2)  # minAvailable 8
    old, new = rs("a", 10, available=10), rs("b", 3, available=0)
    assert ro.old_scale_down_budget([old, new], new, d) == 13 - 8 - 3
    assert ro.scale_down_old([old, new], [old], d) == {"a": 8}
    # Unhealthy replicas go first, and only as many as the budget allows.
    unhealthy = [rs("x", 4, available=1, created="2024-01-01T00:00:00Z"),
                 rs("y", 4, available=4, created="2024-01-02T00:00:00Z")]
    assert ro.cleanup_unhealthy(unhealthy, 2) == {"x": 2}
    assert ro.cleanup_unhealthy(unhealthy, 10) == {"x": 1}


def test_proportional_scaling_spreads_the_difference() -> None:
    d = dep(20, 0, 1)
    active = [rs("a", 6, created="2024-01-01T00:00:00Z"), rs("b", 4, created="2024-01-02T00:00:00Z")]
    assert ro.proportional_scale(d, active) == {"a": 12, "b": 8}
    assert ro.proportional_scale(dep(5, 0, 1), active) == {"a": 3, "b": 2}
    assert ro.proportional_scale(dep(10, 0, 1), active) == {}


def test_template_hash_is_deterministic_and_ignores_its_own_label() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    labeled = {"metadata": {"labels": {"app": "web", ro.POD_TEMPLATE_HASH: "zzz"}},
               "spec": {"containers": [{"name": "c", "image": "i"}]}}
    h = ro.template_hash(template)
    assert h == ro.template_hash(labeled) and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert ro.template_hash(template, 1) != h
    assert ro.equal_ignore_hash(template, labeled)
    assert labeled["metadata"]["labels"][ro.POD_TEMPLATE_HASH] == "zzz"  # not mutated
    # What kubectl rollout undo writes back (creationTimestamp: null) is the same template.
    undone = {"metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
              "spec": {"containers": [{"name": "c", "image": "i", "resources": {}}]}}
    assert ro.equal_ignore_hash(template, undone) and ro.template_hash(undone) == h


def test_history_keeps_the_limit_of_idle_old_replica_sets() -> None:
    old = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 1, revision=3), rs("r4", 0, revision=4)]
    assert [r["metadata"]["name"] for r in ro.history_to_delete(old, 2)] == ["r1", "r2"]
    assert ro.history_to_delete(old, 4) == []
    assert [r["metadata"]["name"] for r in ro.history_to_delete(old, 0)] == ["r1", "r2", "r4"]


def test_conditions_keep_their_transition_time_while_the_status_holds() -> None:
    status: dict[str, Any] = {}
    ro.set_condition(status, "Available", "False", "MinimumReplicasUnavailable", "no", "t1")
    ro.set_condition(status, "Available", "True", "MinimumReplicasAvailable", "yes", "t2")
    ro.set_condition(status, "Available", "True", "MinimumReplicasAvailable", "yes", "t3")
    (cond,) = status["conditions"]
    assert (cond["status"], cond["lastTransitionTime"], cond["lastUpdateTime"]) == ("True", "t2", "t2")


def test_new_replica_set_annotations() -> None:
    d = dep(4, 1, 0)
    d["metadata"]["annotations"] = {ro.CHANGE_CAUSE: "kubectl set image", ro.LAST_APPLIED: "{}", ro.REVISION: "7"}
    result = ro.replica_set_annotations(d, {ro.REVISION: "2"}, 3)
    assert result == {ro.REVISION: "3", ro.CHANGE_CAUSE: "kubectl set image", ro.DESIRED_REPLICAS: "4",
                      ro.MAX_REPLICAS: "5"}
    assert ro.replica_set_annotations(d, {ro.REVISION: "9"}, 3)[ro.REVISION] == "9"
