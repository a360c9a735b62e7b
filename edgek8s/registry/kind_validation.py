"""Validation of the kinds edgek8s stores without acting on them: RBAC and networking.k8s.io/v1.

Mirrors the parts of upstream's pkg/apis/rbac/validation and pkg/apis/networking/validation that a
manifest most often gets wrong, with upstream's field paths and messages, so ``kubectl apply`` of a bad
Role or Ingress fails as it would against kube-apiserver (422, one cause per field) and changes nothing.
Objects are checked after defaulting, in their JSON form; values of the wrong JSON type are reported,
never trusted. On update, a binding's ``roleRef`` and an IngressClass's ``spec.controller`` may not change. Not checked
(upstream does): an Ingress host's wildcard DNS form, NetworkPolicy CIDRs, ClusterRole aggregation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from edgek8s.model.validation import FieldError

RBAC_GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_PROTOCOLS = ("SCTP", "TCP", "UDP")


def path_segment_name(name: str, prefix: bool) -> list[str]:
    """Upstream's ``path.IsValidPathSegmentName`` (RBAC names): anything a URL path segment can carry."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def _items(body: Any, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    container = body
    for part in field.split("."):
        container = container.get(part) if isinstance(container, dict) else None
    for i, item in enumerate(container if isinstance(container, list) else ()):
        if isinstance(item, dict):
            yield f"{field}[{i}]", item


