"""ClusterState.apply: Kubernetes object semantics as a pure, deterministic function of the Raft log.

Every test drives a real ``ClusterState`` with encoded commands (as ``RaftStore`` builds them) at
increasing Raft indexes, records what ``on_applied``/``on_reset`` receive, and checks results, stored
objects and watch events against what kube-apiserver does.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from edgek8s.model import errors
from edgek8s.model.resources import ResourceId, resource_id
from edgek8s.store.state import (
    ApplyResult,
    ClusterState,
    Committed,
    EventType,
    StoredObject,
    WatchEvent,
    encode_command,
)

NAMESPACES = resource_id("", "namespaces")
NODES = resource_id("", "nodes")
PODS = resource_id("", "pods")
CONFIGMAPS = resource_id("", "configmaps")
LEASES = resource_id("coordination.k8s.io", "leases")
DEPLOYMENTS = resource_id("apps", "deployments")
REPLICASETS = resource_id("apps", "replicasets")
DAEMONSETS = resource_id("apps", "daemonsets")

NOW = "2024-05-01T12:00:00Z"
CREATED = "2024-05-01T11:00:00Z"
CONFLICT_DETAIL = "the object has been modified; please apply your changes to the latest version and try again"

_API = {
    NAMESPACES: ("v1", "Namespace"),
    NODES: ("v1", "Node"),
    PODS: ("v1", "Pod"),
    CONFIGMAPS: ("v1", "ConfigMap"),
    LEASES: ("coordination.k8s.io/v1", "Lease"),
    DEPLOYMENTS: ("apps/v1", "Deployment"),
    REPLICASETS: ("apps/v1", "ReplicaSet"),
    DAEMONSETS: ("apps/v1", "DaemonSet"),
}
_CLUSTER_SCOPED = {NAMESPACES, NODES}


def make_obj(
    res: ResourceId,
    name: str,
    ns: str = "default",
    *,
    uid: str | None = None,
    labels: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """An object as the proposer sends it: uid and creationTimestamp filled in, no resourceVersion."""
    api_version, kind = _API[res]
    meta: dict[str, Any] = {"name": name, "uid": uid or f"uid-{name}", "creationTimestamp": CREATED}
    if res not in _CLUSTER_SCOPED:
        meta["namespace"] = ns
    if labels is not None:
        meta["labels"] = labels
    if finalizers is not None:
        meta["finalizers"] = finalizers
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    obj.update(top)
    return obj


def namespace(name: str) -> dict[str, Any]:
    return make_obj(NAMESPACES, name, spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"})


def create_cmd(res: ResourceId, obj: dict[str, Any], *, rid: str | None = None) -> dict[str, Any]:
    meta = obj["metadata"]
    command: dict[str, Any] = {
        "op": "create",
        "res": res,
        "ns": meta.get("namespace", ""),
        "name": meta["name"],
        "obj": obj,
    }
    if rid is not None:
        command["rid"] = rid
    return command


def update_cmd(
    res: ResourceId,
    obj: dict[str, Any],
    *,
    expect_rv: int | None = None,
    expect_uid: str | None = None,
    sub: str | None = None,
    rid: str | None = None,
) -> dict[str, Any]:
    meta = obj["metadata"]
    command: dict[str, Any] = {
        "op": "update",
        "res": res,
        "ns": meta.get("namespace", ""),
        "name": meta["name"],
        "obj": obj,
        "expect_rv": expect_rv,
        "sub": sub,
    }
    if expect_uid is not None:
        command["expect_uid"] = expect_uid
    if rid is not None:
        command["rid"] = rid
    return command


def delete_cmd(
    res: ResourceId,
    ns: str,
    name: str,
    *,
    expect_uid: str | None = None,
    expect_rv: int | None = None,
    now: str = NOW,
    rid: str | None = None,
) -> dict[str, Any]:
    command: dict[str, Any] = {
        "op": "delete",
        "res": res,
        "ns": ns,
        "name": name,
        "expect_uid": expect_uid,
        "expect_rv": expect_rv,
        "now": now,
    }
    if rid is not None:
        command["rid"] = rid
    return command


class Replica:
    """A ClusterState fed at consecutive Raft indexes, recording every on_applied/on_reset call."""

    def __init__(self, *, dedup_window: int = 4096) -> None:
        self.applied: list[tuple[list[WatchEvent], int]] = []
        self.resets: list[int] = []
        self.state = ClusterState(dedup_window=dedup_window, on_applied=self._record, on_reset=self.resets.append)
        self.index = 0

    def _record(self, events: list[WatchEvent], index: int) -> None:
        self.applied.append((list(events), index))

    def raw(self, payload: bytes) -> ApplyResult:
        self.index += 1
        return self.state.apply(payload, self.index)

    def run(self, command: dict[str, Any]) -> ApplyResult:
        return self.raw(encode_command(command))

    def ok(self, command: dict[str, Any]) -> Committed:
        result = self.run(command)
        assert isinstance(result, Committed), result
        return result

    def fail(self, command: dict[str, Any]) -> errors.StatusError:
        result = self.run(command)
        assert isinstance(result, errors.StatusError), result
        return result

    @property
    def events(self) -> list[WatchEvent]:
        """Events of the last apply."""
        return self.applied[-1][0]

    def get(self, res: ResourceId, ns: str, name: str) -> dict[str, Any] | None:
        stored, _ = self.state.get(res, ns, name)
        return None if stored is None else stored.decode()

    def content(self) -> dict[str, Any]:
        """Everything replicated except the index: objects, dedup table, masters."""
        snap = self.state.snapshot()
        del snap["rv"]
        return copy.deepcopy(snap)


@pytest.fixture
def r() -> Replica:
    replica = Replica()
    replica.ok(create_cmd(NAMESPACES, namespace("default")))
    return replica


def rv_of(obj: dict[str, Any] | None) -> int:
    assert obj is not None
    return int(obj["metadata"]["resourceVersion"])


# --- create --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("res", "ns", "generation"),
    [
        (PODS, "default", None),
        (CONFIGMAPS, "default", None),
        (LEASES, "default", None),
        (NODES, "", None),
        (NAMESPACES, "", None),
        (DEPLOYMENTS, "default", 1),
        (REPLICASETS, "default", 1),
        (DAEMONSETS, "default", 1),
    ],
)
def test_create_stamps_resource_version_with_the_index_and_generation_for_tracked_kinds(
    r: Replica, res: ResourceId, ns: str, generation: int | None
) -> None:
    r.index = 41
    result = r.ok(create_cmd(res, make_obj(res, "obj1", ns, spec={"replicas": 1})))

    assert result.index == 42 and result.changed
    assert result.obj is not None and result.obj.rv == 42 and result.obj.uid == "uid-obj1"
    stored = r.get(res, ns, "obj1")
    assert stored is not None
    assert stored["metadata"]["resourceVersion"] == "42"
    assert stored["metadata"].get("generation") == generation
    assert stored["metadata"]["creationTimestamp"] == CREATED
    assert [(e.type, e.rid, e.namespace, e.name, e.rv, e.prev) for e in r.events] == [
        (EventType.ADDED, res, ns, "obj1", 42, None)
    ]
    assert r.state.rv == 42


def test_create_overrides_a_client_supplied_generation_on_tracked_kinds(r: Replica) -> None:
    obj = make_obj(DEPLOYMENTS, "web", spec={"replicas": 1})
    obj["metadata"]["generation"] = 7
    r.ok(create_cmd(DEPLOYMENTS, obj))
    assert r.get(DEPLOYMENTS, "default", "web")["metadata"]["generation"] == 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("res", "message"),
    [
        (PODS, 'pods "web" already exists'),
        (DEPLOYMENTS, 'deployments.apps "web" already exists'),
        (NAMESPACES, 'namespaces "web" already exists'),
    ],
)
def test_create_of_an_existing_name_with_another_uid_is_already_exists(
    r: Replica, res: ResourceId, message: str
) -> None:
    r.ok(create_cmd(res, make_obj(res, "web", uid="first")))
    before = r.content()

    error = r.fail(create_cmd(res, make_obj(res, "web", uid="second")))

    assert isinstance(error, errors.AlreadyExists)
    assert (error.code, error.reason, error.message) == (409, "AlreadyExists", message)
    assert error.name == "web"
    assert r.content() == before
    assert r.events == []


def test_create_with_the_same_uid_twice_is_idempotent_without_a_second_event(r: Replica) -> None:
    first = r.ok(create_cmd(PODS, make_obj(PODS, "web", uid="u1")))
    before = r.content()

    again = r.ok(create_cmd(PODS, make_obj(PODS, "web", uid="u1", labels={"changed": "yes"})))

    assert again.changed is False
    assert again.obj is first.obj  # the stored object, untouched
    assert again.index == r.index
    assert r.content() == before
    assert r.events == []
    assert r.state.rv == r.index


@pytest.mark.parametrize("res", [PODS, CONFIGMAPS, DEPLOYMENTS])
def test_create_in_a_missing_namespace_is_not_found_for_the_namespace(r: Replica, res: ResourceId) -> None:
    before = r.content()
    error = r.fail(create_cmd(res, make_obj(res, "web", "ghost")))

    assert isinstance(error, errors.NotFound)
    assert error.message == 'namespaces "ghost" not found'
    assert (error.kind, error.group, error.name) == ("namespaces", "", "ghost")
    assert r.content() == before


@pytest.mark.parametrize(
    ("res", "qualified"),
    [
        (PODS, "pods"),
        (CONFIGMAPS, "configmaps"),
        (DEPLOYMENTS, "deployments.apps"),
        (LEASES, "leases.coordination.k8s.io"),
    ],
)
def test_create_in_a_terminating_namespace_is_forbidden(r: Replica, res: ResourceId, qualified: str) -> None:
    r.ok(create_cmd(NAMESPACES, namespace("doomed")))
    r.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "keep", "doomed")))
    r.ok(delete_cmd(NAMESPACES, "", "doomed"))  # has content: Terminating
    before = r.content()

    error = r.fail(create_cmd(res, make_obj(res, "web", "doomed")))

    assert isinstance(error, errors.Forbidden)
    assert error.code == 403
    assert error.message == (
        f'{qualified} "web" is forbidden: unable to create new content in namespace doomed '
        "because it is being terminated"
    )
    assert r.content() == before
    assert r.events == []


def test_cluster_scoped_objects_need_no_namespace() -> None:
    r = Replica()  # no namespaces at all
    r.ok(create_cmd(NODES, make_obj(NODES, "pi-1")))
    assert r.get(NODES, "", "pi-1") is not None


# --- update --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("res", "qualified"), [(PODS, "pods"), (DEPLOYMENTS, "deployments.apps")])
def test_update_with_a_stale_resource_version_is_a_conflict(r: Replica, res: ResourceId, qualified: str) -> None:
    created = r.ok(create_cmd(res, make_obj(res, "web", labels={"v": "1"})))
    assert created.obj is not None
    r.ok(update_cmd(res, make_obj(res, "web", labels={"v": "2"})))
    before = r.content()

    error = r.fail(update_cmd(res, make_obj(res, "web", labels={"v": "3"}), expect_rv=created.obj.rv))

    assert isinstance(error, errors.Conflict)
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.message == f'Operation cannot be fulfilled on {qualified} "web": {CONFLICT_DETAIL}'
    assert r.content() == before
    assert r.events == []


def test_update_with_the_current_resource_version_applies(r: Replica) -> None:
    created = r.ok(create_cmd(PODS, make_obj(PODS, "web", labels={"v": "1"})))
    assert created.obj is not None
    result = r.ok(update_cmd(PODS, make_obj(PODS, "web", labels={"v": "2"}), expect_rv=created.obj.rv))
    assert result.obj is not None and result.obj.labels == {"v": "2"} and result.obj.rv == r.index


def test_update_without_a_resource_version_is_unconditional(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", labels={"v": "1"})))
    for version in ("2", "3", "4"):
        result = r.ok(update_cmd(PODS, make_obj(PODS, "web", labels={"v": version}), expect_rv=None))
        assert result.changed
    assert r.get(PODS, "default", "web")["metadata"]["labels"] == {"v": "4"}  # type: ignore[index]


def test_update_with_a_wrong_uid_precondition_is_a_conflict(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", uid="real")))
    error = r.fail(update_cmd(PODS, make_obj(PODS, "web", labels={"a": "b"}), expect_uid="other"))
    assert isinstance(error, errors.Conflict)
    assert error.message == (
        'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: other, '
        "UID in object meta: real"
    )


def test_update_of_a_missing_object_is_not_found(r: Replica) -> None:
    error = r.fail(update_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "ghost")))
    assert isinstance(error, errors.NotFound)
    assert error.message == 'deployments.apps "ghost" not found'


@pytest.mark.parametrize(
    "incoming_meta",
    [
        {"uid": "forged", "creationTimestamp": "1999-01-01T00:00:00Z"},
        {"uid": None, "creationTimestamp": None},  # the client dropped them
        {"namespace": "elsewhere", "generation": 99, "deletionTimestamp": NOW},
    ],
)
def test_update_keeps_server_owned_metadata_from_the_stored_object(r: Replica, incoming_meta: dict[str, Any]) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", uid="u-web", spec={"replicas": 1})))
    incoming = make_obj(DEPLOYMENTS, "web", labels={"new": "label"}, spec={"replicas": 1})
    command = update_cmd(DEPLOYMENTS, incoming)  # addressed to default/web whatever the body says
    for key, value in incoming_meta.items():
        if value is None:
            incoming["metadata"].pop(key, None)
        else:
            incoming["metadata"][key] = value

    r.ok(command)

    meta = r.get(DEPLOYMENTS, "default", "web")["metadata"]  # type: ignore[index]
    assert meta["uid"] == "u-web"
    assert meta["creationTimestamp"] == CREATED
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert "deletionTimestamp" not in meta
    assert meta["labels"] == {"new": "label"}
    assert meta["resourceVersion"] == str(r.index)


@pytest.mark.parametrize(
    ("res", "incoming_status", "expected_status"),
    [
        # Resources with a status subresource: the main resource ignores status.
        (PODS, {"phase": "Succeeded"}, {"phase": "Running"}),
        (PODS, None, {"phase": "Running"}),
        (DEPLOYMENTS, {"replicas": 9}, {"phase": "Running"}),
        # Resources without one: the body is taken whole.
        (LEASES, {"phase": "Succeeded"}, {"phase": "Succeeded"}),
        (LEASES, None, None),
    ],
)
def test_main_resource_update_preserves_status_only_for_resources_with_a_status_subresource(
    r: Replica, res: ResourceId, incoming_status: dict[str, Any] | None, expected_status: dict[str, Any] | None
) -> None:
    r.ok(create_cmd(res, make_obj(res, "web", spec={"x": 1}, status={"phase": "Running"})))

    r.ok(update_cmd(res, make_obj(res, "web", spec={"x": 2}, status=incoming_status)))

    stored = r.get(res, "default", "web")
    assert stored is not None
    assert stored.get("status") == expected_status
    assert stored["spec"] == {"x": 2}


@pytest.mark.parametrize(
    ("incoming_status", "expected_status"),
    [({"phase": "Running", "podIP": "10.0.0.5"}, {"phase": "Running", "podIP": "10.0.0.5"}), (None, None)],
)
def test_status_update_replaces_status_and_ignores_everything_else(
    r: Replica, incoming_status: dict[str, Any] | None, expected_status: dict[str, Any] | None
) -> None:
    r.ok(
        create_cmd(
            PODS, make_obj(PODS, "web", labels={"app": "web"}, spec={"nodeName": ""}, status={"phase": "Pending"})
        )
    )
    incoming = make_obj(PODS, "web", labels={"app": "hijacked"}, spec={"nodeName": "pi-9"}, status=incoming_status)

    result = r.ok(update_cmd(PODS, incoming, sub="status"))

    stored = r.get(PODS, "default", "web")
    assert stored is not None
    assert stored.get("status") == expected_status
    assert stored["spec"] == {"nodeName": ""}
    assert stored["metadata"]["labels"] == {"app": "web"}
    assert rv_of(stored) == r.index
    assert result.obj is not None and result.obj.fields["status.phase"] == (expected_status or {}).get("phase", "")
    assert [e.type for e in r.events] == [EventType.MODIFIED]


@pytest.mark.parametrize(
    ("change", "sub", "generation", "changed"),
    [
        ("spec", None, 2, True),
        ("labels", None, 1, True),
        ("annotations", None, 1, True),
        ("status-via-main", None, 1, False),  # status is ignored on the main resource: a no-op
        ("status", "status", 1, True),
        ("nothing", None, 1, False),
    ],
)
def test_generation_is_bumped_only_when_the_spec_changes(
    r: Replica, change: str, sub: str | None, generation: int, changed: bool
) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", spec={"replicas": 1}, status={"replicas": 0})))
    rv_before = rv_of(r.get(DEPLOYMENTS, "default", "web"))
    incoming = make_obj(DEPLOYMENTS, "web", spec={"replicas": 1}, status={"replicas": 0})
    if change == "spec":
        incoming["spec"]["replicas"] = 3
    elif change == "labels":
        incoming["metadata"]["labels"] = {"tier": "front"}
    elif change == "annotations":
        incoming["metadata"]["annotations"] = {"note": "x"}
    elif change in ("status", "status-via-main"):
        incoming["status"] = {"replicas": 1}

    result = r.ok(update_cmd(DEPLOYMENTS, incoming, sub=sub))

    stored = r.get(DEPLOYMENTS, "default", "web")
    assert stored is not None
    assert stored["metadata"]["generation"] == generation
    assert result.changed is changed
    assert rv_of(stored) == (r.index if changed else rv_before)


def test_generation_keeps_counting_across_spec_updates(r: Replica) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", spec={"replicas": 1})))
    for replicas in (2, 3, 3, 4):
        r.ok(update_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", spec={"replicas": replicas})))
    assert r.get(DEPLOYMENTS, "default", "web")["metadata"]["generation"] == 4  # type: ignore[index]


@pytest.mark.parametrize("sub", [None, "status"])
def test_a_no_op_update_keeps_the_resource_version_and_emits_no_event(r: Replica, sub: str | None) -> None:
    created = r.ok(create_cmd(PODS, make_obj(PODS, "web", labels={"a": "b"}, status={"phase": "Running"})))
    assert created.obj is not None
    before = r.content()
    incoming = make_obj(PODS, "web", labels={"a": "b"}, status={"phase": "Running"})
    incoming["metadata"]["resourceVersion"] = str(created.obj.rv)

    result = r.ok(update_cmd(PODS, incoming, expect_rv=created.obj.rv, sub=sub))

    assert result.changed is False
    assert result.obj is created.obj
    assert r.content() == before
    assert r.events == []
    assert r.state.rv == r.index  # the index still advanced


def test_an_update_that_only_reorders_keys_is_a_no_op(r: Replica) -> None:
    r.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "cm", data={"a": "1", "b": "2"})))
    reordered = make_obj(CONFIGMAPS, "cm", data={"b": "2", "a": "1"})
    reordered = dict(reversed(list(reordered.items())))
    assert r.ok(update_cmd(CONFIGMAPS, reordered)).changed is False
    assert r.events == []


def test_removing_the_last_finalizer_of_a_deleting_object_deletes_it(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", finalizers=["a", "b"])))
    r.ok(delete_cmd(PODS, "default", "web"))
    marked = r.get(PODS, "default", "web")
    assert marked is not None and marked["metadata"]["deletionTimestamp"] == NOW

    # Dropping one finalizer keeps the object (and its deletionTimestamp, even if the client omits it).
    r.ok(update_cmd(PODS, make_obj(PODS, "web", finalizers=["b"])))
    kept = r.get(PODS, "default", "web")
    assert kept is not None and kept["metadata"]["finalizers"] == ["b"]
    assert kept["metadata"]["deletionTimestamp"] == NOW
    assert [e.type for e in r.events] == [EventType.MODIFIED]

    stored_before, _ = r.state.get(PODS, "default", "web")
    result = r.ok(update_cmd(PODS, make_obj(PODS, "web", finalizers=[])))

    assert r.get(PODS, "default", "web") is None
    assert result.obj is not None and result.obj.rv == r.index
    assert [(e.type, e.name, e.rv) for e in r.events] == [(EventType.DELETED, "web", r.index)]
    assert r.events[0].prev is stored_before


def test_removing_finalizers_of_an_object_that_is_not_being_deleted_keeps_it(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", finalizers=["a"])))
    r.ok(update_cmd(PODS, make_obj(PODS, "web", finalizers=[])))
    assert r.get(PODS, "default", "web") is not None
    assert [e.type for e in r.events] == [EventType.MODIFIED]


@pytest.mark.parametrize("sub", [None, "status"])
def test_updating_a_terminating_namespace_keeps_it_until_its_content_is_gone(r: Replica, sub: str | None) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web")))
    r.ok(delete_cmd(NAMESPACES, "", "default"))
    body = r.get(NAMESPACES, "", "default")
    assert body is not None and body["status"]["phase"] == "Terminating"
    if sub is None:
        body["metadata"]["labels"] = {"team": "edge"}
    else:
        body["status"]["conditions"] = [{"type": "NamespaceContentRemaining", "status": "True"}]

    r.ok(update_cmd(NAMESPACES, body, sub=sub))

    assert [e.type for e in r.events] == [EventType.MODIFIED]
    assert r.get(NAMESPACES, "", "default") is not None
    assert r.get(PODS, "default", "web") is not None


# --- delete --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect_uid", "expect_rv", "detail"),
    [
        ("wrong-uid", None, "Precondition failed: UID in precondition: wrong-uid, UID in object meta: uid-web"),
        (None, 1, "Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: 3"),
        ("wrong-uid", 3, "Precondition failed: UID in precondition: wrong-uid, UID in object meta: uid-web"),
    ],
)
def test_delete_preconditions_fail_with_upstream_conflict_messages(
    r: Replica, expect_uid: str | None, expect_rv: int | None, detail: str
) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web")))  # index 2
    r.ok(update_cmd(PODS, make_obj(PODS, "web", labels={"v": "2"})))  # index 3
    before = r.content()

    error = r.fail(delete_cmd(PODS, "default", "web", expect_uid=expect_uid, expect_rv=expect_rv))

    assert isinstance(error, errors.Conflict)
    assert error.code == 409
    assert error.message == f'Operation cannot be fulfilled on pods "web": {detail}'
    assert r.content() == before
    assert r.events == []


@pytest.mark.parametrize(("expect_uid", "expect_rv"), [(None, None), ("uid-web", None), (None, 2), ("uid-web", 2)])
def test_delete_with_satisfied_preconditions_deletes(r: Replica, expect_uid: str | None, expect_rv: int | None) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web")))  # index 2
    r.ok(delete_cmd(PODS, "default", "web", expect_uid=expect_uid, expect_rv=expect_rv))
    assert r.get(PODS, "default", "web") is None


def test_delete_of_a_missing_object_is_not_found(r: Replica) -> None:
    error = r.fail(delete_cmd(PODS, "default", "ghost"))
    assert isinstance(error, errors.NotFound)
    assert error.message == 'pods "ghost" not found'


def test_immediate_delete_emits_deleted_with_the_delete_index(r: Replica) -> None:
    created = r.ok(create_cmd(PODS, make_obj(PODS, "web", labels={"app": "web"})))
    r.index = 99

    result = r.ok(delete_cmd(PODS, "default", "web"))

    assert r.get(PODS, "default", "web") is None
    assert result.obj is not None and result.obj.rv == 100
    assert result.obj.decode()["metadata"]["resourceVersion"] == "100"
    assert result.obj.labels == {"app": "web"}
    [event] = r.events
    assert (event.type, event.name, event.rv) == (EventType.DELETED, "web", 100)
    assert event.prev is created.obj
    assert r.state.list(PODS, "default") == ([], 100)


@pytest.mark.parametrize("res", [PODS, DEPLOYMENTS, NODES])
def test_delete_of_an_object_with_finalizers_marks_it_deleting_and_keeps_it(r: Replica, res: ResourceId) -> None:
    ns = "" if res == NODES else "default"
    r.ok(create_cmd(res, make_obj(res, "web", ns, finalizers=["example.com/hold"])))
    before, _ = r.state.get(res, ns, "web")

    result = r.ok(delete_cmd(res, ns, "web", now="2030-01-02T03:04:05Z"))

    stored = r.get(res, ns, "web")
    assert stored is not None
    assert stored["metadata"]["deletionTimestamp"] == "2030-01-02T03:04:05Z"
    assert stored["metadata"]["deletionGracePeriodSeconds"] == 0
    assert stored["metadata"]["finalizers"] == ["example.com/hold"]
    assert rv_of(stored) == r.index
    assert result.obj is not None and result.obj.deleting and result.changed
    [event] = r.events
    assert (event.type, event.rv) == (EventType.MODIFIED, r.index)
    assert event.prev is before

    # Deleting again changes nothing (the first deletionTimestamp stays).
    snapshot = r.content()
    again = r.ok(delete_cmd(res, ns, "web", now="2031-01-01T00:00:00Z"))
    assert again.changed is False
    assert r.content() == snapshot
    assert r.events == []


def test_marking_a_generation_tracked_object_deleting_bumps_its_generation(r: Replica) -> None:
    r.ok(create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", finalizers=["foregroundDeletion"], spec={"x": 1})))
    r.ok(delete_cmd(DEPLOYMENTS, "default", "web"))
    assert r.get(DEPLOYMENTS, "default", "web")["metadata"]["generation"] == 2  # type: ignore[index]


def test_deleting_a_namespace_with_content_terminates_it_until_the_last_object_is_gone(r: Replica) -> None:
    r.ok(create_cmd(NAMESPACES, namespace("team")))
    r.ok(create_cmd(PODS, make_obj(PODS, "p1", "team")))
    r.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "c1", "team", finalizers=["hold"])))
    r.ok(create_cmd(PODS, make_obj(PODS, "other", "default")))  # content elsewhere does not count

    r.ok(delete_cmd(NAMESPACES, "", "team", now="2030-01-01T00:00:00Z"))
    ns = r.get(NAMESPACES, "", "team")
    assert ns is not None
    assert ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"] == "2030-01-01T00:00:00Z"
    assert rv_of(ns) == r.index
    assert [(e.type, e.name) for e in r.events] == [(EventType.MODIFIED, "team")]

    # A second delete of a terminating namespace is a no-op.
    assert r.ok(delete_cmd(NAMESPACES, "", "team")).changed is False

    r.ok(delete_cmd(PODS, "team", "p1"))
    assert r.get(NAMESPACES, "", "team") is not None
    r.ok(delete_cmd(CONFIGMAPS, "team", "c1"))  # has a finalizer: only marked
    assert r.get(NAMESPACES, "", "team") is not None

    # Removing the last finalizer deletes the last object, and with it the namespace, at the same index.
    r.ok(update_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "c1", "team", finalizers=[])))
    assert [(e.type, e.rid, e.name, e.rv) for e in r.events] == [
        (EventType.DELETED, CONFIGMAPS, "c1", r.index),
        (EventType.DELETED, NAMESPACES, "team", r.index),
    ]
    assert r.events[1].obj.decode()["status"]["phase"] == "Terminating"
    assert r.get(NAMESPACES, "", "team") is None
    assert r.get(PODS, "default", "other") is not None
    # The name is free again.
    r.ok(create_cmd(NAMESPACES, namespace("team")))


def test_deleting_the_last_object_of_a_terminating_namespace_removes_it(r: Replica) -> None:
    r.ok(create_cmd(NAMESPACES, namespace("team")))
    r.ok(create_cmd(PODS, make_obj(PODS, "p1", "team")))
    r.ok(delete_cmd(NAMESPACES, "", "team"))
    r.ok(delete_cmd(PODS, "team", "p1"))
    assert [(e.type, e.name, e.rv) for e in r.events] == [
        (EventType.DELETED, "p1", r.index),
        (EventType.DELETED, "team", r.index),
    ]
    assert r.get(NAMESPACES, "", "team") is None


def test_deleting_an_empty_namespace_removes_it_at_once(r: Replica) -> None:
    r.ok(create_cmd(NAMESPACES, namespace("empty")))
    r.ok(delete_cmd(NAMESPACES, "", "empty"))
    assert r.get(NAMESPACES, "", "empty") is None
    assert [(e.type, e.name) for e in r.events] == [(EventType.DELETED, "empty")]


def test_deleting_objects_of_an_active_namespace_leaves_the_namespace(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "p1")))
    r.ok(delete_cmd(PODS, "default", "p1"))
    assert [e.name for e in r.events] == ["p1"]
    assert r.get(NAMESPACES, "", "default") is not None


# --- request-id dedup ----------------------------------------------------------------------------------


def _dedup_scenarios(r: Replica) -> dict[str, dict[str, Any]]:
    r.ok(create_cmd(PODS, make_obj(PODS, "existing", labels={"v": "0"})))
    return {
        "create": create_cmd(PODS, make_obj(PODS, "new"), rid="rid-1"),
        "update": update_cmd(PODS, make_obj(PODS, "existing", labels={"v": "1"}), rid="rid-1"),
        "status": update_cmd(PODS, make_obj(PODS, "existing", status={"phase": "Running"}), sub="status", rid="rid-1"),
    }


@pytest.mark.parametrize("op", ["create", "update", "status"])
def test_a_request_id_applied_twice_changes_state_once(r: Replica, op: str) -> None:
    command = _dedup_scenarios(r)[op]
    first = r.ok(command)
    assert first.changed and r.events
    after_first = r.content()

    second = r.ok(command)

    assert second.changed is False
    assert second.index == r.index
    assert second.obj is first.obj
    assert r.events == []
    assert r.content() == after_first
    assert r.state.rv == r.index


def test_a_replayed_request_id_returns_the_object_as_it_now_is(r: Replica) -> None:
    command = update_cmd(PODS, make_obj(PODS, "existing", labels={"v": "1"}), rid="rid-1")
    r.ok(create_cmd(PODS, make_obj(PODS, "existing")))
    r.ok(command)
    r.ok(update_cmd(PODS, make_obj(PODS, "existing", labels={"v": "2"})))  # someone else wrote since

    replay = r.ok(command)

    assert replay.obj is not None and replay.obj.labels == {"v": "2"}
    assert r.get(PODS, "default", "existing")["metadata"]["labels"] == {"v": "2"}  # type: ignore[index]


def test_a_replayed_failure_returns_the_same_error_even_if_it_would_now_succeed(r: Replica) -> None:
    command = create_cmd(PODS, make_obj(PODS, "web", "later"), rid="rid-ns")
    first = r.fail(command)
    assert isinstance(first, errors.NotFound)
    r.ok(create_cmd(NAMESPACES, namespace("later")))
    before = r.content()

    second = r.fail(command)

    assert type(second) is type(first)
    assert (second.code, second.reason, second.message) == (first.code, first.reason, first.message)
    assert r.content() == before
    assert r.get(PODS, "later", "web") is None


def test_a_replayed_failure_has_the_same_status_body(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", uid="a")))
    command = create_cmd(PODS, make_obj(PODS, "web", uid="b"), rid="rid-dup")
    first = r.fail(command)
    second = r.fail(command)
    assert second.to_status() == first.to_status()


def test_a_replayed_delete_succeeds_without_deleting_again(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web")))
    command = delete_cmd(PODS, "default", "web", rid="rid-del")
    first = r.ok(command)
    assert first.obj is not None
    after_first = r.content()

    second = r.ok(command)

    assert r.content() == after_first
    # The object is gone, so the replay reports success without it (the API answers a Success Status).
    assert second.obj is None and not second.changed


def test_commands_without_a_request_id_are_not_remembered(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web")))
    r.raw(b"")
    assert r.state.snapshot()["dedup"] == []


def _window_run(window: int) -> Replica:
    """Counter updates with rids u0..u4, then u0 and u1 again."""
    replica = Replica(dedup_window=window)
    replica.ok(create_cmd(NAMESPACES, namespace("default")))
    replica.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "counter", data={"n": "start"})))
    commands = [
        update_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "counter", data={"n": str(i)}), rid=f"u{i}") for i in range(5)
    ]
    for command in commands:
        replica.ok(command)
    replica.ok(commands[0])
    replica.ok(commands[1])
    return replica


@pytest.mark.parametrize(
    ("window", "final_n", "remembered"),
    [
        (8, "4", ["u0", "u1", "u2", "u3", "u4"]),  # both retries deduplicated
        (5, "4", ["u0", "u1", "u2", "u3", "u4"]),  # exactly fits
        (4, "1", ["u3", "u4", "u0", "u1"]),  # u0 evicted -> applied again (and remembered), which evicts u1
        (3, "1", ["u4", "u0", "u1"]),
    ],
)
def test_dedup_eviction_after_the_window_is_deterministic(window: int, final_n: str, remembered: list[str]) -> None:
    a, b = _window_run(window), _window_run(window)

    assert a.state.snapshot() == b.state.snapshot()
    assert a.get(CONFIGMAPS, "default", "counter")["data"] == {"n": final_n}  # type: ignore[index]
    assert [rid for rid, _ in a.state.snapshot()["dedup"]] == remembered


# --- apply never raises --------------------------------------------------------------------------------


def _cmd(**command: Any) -> bytes:
    return encode_command(command)


_POD = make_obj(PODS, "web")

MALFORMED: list[Any] = [
    pytest.param(b"{not json", errors.BadRequest, id="malformed-json"),
    pytest.param(b"\x80\x81{}", errors.BadRequest, id="not-utf8"),
    pytest.param(b"[1, 2, 3]", errors.BadRequest, id="json-array"),
    pytest.param(b'"create"', errors.BadRequest, id="json-string"),
    pytest.param(b"null", errors.BadRequest, id="json-null"),
    pytest.param(
        json.dumps({"v": 2, "op": "create", "res": PODS, "ns": "default", "name": "web", "obj": _POD}).encode(),
        errors.BadRequest,
        id="future-version",
    ),
    pytest.param(
        json.dumps({"op": "create", "res": PODS, "ns": "default", "name": "web", "obj": _POD}).encode(),
        errors.BadRequest,
        id="no-version",
    ),
    pytest.param(_cmd(op="truncate"), errors.BadRequest, id="unknown-op"),
    pytest.param(_cmd(res=PODS, ns="default", name="web", obj=_POD), errors.BadRequest, id="no-op"),
    pytest.param(_cmd(op="create", ns="default", name="web", obj=_POD), errors.StatusError, id="create-no-res"),
    pytest.param(_cmd(op="create", res=PODS, name="web", obj=_POD), errors.StatusError, id="create-no-ns"),
    pytest.param(_cmd(op="create", res=PODS, ns="default", obj=_POD), errors.StatusError, id="create-no-name"),
    pytest.param(_cmd(op="create", res=PODS, ns="default", name="web"), errors.StatusError, id="create-no-obj"),
    pytest.param(
        _cmd(op="create", res=PODS, ns="default", name="web", obj={"kind": "Pod"}),
        errors.StatusError,
        id="create-no-metadata",
    ),
    pytest.param(
        _cmd(op="create", res=PODS, ns="default", name="web", obj=["not", "a", "dict"]),
        errors.StatusError,
        id="create-obj-not-a-dict",
    ),
    pytest.param(_cmd(op="update", res=PODS, ns="default", name="keep"), errors.StatusError, id="update-no-obj"),
    pytest.param(
        _cmd(op="update", res=PODS, ns="default", name="keep", obj=_POD, expect_rv="abc"),
        errors.StatusError,
        id="update-bad-expect-rv",
    ),
    pytest.param(_cmd(op="delete", res=PODS, name="keep"), errors.StatusError, id="delete-no-ns"),
    pytest.param(
        _cmd(op="delete", res=PODS, ns="default", name="held"), errors.StatusError, id="delete-with-finalizers-no-now"
    ),
    pytest.param(
        _cmd(op="create", res="/widgets", ns="default", name="web", obj=_POD),
        errors.StatusError,
        id="create-unknown-resource",
    ),
    pytest.param(
        _cmd(op="update", res="/widgets", ns="default", name="keep", obj=_POD),
        errors.StatusError,
        id="update-unknown-resource",
    ),
    pytest.param(
        _cmd(op="delete", res="apps/widgets", ns="default", name="keep", now=NOW),
        errors.StatusError,
        id="delete-unknown-resource",
    ),
    pytest.param(_cmd(op="master", name="m1"), errors.StatusError, id="master-no-addresses"),
    pytest.param(_cmd(op="forget-master"), errors.StatusError, id="forget-master-no-name"),
    pytest.param(
        _cmd(op="create", res=PODS, ns="default", name="web", obj=_POD, rid=["not", "hashable"]),
        errors.StatusError,
        id="unhashable-request-id",
    ),
]


@pytest.mark.parametrize(("payload", "error_type"), MALFORMED)
def test_apply_never_raises_and_leaves_the_state_alone(
    r: Replica, payload: bytes, error_type: type[errors.StatusError]
) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "keep")))
    r.ok(create_cmd(PODS, make_obj(PODS, "held", finalizers=["hold"])))
    before = r.content()
    r.index = 500

    result = r.raw(payload)

    assert isinstance(result, error_type)
    assert isinstance(result, errors.StatusError)
    assert result.message
    assert r.content() == before
    assert r.applied[-1] == ([], 501)
    assert r.state.rv == 501
    # The replica keeps working afterwards.
    r.ok(create_cmd(PODS, make_obj(PODS, "after")))


def test_a_failing_finalizer_removal_leaves_the_object_in_place(r: Replica) -> None:
    r.ok(create_cmd(PODS, make_obj(PODS, "web", finalizers=["hold"])))
    r.ok(delete_cmd(PODS, "default", "web"))
    before = r.content()
    bad = make_obj(PODS, "web", finalizers=[])
    bad["metadata"]["labels"] = "not-a-mapping"

    result = r.run(update_cmd(PODS, bad))

    assert isinstance(result, errors.StatusError)
    assert r.content() == before


def test_an_empty_payload_is_a_barrier(r: Replica) -> None:
    before = r.content()
    r.index = 77
    result = r.raw(b"")
    assert result == Committed(78)
    assert r.applied[-1] == ([], 78)
    assert r.content() == before
    assert r.state.rv == 78


def test_master_registration_is_replicated_state(r: Replica) -> None:
    r.ok({"op": "master", "name": "m1", "raft": "10.0.0.1:4321", "api": "https://10.0.0.1:6443"})
    r.ok({"op": "master", "name": "m2", "raft": "10.0.0.2:4321", "api": "https://10.0.0.2:6443"})
    r.ok({"op": "forget-master", "name": "m1"})
    r.ok({"op": "forget-master", "name": "never-registered"})
    assert r.state.masters == {"m2": {"raft": "10.0.0.2:4321", "api": "https://10.0.0.2:6443"}}
    assert r.state.snapshot()["masters"] == r.state.masters


# --- determinism, snapshot and restore -----------------------------------------------------------------


def _history() -> list[bytes]:
    """A mixed command log, including failures, no-ops, dedup hits and barriers."""
    commands: list[dict[str, Any]] = [
        create_cmd(NAMESPACES, namespace("default")),
        create_cmd(NAMESPACES, namespace("team")),
        create_cmd(NODES, make_obj(NODES, "pi-1", labels={"zone": "a"})),
        create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", "team", spec={"replicas": 1}), rid="r1"),
        create_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", "team", spec={"replicas": 1}), rid="r1"),
        update_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", "team", spec={"replicas": 3}), rid="r2"),
        update_cmd(DEPLOYMENTS, make_obj(DEPLOYMENTS, "web", "team", status={"ready": 3}), sub="status", rid="r3"),
        create_cmd(PODS, make_obj(PODS, "p1", "team", labels={"app": "web"}, finalizers=["hold"])),
        create_cmd(PODS, make_obj(PODS, "p2", "team", labels={"app": "web"})),
        create_cmd(PODS, make_obj(PODS, "p1", "default")),
        create_cmd(PODS, make_obj(PODS, "x", "ghost"), rid="r4"),
        update_cmd(PODS, make_obj(PODS, "p2", "team"), expect_rv=1),
        delete_cmd(PODS, "team", "p1", rid="r5"),
        delete_cmd(NAMESPACES, "", "team"),
        {"op": "master", "name": "m1", "raft": "a:1", "api": "https://a"},
        delete_cmd(PODS, "team", "p2"),
    ]
    payloads = [encode_command(c) for c in commands]
    payloads.insert(3, b"")
    payloads.insert(8, b"{broken")
    return payloads


def test_the_same_log_yields_identical_state_and_events_on_two_replicas() -> None:
    a, b = Replica(), Replica()
    results_a = [a.raw(p) for p in _history()]
    results_b = [b.raw(p) for p in _history()]

    assert a.state.snapshot() == b.state.snapshot()
    assert [type(x) for x in results_a] == [type(x) for x in results_b]

    def events(rep: Replica) -> list[Any]:
        return [
            [(e.type, e.rid, e.namespace, e.name, e.obj.raw, e.prev and e.prev.raw) for e in evs] + [i]
            for evs, i in rep.applied
        ]

    assert events(a) == events(b)
    assert len(a.applied) == len(_history())


def _reads(state: ClusterState) -> dict[str, Any]:
    result: dict[str, Any] = {"rv": state.rv, "count": state.count(), "masters": state.masters}
    for res in (NAMESPACES, NODES, PODS, DEPLOYMENTS):
        objs, rv = state.list(res, None)
        result[f"list {res}"] = ([(o.raw, o.rv, o.uid, o.labels, o.fields, o.finalizers, o.deleting) for o in objs], rv)
    for res, ns, name in ((PODS, "default", "p1"), (DEPLOYMENTS, "team", "web"), (PODS, "team", "p1")):
        obj, rv = state.get(res, ns, name)
        result[f"get {res} {ns}/{name}"] = (obj and obj.raw, rv)
    return result


@pytest.mark.parametrize("through_pickle", [False, True])
def test_snapshot_restore_round_trips(through_pickle: bool) -> None:
    source = Replica()
    for payload in _history()[:-1]:
        source.raw(payload)
    snapshot: dict[str, Any] = source.state.snapshot()
    if through_pickle:  # PySyncObj pickles the snapshot
        snapshot = pickle.loads(pickle.dumps(snapshot))

    target = Replica()
    target.ok(create_cmd(NAMESPACES, namespace("stale")))  # replaced wholesale
    target.state.restore(snapshot)

    assert target.resets == [source.state.rv]
    assert _reads(target.state) == _reads(source.state)
    assert target.state.snapshot() == source.state.snapshot()
    assert target.get(NAMESPACES, "", "stale") is None

    # Both continue identically, including the dedup table (r5 was applied before the snapshot: a no-op).
    rv = source.state.rv
    for rep in (source, target):
        rep.index = rv
        replay = rep.ok(delete_cmd(PODS, "team", "p1", rid="r5"))
        assert replay.changed is False and rep.events == []
        rep.raw(_history()[-1])
    assert target.state.snapshot() == source.state.snapshot()
    assert [(e.type, e.name, e.obj.raw) for e in target.events] == [(e.type, e.name, e.obj.raw) for e in source.events]


def test_restore_of_an_unknown_snapshot_format_is_refused() -> None:
    replica = Replica()
    with pytest.raises(ValueError, match="unsupported snapshot format"):
        replica.state.restore({"format": 2, "rv": 1, "objects": {}, "dedup": [], "masters": {}})
    assert replica.resets == []


# --- reads ---------------------------------------------------------------------------------------------


def test_list_is_sorted_by_namespace_then_name_and_filters_by_namespace() -> None:
    r = Replica()
    for ns in ("zeta", "alpha", "mid"):
        r.ok(create_cmd(NAMESPACES, namespace(ns)))
    for ns, name in (("zeta", "b"), ("alpha", "z"), ("mid", "a"), ("alpha", "a"), ("zeta", "a"), ("alpha", "m")):
        r.ok(create_cmd(PODS, make_obj(PODS, name, ns)))
    r.ok(create_cmd(CONFIGMAPS, make_obj(CONFIGMAPS, "cm", "alpha")))

    everything, rv = r.state.list(PODS, None)
    assert rv == r.index
    assert [(o.fields["metadata.namespace"], o.fields["metadata.name"]) for o in everything] == [
        ("alpha", "a"),
        ("alpha", "m"),
        ("alpha", "z"),
        ("mid", "a"),
        ("zeta", "a"),
        ("zeta", "b"),
    ]
    in_alpha, _ = r.state.list(PODS, "alpha")
    assert [o.fields["metadata.name"] for o in in_alpha] == ["a", "m", "z"]
    assert r.state.list(PODS, "nowhere") == ([], r.index)
    assert r.state.list(DEPLOYMENTS, None) == ([], r.index)
    namespaces, _ = r.state.list(NAMESPACES, None)
    assert [o.fields["metadata.name"] for o in namespaces] == ["alpha", "mid", "zeta"]
    assert r.state.count() == 3 + 6 + 1


def test_get_returns_the_object_and_the_current_rv() -> None:
    r = Replica()
    r.ok(create_cmd(NAMESPACES, namespace("default")))
    created = r.ok(create_cmd(PODS, make_obj(PODS, "web")))
    r.raw(b"")
    r.raw(b"")

    obj, rv = r.state.get(PODS, "default", "web")
    assert obj is created.obj
    assert isinstance(obj, StoredObject) and obj.rv == 2
    assert rv == 4
    assert r.state.get(PODS, "default", "nope") == (None, 4)
    assert r.state.get(PODS, "other", "web") == (None, 4)


def test_iter_all_yields_every_object_once() -> None:
    r = Replica()
    for payload in _history():
        r.raw(payload)
    items = list(r.state.iter_all())
    assert len(items) == r.state.count()
    assert len({(res, ns, name) for res, ns, name, _ in items}) == len(items)
    for res, ns, name, obj in items:
        assert r.state.get(res, ns, name)[0] is obj


# --- events --------------------------------------------------------------------------------------------


def test_on_applied_is_called_once_per_apply_with_its_index() -> None:
    r = Replica()
    payloads = _history()
    for payload in payloads:
        r.raw(payload)
    assert [index for _, index in r.applied] == list(range(1, len(payloads) + 1))
    for events, index in r.applied:
        assert all(event.rv == index for event in events)
    barrier_calls = [events for (events, _), payload in zip(r.applied, payloads, strict=True) if payload == b""]
    assert barrier_calls == [[]]


def test_modified_events_carry_the_previous_object(r: Replica) -> None:
    created = r.ok(create_cmd(PODS, make_obj(PODS, "web", labels={"app": "web"})))
    updated = r.ok(update_cmd(PODS, make_obj(PODS, "web", labels={"app": "db"})))

    [event] = r.events
    assert event.type == EventType.MODIFIED
    assert event.prev is not None and event.prev is created.obj
    assert event.obj is updated.obj
    assert (event.prev.labels, event.obj.labels) == ({"app": "web"}, {"app": "db"})
    assert event.obj.rv == r.index and event.prev.rv == r.index - 1
