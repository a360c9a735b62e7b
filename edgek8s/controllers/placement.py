"""Which nodes a pod spec may run on: node selectors, required node affinity, taints and tolerations.

Semantics of upstream's ``component-helpers/scheduling/corev1`` (``nodeaffinity``, ``ToleratesTaint``):
a nodeSelector's labels must all match; the required affinity's terms are ORed, each term's
``matchExpressions`` (labels) and ``matchFields`` (only ``metadata.name``) ANDed; an empty term list
matches nothing; a term with no requirements matches nothing. A toleration with an empty effect
matches every effect; an empty key with ``Exists`` matches every taint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgek8s.model.selectors import Requirement, SelectorError

_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


def _requirement(expression: Mapping[str, Any]) -> Requirement | None:
    operator = _OPERATORS.get(str(expression.get("operator")))
    if operator is None:
        return None
    try:
        values = [str(v) for v in expression.get("values") or ()]
        return Requirement.new(str(expression.get("key", "")), operator, values)
    except SelectorError:
        return None


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    expressions = list(term.get("matchExpressions") or ())
    fields = list(term.get("matchFields") or ())
    if not expressions and not fields:
        return False
    for expression in expressions:
        req = _requirement(expression)
        if req is None or not req.matches(labels):
            return False
    for expression in fields:
        if expression.get("key") != "metadata.name":
            return False
        req = _requirement({**expression, "key": "metadata.name"})
        if req is None or not req.matches({"metadata.name": node_name}):
            return False
    return True


def required_node_terms(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The required node affinity terms, or None when the pod has no required node affinity."""
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, Mapping):
        return None
    return [t for t in required.get("nodeSelectorTerms") or () if isinstance(t, Mapping)]


def node_matches(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether ``node`` satisfies the pod's nodeSelector and required node affinity."""
    node_meta = node.get("metadata") or {}
    labels: Mapping[str, str] = node_meta.get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = required_node_terms(pod_spec)
    if terms is None:
        return True
    node_name = str(node_meta.get("name", ""))
    return any(_term_matches(term, labels, node_name) for term in terms)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(
    taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]], effects: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The taints with one of ``effects`` that no toleration tolerates."""
    wanted = set(effects)
    return [
        taint
        for taint in taints
        if taint.get("effect") in wanted and not any(tolerates(t, taint) for t in tolerations)
    ]


def node_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in (node.get("spec") or {}).get("taints") or () if isinstance(t, Mapping)]
