"""Per-resource strategy: what the API server does to a body before it becomes a store command.

Mirrors upstream's ``rest.RESTCreateStrategy``/``RESTUpdateStrategy``: check the body's type and
identity against the URL, clear what only the server may set, apply defaults, validate, and raise
``Invalid`` (422) with one cause per bad field, or ``BadRequest`` (400) for a body of the wrong shape.
Nothing here touches the store: a rejected request changes nothing.

Runs on the proposer, so randomness (generateName suffixes) is allowed here and never in apply.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.model.validation import (
    FieldError,
    name_is_dns1035_label,
    name_is_dns1123_label,
    name_is_dns1123_subdomain,
    validate_object_meta,
)
from edgek8s.registry.defaults import apply_defaults
from edgek8s.registry.disruption import validate_budget
from edgek8s.registry.kind_validation import UPDATE_CHECKED, path_segment_name, validate_kind, validate_kind_update
from edgek8s.registry.scheduling import validate_priority_class, validate_priority_class_update

_SERVER_SET_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's: no vowels, no confusable digits
_CONFIG_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")

NameValidator = Callable[[str, bool], list[str]]
_NAME_VALIDATORS: dict[str, NameValidator] = {
    "namespaces": name_is_dns1123_label,
    "services": name_is_dns1035_label,
    **{plural: path_segment_name for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")},
}


def _causes(field_errors: list[FieldError]) -> list[errors.StatusCause]:
    # kubectl prints "<field>: <message>" per cause: the cause's message is the body without the field.
    return [errors.StatusCause(field=e.field, reason=str(e.type), message=e.body) for e in field_errors]


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a JSON object")
    meta = body.get("metadata")
    if meta is None:
        body["metadata"] = meta = {}
    if not isinstance(meta, dict):
        raise errors.BadRequest("metadata must be a JSON object")
    return body


def _check_type(body: dict[str, Any], rtype: ResourceType) -> None:
    api_version = body.setdefault("apiVersion", rtype.api_version)
    kind = body.setdefault("kind", rtype.kind)
    if api_version != rtype.api_version:
        raise errors.BadRequest(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rtype.api_version})"
        )
    if kind != rtype.kind:
        raise errors.BadRequest(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")


def _set_namespace(meta: dict[str, Any], rtype: ResourceType, namespace: str) -> None:
    if rtype.namespaced:
        given = meta.get("namespace")
        if given and given != namespace:
            raise errors.BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)


def _validate(body: dict[str, Any], rtype: ResourceType, old: Callable[[], dict[str, Any]] | None = None) -> None:
    meta = body["metadata"]
    validator = _NAME_VALIDATORS.get(rtype.plural, name_is_dns1123_subdomain)
    problems = validate_object_meta(meta, namespaced=rtype.namespaced, name_validator=validator)
    problems.extend(_validate_kind_specific(body, rtype))
    problems.extend(validate_kind(rtype.group, rtype.kind, body, namespaced=rtype.namespaced))
    if old is not None and (rtype.group, rtype.kind) in UPDATE_CHECKED:
        problems.extend(validate_kind_update(rtype.group, rtype.kind, old(), body))
    if old is not None and rtype.plural == "priorityclasses":
        problems.extend(validate_priority_class_update(old(), body))
    if problems:
        raise errors.invalid(rtype.kind, rtype.group, str(meta.get("name", "")), _causes(problems))


def _validate_data_map(body: dict[str, Any], field: str, *, values_are_strings: bool) -> list[FieldError]:
    data = body.get(field)
    if data is None:
        return []
    if not isinstance(data, dict):
        return [FieldError.type_invalid(field, data, "must be of type object")]
    problems: list[FieldError] = []
    for key, value in data.items():
        if not key or not set(key) <= _CONFIG_KEY_CHARS or len(key) > 253:
            problems.append(
                FieldError.invalid(
                    f"{field}[{key}]", key,
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                    "'[-._a-zA-Z0-9]+')",
                )
            )
        if values_are_strings and not isinstance(value, str):
            problems.append(FieldError.type_invalid(f"{field}[{key}]", value, "must be of type string"))
    return problems


def _validate_kind_specific(body: dict[str, Any], rtype: ResourceType) -> list[FieldError]:
    if rtype.plural == "configmaps":
        return _validate_data_map(body, "data", values_are_strings=True) + _validate_data_map(
            body, "binaryData", values_are_strings=True
        )
    if rtype.plural == "secrets":
        return _validate_data_map(body, "data", values_are_strings=True) + _validate_data_map(
            body, "stringData", values_are_strings=True
        )
    if rtype.plural == "poddisruptionbudgets":
        return validate_budget(body)
    if rtype.plural == "pods":
        containers = (body.get("spec") or {}).get("containers")
        if not isinstance(containers, list) or not containers:
            return [FieldError.required("spec.containers", "")]
        problems = []
        policy = (body.get("spec") or {}).get("restartPolicy")
        if policy is not None and policy not in ("Always", "OnFailure", "Never"):
            problems.append(FieldError.not_supported("spec.restartPolicy", policy, ["Always", "OnFailure", "Never"]))
        for i, container in enumerate(containers):
            if not isinstance(container, dict):
                problems.append(FieldError.type_invalid(f"spec.containers[{i}]", container, "must be of type object"))
                continue
            if not container.get("name"):
                problems.append(FieldError.required(f"spec.containers[{i}].name", ""))
            if not container.get("image"):
                problems.append(FieldError.required(f"spec.containers[{i}].image", ""))
        return problems
    if rtype.plural == "jobs" and rtype.group == "batch":
        spec = body.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        mode = spec.get("completionMode")
        if mode not in (None, "NonIndexed", "Indexed"):
            return [FieldError.not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"])]
        if mode == "Indexed" and spec.get("completions") is None:
            return [FieldError.required("spec.completions", "when completion mode is Indexed")]
    if rtype.plural == "priorityclasses":
        return validate_priority_class(body)
    if rtype.plural == "controllerrevisions":
        number = body.get("revision")
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            return [FieldError.invalid("revision", number, "must be greater than or equal to 0")]
    return []


def _generate_name(meta: dict[str, Any]) -> None:
    if not meta.get("name") and meta.get("generateName"):
        suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
        meta["name"] = f"{meta['generateName'][:58]}{suffix}"


def _default_status(body: dict[str, Any], rtype: ResourceType) -> None:
    if rtype.plural == "pods":
        body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rtype.plural == "namespaces":
        body["status"] = {"phase": "Active"}
        body.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        body["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = body["metadata"].get("name", "")
    elif rtype.has_status and rtype.plural != "nodes":  # a kubelet registers its Node with its status
        body.pop("status", None)


def _generate_job_selector(body: dict[str, Any], rtype: ResourceType) -> None:
    """Upstream's job strategy: unless ``manualSelector``, select the pods by the Job's own uid.

    The uid is chosen here, on the proposer (the store keeps a uid already set), because the selector
    and the template labels must name it; upstream fills the uid in before this step too.
    """
    spec = body.get("spec")
    if rtype.group != "batch" or rtype.plural != "jobs" or not isinstance(spec, dict) or spec.get("manualSelector"):
        return
    meta = body["metadata"]
    job_uid = meta.setdefault("uid", str(uuid.uuid4()))
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}}
    template = spec.get("template")
    if isinstance(template, dict):
        template_meta = template.setdefault("metadata", {})
        if isinstance(template_meta, dict):
            labels = template_meta.get("labels")
            labels = labels if isinstance(labels, dict) else {}
            name = str(meta.get("name", ""))
            labels.update({"batch.kubernetes.io/controller-uid": job_uid, "batch.kubernetes.io/job-name": name,
                           "controller-uid": job_uid, "job-name": name})
            template_meta["labels"] = labels


def _normalize(body: dict[str, Any], rtype: ResourceType) -> None:
    """What kube-apiserver's decoding and conversion do to every write (before defaulting)."""
    if rtype.plural == "secrets" and isinstance(body.get("stringData"), dict):
        data = body.setdefault("data", {}) or {}
        for key, value in body.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        body["data"] = data
    for spec in _pod_specs(body, rtype):
        for field in ("containers", "initContainers"):
            for container in spec.get(field) or ():
                if isinstance(container, dict):
                    container.setdefault("resources", {})  # Go always writes the empty struct


