"""PodDisruptionBudgets (policy/v1): validation, which budget covers a pod, and the eviction's check.

The budget's arithmetic, shared by the eviction subresource (``api.eviction``) and the disruption
controller (``controllers.disruption``), as upstream's ``pkg/registry/core/pod/storage/eviction.go``
and ``pkg/controller/disruption``:

- a budget whose selector is empty or invalid covers nothing (never everything);
- an eviction needs the budget's status to be current (``observedGeneration`` = ``generation``) and
  ``disruptionsAllowed`` > 0; it then takes one (``disruptionsAllowed`` - 1) and records the pod in
  ``status.disruptedPods`` so the controller does not count it healthy before its deletion shows;
- otherwise 429 TooManyRequests ("Cannot evict pod as it would violate the pod's disruption budget."),
  which ``kubectl drain`` retries.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

from edgek8s.model import errors
from edgek8s.model.selectors import LabelSelector, SelectorError
from edgek8s.model.validation import FieldError

DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def validate_budget(body: Mapping[str, Any]) -> list[FieldError]:
    spec = body.get("spec") or {}
    problems: list[FieldError] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        problems.append(FieldError.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for field in ("minAvailable", "maxUnavailable"):
        value = spec.get(field)
        if value is not None and parse_int_or_percent(value) is None:
            problems.append(FieldError.invalid(f"spec.{field}", value,
                                               "must be a non-negative integer or a percentage (\"50%\")"))
    selector = spec.get("selector")
    if selector is not None:
        try:
            LabelSelector.from_dict(selector)
        except (SelectorError, TypeError, ValueError) as exc:
            problems.append(FieldError.invalid("spec.selector", selector, str(exc)))
    return problems


def parse_int_or_percent(value: Any) -> tuple[int, bool] | None:
    """``(n, is_percent)`` for 3 or "30%"; None when invalid (negative, not a number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, False) if value >= 0 else None
    if isinstance(value, str):
        text = value[:-1] if value.endswith("%") else value
        if text.isdigit():
            return int(text), value.endswith("%")
    return None


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString against ``total`` (upstream's GetScaledValueFromIntOrPercent)."""
    parsed = parse_int_or_percent(value)
    if parsed is None:
        return 0
    amount, percent = parsed
    if not percent:
        return amount
    exact = amount * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def budget_selector(budget: Mapping[str, Any]) -> LabelSelector:
    """The pods a budget covers: an empty or invalid selector covers none."""
    raw = (budget.get("spec") or {}).get("selector")
    try:
        selector = LabelSelector.from_dict(raw) if raw else LabelSelector.nothing()
    except (SelectorError, TypeError, ValueError):
        return LabelSelector.nothing()
    return LabelSelector.nothing() if selector.empty else selector


def covering_budgets(budgets: Iterable[Mapping[str, Any]], pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return [b for b in budgets if budget_selector(b).matches(labels)]


def _violation(detail: str, retry_after: int) -> errors.TooManyRequests:
    return errors.TooManyRequests(VIOLATION, retry_after=retry_after, causes=(
        errors.StatusCause(field="", reason=DISRUPTION_BUDGET_CAUSE, message=detail),))


def take_disruption(budget: Mapping[str, Any], pod_name: str, now: str) -> dict[str, Any]:
    """The budget with one disruption taken for ``pod_name`` (its status to write), or the error."""
    meta, status = budget.get("metadata") or {}, budget.get("status") or {}
    name = str(meta.get("name", ""))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise _violation(f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions allowed '
                               "is negative", kind="poddisruptionbudgets", group="policy", name=name)
    disrupted = dict(status.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise errors.Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods map too big - '
                               "too many evictions not confirmed by PDB controller",
                               kind="poddisruptionbudgets", group="policy", name=name)
    if allowed == 0:
        raise _violation(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy "
                         f"pods and has {int(status.get('currentHealthy') or 0)} currently", 0)
    updated = copy.deepcopy(dict(budget))
    new_status = updated.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    disrupted[pod_name] = now
    new_status["disruptedPods"] = disrupted
    if allowed - 1 == 0:
        set_allowed_condition(new_status, now)
    return updated


def set_allowed_condition(status: dict[str, Any], now: str, *, reason: str | None = None,
                          message: str = "") -> None:
    """The ``DisruptionAllowed`` condition from ``status.disruptionsAllowed`` (or a sync failure)."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    wanted = {"type": "DisruptionAllowed", "status": "True" if allowed and reason is None else "False",
              "reason": reason or ("SufficientPods" if allowed else "InsufficientPods"), "message": message,
              "observedGeneration": int(status.get("observedGeneration") or 0)}
    conditions = [dict(c) for c in status.get("conditions") or () if isinstance(c, Mapping)]
    current = next((c for c in conditions if c.get("type") == "DisruptionAllowed"), None)
    if current is not None and current.get("status") == wanted["status"]:
        wanted["lastTransitionTime"] = current.get("lastTransitionTime") or now
    else:
        wanted["lastTransitionTime"] = now
    status["conditions"] = [c for c in conditions if c.get("type") != "DisruptionAllowed"] + [wanted]
