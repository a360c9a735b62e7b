"""PodDisruptionBudget arithmetic: the disruption controller's status (pure) and the eviction's take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from edgek8s.controllers.disruption import DISRUPTION_TIMEOUT, budget_status
from edgek8s.model import errors
from edgek8s.registry.disruption import covering_budgets, scaled, take_disruption, validate_budget
from tests.support.builders import NOW, pod, ts


def budget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def web_pod(name: str, *, ready: bool = True, deleting: bool = False) -> dict[str, Any]:
    made = pod(name, node_name="n1", ready=ready, labels={"app": "web"})
    if deleting:
        made["metadata"]["deletionTimestamp"] = ts(-30)
    return made


def of_deployment(replicas: int) -> Any:
    def scale_of(_pod: Mapping[str, Any]) -> tuple[str, int] | None:
        return "Deployment/web", replicas
    return scale_of


def no_controller(_pod: Mapping[str, Any]) -> None:
    return None


def test_min_available_counts_the_covered_pods() -> None:
    pods = [web_pod("a"), web_pod("b"), web_pod("c", ready=False), web_pod("d", deleting=True)]
    status, requeue = budget_status(budget(minAvailable=1), pods, no_controller, NOW)
    assert (status["expectedPods"], status["desiredHealthy"], status["currentHealthy"],
            status["disruptionsAllowed"], status["observedGeneration"]) == (4, 1, 2, 1, 2)
    assert status["conditions"][0]["reason"] == "SufficientPods" and requeue is None


@pytest.mark.parametrize(("spec", "desired", "allowed"), [
    ({"maxUnavailable": 1}, 3, 1),
    ({"maxUnavailable": "50%"}, 2, 2),  # 50 % of 4 unavailable -> 2 must stay
    ({"minAvailable": "60%"}, 3, 1),  # rounded up
])
def test_percentages_and_max_unavailable_use_the_controllers_scale(spec: dict[str, Any], desired: int,
                                                                   allowed: int) -> None:
    pods = [web_pod(n) for n in "abcd"]
    status, _ = budget_status(budget(**spec), pods, of_deployment(4), NOW)
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (4, desired, allowed)


def test_pods_without_a_scalable_controller_fail_the_sync() -> None:
    status, _ = budget_status(budget(maxUnavailable=1), [web_pod("a"), web_pod("b")], no_controller, NOW)
    assert status["disruptionsAllowed"] == 0
    assert (status["conditions"][0]["status"], status["conditions"][0]["reason"]) == ("False", "SyncFailed")


def test_just_evicted_pods_are_not_healthy_until_their_deletion_shows_or_times_out() -> None:
    old = budget(minAvailable=1)
    old["status"] = {"disruptedPods": {"a": ts(10), "b": ts(DISRUPTION_TIMEOUT + 1), "c": ts(5)}}
    pods = [web_pod("a"), web_pod("b"), web_pod("c", deleting=True), web_pod("d")]
    status, requeue = budget_status(old, pods, no_controller, NOW)
    assert status["disruptedPods"] == {"a": ts(10)}  # b timed out, c's deletion shows
    assert status["currentHealthy"] == 2  # b and d
    assert requeue == pytest.approx(DISRUPTION_TIMEOUT - 10)


def test_take_disruption_decrements_or_refuses_with_429() -> None:
    current = budget(minAvailable=1)
    current["status"] = {"observedGeneration": 2, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1}
    taken = take_disruption(current, "a", "2024-05-01T12:00:00Z")
    assert taken["status"]["disruptionsAllowed"] == 0 and taken["status"]["disruptedPods"] == {
        "a": "2024-05-01T12:00:00Z"}
    assert taken["status"]["conditions"][0]["status"] == "False"
    with pytest.raises(errors.TooManyRequests) as refused:
        take_disruption(taken, "b", "2024-05-01T12:00:01Z")
    assert refused.value.causes[0].message == "The disruption budget web needs 1 healthy pods and has 2 currently"
    stale = {**current, "metadata": {**current["metadata"], "generation": 3}}
    with pytest.raises(errors.TooManyRequests):
        take_disruption(stale, "a", "2024-05-01T12:00:00Z")  # its status predates the spec


def test_validation_selection_and_scaling() -> None:
    assert validate_budget(budget(minAvailable=1, maxUnavailable=1))
    assert validate_budget(budget(minAvailable="x%"))
    assert not validate_budget(budget(maxUnavailable="25%"))
    empty = {**budget(), "spec": {"selector": {}}}
    assert covering_budgets([budget(), empty], web_pod("a")) == [budget()]  # an empty selector covers nothing
    assert scaled("25%", 10, round_up=True) == 3 and scaled("25%", 10, round_up=False) == 2
    assert scaled(4, 10, round_up=True) == 4
