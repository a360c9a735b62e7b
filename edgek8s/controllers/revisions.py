"""ControllerRevisions of a DaemonSet: one per distinct pod template, numbered, pruned. Pure.

``sync_history(ds, revisions, pods) -> (hash, Plan)`` follows upstream's ``constructHistory`` and
``cleanupHistory`` (``pkg/controller/daemon/update.go``):

- The *current* revision is the owned one whose template equals the DaemonSet's (compared in semantic
  form: ``null``, ``{}`` and ``[]`` members count as absent, as Go's zero values). Its
  ``controller-revision-hash`` label is the hash new pods get, so after ``kubectl rollout undo`` the
  pods of the restored template keep (and get back) their old hash instead of being churned.
- None matches: a revision ``<ds>-<hash>`` is created with the next number (max + 1); the hash is that
  of the template, so every master plans the same name and a retried create finds AlreadyExists.
- The current revision is not the newest (an undo): its number is raised to max + 1, which is how
  ``kubectl rollout history`` shows the undo as the latest revision.
- Old revisions beyond ``spec.revisionHistoryLimit`` (default 10) whose hash no live pod carries are
  deleted, lowest number first.

A revision's ``data`` is upstream's: ``{"spec": {"template": {..., "$patch": "replace"}}}``, the
strategic merge patch ``kubectl rollout undo daemonset`` sends back to the DaemonSet verbatim.
Its labels are the template's plus the hash, so the DaemonSet's selector (which kubectl lists them
by) matches; its annotations are the DaemonSet's (``kubernetes.io/change-cause`` for history).

Invariants: never mutates its inputs; the revision create comes before any pod carrying its hash
(the caller runs this plan before the DaemonSet's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import CONTROLLER_REVISIONS, Create, Delete, Plan, Update
from edgek8s.controllers.rollout import LAST_APPLIED, equal_ignore_hash
from edgek8s.registry.patch import clone_json

HASH_LABEL = "controller-revision-hash"
DEFAULT_HISTORY_LIMIT = 10


def revision_data(template: Mapping[str, Any]) -> dict[str, Any]:
    """The patch that restores ``template`` (upstream's ``getPatch``)."""
    return {"spec": {"template": {**clone_json(dict(template)), "$patch": "replace"}}}


def revision_template(revision: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template a revision records (its data without the directive)."""
    data = revision.get("data")
    template = ((data or {}).get("spec") or {}).get("template") if isinstance(data, Mapping) else None
    if not isinstance(template, Mapping):
        return {}
    return {k: v for k, v in template.items() if k != "$patch"}


def revision_number(revision: Mapping[str, Any]) -> int:
    return p.int_field(revision, "revision", 0)


def revision_hash(revision: Mapping[str, Any]) -> str:
    return str((p.meta(revision).get("labels") or {}).get(HASH_LABEL) or "")


def _owned(ds: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted((r for r in revisions if p.controlled_by(r, p.uid(ds)) and not p.is_deleting(r)),
                  key=lambda r: (revision_number(r), p.name(r)))


def new_revision(ds: Mapping[str, Any], template: Mapping[str, Any], hash_: str, number: int) -> dict[str, Any]:
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: hash_}
    annotations = {k: v for k, v in (p.meta(ds).get("annotations") or {}).items() if k != LAST_APPLIED}
    metadata: dict[str, Any] = {
        "name": f"{p.name(ds)}-{hash_}", "namespace": p.namespace(ds), "labels": labels,
        "ownerReferences": [p.controller_reference(ds, api_version="apps/v1", kind="DaemonSet")],
    }
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": revision_data(template), "revision": number}


def sync_history(
    ds: Mapping[str, Any],
    revisions: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
) -> tuple[str, Plan]:
    """(the hash of the current revision, the writes that make history match the DaemonSet)."""
    plan = Plan()
    template = p.spec(ds).get("template") or {}
    owned = _owned(ds, revisions)
    current = None
    for revision in reversed(owned):  # the newest equal one, if an old duplicate lingers
        if equal_ignore_hash(revision_template(revision), template) and revision_hash(revision):
            current = revision
            break
    old = [r for r in owned if r is not current]
    next_number = max((revision_number(r) for r in old), default=0) + 1
    if current is None:
        hash_ = p.template_hash(template)
        plan.actions.append(Create(resource=CONTROLLER_REVISIONS, namespace=p.namespace(ds),
                                   body=new_revision(ds, template, hash_, next_number), exists_ok=True))
    else:
        hash_ = revision_hash(current)
        if revision_number(current) < next_number:
            plan.actions.append(Update(resource=CONTROLLER_REVISIONS,
                                       body={**clone_json(dict(current)), "revision": next_number}))
    limit = p.int_field(p.spec(ds), "revisionHistoryLimit", DEFAULT_HISTORY_LIMIT)
    excess = len(old) - max(limit, 0)
    if excess > 0:
        live = {str((p.meta(pod).get("labels") or {}).get(HASH_LABEL) or "")
                for pod in pods if p.controlled_by(pod, p.uid(ds)) and not p.is_deleting(pod)}
        for revision in old:  # lowest number first
            if excess <= 0:
                break
            if revision_hash(revision) in live:
                continue
            plan.actions.append(Delete(resource=CONTROLLER_REVISIONS, namespace=p.namespace(revision),
                                       name=p.name(revision), uid=p.uid(revision)))
            excess -= 1
    return hash_, plan
