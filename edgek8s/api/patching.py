"""PATCH (JSON patch, merge patch, strategic merge patch, server-side apply) and the scale subresource.

A patch is applied to the object as read linearizably, and written back with that object's
resourceVersion as a precondition; if someone else wrote in between (409), the patch is re-applied to
the new version, as kube-apiserver's GuaranteedUpdate does, unless the patch itself names a
resourceVersion (then the 409 is the answer). The patched object goes through the same strategy as a
PUT (identity checks, defaulting, validation) and the same field validation.

``deployments/scale`` and ``replicasets/scale`` read and write ``spec.replicas`` through an
``autoscaling/v1`` Scale object.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from edgek8s.api.authz import admit_node_write
from edgek8s.api.context import STORE, json_response, raw_response, read_body
from edgek8s.api.negotiation import add_warnings, check_object_fields, field_manager
from edgek8s.api.paths import Target
from edgek8s.api.writes import PATCH_RETRIES, patch_error, patch_object, store_created
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.model.selectors import LabelSelector
from edgek8s.registry import fieldmanager
from edgek8s.registry.patch import PatchError, apply_patch
from edgek8s.registry.strategy import parse_resource_version, prepare_create, prepare_update
from edgek8s.store.raftstore import RaftStore, now_rfc3339
from edgek8s.store.state import StoredObject

APPLY_PATCH = "application/apply-patch+yaml"
SCALABLE = frozenset({"deployments", "replicasets"})


async def handle_patch(request: web.Request, target: Target) -> web.StreamResponse:
    assert target.name is not None
    store = request.app[STORE]
    raw = await read_body(request)
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == APPLY_PATCH:
        return await _server_side_apply(request, store, target, raw)
    if target.subresource == "scale":
        return await _patch_scale(request, store, target, raw, content_type)
    stored = await patch_object(
        store, target.rtype, target.namespace or "", target.name, raw, content_type,
        manager=field_manager(request, "kubectl-patch"), subresource=target.subresource,
        pinned=_patch_sets_resource_version(raw, content_type),
        check=lambda current, patched: _check_patched(request, target.rtype, current, patched),
    )
    return add_warnings(request, raw_response(stored.raw))


def _check_patched(request: web.Request, rtype: ResourceType, current: StoredObject, patched: dict[str, Any]) -> None:
    check_object_fields(request, rtype, patched)
    admit_node_write(request, rtype, current.labels, patched)


def _patch_sets_resource_version(raw: bytes, content_type: str) -> bool:
    """Whether the patch names a resourceVersion itself: then it is a precondition, never retried."""
    try:
        patch = json.loads(raw)
    except ValueError:
        return False
    if isinstance(patch, list):  # JSON patch
        return any(isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in patch)
    return isinstance(patch, dict) and "resourceVersion" in (patch.get("metadata") or {})


async def _server_side_apply(request: web.Request, store: RaftStore, target: Target, raw: bytes) -> web.Response:
    assert target.name is not None
    manager = request.query.get("fieldManager", "")
    if not manager:
        raise errors.BadRequest("PATCH with Content-Type application/apply-patch+yaml requires a fieldManager")
    force = request.query.get("force", "false").lower() in ("1", "true")
    import yaml  # here: only server-side apply parses YAML, and PyYAML costs ~0.7 MB on every master

    try:
        config = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"error decoding YAML: {exc}") from None
    if not isinstance(config, dict):
        raise errors.BadRequest("the apply configuration must be an object")
    check_object_fields(request, target.rtype, config)
    for _attempt in range(PATCH_RETRIES):
        try:
            current: StoredObject | None = await store.get(
                target.rtype, target.namespace or "", target.name, consistent=True
            )
        except errors.NotFound:
            current = None
        try:
            applied = fieldmanager.server_side_apply(
                None if current is None else current.decode(), config, manager=manager, force=force,
                kind=target.rtype.kind, api_version=target.rtype.api_version, now=now_rfc3339(),
            )
        except fieldmanager.ApplyConflict as exc:
            raise _conflict(exc, target.rtype) from None
        except fieldmanager.ApplyError as exc:
            raise _apply_error(exc) from None
        try:
            if current is None:
                admit_node_write(request, target.rtype, None, applied)
                obj = prepare_create(target.rtype, applied, namespace=target.namespace or "")
                stored = await store_created(store, target.rtype, obj)
                return add_warnings(request, raw_response(stored.raw, status=201))
            admit_node_write(request, target.rtype, current.labels, applied)
            applied.setdefault("metadata", {})["resourceVersion"] = str(current.rv)
            obj, expect_rv = prepare_update(target.rtype, applied, namespace=target.namespace or "",
                                            name=target.name, subresource=target.subresource, old=current.decode)
            stored = await store.update(target.rtype, obj, expect_rv=expect_rv, subresource=target.subresource)
            return add_warnings(request, raw_response(stored.raw))
        except (errors.Conflict, errors.AlreadyExists):
            continue
    raise errors.Conflict(f'{target.rtype.plural} "{target.name}" kept changing during apply; try again')


def _apply_error(exc: fieldmanager.ApplyError) -> errors.StatusError:
    code = getattr(exc, "code", 400)
    if code == 422:
        return errors.Invalid(str(exc))
    if code >= 500:
        return errors.InternalError(str(exc))
    return errors.BadRequest(str(exc))


def _conflict(exc: fieldmanager.ApplyConflict, rtype: ResourceType) -> errors.Conflict:
    causes = tuple(
        errors.StatusCause(field=path, reason="FieldManagerConflict",
                           message=f'conflict with "{manager}" using {api_version}')
        for manager, api_version, path in exc.conflicts
    )
    return errors.Conflict(exc.message(), kind=rtype.plural, group=rtype.group, causes=causes)


# --- scale ---------------------------------------------------------------------------------------------


def scale_of(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = LabelSelector.from_dict(spec.get("selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {"replicas": int(status.get("replicas", 0)), "selector": str(selector)},
    }


async def get_scale(request: web.Request, target: Target) -> web.Response:
    assert target.name is not None
    store = request.app[STORE]
    current = await store.get(target.rtype, target.namespace or "", target.name, consistent=True)
    return json_response(scale_of(target.rtype, current.decode()))


async def put_scale(request: web.Request, target: Target) -> web.Response:
    assert target.name is not None
    store = request.app[STORE]
    try:
        scale = json.loads(await read_body(request))
        replicas = int((scale.get("spec") or {}).get("replicas", 0))  # Go omits a zero replicas
    except (ValueError, AttributeError, TypeError):
        raise errors.BadRequest("expected an autoscaling/v1 Scale with spec.replicas") from None
    expect_rv = parse_resource_version((scale.get("metadata") or {}).get("resourceVersion"),
                                       field="metadata.resourceVersion")
    return await _write_replicas(store, target, replicas, expect_rv)


async def _patch_scale(
    request: web.Request, store: RaftStore, target: Target, raw: bytes, content_type: str
) -> web.Response:
    assert target.name is not None
    current = await store.get(target.rtype, target.namespace or "", target.name, consistent=True)
    try:
        patched = apply_patch(scale_of(target.rtype, current.decode()), raw, content_type, kind="Scale",
                              api_version="autoscaling/v1")
        replicas = int(patched["spec"]["replicas"])
    except PatchError as exc:
        raise patch_error(exc) from None
    except (KeyError, TypeError, ValueError):
        raise errors.BadRequest("the patched Scale has no valid spec.replicas") from None
    return await _write_replicas(store, target, replicas, current.rv)


async def _write_replicas(store: RaftStore, target: Target, replicas: int, expect_rv: int | None) -> web.Response:
    assert target.name is not None
    if replicas < 0:
        raise errors.Invalid(f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: '
                             f"{replicas}: must be greater than or equal to 0")
    current = await store.get(target.rtype, target.namespace or "", target.name, consistent=True)
    obj = current.decode()
    obj.setdefault("spec", {})["replicas"] = replicas
    obj["metadata"]["resourceVersion"] = str(expect_rv if expect_rv is not None else current.rv)
    prepared, precondition = prepare_update(target.rtype, obj, namespace=target.namespace or "", name=target.name,
                                            subresource=None)
    stored = await store.update(target.rtype, prepared, expect_rv=precondition)
    return json_response(scale_of(target.rtype, stored.decode()))
