"""Carry out a Plan through a ClusterClient, and the one LeaderLoop shape the plan controllers share.

``execute`` runs a plan's actions in order and stops at the first failure (the worker requeues the key
with backoff and the next sync plans again from fresh caches). Consecutive pod creates go out in
slow-start batches (1, 2, 4, ...), the rest one by one. Outcomes that mean "already so" are success:
AlreadyExists for a create with ``exists_ok`` (a deterministic name an earlier attempt took), NotFound
for a delete. Creates and deletes of pods are registered with ``Expectations`` before they are issued,
so a sync that runs before the informer has shown them does not issue them twice.

``PlanLoop`` is the skeleton of each controller: informers whose handlers enqueue keys, workers
calling ``sync(key) -> Plan``, ``requeue_after`` turned into delayed adds, an EventRecorder for
``kubectl describe``. Controllers differ only in their informers, key mapping and sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import (
    Handlers,
    Informer,
    InformerFactory,
    index_by_controller_uid,
    key_of,
    resource_version,
)
from edgek8s.client.interface import ClusterClient, DeleteOptions, Obj
from edgek8s.controllers.actions import PODS, Action, Create, Delete, Emit, Plan, Update
from edgek8s.controllers.base import Expectations, run_workers, slow_start_batch
from edgek8s.model import errors
from edgek8s.model.resources import ResourceId, by_id

logger = logging.getLogger(__name__)

SLOW_START_INITIAL = 1


async def _create(client: ClusterClient, action: Create) -> Obj | None:
    try:
        return await client.create(by_id(action.resource), action.body)
    except errors.AlreadyExists:
        if action.exists_ok:
            return None
        raise


async def _one(client: ClusterClient, action: Action, recorder: EventRecorder) -> Obj | None:
    """Carry out one action; the stored object for an Update."""
    logger.debug("%s", action if not isinstance(action, Update | Create) else
                 f"{type(action).__name__} {action.resource} {(action.body.get('metadata') or {}).get('name')}")
    if isinstance(action, Emit):
        recorder.event(action.involved, action.type, action.reason, action.message)
    elif isinstance(action, Create):
        await _create(client, action)
    elif isinstance(action, Update):
        rtype = by_id(action.resource)
        return await (client.update_status(rtype, action.body) if action.status
                      else client.update(rtype, action.body))
    else:
        options = DeleteOptions(uid=action.uid or None,
                                resource_version=int(action.resource_version) if action.resource_version else None,
                                propagation_policy=action.propagation or None,
                                grace_period_seconds=action.grace_period)
        with contextlib.suppress(errors.NotFound):
            await client.delete(by_id(action.resource), action.namespace, action.name, options=options)
    return None


async def execute(
    client: ClusterClient,
    plan: Plan,
    *,
    recorder: EventRecorder,
    involved: Obj | None = None,
    expectations: Expectations | None = None,
    key: str = "",
    written: tuple[ResourceId, dict[str, int]] | None = None,
) -> None:
    """Run ``plan``'s actions in order; raise the first failure (after undoing its expectations).

    ``written`` (if given) is a resource and a map receiving ``namespace/name -> resourceVersion`` of
    every object of that resource updated."""
    actions = plan.actions
    i = 0
    while i < len(actions):
        action = actions[i]
        if isinstance(action, Create) and action.resource == PODS:
            batch = [action]
            while i + len(batch) < len(actions):
                nxt = actions[i + len(batch)]
                if not (isinstance(nxt, Create) and nxt.resource == PODS):
                    break
                batch.append(nxt)
            await _create_pods(client, batch, recorder=recorder, involved=involved, expectations=expectations,
                               key=key)
            i += len(batch)
            continue
        if isinstance(action, Delete) and action.resource == PODS and expectations is not None:
            expectations.expect_deletions(key, [action.uid])
        try:
            stored = await _one(client, action, recorder)
        except Exception:
            if isinstance(action, Delete) and expectations is not None:
                expectations.deletion_observed(key, action.uid)
            raise
        if isinstance(action, Delete) and action.resource == PODS and involved is not None:
            recorder.normal(involved, "SuccessfulDelete", f"Deleted pod: {action.name}")
        if stored is not None and written is not None and isinstance(action, Update) and action.resource == written[0]:
            written[1][key_of(stored)] = resource_version(stored)
        i += 1


async def _create_pods(
    client: ClusterClient,
    batch: list[Create],
    *,
    recorder: EventRecorder,
    involved: Obj | None,
    expectations: Expectations | None,
    key: str,
) -> None:
    if expectations is not None:
        expectations.expect_creations(key, len(batch))
    pending = iter(batch)

    async def make() -> None:
        created = await _create(client, next(pending))
        if created is not None and involved is not None:
            recorder.normal(involved, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

    done, error = await slow_start_batch(len(batch), SLOW_START_INITIAL, make)
    if error is not None:
        if expectations is not None:
            for _ in range(len(batch) - done):  # never issued or failed: the cache will not show them
                expectations.creation_observed(key)
        if involved is not None:
            recorder.warning(involved, "FailedCreate", f"Error creating: {error}")
        raise error


class PlanLoop:
    """A controller: ``setup`` wires informers to ``queue``; ``sync(key)`` returns the Plan for a key.

    Subclasses set ``name`` and ``workers`` and implement ``setup`` and ``plan_for``; ``plan_for`` may
    return None when the key needs nothing (its object is gone and nothing depends on it).
    """

    name = "plan-loop"
    workers = 2
    component = "kube-controller-manager"
    # Whether pod creates/deletes are expected per key (the loop's pod handlers must then report them
    # through ``owned_handlers(track=True)``; a loop deleting pods it does not own must say False).
    track_expectations = True
    # The informer of the keys' objects; set in ``setup`` to skip syncs while its cache is older than a
    # status this loop wrote (acting on a stale status could count a pod twice or not at all).
    primary: Informer | None = None

    def __init__(self) -> None:
        self.expectations = Expectations()
        self.queue: WorkQueue[str] = WorkQueue(name=self.name)
        self.client: ClusterClient | None = None
        self.recorder: EventRecorder | None = None
        self._written: dict[str, int] = {}

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        """Register informers and handlers; returns extra tasks (as factories) to run beside the workers."""
        raise NotImplementedError

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        """The plan for ``key`` and the object it is about (for events), from the caches."""
        raise NotImplementedError

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        self.queue = WorkQueue(name=self.name)
        self.expectations = Expectations()
        self._written = {}
        self.client = client
        self.recorder = EventRecorder(client, component=self.component)
        extra = await self.setup(client, informers)
        await informers.wait_synced()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.recorder.run(), name=f"{self.name}-events")
            for i, factory in enumerate(extra):
                group.create_task(_as_coroutine(factory()), name=f"{self.name}-extra-{i}")
            group.create_task(run_workers(self.queue, self._sync, workers=self.workers, name=self.name),
                              name=f"{self.name}-workers")

    async def _sync(self, key: str) -> None:
        assert self.client is not None and self.recorder is not None
        if not self.expectations.satisfied(key):
            return  # the informer will show what we did, and its event will bring the key back
        if self.primary is not None and key in self._written:
            cached = self.primary.get_by_key(key)
            if cached is not None and resource_version(cached) < self._written[key]:
                return  # our own last write is on its way to the cache; its event brings the key back
            del self._written[key]
        found = self.plan_for(key)
        if found is None:
            return
        plan, involved = found
        await execute(self.client, plan, recorder=self.recorder, involved=involved,
                      expectations=self.expectations if self.track_expectations else None, key=key,
                      written=(self.primary.rtype.id, self._written) if self.primary is not None else None)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


CONTROLLER_UID = "controller-uid"


def owned_handlers(loop: PlanLoop, owners: Informer, kind: str, *, track: bool) -> Handlers:
    """Handlers for dependents (pods of a DaemonSet, Jobs of a CronJob): enqueue the controlling owner's
    key; with ``track``, also tell the owner's expectations what the cache now shows."""

    def owner_key(obj: Obj) -> str | None:
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("controller") and ref.get("kind") == kind:
                namespace = (obj.get("metadata") or {}).get("namespace") or ""
                owner = owners.get(namespace, str(ref.get("name")))
                if owner is not None and owner["metadata"].get("uid") == ref.get("uid"):
                    return key_of(owner)
        return None

    def added(obj: Obj) -> None:
        key = owner_key(obj)
        if key is not None:
            if track:
                loop.expectations.creation_observed(key)
            loop.queue.add(key)

    def updated(old: Obj, new: Obj) -> None:
        for key in {owner_key(old), owner_key(new)} - {None}:
            assert key is not None
            if track and (new.get("metadata") or {}).get("deletionTimestamp"):
                loop.expectations.deletion_observed(key, str(new["metadata"].get("uid")))
            loop.queue.add(key)

    def deleted(obj: Obj) -> None:
        key = owner_key(obj)
        if key is not None:
            if track:
                loop.expectations.deletion_observed(key, str((obj.get("metadata") or {}).get("uid")))
            loop.queue.add(key)

    return Handlers(on_add=added, on_update=updated, on_delete=deleted)


def enqueue_all(loop: PlanLoop, informer: Informer) -> Callable[[], None]:
    """A callback enqueuing every object of ``informer`` (e.g. all DaemonSets when a node changes)."""

    def add_all() -> None:
        for obj in informer.list():
            loop.queue.add(key_of(obj))

    return add_all


def controller_index(informer: Informer) -> Informer:
    informer.add_indexer(CONTROLLER_UID, index_by_controller_uid)
    return informer
