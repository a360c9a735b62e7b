"""Field validation of ``scheduling.k8s.io/v1`` PriorityClasses (upstream's
``pkg/apis/scheduling/validation``): ``value`` is required and at most 1,000,000,000 unless the name
starts ``system-``; ``preemptionPolicy`` is ``PreemptLowerPriority`` (the default) or ``Never``.
On update ``value`` and ``preemptionPolicy`` may not change (pods already carry them). The rule that
needs other objects (one ``globalDefault``) is the API's admission (``api/priority.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgek8s.model.validation import FieldError

HIGHEST_USER_PRIORITY = 1_000_000_000
POLICIES = ("PreemptLowerPriority", "Never")


def validate_priority_class(obj: Mapping[str, Any]) -> list[FieldError]:
    problems: list[FieldError] = []
    value = obj.get("value")
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(FieldError.required("value", ""))
    elif value > HIGHEST_USER_PRIORITY and not name.startswith("system-"):
        problems.append(FieldError.forbidden(
            "value", f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in POLICIES:
        problems.append(FieldError.not_supported("preemptionPolicy", policy, POLICIES))
    if "globalDefault" in obj and not isinstance(obj["globalDefault"], bool):
        problems.append(FieldError.type_invalid("globalDefault", obj["globalDefault"], "must be of type boolean"))
    return problems


def validate_priority_class_update(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldError]:
    return [FieldError.forbidden(field, "may not be changed in an update.")
            for field in ("value", "preemptionPolicy") if old.get(field) != new.get(field)]