def _rule(path: str, rule: dict[str, Any], namespaced: bool) -> list[FieldError]:  # ValidatePolicyRule
    problems = [] if rule.get("verbs") else [
        FieldError.required(f"{path}.verbs", "verbs must contain at least one value")]
    if rule.get("nonResourceURLs"):
        if namespaced:
            problems.append(FieldError.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                                               "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            problems.append(FieldError.invalid(f"{path}.nonResourceURLs", rule["nonResourceURLs"],
                                               "rules cannot apply to both regular resources and non-resource URLs"))
        return problems
    if not rule.get("apiGroups"):
        problems.append(FieldError.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        problems.append(FieldError.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return problems


def _role(body: dict[str, Any], namespaced: bool) -> list[FieldError]:
    return [problem for path, rule in _items(body, "rules") for problem in _rule(path, rule, namespaced)]


def _binding(body: dict[str, Any], namespaced: bool) -> list[FieldError]:  # ValidateRoleBinding(Subject)
    problems: list[FieldError] = []
    ref = body.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    kinds = ["ClusterRole", "Role"] if namespaced else ["ClusterRole"]
    if ref.get("apiGroup") != RBAC_GROUP:
        problems.append(FieldError.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    if ref.get("kind") not in kinds:
        problems.append(FieldError.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        problems.append(FieldError.required("roleRef.name", ""))
    else:
        problems.extend(FieldError.invalid("roleRef.name", ref["name"], m)
                        for m in path_segment_name(str(ref["name"]), False))
    for path, subject in _items(body, "subjects"):
        if not subject.get("name"):
            problems.append(FieldError.required(f"{path}.name", ""))
        kind = subject.get("kind")
        if kind not in _SUBJECT_KINDS:
            problems.append(FieldError.not_supported(f"{path}.kind", kind or "", _SUBJECT_KINDS))
        elif kind == "ServiceAccount":
            if subject.get("apiGroup", ""):
                problems.append(FieldError.not_supported(f"{path}.apiGroup", subject["apiGroup"], [""]))
            if not namespaced and not subject.get("namespace"):
                problems.append(FieldError.required(f"{path}.namespace", ""))
        elif subject.get("apiGroup") != RBAC_GROUP:
            problems.append(FieldError.not_supported(f"{path}.apiGroup", subject.get("apiGroup", ""), [RBAC_GROUP]))
    return problems


def _backend(path: str, backend: dict[str, Any]) -> list[FieldError]:  # validateIngressBackend
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [FieldError.invalid(path, "", "cannot set both resource and service backends")]
    if not isinstance(service, dict):
        return [] if isinstance(resource, dict) else [
            FieldError.invalid(path, "", "resource or service backend is required")]
    problems = [] if service.get("name") else [FieldError.required(f"{path}.service.name", "")]
    port = service.get("port")
    port = port if isinstance(port, dict) else {}
    if port.get("name") and port.get("number"):
        problems.append(FieldError.invalid(path, "", "cannot set both port name & port number"))
    elif not port.get("name") and not port.get("number"):
        problems.append(FieldError.required(path, "port name or port number is required"))
    return problems


def _ingress(body: dict[str, Any], _namespaced: bool) -> list[FieldError]:  # ValidateIngressSpec
    spec = body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    problems: list[FieldError] = []
    if not spec.get("rules") and not isinstance(spec.get("defaultBackend"), dict):
        problems.append(FieldError.invalid("spec", spec.get("rules") or [],
                                           "either `defaultBackend` or `rules` must be specified"))
    if isinstance(spec.get("defaultBackend"), dict):
        problems.extend(_backend("spec.defaultBackend", spec["defaultBackend"]))
    for rule_path, rule in _items(spec, "rules"):
        rule_path = "spec." + rule_path
        http = rule.get("http")
        if http is None:
            continue
        if not isinstance(http, dict) or not http.get("paths"):
            problems.append(FieldError.required(f"{rule_path}.http.paths", ""))
            continue
        for path, item in _items(http, "paths"):
            path = f"{rule_path}.http.{path}"
            path_type = item.get("pathType")
            if path_type is None:
                problems.append(FieldError.required(f"{path}.pathType", "pathType must be specified"))
            elif path_type not in _PATH_TYPES:
                problems.append(FieldError.not_supported(f"{path}.pathType", path_type, _PATH_TYPES))
            elif path_type != "ImplementationSpecific" and not str(item.get("path", "")).startswith("/"):
                problems.append(FieldError.invalid(f"{path}.path", item.get("path", ""), "must be an absolute path"))
            backend = item.get("backend")
            if not isinstance(backend, dict):
                problems.append(FieldError.required(f"{path}.backend", ""))
            else:
                problems.extend(_backend(f"{path}.backend", backend))
    return problems


def _ingress_class(body: dict[str, Any], _namespaced: bool) -> list[FieldError]:
    spec = body.get("spec")
    if not isinstance(spec, dict) or not spec.get("controller"):
        return [FieldError.required("spec.controller", "")]
    return []


def _network_policy(body: dict[str, Any], _namespaced: bool) -> list[FieldError]:  # ValidateNetworkPolicySpec
    spec = body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    problems = [FieldError.not_supported(f"spec.policyTypes[{i}]", value, ["Egress", "Ingress"])
                for i, value in enumerate(spec.get("policyTypes") or ()) if value not in ("Egress", "Ingress")]
    for direction in ("ingress", "egress"):
        for rule_path, rule in _items(spec, direction):
            for path, port in _items(rule, "ports"):
                if port.get("protocol") not in _PROTOCOLS:
                    problems.append(FieldError.not_supported(f"spec.{rule_path}.{path}.protocol",
                                                             port.get("protocol"), _PROTOCOLS))
    return problems


_VALIDATORS: dict[tuple[str, str], Callable[[dict[str, Any], bool], list[FieldError]]] = {
    (RBAC_GROUP, "Role"): _role,
    (RBAC_GROUP, "ClusterRole"): _role,
    (RBAC_GROUP, "RoleBinding"): _binding,
    (RBAC_GROUP, "ClusterRoleBinding"): _binding,
    ("networking.k8s.io", "Ingress"): _ingress,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
}


UPDATE_CHECKED = frozenset({(RBAC_GROUP, "RoleBinding"), (RBAC_GROUP, "ClusterRoleBinding"),
                            ("networking.k8s.io", "IngressClass")})


def validate_kind_update(group: str, kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """Upstream's ``Validate<Kind>Update`` immutability checks; [] for other kinds."""
    if group == RBAC_GROUP and kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get(
            "roleRef"):
        ref = new["roleRef"] if isinstance(new.get("roleRef"), dict) else {}
        # The internal Go type has no JSON tags: upstream renders its field names.
        shown = {"APIGroup": ref.get("apiGroup", ""), "Kind": ref.get("kind", ""), "Name": ref.get("name", "")}
        return [FieldError.invalid("roleRef", shown, "cannot change roleRef")]
    if group == "networking.k8s.io" and kind == "IngressClass":
        before, after = (o.get("spec", {}).get("controller") if isinstance(o.get("spec"), dict) else None
                         for o in (old, new))
        if before != after:
            return [FieldError.invalid("spec.controller", after, "field is immutable")]
    return []


def validate_kind(group: str, kind: str, body: dict[str, Any], *, namespaced: bool) -> list[FieldError]:
    """Upstream's type-specific validation of ``body`` (already defaulted); [] for other kinds."""
    validator = _VALIDATORS.get((group, kind))
    return [] if validator is None else validator(body, namespaced)
