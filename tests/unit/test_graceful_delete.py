"""Graceful pod deletion in ``ClusterState.apply`` and the proposer's grace (upstream's BeforeDelete and
pod CheckGracefulDelete): a bound, running pod is marked terminating with its grace; unbound or finished
pods, and grace 0, go at once; a later delete only shortens; the kubelet's status writes during
termination keep it; finalizers still hold it after the kubelet's final delete.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from edgek8s.model import errors
from edgek8s.model.resources import by_id
from edgek8s.registry.deletion import deletion_grace, parse_grace_period
from edgek8s.store.state import EventType
from tests.unit.test_state import (
    CONFIGMAPS,
    NAMESPACES,
    NOW,
    PODS,
    Replica,
    create_cmd,
    delete_cmd,
    make_obj,
    namespace,
    update_cmd,
)

DEADLINE = "2024-05-01T12:00:30Z"


@pytest.fixture
def r() -> Replica:
    return replica()


def replica() -> Replica:
    made = Replica()
    made.ok(create_cmd(NAMESPACES, namespace("default")))
    return made


def bound_pod(name: str = "web", *, phase: str = "Running", **kw: Any) -> dict[str, Any]:
    return make_obj(PODS, name, spec={"nodeName": "pi-1", "containers": [{"name": "c", "image": "i"}]},
                    status={"phase": phase}, **kw)


def graceful_cmd(name: str, grace: int, deadline: str = DEADLINE, **kw: Any) -> dict[str, Any]:
    return {**delete_cmd(PODS, "default", name, **kw), "grace": grace, "deadline": deadline}


def test_a_bound_running_pod_is_marked_terminating_with_its_grace(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod()))
    result = r.ok(graceful_cmd("web", 30))
    stored = r.get(PODS, "default", "web")
    assert stored is not None
    assert stored["metadata"]["deletionTimestamp"] == DEADLINE
    assert stored["metadata"]["deletionGracePeriodSeconds"] == 30
    assert result.obj is not None and result.obj.deleting
    assert [e.type for e in r.events] == [EventType.MODIFIED]


def test_status_writes_during_termination_keep_the_pod(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod()))
    r.ok(graceful_cmd("web", 30))
    r.ok(update_cmd(PODS, bound_pod(phase="Failed"), sub="status"))
    r.ok(update_cmd(PODS, bound_pod()))
    stored = r.get(PODS, "default", "web")
    assert stored is not None and stored["metadata"]["deletionGracePeriodSeconds"] == 30


@pytest.mark.parametrize("pod", [
    make_obj(PODS, "web", spec={"containers": [{"name": "c", "image": "i"}]}, status={"phase": "Pending"}),
    bound_pod(phase="Succeeded"),
    bound_pod(phase="Failed"),
])
def test_unbound_or_finished_pods_go_at_once(r: Replica, pod: dict[str, Any]) -> None:
    r.ok(create_cmd(PODS, pod))
    r.ok(graceful_cmd("web", 30))
    assert r.get(PODS, "default", "web") is None
    assert [e.type for e in r.events] == [EventType.DELETED]


def test_grace_zero_deletes_a_running_pod_at_once(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod()))
    r.ok(graceful_cmd("web", 0, NOW))
    assert r.get(PODS, "default", "web") is None


def test_a_later_delete_only_shortens_the_grace(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod()))
    r.ok(graceful_cmd("web", 30))
    # Longer or equal: nothing changes (no event, no new resourceVersion).
    assert r.ok(graceful_cmd("web", 60, "2024-05-01T12:01:05Z")).changed is False
    assert r.ok(graceful_cmd("web", 30, "2024-05-01T12:00:35Z")).changed is False
    assert r.events == []
    # Shorter: the deadline moves to the first request's time + the new grace.
    r.ok(graceful_cmd("web", 10, "2024-05-01T12:00:15Z"))
    stored = r.get(PODS, "default", "web")
    assert stored is not None
    assert stored["metadata"]["deletionGracePeriodSeconds"] == 10
    assert stored["metadata"]["deletionTimestamp"] == "2024-05-01T12:00:10Z"
    # The kubelet's final delete (grace 0) removes it.
    r.ok(graceful_cmd("web", 0, NOW, expect_uid="uid-web"))
    assert r.get(PODS, "default", "web") is None
    assert [e.type for e in r.events] == [EventType.DELETED]


def test_the_final_delete_of_another_incarnation_is_a_conflict(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod()))
    r.ok(graceful_cmd("web", 30))
    r.fail(graceful_cmd("web", 0, NOW, expect_uid="uid-other"))
    assert r.get(PODS, "default", "web") is not None


def test_finalizers_hold_a_pod_after_its_kubelet_is_done(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod(finalizers=["example.com/hold"])))
    r.ok(graceful_cmd("web", 30))
    r.ok(graceful_cmd("web", 0, NOW))
    held = r.get(PODS, "default", "web")
    assert held is not None and held["metadata"]["deletionGracePeriodSeconds"] == 0
    assert held["metadata"]["deletionTimestamp"] == DEADLINE
    r.ok(update_cmd(PODS, bound_pod(finalizers=[])))
    assert r.get(PODS, "default", "web") is None


def test_dropping_finalizers_of_a_terminating_pod_waits_for_the_kubelet(r: Replica) -> None:
    r.ok(create_cmd(PODS, bound_pod(finalizers=["example.com/hold"])))
    r.ok(graceful_cmd("web", 30))
    r.ok(update_cmd(PODS, bound_pod(finalizers=[])))
    assert r.get(PODS, "default", "web") is not None  # the kubelet is still stopping its containers
    r.ok(graceful_cmd("web", 0, NOW))
    assert r.get(PODS, "default", "web") is None


def test_apply_is_deterministic_across_replicas() -> None:
    replicas = [replica(), replica()]
    for one in replicas:
        one.ok(create_cmd(PODS, bound_pod()))
        one.ok(graceful_cmd("web", 20, "2024-05-01T12:00:20Z"))
        one.ok(graceful_cmd("web", 5, "2024-05-01T12:00:07Z"))
    assert replicas[0].content() == replicas[1].content()


def test_the_proposer_grants_the_request_else_the_pods_own_grace() -> None:
    pods = by_id(PODS)
    now = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
    pod = bound_pod()
    assert deletion_grace(pods, pod, None, now=now) == (30, "2024-05-01T12:00:30Z")
    pod["spec"]["terminationGracePeriodSeconds"] = 7
    assert deletion_grace(pods, pod, None, now=now) == (7, "2024-05-01T12:00:07Z")
    assert deletion_grace(pods, pod, 0, now=now) == (0, "2024-05-01T12:00:00Z")
    assert deletion_grace(pods, pod, -5, now=now) == (1, "2024-05-01T12:00:01Z")  # upstream: negative = 1 s
    assert deletion_grace(by_id(CONFIGMAPS), {}, 5, now=now) is None


@pytest.mark.parametrize("value", ["abc", "1.5", True, [1]])
def test_a_bad_grace_period_is_a_bad_request(value: Any) -> None:
    with pytest.raises(errors.BadRequest):
        parse_grace_period(value)
    assert parse_grace_period("15") == 15 and parse_grace_period(None) is None


def test_absurd_graces_stay_dates() -> None:
    now = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)
    grace, deadline = deletion_grace(by_id(PODS), bound_pod(), 10**18, now=now) or (0, "")
    assert grace == 10 * 365 * 24 * 3600 and deadline.startswith("2034-")


def test_apply_never_raises_on_a_stored_timestamp_out_of_range(r: Replica) -> None:
    pod = bound_pod()
    r.ok(create_cmd(PODS, pod))
    r.ok(graceful_cmd("web", 30, "0001-01-01T00:00:05Z"))  # as if a proposer's clock were absurd
    r.ok(graceful_cmd("web", 1, DEADLINE))  # shortening would go before year 1: the proposer's deadline wins
    stored = r.get(PODS, "default", "web")
    assert stored is not None and stored["metadata"]["deletionTimestamp"] == DEADLINE
