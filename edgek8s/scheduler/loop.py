"""The scheduler loop: pending pods -> ``Framework.schedule`` -> assume -> bind, on the leader only.

    pods informer ──pending, ours──> SchedulingQueue ──pop──> schedule(pod, snapshot)   (pure, ~0.2 ms)
         │ bound                        ^   ^                     │ node          │ none
         v                              │   │ move_all            v               v
      Snapshot <── nodes informer ──────┘   │                  assume       PodScheduled=False,
         ^                                  │                     │          FailedScheduling event,
         └── forget (binding failed) <──── binder (<= bind_concurrency writes in flight)   park
                                              Conflict: someone else won; Fenced: the term ends

- A term (one leadership epoch) starts from empty state: the gate hands a client fenced at the epoch
  and fresh informers, so nothing survives from a previous term and a deposed leader's binding writes
  are rejected by ``apply`` (``Fenced`` ends the term for every loop).
- Assume-then-bind: the snapshot counts a pod on its node as soon as it is chosen, so the next pods see
  that room taken while the binding write is still in flight; a failed binding forgets it.
- Binding is a write with preconditions (the pod's uid; it must not be bound): Conflict means another
  scheduler (or an earlier attempt of ours whose answer was lost) won, and the informer will show
  where the pod went.
- Level-triggered: pods parked as unschedulable are tried again when a node is added or changes in a
  way filters read (not on heartbeats), when a bound pod goes away, and every ``flush_interval``.

Handlers only update the snapshot and the queue; all writes happen in tasks owned by the term.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable
from typing import Any

from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import Handlers, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.scheduler.framework import Decision, Framework
from edgek8s.scheduler.plugins import default_framework
from edgek8s.scheduler.podinfo import pod_info
from edgek8s.scheduler.queue import SchedulingQueue
from edgek8s.scheduler.snapshot import Snapshot

logger = logging.getLogger(__name__)

PODS = by_id(resource_id("", "pods"))
NODES = by_id(resource_id("", "nodes"))
SCHEDULER_NAMES = ("default-scheduler", "edgek8s")
COMPONENT = "default-scheduler"
_FINISHED = ("Succeeded", "Failed")
_YIELD_EVERY = 16  # pods scheduled between two yields to the event loop (bindings, watch events)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_scheduled(obj: Obj) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


def _spec_changed(old: Obj, new: Obj) -> bool:
    """Whether an update of a pending pod can change where it fits (not its status or resourceVersion)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or old_meta.get("labels") != new_meta.get("labels")
            or old_meta.get("annotations") != new_meta.get("annotations"))


class Scheduler:
    """A ``LeaderLoop``: ``run`` schedules until cancelled (leadership lost) or fenced."""

    name = "scheduler"

    def __init__(
        self,
        *,
        scheduler_names: Iterable[str] = SCHEDULER_NAMES,
        framework: Framework | None = None,
        bind_concurrency: int = 64,
        flush_interval: float = 30.0,
    ) -> None:
        self._names = frozenset(scheduler_names)
        self._framework = framework or default_framework()
        self._bind_concurrency = bind_concurrency
        self._flush_interval = flush_interval
        self.term: SchedulerTerm | None = None  # the running term, for tests and metrics

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        term = SchedulerTerm(client, informers, names=self._names, framework=self._framework,
                             bind_concurrency=self._bind_concurrency, flush_interval=self._flush_interval)
        self.term = term
        try:
            await term.run()
        finally:
            self.term = None


