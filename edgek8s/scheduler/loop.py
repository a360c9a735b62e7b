"""The scheduler loop: pending pods -> ``Framework.schedule`` -> assume -> bind, on the leader only.

    pods informer ──pending, ours──> SchedulingQueue ──pop──> schedule(pod, snapshot)   (pure, ~0.2 ms)
         │ bound                        ^   ^                     │ node          │ none
         v                              │   │ move_all            v               v
      Snapshot <── nodes informer ──────┘   │                  assume       PodScheduled=False,
         ^                                  │                     │          FailedScheduling event,
         └── forget (binding failed) <──── binders (batches of bindings, one write each)   park
                                              Conflict: someone else won; Fenced: the term ends

- A term (one leadership epoch) starts from empty state: the gate hands a client fenced at the epoch
  and fresh informers, so nothing survives from a previous term and a deposed leader's binding writes
  are rejected by ``apply`` (``Fenced`` ends the term for every loop).
- Assume-then-bind: the snapshot counts a pod on its node as soon as it is chosen, so the next pods see
  that room taken while the binding write is still in flight; a failed binding forgets it.
- Binding is a write with preconditions (the pod's uid; it must not be bound): Conflict means another
  scheduler (or an earlier attempt of ours whose answer was lost) won, and the informer will show
  where the pod went. Binders take whatever bindings wait (up to ``bind_batch``) as one write: one
  Raft entry per batch with the in-process client (``BatchBinder``), one request each over REST.
- Preemption (``preemption.py``): a pod that fits nowhere may name victims of lower priority on one
  node; the preempter task writes ``status.nominatedNodeName`` and deletes them, and the pod stays
  assumed on that node (holding the room) until it is tried again.
- Level-triggered: pods parked as unschedulable are tried again when a node is added or changes in a
  way filters read (not on heartbeats), when a bound pod goes away, and every ``flush_interval``.

Handlers only update the snapshot and the queue; all writes happen in tasks owned by the term.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edgek8s.client.events import EventRecorder
from edgek8s.client.informer import Handlers, InformerFactory, key_of
from edgek8s.client.interface import BatchBinder, Binding, ClusterClient, DeleteOptions, Obj
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.scheduler.framework import Decision, Framework
from edgek8s.scheduler.plugins import default_framework
from edgek8s.scheduler.podinfo import PodInfo, pod_info
from edgek8s.scheduler.preemption import Preemption, find_preemption
from edgek8s.scheduler.queue import SchedulingQueue
from edgek8s.scheduler.snapshot import Snapshot

logger = logging.getLogger(__name__)

PODS = by_id(resource_id("", "pods"))
NODES = by_id(resource_id("", "nodes"))
SCHEDULER_NAMES = ("default-scheduler", "edgek8s")
COMPONENT = "default-scheduler"
_FINISHED = ("Succeeded", "Failed")
_SETTLE, _SETTLE_MAX = 0.1, 0.5  # seconds: parked pods move once a burst of changes is over
_YIELD_EVERY = 16  # pods scheduled between two yields to the event loop (bindings, watch events)
_EVENT_REPEAT = 300.0  # seconds between two FailedScheduling events about one pod with the same message


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_scheduled(obj: Obj) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled":
            return dict(condition)
    return None


def _first(group: BaseExceptionGroup[errors.Fenced]) -> errors.Fenced:
    leaf = group.exceptions[0]
    return _first(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf


def _spec_changed(old: Obj, new: Obj) -> bool:
    """Whether an update of a pending pod can change where it fits (not its status or resourceVersion)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or old_meta.get("labels") != new_meta.get("labels")
            or old_meta.get("annotations") != new_meta.get("annotations"))


@dataclass(frozen=True, slots=True)
class _Assumed:
    obj: Obj  # the pending pod as cached (read-only), for events
    binding: Binding


