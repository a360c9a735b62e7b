"""Fencing, pod binding and delete propagation in ClusterState.apply (pure apply tables)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from edgek8s.model import errors
from tests.unit.test_state import (
    CONFIGMAPS,
    DEPLOYMENTS,
    NAMESPACES,
    PODS,
    Replica,
    create_cmd,
    delete_cmd,
    make_obj,
    namespace,
    update_cmd,
)


@pytest.fixture
def r() -> Replica:
    replica = Replica()
    replica.ok(create_cmd(NAMESPACES, namespace("default")))
    return replica


def claim(epoch: int, holder: str) -> dict[str, Any]:
    return {"op": "claim-leadership", "epoch": epoch, "holder": holder}


def fenced(command: dict[str, Any], epoch: int) -> dict[str, Any]:
    return {**command, "fence": epoch}


@pytest.mark.parametrize(
    ("claims", "expected_epoch", "expected_holder", "last_fails"),
    [
        ([(3, "m0")], 3, "m0", False),
        ([(3, "m0"), (5, "m1")], 5, "m1", False),
        ([(5, "m1"), (3, "m0")], 5, "m1", True),  # an older term's claim arrives late: ignored
        ([(5, "m1"), (5, "m0")], 5, "m1", True),  # the same epoch claimed by another: refused
        ([(5, "m1"), (5, "m1")], 5, "m1", False),  # repeating one's own claim is a no-op
    ],
)
def test_claims_only_move_the_epoch_forward(
    r: Replica, claims: list[tuple[int, str]], expected_epoch: int, expected_holder: str, last_fails: bool
) -> None:
    results = [r.run(claim(epoch, holder)) for epoch, holder in claims]
    assert isinstance(results[-1], errors.Fenced) == last_fails
    assert (r.state.leader_epoch, r.state.leader_holder) == (expected_epoch, expected_holder)
    if last_fails:
        assert "fenced" in results[-1].message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "command",
    [
        create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "new")),
        update_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "cm", data={"a": "2"})),
        delete_cmd(CONFIGMAPS, "default", "cm"),
        {"op": "bind", "res": "/pods", "ns": "default", "name": "p", "node": "n1", "now": "2024-05-01T12:00:00Z"},
    ],
    ids=["create", "update", "delete", "bind"],
)
def test_a_stale_fence_is_rejected_and_changes_nothing(r: Replica, command: dict[str, Any]) -> None:
    r.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "cm", data={"a": "1"})))
    r.ok(create_cmd(PODS, make_obj(PODS, "p", spec={"containers": [{"name": "c", "image": "i"}]})))
    r.ok(claim(7, "m1"))
    before = r.content()
    failure = r.fail(fenced(command, 6))
    assert isinstance(failure, errors.Fenced) and isinstance(failure, errors.Conflict)
    assert failure.message.startswith("fenced: stale leader epoch 6")
    assert r.events == []
    assert r.content() == before
    # The current epoch (and an unfenced write) go through.
    assert r.ok(fenced(command, 7)).changed


def test_a_fenced_rejection_is_remembered_for_its_request_id(r: Replica) -> None:
    r.ok(claim(2, "m0"))
    command = fenced(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "cm"), rid="x1"), 1)
    assert isinstance(r.fail(command), errors.Fenced)
    assert isinstance(r.fail(command), errors.Fenced)  # a retry answers the same, still nothing applied
    assert r.get(CONFIGMAPS, "default", "cm") is None


@pytest.mark.parametrize("through_pickle", [False, True])
def test_snapshots_carry_the_epoch(r: Replica, through_pickle: bool) -> None:
    r.ok(claim(9, "m2"))
    snapshot = r.state.snapshot()
    if through_pickle:
        snapshot = pickle.loads(pickle.dumps(snapshot))
    target = Replica()
    target.state.restore(snapshot)
    assert (target.state.leader_epoch, target.state.leader_holder) == (9, "m2")
    assert target.state.leader_claim_index == r.index
    target.index = r.index
    assert isinstance(target.fail(fenced(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "x")), 8)), errors.Fenced)


def test_a_snapshot_from_before_fencing_restores_with_epoch_zero(r: Replica) -> None:
    snapshot = r.state.snapshot()
    del snapshot["leader"]
    target = Replica()
    target.state.restore(snapshot)
    assert (target.state.leader_epoch, target.state.leader_holder) == (0, "")


def bind(name: str, node: str, **extra: Any) -> dict[str, Any]:
    return {"op": "bind", "res": "/pods", "ns": "default", "name": name, "node": node,
            "now": "2024-05-01T12:00:00Z", **extra}


def test_a_pod_is_bound_once(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "p", spec={"containers": [{"name": "c", "image": "i"}]},
                                   status={"phase": "Pending"})))
    bound = r.ok(bind("p", "n1"))
    assert bound.obj is not None
    obj = bound.obj.decode()
    assert obj["spec"]["nodeName"] == "n1"
    assert obj["status"]["conditions"] == [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                            "lastTransitionTime": "2024-05-01T12:00:00Z"}]
    assert obj["metadata"]["resourceVersion"] == str(r.index)
    assert bound.obj.fields["spec.nodeName"] == "n1"
    again = r.fail(bind("p", "n2"))
    assert isinstance(again, errors.Conflict) and 'already assigned to node "n1"' in again.message
    assert r.get(PODS, "default", "p")["spec"]["nodeName"] == "n1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "error"),
    [({"expect_uid": "someone-else"}, errors.Conflict), ({"name": "ghost"}, errors.NotFound)],
)
def test_bind_preconditions(r: Replica, extra: dict[str, Any], error: type[errors.StatusError]) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "p", spec={"containers": [{"name": "c", "image": "i"}]})))
    before = r.content()
    assert isinstance(r.fail(bind("p", "n1") | extra), error)
    assert r.content() == before


@pytest.mark.parametrize(
    ("policy", "finalizer"), [("Foreground", "foregroundDeletion"), ("Orphan", "orphan")]
)
def test_foreground_and_orphan_deletes_leave_the_owner_to_the_garbage_collector(
    r: Replica, policy: str, finalizer: str
) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", spec={"replicas": 1})))
    deleting = r.ok(delete_cmd(DEPLOYMENTS, "default", "web") | {"propagation": policy})
    assert deleting.obj is not None and deleting.obj.deleting
    meta = deleting.obj.decode()["metadata"]
    assert meta["finalizers"] == [finalizer] and meta["deletionTimestamp"] == "2024-05-01T12:00:00Z"
    # Removing the finalizer (what the garbage collector does once done) removes the object.
    obj = deleting.obj.decode()
    obj["metadata"]["finalizers"] = []
    r.ok(update_cmd(DEPLOYMENTS, obj))
    assert r.get(DEPLOYMENTS, "default", "web") is None


def test_background_delete_removes_at_once(r: Replica) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", spec={"replicas": 1})))
    r.ok(delete_cmd(DEPLOYMENTS, "default", "web") | {"propagation": "Background"})
    assert r.get(DEPLOYMENTS, "default", "web") is None
