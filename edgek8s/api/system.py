"""Health, version, and edgek8s's own admin endpoints.

``/edgek8s/v1/status``: this master's Raft view and the masters registered in the store.
``/edgek8s/v1/snapshot``: a consistent export of every object (JSON lines) for ``edgek8s snapshot save``.
``/edgek8s/v1/members``: add (POST ``{"address": "host:port"}``) or remove (DELETE ``?address=``) a master.
"""

from __future__ import annotations

import json
import platform

from aiohttp import web

from edgek8s.api.context import CONFIG, CONTROLLER_STATUS, STORE, json_response, read_json
from edgek8s.model import errors
from edgek8s.store.state import EXPORT_FORMAT


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ready(timeout=2.0)
    except errors.StatusError as exc:
        return web.Response(status=503, text=f"not ready: {exc.message}")
    return web.Response(text="ok")


async def version(request: web.Request) -> web.Response:
    return json_response(
        {
            "major": "1",
            "minor": "32",  # kubectl's dispatcher picks its client by this value (see docs)
            "gitVersion": "v1.32.0-edgek8s.0.1.0",
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "2026-11-29T00:00:00Z",
            "goVersion": f"python{platform.python_version()}",
            "compiler": "cpython",
            "platform": f"linux/{platform.machine()}",
        }
    )


async def cluster_status(request: web.Request) -> web.Response:
    store = request.app[STORE]
    config = request.app[CONFIG]
    raft = store.raft.status()
    masters = dict(store.state.masters)
    return json_response(
        {
            "name": config.name,
            "raftAddress": raft.address,
            "apiURL": config.api_url,
            "leader": raft.leader,
            "isLeader": raft.is_leader,
            "term": raft.term,
            "commitIndex": raft.commit_index,
            "appliedIndex": raft.applied_index,
            "lastLogIndex": raft.last_log_index,
            "members": raft.members,
            "connectedPeers": raft.connected,
            "journalFsyncs": raft.fsyncs,
            "objects": store.state.count(),
            "watchers": store.hub.watcher_count(),
            "masters": masters,
            "leaderEpoch": store.state.leader_epoch,
            "leaderHolder": store.state.leader_holder,
            "leaderClaimIndex": store.state.leader_claim_index,
            "controllers": request.app[CONTROLLER_STATUS]() if CONTROLLER_STATUS in request.app else None,
        }
    )


async def snapshot(request: web.Request) -> web.StreamResponse:
    """A linearizable export: a barrier first, then every object as of one index."""
    store = request.app[STORE]
    await store.ready(timeout=5.0)
    objects = list(store.state.iter_all())
    header = {"format": EXPORT_FORMAT, "rv": store.state.rv, "masters": store.state.masters, "objects": len(objects)}
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(json.dumps(header).encode() + b"\n")
    batch: list[bytes] = []
    for rid, namespace, name, obj in objects:
        prefix = json.dumps({"res": rid, "ns": namespace, "name": name})[:-1].encode()
        batch.append(prefix + b',"object":' + obj.raw + b"}\n")
        if len(batch) >= 512:
            await response.write(b"".join(batch))
            batch.clear()
    if batch:
        await response.write(b"".join(batch))
    await response.write_eof()
    return response


async def add_member(request: web.Request) -> web.Response:
    body = await read_json(request)
    address = body.get("address") if isinstance(body, dict) else None
    if not isinstance(address, str) or ":" not in address:
        raise errors.BadRequest('expected {"address": "HOST:PORT"}')
    store = request.app[STORE]
    if address in store.raft.status().members:
        raise errors.AlreadyExists(f"{address} is already a member")
    await store.add_member(address)
    return json_response({"members": store.raft.status().members})


async def remove_member(request: web.Request) -> web.Response:
    address = request.query.get("address", "")
    store = request.app[STORE]
    if address not in store.raft.status().members:
        raise errors.NotFound(f"{address!r} is not a member")
    await store.remove_member(address)
    return json_response({"members": store.raft.status().members})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version", version)
    app.router.add_get("/edgek8s/v1/status", cluster_status)
    app.router.add_get("/edgek8s/v1/snapshot", snapshot)
    app.router.add_post("/edgek8s/v1/members", add_member)
    app.router.add_delete("/edgek8s/v1/members", remove_member)
