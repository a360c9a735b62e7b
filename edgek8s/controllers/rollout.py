"""Pure rollout arithmetic of the Deployment controller (upstream's deployment/util and rolling.go).

No I/O here: every function takes cached objects (never mutated) and numbers, so each can be tested by
a table. ReplicaSets are dicts as stored; ``replicas(rs)`` is ``spec.replicas``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from edgek8s.client.interface import Obj
from edgek8s.registry.patch import clone_json

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
POD_TEMPLATE_HASH = "pod-template-hash"
_NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS})
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's rand.SafeEncodeString alphabet


def replicas(obj: Obj) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1 if obj.get("kind") == "Deployment" else 0) or 0)


def status_of(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def revision(obj: Obj) -> int:
    return _as_int(annotations_of(obj).get(REVISION))


def created(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


# --- template hash ------------------------------------------------------------------------------------


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def _safe_encode(text: str) -> str:
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """A deterministic name suffix for a pod template (FNV-32a of its canonical JSON, as upstream's
    ComputeHash over its printed form): every master computes the same name, so a retried create is
    AlreadyExists, never a second ReplicaSet."""
    canonical = json.dumps(without_hash(template), sort_keys=True, separators=(",", ":"))
    if collision_count:
        canonical += f"#{collision_count}"
    return _safe_encode(str(_fnv32a(canonical.encode())))


def _semantic(value: Any) -> Any:
    """A JSON value with null, {} and [] members dropped: what Go's structs make of it (``null`` and an
    absent field are the same zero value; apimachinery's Semantic.DeepEqual takes empty maps and slices
    for nil). kubectl rollout undo writes ``metadata.creationTimestamp: null`` into the template."""
    if isinstance(value, dict):
        cleaned = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def without_hash(template: Obj) -> Obj:
    """The template as compared and hashed: without its pod-template-hash label, in semantic form."""
    result: Obj = clone_json(template)
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    cleaned: Obj = _semantic(result)
    return cleaned


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return without_hash(a) == without_hash(b)


# --- intstr -------------------------------------------------------------------------------------------


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An int-or-percent ("25%") applied to ``total``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        percent = int(text[:-1])
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas; never both zero."""
    spec = deployment.get("spec") or {}
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas(deployment)
    rolling = strategy.get("rollingUpdate") or {}
    desired = replicas(deployment)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_unavailable(deployment: Obj) -> int:
    desired = replicas(deployment)
    if desired == 0:
        return 0
    return min(fenceposts(deployment)[1], desired)


def min_available(deployment: Obj) -> int:
    return replicas(deployment) - max_unavailable(deployment)


