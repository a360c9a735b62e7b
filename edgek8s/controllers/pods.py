"""Reading pods and owners as controllers do: activity, readiness, controller references, templates.

Pure helpers over wire dicts (never mutating them), over ``controllers.base``'s for anything Mapping-typed
callers need. Semantics follow upstream's
``pkg/api/v1/pod/util.go`` and ``pkg/controller/controller_utils.go``: a pod is *active* while it is
neither Succeeded nor Failed nor being deleted; *ready* when its ``Ready`` condition is True;
*available* once it has been ready for ``minReadySeconds``.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from edgek8s.controllers.base import condition as base_condition
from edgek8s.controllers.base import controller_ref, is_pod_active, is_pod_available, is_pod_ready

Obj = Mapping[str, Any]


def meta(obj: Obj) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def spec(obj: Obj) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def status(obj: Obj) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def uid(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def name(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def namespace(obj: Obj) -> str:
    return str(meta(obj).get("namespace") or "")


def phase(pod: Obj) -> str:
    return str(status(pod).get("phase") or "")


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    return is_pod_active(dict(pod))


def condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    return base_condition(dict(obj), type_)


def is_ready(pod: Obj) -> bool:
    return is_pod_ready(dict(pod))


def is_available(pod: Obj, min_ready_seconds: int, now: datetime.datetime) -> bool:
    return is_pod_available(dict(pod), min_ready_seconds, now.timestamp())


def controller_of(obj: Obj) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    return controller_ref(dict(obj))


def controlled_by(obj: Obj, owner_uid: str) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner_uid


def controller_reference(owner: Obj, *, api_version: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def template_hash(template: Obj) -> str:
    """A short stable hash of a pod template (upstream's ``controller-revision-hash`` role)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(canonical, digest_size=5).hexdigest()


def pod_from_template(
    template: Obj,
    *,
    owner_ref: dict[str, Any],
    namespace_: str,
    generate_name: str,
    labels: Mapping[str, str] | None = None,
    finalizers: Iterable[str] = (),
) -> dict[str, Any]:
    """A new pod body from ``template`` (deep-copied), owned by ``owner_ref``."""
    tmeta = meta(template)
    pod_labels = dict(tmeta.get("labels") or {})
    pod_labels.update(labels or {})
    pod_meta: dict[str, Any] = {
        "generateName": generate_name,
        "namespace": namespace_,
        "labels": pod_labels,
        "ownerReferences": [owner_ref],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if finalizers:
        pod_meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": copy.deepcopy(dict(spec(template)))}


def object_reference(obj: Obj, *, api_version: str, kind: str) -> dict[str, Any]:
    ref = {"kind": kind, "apiVersion": api_version, "namespace": namespace(obj), "name": name(obj)}
    if uid(obj):
        ref["uid"] = uid(obj)
    return ref  # no resourceVersion: a reference that changed on every write would churn its holder


def int_field(obj: Mapping[str, Any], key: str, default: int) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def scaled_value(value: object, total: int, *, round_up: bool, default: int) -> int:
    """An IntOrString (``2`` or ``"25%"``) against ``total``, as ``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        percent = int(value[:-1])
        whole, rest = divmod(percent * total, 100)
        return whole + (1 if round_up and rest else 0)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def by_creation(objects: Iterable[Obj]) -> list[Obj]:
    """Oldest first (creationTimestamp, then name), as upstream orders candidates to keep."""
    return sorted(objects, key=lambda o: (str(meta(o).get("creationTimestamp") or ""), name(o)))
