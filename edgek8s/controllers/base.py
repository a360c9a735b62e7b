"""What every controller shares: workers over a workqueue, expectations, slow-start batches, owner refs.

A controller is informer handlers that enqueue keys, plus ``run_workers`` calling ``sync(key)``:

    informer events ──> handlers ──> WorkQueue ──> workers ──> sync(key) ──> client writes
                                       ^                          │ error: requeue with backoff
                                       └──────────────────────────┘ success: forget the backoff

- ``sync`` is level-triggered: it reads the informers' caches (never mutating them) and converges.
- ``Expectations`` remember creates/deletes a sync issued and the cache has not shown yet, so the next
  sync of the same key does not act twice on a stale cache (upstream's ControllerExpectations).
- ``slow_start_batch`` issues creates in batches of 1, 2, 4, ... and stops at the first failure, so a
  quota or validation error costs one request, not a thousand.
- ``Fenced`` from a write ends the worker: this master no longer leads (the gate stops everything).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edgek8s._util.workqueue import ShutDown, WorkQueue
from edgek8s.client.informer import Handlers, Informer, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.model.selectors import LabelSelector

logger = logging.getLogger(__name__)

T = TypeVar("T")
EXPECTATIONS_TTL = 300.0  # upstream's ExpectationsTimeout: a lost watch event cannot wedge a key forever


async def run_workers(
    queue: WorkQueue[str], sync: Callable[[str], Awaitable[None]], *, workers: int, name: str
) -> None:
    """Run ``workers`` workers until cancelled (or a write is fenced, which is raised)."""
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(workers):
                group.create_task(_worker(queue, sync, name), name=f"{name}-worker-{i}")
    finally:
        queue.shutdown()


async def _worker(queue: WorkQueue[str], sync: Callable[[str], Awaitable[None]], name: str) -> None:
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await sync(key)
            queue.forget(key)
        except errors.Fenced:
            raise
        except errors.StatusError as exc:
            # Conflict, NotFound, AlreadyExists: the cache was behind; Unavailable/Timeout: retry later.
            logger.info("%s: syncing %s: %s (retry %d)", name, key, exc.message, queue.num_requeues(key))
            queue.add_rate_limited(key)
        except Exception:
            logger.exception("%s: syncing %s failed", name, key)
            queue.add_rate_limited(key)
        finally:
            queue.done(key)


def enqueue_handlers(queue: WorkQueue[str], key: Callable[[Obj], str | None] = key_of) -> Handlers:
    """Handlers that enqueue the object's own key (or whatever ``key`` maps it to; None: nothing)."""

    def add(obj: Obj) -> None:
        k = key(obj)
        if k is not None:
            queue.add(k)

    return Handlers(on_add=add, on_update=lambda _old, new: add(new), on_delete=add)


# --- expectations --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)  # uids of objects we asked to delete
    at: float = 0.0


class Expectations:
    """Creates and deletes in flight per controller key; ``satisfied`` once the cache has shown them all.

    Deletions are tracked by uid (upstream's UIDTrackingControllerExpectations): a delete is observed
    when that uid leaves the cache, whoever deleted it."""

    def __init__(self, *, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._pending: dict[str, _Expected] = {}
        self._ttl = ttl
        self._clock = clock

    def satisfied(self, key: str) -> bool:
        expected = self._pending.get(key)
        if expected is None:
            return True
        if (expected.adds <= 0 and not expected.deletes) or self._clock() - expected.at > self._ttl:
            del self._pending[key]
            return True
        return False

    def expect_creations(self, key: str, count: int) -> None:
        expected = self._pending.setdefault(key, _Expected())
        expected.adds += count
        expected.at = self._clock()

    def expect_deletions(self, key: str, uids: Iterable[str]) -> None:
        expected = self._pending.setdefault(key, _Expected())
        expected.deletes.update(uids)
        expected.at = self._clock()

    def creation_observed(self, key: str) -> None:
        expected = self._pending.get(key)
        if expected is not None and expected.adds > 0:
            expected.adds -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        expected = self._pending.get(key)
        if expected is not None:
            expected.deletes.discard(uid)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


async def slow_start_batch(count: int, initial: int, make: Callable[[], Awaitable[T]]) -> tuple[int, Exception | None]:
    """Call ``make`` ``count`` times in concurrent batches of 1, 2, 4, ...; stop after a batch with a
    failure. Returns (successes, first error)."""
    done, batch = 0, min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(make() for _ in range(batch)), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        done += batch - len(failures)
        for failure in failures:
            if isinstance(failure, errors.Fenced) or not isinstance(failure, Exception):
                raise failure
        if failures:
            first = failures[0]
            assert isinstance(first, Exception)
            return done, first
        remaining = count - done
        batch = min(2 * batch, remaining)
    return done, None


# --- ownership --------------------------------------------------------------------------------------------


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_reference(owner: Obj, *, block_owner_deletion: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": block_owner_deletion}


async def patch_owner_refs(client: ClusterClient, rtype: ResourceType, obj: Obj,
                           refs: list[dict[str, Any]] | None) -> Obj | None:
    """Set ``ownerReferences``, pinned to the cached resourceVersion; None if it changed or went meanwhile
    (the next sync sees its new state)."""
    meta = obj["metadata"]
    try:
        return await client.patch(rtype, meta.get("namespace") or "", meta["name"], {"metadata": {
            "ownerReferences": refs, "resourceVersion": meta["resourceVersion"]}})
    except errors.Fenced:
        raise
    except (errors.NotFound, errors.Conflict):
        return None


async def claim(client: ClusterClient, rtype: ResourceType, owner: Obj, candidates: Iterable[Obj],
                selector: LabelSelector) -> list[Obj]:
    """The candidates ``owner`` controls, as upstream's ControllerRefManager claims them: its own that its
    selector still matches, orphans it matches (adopted), its own it no longer matches released. An
    owner being deleted adopts nothing and releases nothing."""
    meta = owner["metadata"]
    uid, deleting = meta["uid"], bool(meta.get("deletionTimestamp"))
    owned: list[Obj] = []
    for obj in candidates:
        obj_meta = obj["metadata"]
        matches = selector.matches(obj_meta.get("labels") or {})
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or deleting:
                owned.append(obj)
            else:
                refs = [r for r in obj_meta.get("ownerReferences") or [] if r.get("uid") != uid]
                await patch_owner_refs(client, rtype, obj, refs or None)
        elif matches and not deleting and not obj_meta.get("deletionTimestamp"):
            adopted = await patch_owner_refs(client, rtype, obj,
                                             [*(obj_meta.get("ownerReferences") or []), owner_reference(owner)])
            if adopted is not None:
                owned.append(adopted)
    return owned


def owner_key_func(owners: Informer, kind: str) -> Callable[[Obj], str | None]:
    """Map a dependent to its controller's key when the controller is a cached ``kind`` with that uid."""

    def owner_key(obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != kind:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        owner = owners.get(namespace, str(ref.get("name")))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return key_of(owner)

    return owner_key


# --- pods ---------------------------------------------------------------------------------------------------


def condition(obj: Obj, kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_pod_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def is_pod_ready(pod: Obj) -> bool:
    ready = condition(pod, "Ready")
    return ready is not None and ready.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (by the Ready condition's lastTransitionTime)."""
    ready = condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(ready.get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