class Scheduler:
    """A ``LeaderLoop``: ``run`` schedules until cancelled (leadership lost) or fenced."""

    name = "scheduler"

    def __init__(
        self,
        *,
        scheduler_names: Iterable[str] = SCHEDULER_NAMES,
        framework: Framework | None = None,
        binders: int = 4,
        bind_batch: int = 64,
        flush_interval: float = 30.0,
    ) -> None:
        self._names = frozenset(scheduler_names)
        self._framework = framework or default_framework()
        self._binders = binders
        self._bind_batch = bind_batch
        self._flush_interval = flush_interval
        self.term: SchedulerTerm | None = None  # the running term, for tests and metrics

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        term = SchedulerTerm(client, informers, names=self._names, framework=self._framework,
                             binders=self._binders, bind_batch=self._bind_batch, flush_interval=self._flush_interval)
        self.term = term
        try:
            await term.run()
        except ExceptionGroup as group:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Cancelled (leadership lost) while a task failed: the TaskGroup raised the failure in
                # place of the CancelledError; raising the group would swallow the cancellation.
                raise asyncio.CancelledError from group
            fenced = group.subgroup(errors.Fenced)
            if fenced is not None:  # the gate ends the term on a bare Fenced; a group would be a crash
                raise _first(fenced) from group
            raise
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
        binders: int,
        bind_batch: int,
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
        self._binders = binders
        self._bind_batch = bind_batch
        # Bounded: past binders * bind_batch bindings waiting, scheduling waits for the writes.
        self._bindings: asyncio.Queue[_Assumed] = asyncio.Queue(maxsize=binders * bind_batch)
        self._evented: dict[str, tuple[str, float]] = {}  # pod key -> last FailedScheduling (message, when)
        self._status_writes: dict[str, str] = {}  # pod key -> the Unschedulable message to write
        self._status_queue: asyncio.Queue[str] = asyncio.Queue()  # keys of _status_writes, each once
        self._move_timer: asyncio.TimerHandle | None = None
        self._move_first: float | None = None
        # Preemption: pod key -> (nominated node, victim keys); reserved = assumed there to hold the room.
        self._preempting: dict[str, tuple[str, set[str]]] = {}
        self._reserved: set[str] = set()
        self._preemptions: asyncio.Queue[tuple[Obj, Preemption]] = asyncio.Queue()
        self.preempted = 0
        self.bound = 0
        self.failed_bindings = 0
        self._over = False  # informers cannot drop handlers: a term that ended ignores their calls

    async def run(self) -> None:
        nodes = self._informers.informer(NODES)
        pods = self._informers.informer(PODS)
        nodes.add_handlers(Handlers(on_add=self._on_node, on_update=lambda _old, new: self._on_node(new),
                                    on_delete=self._on_node_delete))
        pods.add_handlers(Handlers(on_add=self._on_pod, on_update=self._on_pod_update,
                                   on_delete=self._on_pod_delete))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.recorder.run(), name="scheduler-events")
                for i in range(self._binders):
                    group.create_task(self._binder(), name=f"scheduler-binder-{i}")
                    group.create_task(self._status_writer(), name=f"scheduler-status-{i}")
                group.create_task(self._preempter(), name="scheduler-preempter")
                await nodes.wait_synced()
                await pods.wait_synced()
                logger.info("scheduler started: %d nodes, %d pending pods", len(self.snapshot.nodes()),
                            len(self._pending))
                group.create_task(self._flush_periodically(), name="scheduler-flush")
                await self._schedule_forever()
        finally:
            self._over = True
            if self._move_timer is not None:
                self._move_timer.cancel()

    # --- informer handlers (cheap: snapshot and queue only) -------------------------------------------

    def _on_node(self, obj: Obj) -> None:
        if self._over:
            return
        if self.snapshot.upsert_node(obj):
            self._cluster_changed()

    def _cluster_changed(self) -> None:
        """Parked pods may fit now. Changes come in bursts (nodes registering after a power cut, an
        operator labelling or uncordoning many nodes): the move waits until the burst has been quiet
        for ``_SETTLE`` (at most ``_SETTLE_MAX``), so pods are not bounced off the first node of a
        burst into backoff while the rest of it is still arriving."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._move_first is None:
            self._move_first = now
        if self._move_timer is not None:
            self._move_timer.cancel()
        when = min(now + _SETTLE, self._move_first + _SETTLE_MAX)
        self._move_timer = loop.call_at(when, self._move_parked)

    def _move_parked(self) -> None:
        self._move_timer = self._move_first = None
        self.queue.move_all()

    def _on_node_delete(self, obj: Obj) -> None:
        if self._over:
            return
        self.snapshot.remove_node(str((obj.get("metadata") or {}).get("name", "")))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if self._over:
            return
        key = key_of(new)
        if old is new and key in self._pending and key not in self.queue and not self.snapshot.is_assumed(key):
            self._on_pod(new)  # a resync of a pending pod no stage holds: try it again (level-triggered)
            return
        node = (new.get("spec") or {}).get("nodeName")
        if node and (new.get("metadata") or {}).get("deletionTimestamp") \
                and not (old.get("metadata") or {}).get("deletionTimestamp") and new["metadata"].get("uid") == \
                (old.get("metadata") or {}).get("uid"):
            # Graceful deletion began: its resources stay taken until it is gone, but it no longer counts
            # for topology spreading (upstream skips terminating pods), so waiting pods may fit now.
            self.snapshot.add_pod(pod_info(new))
            self._cluster_changed()
            return
        if node and node == (old.get("spec") or {}).get("nodeName") and not _spec_changed(old, new) \
                and (new.get("status") or {}).get("phase") not in _FINISHED \
                and self.snapshot.node_of(key) == node and not self.snapshot.is_assumed(key):
            return  # a bound pod's status changed (a kubelet report): nothing the scheduler counts
        if key in self._pending and not (new.get("spec") or {}).get("nodeName") and not _spec_changed(old, new) \
                and not (new.get("metadata") or {}).get("deletionTimestamp"):
            self._pending[key] = new  # a status write (ours) or a resync: nothing to reconsider
            return
        self._on_pod(new)

    def _on_pod(self, obj: Obj) -> None:
        if self._over:
            return
        key = key_of(obj)
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if spec.get("nodeName"):
            self._evented.pop(key, None)
            self._pending.pop(key, None)
            self._preempting.pop(key, None)
            self._reserved.discard(key)
            self.queue.delete(key)
            if phase in _FINISHED:
                self._release(key)
            elif not self.snapshot.confirm(key, spec["nodeName"]):
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
        if self._over:
            return
        key = key_of(obj)
        self._preempting.pop(key, None)
        self._reserved.discard(key)
        self._evented.pop(key, None)
        self._pending.pop(key, None)
        self.queue.delete(key)
        self._release(key)

    def _release(self, key: str) -> None:
        if self.snapshot.node_of(key) is not None:
            self.snapshot.remove_pod(key)
            self._cluster_changed()  # room freed on a node

    # --- scheduling ------------------------------------------------------------------------------------

    async def _schedule_forever(self) -> None:
        while True:
            key: str | None = await self.queue.pop()
            budget = _YIELD_EVERY
            while key is not None:
                await self._schedule_one(key)
                budget -= 1
                if budget == 0:
                    await asyncio.sleep(0)  # let bindings and watch events in
                    budget = _YIELD_EVERY
                key = self.queue.pop_nowait()

    async def _schedule_one(self, key: str) -> None:
        obj = self._pending.get(key)
        if obj is None:
            self.queue.done(key)
            return
        pod = pod_info(obj)
        if key in self._reserved:  # the room a preemption held for it is not room it competes with
            self._reserved.discard(key)
            self.snapshot.forget(key)
        decision = self._framework.schedule(pod, self.snapshot)
        if decision.node is None:
            self.queue.unschedulable(key)
            self._report_unschedulable(obj, decision)
            self._preempt(obj, pod)
            return
        self._preempting.pop(key, None)
        self.snapshot.assume(pod, decision.node)
        await self._bindings.put(_Assumed(obj, Binding(pod.namespace, pod.name, decision.node, pod.uid)))

    def _preempt(self, obj: Obj, pod: PodInfo) -> None:
        """Find victims for a pod that fits nowhere; hold the room on the nominated node (assumed there,
        so lower-priority pods do not take it while the victims go) until the pod is tried again. While
        earlier victims are still placed, the same node is held again rather than more pods preempted."""
        key = pod.key
        earlier = self._preempting.get(key)
        if earlier is not None and any(self.snapshot.node_of(victim) is not None for victim in earlier[1]):
            node = earlier[0]
        else:
            found = None
            if self.snapshot.has_pods_below(pod.priority):
                found = find_preemption(pod, self.snapshot, self._framework.checks_for(pod, self.snapshot))
            if found is None:
                self._preempting.pop(key, None)
                return
            node = found.node
            self._preempting[key] = (node, {victim.key for victim in found.victims})
            self._preemptions.put_nowait((obj, found))
        if self.snapshot.node(node) is not None:
            self.snapshot.assume(pod, node)
            self._reserved.add(key)

    async def _preempter(self) -> None:
        """Carry out preemptions: nominate the node on the pod, then mark and delete each victim (its uid
        as precondition: a pod recreated under the same name is not touched)."""
        while True:
            obj, found = await self._preemptions.get()
            meta = obj["metadata"]
            namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
            try:
                await self._client.patch(PODS, namespace, name, {"status": {"nominatedNodeName": found.node}},
                                         subresource="status")
            except errors.Fenced:
                raise
            except errors.StatusError as exc:
                logger.info("not preempting for %s/%s: %s", namespace, name, exc.message)
                continue
            for victim in found.victims:
                ref = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"namespace": victim.namespace, "name": victim.name, "uid": victim.uid}}
                try:
                    await self._mark_disrupted(victim)
                    await self._client.delete(PODS, victim.namespace, victim.name,
                                              options=DeleteOptions(uid=victim.uid))
                except errors.Fenced:
                    raise
                except errors.StatusError as exc:  # gone already, or replaced: nothing to do
                    logger.info("preempting %s for %s/%s: %s", victim.key, namespace, name, exc.message)
                    continue
                self.preempted += 1
                self.recorder.normal(ref, "Preempted", f"Preempted by pod {meta.get('uid', '')} on node {found.node}")

    async def _mark_disrupted(self, victim: PodInfo) -> None:
        """Upstream's DisruptionTarget condition on a victim, beside its other conditions (a status
        merge patch replaces the whole list, so the current one is read first)."""
        current = await self._client.get(PODS, victim.namespace, victim.name)
        if (current.get("metadata") or {}).get("uid") != victim.uid:
            raise errors.NotFound(f"pod {victim.key} was replaced")
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{COMPONENT}: preempting to accommodate a higher priority pod",
                     "lastTransitionTime": _now()}
        others = [c for c in (current.get("status") or {}).get("conditions") or ()
                  if c.get("type") != "DisruptionTarget"]
        await self._client.patch(PODS, victim.namespace, victim.name, {"status": {"conditions": [*others, condition]}},
                                 subresource="status")

    async def _binder(self) -> None:
        """Bindings in batches: whatever is waiting (up to ``bind_batch``) becomes one write, so the
        Raft cost is paid per batch, not per pod; several binders keep several batches in flight."""
        while True:
            batch = [await self._bindings.get()]
            while len(batch) < self._bind_batch and not self._bindings.empty():
                batch.append(self._bindings.get_nowait())
            for item, error in zip(batch, await self._bind(batch), strict=True):
                self._bound(item, error)

    async def _bind(self, batch: list[_Assumed]) -> list[errors.StatusError | None]:
        try:
            if isinstance(self._client, BatchBinder):
                return await self._client.bind_many([item.binding for item in batch])
            return list(await asyncio.gather(*(self._bind_one(item) for item in batch)))
        except errors.Fenced:
            raise
        except errors.StatusError as exc:  # the whole write failed (no leader, timeout): each is retried
            return [exc] * len(batch)

    async def _bind_one(self, item: _Assumed) -> errors.StatusError | None:
        binding = item.binding
        try:
            await self._client.bind(binding.namespace, binding.name, node=binding.node, uid=binding.uid)
        except errors.Fenced:
            raise
        except errors.StatusError as exc:
            return exc
        return None

    def _bound(self, item: _Assumed, error: errors.StatusError | None) -> None:
        key = f"{item.binding.namespace}/{item.binding.name}"
        current = self._pending.get(key)
        if current is not None and (current.get("metadata") or {}).get("uid") != item.binding.uid:
            # The pod was deleted while its binding was in flight and created again under its name: the
            # key (its assumption in the snapshot, its attempt in the queue) is the new pod's now.
            return
        if error is None:
            self.bound += 1
            self.queue.done(key)
            self.recorder.normal(item.obj, "Scheduled", f"Successfully assigned {key} to {item.binding.node}")
        elif isinstance(error, errors.Conflict | errors.NotFound):
            # Bound elsewhere (another scheduler won, or an earlier attempt of ours did), or gone.
            logger.info("binding %s to %s: %s", key, item.binding.node, error.message)
            self.snapshot.forget(key)
            self.queue.done(key)
        else:
            self.failed_bindings += 1
            logger.info("binding %s to %s failed (%s); retrying", key, item.binding.node, error.message)
            self.snapshot.forget(key)
            self.queue.retry(key)

    def _report_unschedulable(self, obj: Obj, decision: Decision) -> None:
        """The PodScheduled=False condition when its message changes, written by the status writers
        (bounded: thousands of unschedulable pods must not become thousands of concurrent writes), and a
        FailedScheduling event when the message is new or at most every ``_EVENT_REPEAT`` seconds per
        pod (upstream's event spam filter does the same job). A new term that finds a pod already marked
        with the same message records nothing: the previous term did, and thousands of pending pods
        must not cost thousands of writes each time leadership moves."""
        message = decision.message()
        key = key_of(obj)
        now = asyncio.get_running_loop().time()
        current = _pod_scheduled(obj)
        marked = current is not None and current.get("status") == "False" \
            and current.get("reason") == "Unschedulable" and current.get("message") == message
        last = self._evented.get(key)
        if last is None and marked:
            self._evented[key] = (message, now)
        elif last is None or last[0] != message or now - last[1] >= _EVENT_REPEAT:
            self._evented[key] = (message, now)
            self.recorder.warning(obj, "FailedScheduling", message)
        if marked:
            return
        if key not in self._status_writes:
            self._status_queue.put_nowait(key)
        self._status_writes[key] = message  # the latest message wins while the write waits

    async def _status_writer(self) -> None:
        while True:
            key = await self._status_queue.get()
            message = self._status_writes.pop(key, None)
            obj = self._pending.get(key)
            if message is None or obj is None:
                continue  # scheduled or gone meanwhile
            await self._write_unschedulable(obj, message)

    async def _write_unschedulable(self, obj: Obj, message: str) -> None:
        meta = obj["metadata"]
        current = _pod_scheduled(obj)
        since = current.get("lastTransitionTime") if current is not None and current.get("status") == "False" \
            else _now()
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastProbeTime": None, "lastTransitionTime": since}
        others = [c for c in (obj.get("status") or {}).get("conditions") or () if c.get("type") != "PodScheduled"]
        try:
            await self._client.patch(PODS, str(meta.get("namespace", "")), str(meta.get("name", "")),
                                     {"status": {"conditions": [*others, condition]}}, subresource="status")
        except errors.Fenced:
            raise
        except errors.StatusError as exc:
            logger.info("could not mark %s unschedulable: %s", key_of(obj), exc.message)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(min(self._flush_interval, 5.0))
            self.queue.flush_unschedulable()
