"""Batched pods/binding in the state machine: each item applies or fails on its own, in one entry."""

from __future__ import annotations

import json
from typing import Any

from edgek8s.model import errors
from edgek8s.store.state import ClusterState, Committed, encode_command
from tests.support.objects import make_pod

PODS = "/pods"


def apply(state: ClusterState, index: int, command: dict[str, Any]) -> Any:
    return state.apply(encode_command(command), index)


def setup() -> ClusterState:
    state = ClusterState()
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "uid": "ns"}}
    assert isinstance(apply(state, 1, {"op": "create", "res": "/namespaces", "ns": "", "name": "default",
                                       "obj": ns}), Committed)
    for i, name in enumerate(("a", "b", "c")):
        pod = make_pod(name, uid=f"uid-{name}")
        assert isinstance(apply(state, 2 + i, {"op": "create", "res": PODS, "ns": "default", "name": name,
                                               "obj": pod}), Committed)
    return state


def node_of(state: ClusterState, name: str) -> str | None:
    stored, _ = state.get(PODS, "default", name)  # type: ignore[arg-type]
    return None if stored is None else json.loads(stored.raw)["spec"].get("nodeName")


def test_each_binding_of_a_batch_stands_alone() -> None:
    state = setup()
    assert isinstance(apply(state, 10, {"op": "bind", "res": PODS, "ns": "default", "name": "b", "node": "n0",
                                        "now": "t"}), Committed)
    result = apply(state, 11, {"op": "bind", "res": PODS, "now": "t", "items": [
        {"ns": "default", "name": "a", "node": "n1", "expect_uid": "uid-a"},
        {"ns": "default", "name": "b", "node": "n2", "expect_uid": "uid-b"},  # already bound: unchanged
        {"ns": "default", "name": "c", "node": "n3", "expect_uid": "other"},  # another incarnation
        {"ns": "default", "name": "gone", "node": "n4"},
    ]})
    assert isinstance(result, Committed) and result.index == 11
    assert [node_of(state, n) for n in ("a", "b", "c")] == ["n1", "n0", None]
    a, _ = state.get(PODS, "default", "a")  # type: ignore[arg-type]
    assert a is not None and a.rv == 11
    conditions = json.loads(a.raw)["status"]["conditions"]
    assert {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": "t"} in conditions


def test_a_malformed_batch_changes_nothing() -> None:
    state = setup()
    result = apply(state, 10, {"op": "bind", "res": PODS, "now": "t", "items": [
        {"ns": "default", "name": "a", "node": "n1"}, {"ns": "default", "name": "b"}]})
    assert isinstance(result, errors.BadRequest)
    assert node_of(state, "a") is None


def test_a_stale_fence_rejects_the_whole_batch() -> None:
    state = setup()
    assert isinstance(apply(state, 10, {"op": "claim-leadership", "epoch": 5, "holder": "m1"}), Committed)
    result = apply(state, 11, {"op": "bind", "res": PODS, "now": "t", "fence": 4, "items": [
        {"ns": "default", "name": "a", "node": "n1"}]})
    assert isinstance(result, errors.Fenced)
    assert node_of(state, "a") is None