def _pod_specs(body: dict[str, Any], rtype: ResourceType) -> list[dict[str, Any]]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return []
    if rtype.plural == "pods":
        return [spec]
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [template["spec"]]
    return []


def prepare_create(rtype: ResourceType, body: Any, *, namespace: str) -> dict[str, Any]:
    """Validate and default a create; returns the object to propose (without uid/timestamps)."""
    obj = _require_object(body)
    _check_type(obj, rtype)
    meta = obj["metadata"]
    if meta.get("resourceVersion"):
        raise errors.BadRequest("resourceVersion should not be set on objects to be created")
    for field in _SERVER_SET_META:
        meta.pop(field, None)
    _set_namespace(meta, rtype, namespace)
    _generate_name(meta)
    _default_status(obj, rtype)
    _normalize(obj, rtype)
    apply_defaults(rtype.kind, rtype.api_version, obj)
    _generate_job_selector(obj, rtype)
    _validate(obj, rtype)
    return obj


def prepare_update(
    rtype: ResourceType, body: Any, *, namespace: str, name: str, subresource: str | None,
    old: Callable[[], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], int | None]:
    """Validate an update; returns the object and the resourceVersion precondition (None: unconditional).

    ``old`` returns the stored object, for kinds with immutable fields; it is called only for them."""
    obj = _require_object(body)
    _check_type(obj, rtype)
    meta = obj["metadata"]
    given_name = meta.get("name")
    if given_name and given_name != name:
        raise errors.BadRequest(f"the name of the object ({given_name}) does not match the name on the URL ({name})")
    meta["name"] = name
    _set_namespace(meta, rtype, namespace)
    expect_rv = parse_resource_version(meta.get("resourceVersion"), field="metadata.resourceVersion")
    if subresource is None:
        _normalize(obj, rtype)
        apply_defaults(rtype.kind, rtype.api_version, obj)
        _validate(obj, rtype, old)
    return obj, expect_rv


def parse_resource_version(value: Any, *, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"{field}: invalid resource version {value!r}") from None
    if rv < 0:
        raise errors.BadRequest(f"{field}: invalid resource version {value!r}")
    return rv
