"""Content negotiation for reads (Table or plain JSON) and field validation for writes.

kubectl's human output asks ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...``: the server
computes every cell (``registry.tables``). ``includeObject`` (None | Metadata | Object) says what each row
carries. Everything else gets the plain object or list.

``fieldValidation`` (Strict | Warn | Ignore; Warn when absent, as upstream since 1.27): unknown and
duplicate fields in a write body are an error (400, upstream's "strict decoding error" message), a
``Warning: 299`` header per field, or nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

from aiohttp import web

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.registry import schema
from edgek8s.registry.tables import INCLUDE_METADATA, table_for_list, table_for_object
from edgek8s.store.state import StoredObject

TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
_WARNINGS = web.RequestKey("warnings", list)


def wants_table(request: web.Request) -> bool:
    for part in request.headers.get("Accept", "").split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def _include_object(request: web.Request) -> str:
    return request.query.get("includeObject", INCLUDE_METADATA) or INCLUDE_METADATA


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


_THREAD_THRESHOLD = 200  # rows: a bigger Table is rendered off the event loop


async def table_response_for_list(
    request: web.Request, rtype: ResourceType, items: list[StoredObject], *, rv: int, cont: str, remaining: int | None
) -> web.Response:
    include = _include_object(request)

    def render() -> bytes:
        table = table_for_list(
            rtype.kind, [obj.decode() for obj in items], now=_now(), include_object=include,
            resource_version=str(rv), continue_token=cont, remaining=remaining,
        )
        return json.dumps(table).encode()

    try:
        # Decoding and rendering thousands of rows takes tens of milliseconds of CPU: keep the loop
        # (small GETs, watches, writes) responsive while a big Table is built.
        body = await asyncio.to_thread(render) if len(items) > _THREAD_THRESHOLD else render()
    except ValueError as exc:
        raise errors.BadRequest(str(exc)) from None
    return web.Response(body=body, headers={"Content-Type": TABLE_CONTENT_TYPE})


def table_response_for_object(request: web.Request, rtype: ResourceType, obj: StoredObject) -> web.Response:
    try:
        table = table_for_object(rtype.kind, obj.decode(), now=_now(), include_object=_include_object(request))
    except ValueError as exc:
        raise errors.BadRequest(str(exc)) from None
    return web.Response(body=json.dumps(table).encode(), headers={"Content-Type": TABLE_CONTENT_TYPE})


def table_event(request: web.Request, rtype: ResourceType, kind: str, obj: StoredObject, *, first: bool) -> bytes:
    table = table_for_object(rtype.kind, obj.decode(), now=_now(), include_object=_include_object(request),
                             headers=first)
    return json.dumps({"type": kind, "object": table}).encode() + b"\n"


def field_validation(request: web.Request) -> str:
    mode = request.query.get("fieldValidation", "Warn") or "Warn"
    if mode not in ("Strict", "Warn", "Ignore"):
        raise errors.BadRequest(
            f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"'
        )
    return mode


def check_fields(request: web.Request, rtype: ResourceType, raw: bytes, obj: Any) -> None:
    """Apply the request's fieldValidation to a JSON body; unknown fields never reach the store.

    Strict: 400 on unknown or duplicate fields. Warn: a Warning header each, and they are dropped.
    Ignore: dropped silently (what upstream's decoder does with fields its types do not have).
    """
    mode = field_validation(request)
    if not isinstance(obj, dict) or not schema.known_kind(rtype.kind, rtype.api_version):
        return
    if mode != "Ignore":
        _parsed, problems = schema.strict_field_errors(rtype.kind, rtype.api_version, raw, obj)
        report_field_problems(request, rtype, problems, mode)
        if not problems:
            return  # a clean body: no second walk on the hot path
    drop_unknown_fields(rtype, obj)


def field_manager(request: web.Request, default: str) -> str:
    """The ``fieldManager`` query parameter (upstream limits it to 128 bytes), or ``default``."""
    manager = request.query.get("fieldManager", "") or default
    if len(manager.encode()) > 128:
        raise errors.Invalid("fieldManager: Too long: may not be more than 128 bytes")
    return manager


def check_object_fields(request: web.Request, rtype: ResourceType, obj: dict[str, Any]) -> None:
    """The same for an object built by the server (a patched object)."""
    mode = field_validation(request)
    if not schema.known_kind(rtype.kind, rtype.api_version):
        return
    if mode != "Ignore":
        problems = [f'unknown field "{path}"' for path in schema.unknown_fields(rtype.kind, rtype.api_version, obj)]
        report_field_problems(request, rtype, problems, mode)
    drop_unknown_fields(rtype, obj)


def _path_steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            steps.append(int(index))
            rest = rest.removeprefix("[")
    return steps


def drop_unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> None:
    for path in schema.unknown_fields(rtype.kind, rtype.api_version, obj):
        *parents, leaf = _path_steps(path)
        node: Any = obj
        for step in parents:
            node = node[step]
        del node[leaf]


def report_field_problems(request: web.Request, rtype: ResourceType, problems: list[str], mode: str) -> None:
    if not problems:
        return
    if mode == "Strict":
        raise errors.BadRequest(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"strict decoding error: {', '.join(problems)}"
        )
    request.setdefault(_WARNINGS, []).extend(problems)


def add_warnings(request: web.Request, response: web.Response) -> web.Response:
    for problem in request.get(_WARNINGS, []):
        response.headers.add("Warning", '299 - ' + json.dumps(problem))
    return response
