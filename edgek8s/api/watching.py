"""Watch streams: newline-delimited ``{"type": ..., "object": ...}`` over a chunked HTTP response.

- resourceVersion unset: synthetic ADDED events for the current state read linearizably, then live.
  "0": the same from this replica as it is. N: every change after N, replayed from history, then live;
  410 Gone (an ERROR event with an Expired Status, HTTP 200 as upstream) when N is older than history.
- ``allowWatchBookmarks``: a BOOKMARK carrying the newest resourceVersion whose events this stream
  has fully delivered, every ``bookmark_interval`` seconds of quiet.
- ``timeoutSeconds`` ends the stream cleanly; a watcher that falls behind is closed with an ERROR.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aiohttp import web

from edgek8s.api.context import CONFIG, STORE
from edgek8s.api.listing import parse_selection
from edgek8s.api.negotiation import TABLE_CONTENT_TYPE, table_event, wants_table
from edgek8s.api.paths import Target
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.registry.strategy import parse_resource_version
from edgek8s.store.state import EventType, StoredObject
from edgek8s.store.watch import Watcher, WatchHub

_BATCH = 256


def encode_event(kind: str, obj: StoredObject) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj.raw + b"}\n"


def _bookmark(rtype: ResourceType, rv: int) -> bytes:
    body = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": {"resourceVersion": str(rv)}}
    return json.dumps({"type": "BOOKMARK", "object": body}).encode() + b"\n"


def _error_event(error: errors.StatusError) -> bytes:
    return json.dumps({"type": "ERROR", "object": error.to_status()}).encode() + b"\n"


def _timeout(request: web.Request) -> float:
    value = request.query.get("timeoutSeconds")
    default = request.app[CONFIG].api.default_watch_timeout
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise errors.BadRequest(f"timeoutSeconds: invalid value {value!r}") from None
    return seconds if seconds > 0 else default


async def serve_watch(request: web.Request, target: Target) -> web.StreamResponse:
    store = request.app[STORE]
    rtype = target.rtype
    query = request.query
    selection = parse_selection(rtype, query.get("labelSelector", ""), query.get("fieldSelector", ""))
    timeout = _timeout(request)
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
    bookmark_interval = request.app[CONFIG].api.bookmark_interval
    rv_param = query.get("resourceVersion", "")

    initial: list[StoredObject] = []
    error: errors.StatusError | None = None
    watcher: Watcher | None = None
    if rv_param in ("", "0"):
        objects, from_rv = await store.list(rtype, target.namespace, consistent=rv_param == "")
        match = selection.predicate()
        initial = [obj for obj in objects if match(obj)]
    else:
        from_rv = parse_resource_version(rv_param, field="resourceVersion") or 0
    try:
        watcher = store.watch(rtype, target.namespace, from_rv, selection.predicate())
    except errors.Gone as exc:
        error = exc

    as_table = wants_table(request)
    first = [True]

    def encode(kind: str, obj: StoredObject) -> bytes:
        if not as_table:
            return encode_event(kind, obj)
        event = table_event(request, rtype, kind, obj, first=first[0])
        first[0] = False
        return event

    content_type = TABLE_CONTENT_TYPE if as_table else "application/json"
    response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if error is not None or watcher is None:
        await response.write(_error_event(error or errors.InternalError("watch failed")))
        await response.write_eof()
        return response

    try:
        for start in range(0, len(initial), _BATCH):
            chunk = initial[start : start + _BATCH]
            await response.write(b"".join(encode(EventType.ADDED, obj) for obj in chunk))
        await _stream(response, watcher, rtype, store.hub, timeout, bookmarks, bookmark_interval, encode)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        watcher.close()
    return response


async def _stream(
    response: web.StreamResponse,
    watcher: Watcher,
    rtype: ResourceType,
    hub: WatchHub,
    timeout: float,
    bookmarks: bool,
    bookmark_interval: float,
    encode: Callable[[str, StoredObject], bytes],
) -> None:
    deadline = time.monotonic() + timeout
    next_bookmark = time.monotonic() + bookmark_interval
    last_rv: int | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            # Never between two events of one Raft entry (they share its resourceVersion): the client
            # watches again after the last one it saw, and would never get the others.
            rest = [] if last_rv is None else watcher.rest_of(last_rv)
            if rest:
                await response.write(b"".join(encode(d.type, d.obj) for d in rest))
            break
        wait = deadline - now
        if bookmarks:
            wait = min(wait, max(next_bookmark - now, 0.0))
        try:
            delivery = await watcher.next(wait)
        except TimeoutError:
            if bookmarks and time.monotonic() >= next_bookmark:
                # The queue is empty, so everything up to progress_rv that matched was written.
                await response.write(_bookmark(rtype, hub.progress_rv))
                next_bookmark = time.monotonic() + bookmark_interval
            continue
        if delivery is None:
            if watcher.error is not None:
                await response.write(_error_event(watcher.error))
            break
        batch = [delivery, *watcher.drain_ready(_BATCH)]
        await response.write(b"".join(encode(d.type, d.obj) for d in batch))
        last_rv = batch[-1].obj.rv
    await response.write_eof()
