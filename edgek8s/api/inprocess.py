"""InProcessClient: a ``ClusterClient`` for components running inside a master (controllers, scheduler).

Writes take the same path as the HTTP handlers (``api.writes``: registry strategy, defaulting,
validation, managedFields, one store command), without JSON over HTTP. Reads are linearizable (a Raft
barrier, shared between concurrent readers); watches read this master's watch hub directly.

Every write carries ``fence`` (the leader epoch this client was made for, when given): once a newer
leader has claimed, ``apply`` rejects it with ``Fenced`` and nothing changes.

Objects passed in are copied before the strategy touches them, so a caller may build a write from parts
of cached (shared, read-only) objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edgek8s.api.listing import parse_selection
from edgek8s.api.writes import (
    body_uid,
    delete_object,
    patch_object,
    prepare_created,
    prepare_updated,
    store_created,
)
from edgek8s.client.interface import Binding, DeleteOptions, Obj, ObjectEvent, ObjectList
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.registry.patch import clone_json
from edgek8s.store.raftstore import RaftStore
from edgek8s.store.state import StoredObject

MERGE_PATCH = "application/merge-patch+json"
_IDLE_WAIT = 3600.0
BindResults = list[errors.StatusError | None]  # an alias: the method `list` shadows the builtin in the class


@dataclass(slots=True)
class WriteLog:
    """What a client wrote: for the history checks of fencing (a deposed leader's last write must come
    before its successor's claim, and its last write *attempt* before its successor's first).

    Attempt times are ``time.monotonic()``: CLOCK_MONOTONIC is one clock for every process of a machine
    (simulated hosts included), so a test can order the attempts of two masters.
    """

    writes: int = 0
    first_index: int = 0
    last_index: int = 0
    fenced: int = 0
    attempts: int = 0
    first_attempt_at: float = 0.0
    last_attempt_at: float = 0.0

    def attempted(self) -> None:
        self.attempts += 1
        self.last_attempt_at = time.monotonic()
        self.first_attempt_at = self.first_attempt_at or self.last_attempt_at

    def committed(self, index: int) -> None:
        self.writes += 1
        self.first_index = self.first_index or index
        self.last_index = max(self.last_index, index)


class InProcessClient:
    def __init__(self, store: RaftStore, *, manager: str, fence: int | None = None,
                 log: WriteLog | None = None) -> None:
        self._store = store
        self.manager = manager
        self.fence = fence
        self.log = log or WriteLog()

    def fenced(self, epoch: int, *, manager: str | None = None) -> InProcessClient:
        """The same client for a leader-only writer at ``epoch`` (with its own write log)."""
        return InProcessClient(self._store, manager=manager or self.manager, fence=epoch)

    async def _write(self, write: Awaitable[StoredObject]) -> StoredObject:
        self.log.attempted()  # ``write`` has not started yet: nothing is proposed before this
        try:
            stored = await write
        except errors.Fenced:
            self.log.fenced += 1
            raise
        self.log.committed(stored.rv)
        return stored

    # --- reads ---------------------------------------------------------------------------------------

    async def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        stored = await self._store.get(rtype, namespace, name, consistent=True)
        return stored.decode()

    async def list(
        self, rtype: ResourceType, namespace: str | None = None, *, label_selector: str = "",
        field_selector: str = "", consistent: bool = True,
    ) -> ObjectList:
        selection = parse_selection(rtype, label_selector, field_selector)
        objects, rv = await self._store.list(rtype, namespace, consistent=consistent)
        match = selection.predicate()
        return ObjectList([obj.decode() for obj in objects if match(obj)], rv)

    async def watch(
        self, rtype: ResourceType, namespace: str | None = None, *, resource_version: int,
        label_selector: str = "", field_selector: str = "", prefilter: Callable[[bytes], bool] | None = None,
    ) -> AsyncIterator[ObjectEvent]:
        """The hub's events, decoded; those the prefilter leaves out are never decoded."""
        selection = parse_selection(rtype, label_selector, field_selector)
        watcher = self._store.watch(rtype, namespace, resource_version, selection.predicate(), prefilter)
        try:
            while True:
                try:
                    delivery = await watcher.next(_IDLE_WAIT)
                except TimeoutError:
                    continue
                if delivery is None:
                    if watcher.error is not None:
                        raise watcher.error
                    return
                for item in [delivery, *watcher.drain_ready(256)]:
                    yield ObjectEvent(str(item.type), item.obj.decode())
        finally:
            watcher.close()

    # --- writes --------------------------------------------------------------------------------------

    async def create(self, rtype: ResourceType, obj: Obj) -> Obj:
        body = clone_json(obj)
        namespace = str((body.get("metadata") or {}).get("namespace") or "") if rtype.namespaced else ""
        if rtype.namespaced and not namespace:
            raise errors.BadRequest(f"a {rtype.kind} needs metadata.namespace")
        prepared = prepare_created(rtype, body, namespace=namespace, manager=self.manager)
        stored = await self._write(store_created(self._store, rtype, prepared, fence=self.fence))
        return stored.decode()

    async def _update(self, rtype: ResourceType, obj: Obj, subresource: str | None) -> Obj:
        body = clone_json(obj)
        meta = body.get("metadata") or {}
        expect_uid = body_uid(body)
        prepared, expect_rv = prepare_updated(
            self._store, rtype, body, namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
            subresource=subresource, manager=self.manager,
        )
        stored = await self._write(self._store.update(rtype, prepared, expect_rv=expect_rv, subresource=subresource,
                                                      fence=self.fence, expect_uid=expect_uid))
        return stored.decode()

    async def update(self, rtype: ResourceType, obj: Obj) -> Obj:
        return await self._update(rtype, obj, None)

    async def update_status(self, rtype: ResourceType, obj: Obj) -> Obj:
        return await self._update(rtype, obj, "status")

    async def patch(self, rtype: ResourceType, namespace: str, name: str, patch: Obj, *,
                    subresource: str | None = None) -> Obj:
        pinned = "resourceVersion" in (patch.get("metadata") or {})
        stored = await self._write(patch_object(
            self._store, rtype, namespace, name, json.dumps(patch).encode(), MERGE_PATCH, manager=self.manager,
            subresource=subresource, pinned=pinned, fence=self.fence,
        ))
        return stored.decode()

    async def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, options: DeleteOptions | None = None
    ) -> Obj | None:
        options = options or DeleteOptions()
        try:
            stored = await delete_object(
                self._store, rtype, namespace, name, uid=options.uid, resource_version=options.resource_version,
                propagation=options.propagation_policy, grace_period=options.grace_period_seconds, fence=self.fence,
            )
        except errors.Fenced:
            self.log.fenced += 1
            raise
        if stored is not None:
            self.log.committed(stored.rv)
        if stored is None or not stored.deleting or stored.name != name:
            return None
        result: dict[str, Any] = stored.decode()
        return result

    async def bind(self, namespace: str, name: str, *, node: str, uid: str | None = None) -> None:
        await self._write(self._store.bind(namespace, name, node=node, expect_uid=uid, fence=self.fence))

    async def bind_many(self, bindings: Sequence[Binding]) -> BindResults:
        try:
            index, results = await self._store.bind_many(
                [(b.namespace, b.name, b.node, b.uid) for b in bindings], fence=self.fence)
        except errors.Fenced:
            self.log.fenced += 1
            raise
        self.log.committed(index)
        return results
