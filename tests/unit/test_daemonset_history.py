"""DaemonSet history tables: ControllerRevisions created, renumbered on undo, pruned past the limit."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.controllers.actions import Create, Delete, Plan, Update
from edgek8s.controllers.daemonset import HASH_LABEL
from edgek8s.controllers.pods import template_hash
from edgek8s.controllers.revisions import new_revision, revision_template, sync_history
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.registry.patch import strategic_merge_patch
from edgek8s.registry.strategy import prepare_create
from tests.support.builders import meta, owner, pod, template


def daemon_set(image: str = "busybox:1", *, limit: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "template": template()}
    spec["template"]["spec"]["containers"][0]["image"] = image
    if limit is not None:
        spec["revisionHistoryLimit"] = limit
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta("agent", annotations={"kubernetes.io/change-cause": f"set {image}"}), "spec": spec}


def stored(revision: dict[str, Any]) -> dict[str, Any]:
    """A created revision as the API returns it."""
    name = revision["metadata"]["name"]
    return {**revision, "metadata": {**revision["metadata"], **meta(name), "ownerReferences":
                                     revision["metadata"]["ownerReferences"]}}


def revision_of(ds: dict[str, Any], number: int) -> dict[str, Any]:
    return stored(new_revision(ds, ds["spec"]["template"], template_hash(ds["spec"]["template"]), number))


def kinds(plan: Plan) -> list[tuple[str, int]]:
    return [(type(a).__name__, a.body["revision"]) for a in plan.actions if isinstance(a, Create | Update)]


def test_first_sync_creates_revision_one_selectable_by_the_daemon_sets_selector() -> None:
    ds = daemon_set()
    hash_, plan = sync_history(ds, [], [])
    assert hash_ == template_hash(ds["spec"]["template"])
    (create,) = plan.actions
    assert isinstance(create, Create) and create.exists_ok
    body = create.body
    assert body["metadata"]["name"] == f"agent-{hash_}" and body["revision"] == 1
    assert body["metadata"]["labels"] == {"app": "web", HASH_LABEL: hash_}
    assert body["metadata"]["ownerReferences"] == owner("DaemonSet", "agent", "apps/v1")
    assert body["metadata"]["annotations"] == {"kubernetes.io/change-cause": "set busybox:1"}
    assert body["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision_template(body) == ds["spec"]["template"]


def test_steady_state_writes_nothing() -> None:
    ds = daemon_set()
    hash_, plan = sync_history(ds, [revision_of(ds, 1)], [])
    assert hash_ == template_hash(ds["spec"]["template"]) and plan.actions == []


def test_new_template_gets_the_next_number() -> None:
    v1, v2 = daemon_set("busybox:1"), daemon_set("busybox:2")
    hash_, plan = sync_history(v2, [revision_of(v1, 1)], [])
    assert hash_ == template_hash(v2["spec"]["template"])
    assert kinds(plan) == [("Create", 2)]


def test_undo_patch_restores_the_template_and_renumbers_the_old_revision() -> None:
    v1, v2 = daemon_set("busybox:1"), daemon_set("busybox:2")
    r1, r2 = revision_of(v1, 1), revision_of(v2, 2)
    # What kubectl rollout undo sends: the revision's data as a strategic merge patch of the DaemonSet.
    undone = strategic_merge_patch(v2, r1["data"], kind="DaemonSet", api_version="apps/v1")
    assert undone["spec"]["template"] == v1["spec"]["template"]
    hash_, plan = sync_history(undone, [r1, r2], [])
    assert hash_ == r1["metadata"]["labels"][HASH_LABEL]  # old pods' hash, not a new one
    (update,) = plan.actions
    assert isinstance(update, Update) and update.body["revision"] == 3
    assert update.body["metadata"]["resourceVersion"] == r1["metadata"]["resourceVersion"]


def test_semantically_equal_template_matches() -> None:
    ds = daemon_set()
    r1 = revision_of(ds, 1)
    ds["spec"]["template"]["metadata"]["creationTimestamp"] = None  # what kubectl's Go structs write
    hash_, plan = sync_history(ds, [r1], [])
    assert hash_ == r1["metadata"]["labels"][HASH_LABEL] and plan.actions == []


def test_history_limit_prunes_oldest_without_live_pods() -> None:
    revs = [revision_of(daemon_set(f"busybox:{i}"), i) for i in range(1, 6)]
    ds = daemon_set("busybox:5", limit=2)
    # revision 1 still has a pod (an OnDelete rollout): it is kept, 2 and ... go instead.
    live = [pod("p", owners=owner("DaemonSet", "agent", "apps/v1"),
                labels={HASH_LABEL: revs[0]["metadata"]["labels"][HASH_LABEL]})]
    _, plan = sync_history(ds, revs, live)
    deleted = [a.name for a in plan.actions if isinstance(a, Delete)]
    assert deleted == [revs[1]["metadata"]["name"], revs[2]["metadata"]["name"]]
    _, plan = sync_history(ds, revs, [])
    deleted = [a.name for a in plan.actions if isinstance(a, Delete)]
    assert deleted == [revs[0]["metadata"]["name"], revs[1]["metadata"]["name"]]


def test_revisions_of_other_owners_are_ignored() -> None:
    ds = daemon_set()
    foreign = revision_of(ds, 7)
    foreign["metadata"]["ownerReferences"] = owner("DaemonSet", "other", "apps/v1")
    _, plan = sync_history(ds, [foreign], [])
    assert kinds(plan) == [("Create", 1)]


def test_api_requires_a_revision_number() -> None:
    body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"}, "data": {}}
    rtype = by_id(resource_id("apps", "controllerrevisions"))
    for bad in (None, -1, "2", True):
        with pytest.raises(errors.StatusError, match="revision"):
            prepare_create(rtype, {**body, "revision": bad}, namespace="default")
    assert prepare_create(rtype, {**body, "revision": 0}, namespace="default")["revision"] == 0
