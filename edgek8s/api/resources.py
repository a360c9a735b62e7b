"""CRUD on the Kubernetes REST paths: get, list, create, update (+status), delete, deletecollection.

Every handler validates the whole request (path, query, body) before it proposes anything, so a
rejected request changes nothing; a write is one Raft command, applied whole or not at all.

resourceVersion on reads: unset = linearizable (a Raft barrier first), "0" = this replica as it is,
N = not older than N (waits until this replica has applied N).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgek8s.api.admission import admit_create
from edgek8s.api.authz import admit_node_write
from edgek8s.api.context import STORE, json_response, parse_json, raw_response, read_body, read_json
from edgek8s.api.eviction import evict
from edgek8s.api.listing import decode_continue, list_body, paginate, parse_selection
from edgek8s.api.negotiation import (
    add_warnings,
    check_fields,
    field_manager,
    table_response_for_list,
    table_response_for_object,
    wants_table,
)
from edgek8s.api.patching import SCALABLE, get_scale, handle_patch, put_scale
from edgek8s.api.paths import Target
from edgek8s.api.watching import serve_watch
from edgek8s.api.writes import (
    body_uid,
    check_propagation_policy,
    delete_object,
    prepare_created,
    prepare_updated,
    store_created,
)
from edgek8s.model import errors
from edgek8s.registry.deletion import parse_grace_period
from edgek8s.registry.strategy import parse_resource_version
from edgek8s.store.raftstore import RaftStore
from edgek8s.store.state import encode_object


def _is_true(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def _read_consistency(request: web.Request) -> tuple[bool, int | None]:
    """(consistent, min_rv) from the resourceVersion query parameter."""
    value = request.query.get("resourceVersion", "")
    if value == "":
        return True, None
    rv = parse_resource_version(value, field="resourceVersion")
    return False, rv or None


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.BadRequest(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _require_namespace(target: Target) -> str:
    if target.rtype.namespaced and target.namespace is None:
        raise errors.MethodNotAllowed(
            f"the server does not allow this method on the requested resource ({target.rtype.plural})"
        )
    return target.namespace or ""


async def handle_collection(request: web.Request, target: Target) -> web.StreamResponse:
    store = request.app[STORE]
    if request.method == "GET":
        if _is_true(request.query.get("watch")):
            return await serve_watch(request, target)
        return await _list(request, store, target)
    if request.method == "POST":
        return await _create(request, store, target)
    if request.method == "DELETE":
        return await _delete_collection(request, store, target)
    raise errors.MethodNotAllowed(f"{request.method} is not supported on a collection")


async def handle_object(request: web.Request, target: Target) -> web.StreamResponse:
    store = request.app[STORE]
    if target.subresource == "scale" and target.rtype.plural in SCALABLE:
        if request.method == "GET":
            return await get_scale(request, target)
        if request.method == "PUT":
            return await put_scale(request, target)
        if request.method == "PATCH":
            return await handle_patch(request, target)
        raise errors.MethodNotAllowed(f"{request.method} is not supported on scale")
    if target.subresource == "binding" and target.rtype.plural == "pods":
        if request.method != "POST":
            raise errors.MethodNotAllowed(f"{request.method} is not supported on binding")
        return await _bind(request, store, target)
    if target.subresource == "eviction" and target.rtype.plural == "pods" and target.rtype.group == "":
        if request.method != "POST":
            raise errors.MethodNotAllowed(f"{request.method} is not supported on eviction")
        return await evict(request, store, target)
    if target.subresource == "token" and target.rtype.plural == "serviceaccounts":
        raise errors.MethodNotAllowed("edgek8s does not issue service account tokens (TokenRequest is not supported; "
                                      "see docs/kinds.md)")
    if target.subresource not in (None, "status"):
        raise errors.NotFound(f"the server could not find the requested resource ({target.subresource})")
    if target.subresource == "status" and not target.rtype.has_status:
        raise errors.NotFound(f"{target.rtype.plural} have no status subresource")
    if request.method == "GET":
        return await _get(request, store, target)
    if request.method == "PUT":
        return await _update(request, store, target)
    if request.method == "PATCH":
        return await handle_patch(request, target)
    if request.method == "DELETE" and target.subresource is None:
        return await _delete(request, store, target)
    raise errors.MethodNotAllowed(f"{request.method} is not supported on this resource")


async def _get(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    assert target.name is not None
    consistent, min_rv = _read_consistency(request)
    obj = await store.get(target.rtype, target.namespace or "", target.name, consistent=consistent, min_rv=min_rv)
    if wants_table(request):
        return table_response_for_object(request, target.rtype, obj)
    return raw_response(obj.raw)


async def _list(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    query = request.query
    selection = parse_selection(target.rtype, query.get("labelSelector", ""), query.get("fieldSelector", ""))
    try:
        limit = int(query.get("limit", "0") or 0)
    except ValueError:
        raise errors.BadRequest(f"limit: invalid value {query.get('limit')!r}") from None
    if limit < 0:
        raise errors.BadRequest("limit must not be negative")
    token = None
    if query.get("continue"):
        if query.get("resourceVersion") not in (None, ""):
            raise errors.BadRequest("specifying resource version is not allowed when using continue")
        token = decode_continue(query["continue"])
        consistent, min_rv = False, None
    else:
        consistent, min_rv = _read_consistency(request)
    objects, rv = await store.list(target.rtype, target.namespace, consistent=consistent, min_rv=min_rv)
    items, cont, remaining, list_rv = paginate(objects, selection, limit=limit, token=token, rv=rv)
    if wants_table(request):
        return await table_response_for_list(
            request, target.rtype, items, rv=list_rv, cont=cont, remaining=remaining
        )
    return raw_response(list_body(target.rtype, items, rv=list_rv, cont=cont, remaining=remaining))


async def _create(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    namespace = _require_namespace(target)
    dry_run = _dry_run(request)
    raw = await read_body(request)
    body = parse_json(raw)
    check_fields(request, target.rtype, raw, body)
    obj = prepare_created(target.rtype, body, namespace=namespace, manager=field_manager(request, "unknown"))
    if dry_run:
        await admit_create(store, target.rtype, obj)
        return add_warnings(request, raw_response(encode_object(obj), status=201))
    stored = await store_created(store, target.rtype, obj)
    return add_warnings(request, raw_response(stored.raw, status=201))


async def _update(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    assert target.name is not None
    dry_run = _dry_run(request)
    raw = await read_body(request)
    body = parse_json(raw)
    check_fields(request, target.rtype, raw, body)
    expect_uid = body_uid(body)
    obj, expect_rv = prepare_updated(
        store, target.rtype, body, namespace=target.namespace or "", name=target.name,
        subresource=target.subresource, manager=field_manager(request, "unknown"),
    )
    if target.rtype.plural == "nodes" and not target.rtype.group:
        current, _rv = store.state.get(target.rtype.id, "", target.name)
        if current is not None:
            admit_node_write(request, target.rtype, current.labels, obj)
            if expect_rv is None and target.subresource != "status":
                # The labels checked are the ones replaced. Not for a status write: apply takes only its status,
                # and pinned, the kubelet's unconditional status writes lost to any concurrent node write.
                expect_rv = current.rv
    if dry_run:
        return add_warnings(request, raw_response(encode_object(obj)))
    stored = await store.update(target.rtype, obj, expect_rv=expect_rv, subresource=target.subresource,
                                expect_uid=expect_uid)
    return add_warnings(request, raw_response(stored.raw))


async def _bind(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    """pods/binding: a Binding names the node; 409 when the pod is already assigned."""
    assert target.name is not None
    binding = await read_json(request)
    node = (binding.get("target") or {}).get("name") if isinstance(binding, dict) else None
    if not isinstance(node, str) or not node:
        raise errors.Invalid(f'Binding "{target.name}" is invalid: target.name: Required value')
    uid = (binding.get("metadata") or {}).get("uid") or None
    await store.bind(target.namespace or "", target.name, node=node, expect_uid=uid)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         status=201)


async def _delete_options(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    options = await read_json(request)
    if not isinstance(options, dict):
        raise errors.BadRequest("DeleteOptions must be a JSON object")
    return options


def _grace_period(request: web.Request, options: dict[str, Any]) -> int | None:
    """DeleteOptions.gracePeriodSeconds, else the ``gracePeriodSeconds`` query parameter."""
    if options.get("gracePeriodSeconds") is not None:
        return parse_grace_period(options["gracePeriodSeconds"])
    return parse_grace_period(request.query.get("gracePeriodSeconds"))


async def _delete(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    assert target.name is not None
    dry_run = _dry_run(request)
    options = await _delete_options(request)
    preconditions = options.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise errors.BadRequest("preconditions must be a JSON object")
    expect_rv = parse_resource_version(preconditions.get("resourceVersion"), field="preconditions.resourceVersion")
    propagation = check_propagation_policy(options.get("propagationPolicy") or request.query.get("propagationPolicy"))
    if propagation is None and (options.get("orphanDependents") or request.query.get("orphanDependents") == "true"):
        propagation = "Orphan"  # the deprecated form kubectl no longer sends, but clients may
    grace_period = _grace_period(request, options)  # a bad value is a 400 even on a dry run
    if dry_run:
        obj = await store.get(target.rtype, target.namespace or "", target.name, consistent=True)
        return raw_response(obj.raw)
    stored = await delete_object(
        store,
        target.rtype,
        target.namespace or "",
        target.name,
        uid=preconditions.get("uid"),
        resource_version=expect_rv,
        propagation=propagation,
        grace_period=grace_period,
    )
    if stored is not None and stored.deleting and stored.name == target.name:
        return raw_response(stored.raw)  # still there (finalizers, a terminating namespace): the object
    # Gone: upstream answers with a Success Status naming what was deleted.
    details = {"name": target.name, "group": target.rtype.group, "kind": target.rtype.plural}
    if stored is not None:
        details["uid"] = stored.uid
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": details})


async def _delete_collection(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    _require_namespace(target)
    selection = parse_selection(
        target.rtype, request.query.get("labelSelector", ""), request.query.get("fieldSelector", "")
    )
    options = await _delete_options(request)
    grace_period = _grace_period(request, options)
    objects, rv = await store.list(target.rtype, target.namespace, consistent=True)
    deleted = []
    for obj in objects:
        if not selection.matches(obj):
            continue
        try:
            gone = await delete_object(store, target.rtype, obj.namespace, obj.name, uid=obj.uid,
                                       grace_period=grace_period)
            if gone is not None:
                deleted.append(gone)
        except (errors.NotFound, errors.Conflict):
            continue  # deleted or replaced concurrently: not ours to delete any more
    return raw_response(list_body(target.rtype, deleted, rv=rv, cont="", remaining=None))