class SchedulerTerm:
    """Everything one leadership term of the scheduler owns."""

    def __init__(
        self,
        client: ClusterClient,
        informers: InformerFactory,
        *,
        names: frozenset[str],
        framework: Framework,
        bind_concurrency: int,
        flush_interval: float,
    ) -> None:
        self._client = client
        self._informers = informers
        self._names = names
        self._framework = framework
        self._flush_interval = flush_interval
        self.snapshot = Snapshot()
        self.queue = SchedulingQueue(unschedulable_flush=flush_interval)
        self.recorder = EventRecorder(client, component=COMPONENT)
        self._pending: dict[str, Obj] = {}  # key -> the pending pod as cached (read-only)
        self._binding = asyncio.Semaphore(bind_concurrency)
        self._reporting: set[str] = set()  # pods whose unschedulable status write is in flight
        self.bound = 0
        self.failed_bindings = 0

    async def run(self) -> None:
        nodes = self._informers.informer(NODES)
        pods = self._informers.informer(PODS)
        nodes.add_handlers(Handlers(on_add=self._on_node, on_update=lambda _old, new: self._on_node(new),
                                    on_delete=self._on_node_delete))
        pods.add_handlers(Handlers(on_add=self._on_pod, on_update=self._on_pod_update,
                                   on_delete=self._on_pod_delete))
        async with asyncio.TaskGroup() as group:
            group.create_task(self.recorder.run(), name="scheduler-events")
            await nodes.wait_synced()
            await pods.wait_synced()
            logger.info("scheduler started: %d nodes, %d pending pods", len(self.snapshot.nodes()),
                        len(self._pending))
            group.create_task(self._flush_periodically(), name="scheduler-flush")
            await self._schedule_forever(group)

    # --- informer handlers (cheap: snapshot and queue only) -------------------------------------------

    def _on_node(self, obj: Obj) -> None:
        if self.snapshot.upsert_node(obj):
            self.queue.move_all()

    def _on_node_delete(self, obj: Obj) -> None:
        self.snapshot.remove_node(str((obj.get("metadata") or {}).get("name", "")))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        key = key_of(new)
        if key in self._pending and not (new.get("spec") or {}).get("nodeName") and not _spec_changed(old, new) \
                and not (new.get("metadata") or {}).get("deletionTimestamp"):
            self._pending[key] = new  # a status write (ours) or a resync: nothing to reconsider
            return
        self._on_pod(new)

    def _on_pod(self, obj: Obj) -> None:
        key = key_of(obj)
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if spec.get("nodeName"):
            self._pending.pop(key, None)
            self.queue.delete(key)
            if phase in _FINISHED:
                self._release(key)
            else:
                self.snapshot.add_pod(pod_info(obj))
            return
        if (spec.get("schedulerName") or "default-scheduler") not in self._names or phase in _FINISHED \
                or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self._pending.pop(key, None)
            self.queue.delete(key)
            return
        self._pending[key] = obj
        priority = spec.get("priority")
        self.queue.add(key, priority if isinstance(priority, int) else 0)

    def _on_pod_delete(self, obj: Obj) -> None:
        key = key_of(obj)
        self._pending.pop(key, None)
        self.queue.delete(key)
        self._release(key)

    def _release(self, key: str) -> None:
        if self.snapshot.node_of(key) is not None:
            self.snapshot.remove_pod(key)
            self.queue.move_all()  # room freed on a node

    # --- scheduling ------------------------------------------------------------------------------------

    async def _schedule_forever(self, group: asyncio.TaskGroup) -> None:
        while True:
            key: str | None = await self.queue.pop()
            budget = _YIELD_EVERY
            while key is not None:
                await self._schedule_one(key, group)
                budget -= 1
                if budget == 0:
                    await asyncio.sleep(0)  # let bindings and watch events in
                    budget = _YIELD_EVERY
                key = self.queue.pop_nowait()

    async def _schedule_one(self, key: str, group: asyncio.TaskGroup) -> None:
        obj = self._pending.get(key)
        if obj is None:
            self.queue.done(key)
            return
        pod = pod_info(obj)
        decision = self._framework.schedule(pod, self.snapshot)
        if decision.node is None:
            self.queue.unschedulable(key)
            self._report_unschedulable(obj, decision, group)
            return
        self.snapshot.assume(pod, decision.node)
        await self._binding.acquire()  # bounded: past bind_concurrency writes in flight, scheduling waits
        group.create_task(self._bind(obj, pod.uid, decision.node), name=f"bind-{key}")

    async def _bind(self, obj: Obj, uid: str, node: str) -> None:
        meta = obj["metadata"]
        namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        key = f"{namespace}/{name}"
        try:
            await self._client.bind(namespace, name, node=node, uid=uid)
        except errors.Fenced:
            raise
        except (errors.Conflict, errors.NotFound) as exc:
            # Bound elsewhere (another scheduler won, or our earlier attempt did), or gone.
            logger.info("binding %s to %s: %s", key, node, exc.message)
            self.snapshot.forget(key)
            self.queue.done(key)
        except errors.StatusError as exc:
            self.failed_bindings += 1
            logger.info("binding %s to %s failed (%s); retrying", key, node, exc.message)
            self.snapshot.forget(key)
            self.queue.retry(key)
        else:
            self.bound += 1
            self.queue.done(key)
            self.recorder.normal(obj, "Scheduled", f"Successfully assigned {key} to {node}")
        finally:
            self._binding.release()

    def _report_unschedulable(self, obj: Obj, decision: Decision, group: asyncio.TaskGroup) -> None:
        message = decision.message()
        self.recorder.warning(obj, "FailedScheduling", message)
        key = key_of(obj)
        current = _pod_scheduled(obj)
        if key in self._reporting or (current is not None and current.get("status") == "False"
                                      and current.get("reason") == "Unschedulable"
                                      and current.get("message") == message):
            return
        self._reporting.add(key)
        group.create_task(self._write_unschedulable(obj, current, message), name=f"unschedulable-{key}")

    async def _write_unschedulable(self, obj: Obj, current: dict[str, Any] | None, message: str) -> None:
        meta = obj["metadata"]
        key = key_of(obj)
        since = current.get("lastTransitionTime") if current is not None and current.get("status") == "False" \
            else _now()
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": since}
        others = [c for c in (obj.get("status") or {}).get("conditions") or () if c.get("type") != "PodScheduled"]
        patch = {"status": {"conditions": [*others, condition]}}
        try:
            await self._client.patch(PODS, str(meta.get("namespace", "")), str(meta.get("name", "")), patch,
                                     subresource="status")
        except errors.Fenced:
            raise
        except errors.StatusError as exc:
            logger.info("could not mark %s unschedulable: %s", key, exc.message)
        finally:
            self._reporting.discard(key)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(min(self._flush_interval, 5.0))
            self.queue.flush_unschedulable()