def is_recreate(deployment: Obj) -> bool:
    return ((deployment.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate"


# --- new ReplicaSet ----------------------------------------------------------------------------------


def find_new_replica_set(deployment: Obj, owned: list[Obj]) -> Obj | None:
    """The oldest owned ReplicaSet whose template equals the Deployment's (ignoring the hash label)."""
    template = (deployment.get("spec") or {}).get("template") or {}
    for rs in sorted(owned, key=created):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def new_rs_replicas(deployment: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How far the new ReplicaSet may be scaled up now (NewRSNewReplicas)."""
    desired = replicas(deployment)
    if is_recreate(deployment):
        return desired
    surge, _ = fenceposts(deployment)
    current = sum(replicas(rs) for rs in all_rss)
    max_total = desired + surge
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, desired - replicas(new_rs))
    return replicas(new_rs) + scale_up


def replica_set_annotations(deployment: Obj, rs_annotations: dict[str, str], new_revision: int) -> dict[str, str]:
    """The annotations a (new) ReplicaSet should have: the Deployment's (bar a few), its revision, and
    desired/max replicas."""
    result = dict(rs_annotations)
    for key, value in annotations_of(deployment).items():
        if key not in _NOT_COPIED:
            result[key] = value
    if _as_int(result.get(REVISION)) < new_revision:
        result[REVISION] = str(new_revision)
    return replicas_annotations(deployment, result)


def replicas_annotations(deployment: Obj, rs_annotations: dict[str, str]) -> dict[str, str]:
    """Only desired/max replicas updated: what scaling any ReplicaSet (old ones too) writes."""
    surge, _ = fenceposts(deployment)
    return {**rs_annotations, DESIRED_REPLICAS: str(replicas(deployment)),
            MAX_REPLICAS: str(replicas(deployment) + surge)}


# --- scaling down old ReplicaSets (rolling) -------------------------------------------------------------


def cleanup_unhealthy(old_rss: list[Obj], max_cleanup: int) -> dict[str, int]:
    """Scale down unavailable replicas of old ReplicaSets first (oldest first), at most ``max_cleanup``.
    Returns name -> new replicas."""
    result: dict[str, int] = {}
    total = 0
    for rs in sorted(old_rss, key=created):
        if total >= max_cleanup:
            break
        want, available = replicas(rs), status_of(rs, "availableReplicas")
        if want == 0 or want <= available:
            continue
        count = min(max_cleanup - total, want - available)
        result[rs["metadata"]["name"]] = want - count
        total += count
    return result


def scale_down_old(all_rss: list[Obj], old_rss: list[Obj], deployment: Obj) -> dict[str, int]:
    """Scale old ReplicaSets down while availability stays above minAvailable (oldest first)."""
    available = sum(status_of(rs, "availableReplicas") for rs in all_rss)
    budget = available - min_available(deployment)
    result: dict[str, int] = {}
    if budget <= 0:
        return result
    done = 0
    for rs in sorted(old_rss, key=created):
        if done >= budget:
            break
        if replicas(rs) == 0:
            continue
        count = min(replicas(rs), budget - done)
        result[rs["metadata"]["name"]] = replicas(rs) - count
        done += count
    return result


def old_scale_down_budget(all_rss: list[Obj], new_rs: Obj | None, deployment: Obj) -> int:
    """maxScaledDown of reconcileOldReplicaSets."""
    all_pods = sum(replicas(rs) for rs in all_rss)
    new_unavailable = 0 if new_rs is None else replicas(new_rs) - status_of(new_rs, "availableReplicas")
    return all_pods - min_available(deployment) - new_unavailable


# --- proportional scaling (a scaling event mid-rollout) ------------------------------------------------


def proportional_scale(deployment: Obj, active: list[Obj]) -> dict[str, int]:
    """Spread a change of spec.replicas over the active ReplicaSets in proportion to their size."""
    surge, _ = fenceposts(deployment)
    allowed = replicas(deployment) + surge
    current = sum(replicas(rs) for rs in active)
    to_add = allowed - current
    if to_add == 0 or current == 0:
        return {}
    # Scale up: the biggest (then newest) first; scale down: the biggest (then oldest) first.
    order = sorted(active, key=lambda rs: (-replicas(rs), tuple(reversed(created(rs))) if to_add > 0 else created(rs)))
    result: dict[str, int] = {}
    added = 0
    for rs in order:
        share = int(replicas(rs) * to_add / current)
        if to_add < 0:
            share = max(share, -replicas(rs))
        result[rs["metadata"]["name"]] = replicas(rs) + share
        added += share
    leftover = to_add - added
    if leftover and order:
        first = order[0]["metadata"]["name"]
        result[first] = max(0, result[first] + leftover)
    return {name: value for name, value in result.items()
            if value != next(replicas(rs) for rs in active if rs["metadata"]["name"] == name)}


# --- status and conditions -----------------------------------------------------------------------------


def deployment_status(deployment: Obj, all_rss: list[Obj], new_rs: Obj | None) -> dict[str, Any]:
    desired = replicas(deployment)
    available = sum(status_of(rs, "availableReplicas") for rs in all_rss)
    status: dict[str, Any] = {
        "observedGeneration": int((deployment.get("metadata") or {}).get("generation") or 0),
        "replicas": sum(status_of(rs, "replicas") for rs in all_rss),
        "updatedReplicas": 0 if new_rs is None else status_of(new_rs, "replicas"),
        "readyReplicas": sum(status_of(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(desired - available, 0),
    }
    collisions = (deployment.get("status") or {}).get("collisionCount")
    if collisions:
        status["collisionCount"] = collisions
    return {k: v for k, v in status.items() if v or k == "observedGeneration"}


def is_complete(deployment: Obj, status: dict[str, Any]) -> bool:
    desired = replicas(deployment)
    return (int(status.get("updatedReplicas") or 0) == desired and int(status.get("replicas") or 0) == desired
            and int(status.get("availableReplicas") or 0) == desired
            and int(status.get("observedGeneration") or 0) >= int(deployment["metadata"].get("generation") or 0))


def is_progressing(deployment: Obj, new_status: dict[str, Any]) -> bool:
    old = deployment.get("status") or {}
    old_unavailable = int(old.get("replicas") or 0) - int(old.get("availableReplicas") or 0)
    new_unavailable = int(new_status.get("replicas") or 0) - int(new_status.get("availableReplicas") or 0)
    return (int(new_status.get("updatedReplicas") or 0) > int(old.get("updatedReplicas") or 0)
            or new_unavailable < old_unavailable
            or int(new_status.get("readyReplicas") or 0) > int(old.get("readyReplicas") or 0)
            or int(new_status.get("availableReplicas") or 0) > int(old.get("availableReplicas") or 0))


def get_condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def set_condition(status: dict[str, Any], kind: str, value: str, reason: str, message: str, now: str) -> None:
    """Set a condition; lastTransitionTime moves only when the status value changes (SetDeploymentCondition)."""
    conditions = [dict(c) for c in status.get("conditions") or ()]
    current = next((c for c in conditions if c.get("type") == kind), None)
    if current is not None and current.get("status") == value and current.get("reason") == reason:
        if current.get("message") != message:
            current["message"] = message
            current["lastUpdateTime"] = now
        status["conditions"] = conditions
        return
    transition = now
    if current is not None and current.get("status") == value:
        transition = current.get("lastTransitionTime") or now
    new = {"type": kind, "status": value, "lastUpdateTime": now, "lastTransitionTime": transition,
           "reason": reason, "message": message}
    conditions = [c for c in conditions if c.get("type") != kind]
    conditions.append(new)
    status["conditions"] = conditions


def remove_condition(status: dict[str, Any], kind: str) -> None:
    conditions = [c for c in status.get("conditions") or () if c.get("type") != kind]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def history_to_delete(old_rss: list[Obj], limit: int) -> list[Obj]:
    """Old, scaled-to-zero ReplicaSets beyond revisionHistoryLimit, oldest revision first."""
    idle = [rs for rs in old_rss
            if replicas(rs) == 0 and status_of(rs, "replicas") == 0
            and not (rs.get("metadata") or {}).get("deletionTimestamp")
            and status_of(rs, "observedGeneration") >= int(rs["metadata"].get("generation") or 0)]
    excess = len(old_rss) - limit
    if excess <= 0:
        return []
    idle.sort(key=lambda rs: (revision(rs), created(rs)))
    return idle[:excess]
