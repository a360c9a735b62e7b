"""Job sync: run pods to ``completions`` with ``parallelism``, fail on ``backoffLimit`` or deadline. Pure.

``sync_job(job, pods, now, settings)`` returns the Plan for one Job given the pods it controls.
Upstream's ``pkg/controller/job`` with pod tracking by finalizers (the only mode since 1.26):

- Every pod is created with the finalizer ``batch.kubernetes.io/job-tracking``, so a finished pod
  cannot vanish (deleted by a user, evicted from a lost node) before the Job has counted it. A pod
  that finished (Succeeded; Failed, or deleted before it succeeded) is first recorded by uid in
  ``status.uncountedTerminatedPods``, then its finalizer is removed, then, once the pod no longer
  carries the finalizer, its uid moves into ``status.succeeded``/``failed``. The plan orders these
  writes so a pod is never released before it is recorded: counts are exact and never go backwards.
- Non-indexed completions: the Job completes when ``succeeded >= completions``; without completions
  (a work queue), when one pod succeeded and none is active. It fails when ``failed > backoffLimit``
  (``BackoffLimitExceeded``) or it has been active longer than ``activeDeadlineSeconds``
  (``DeadlineExceeded``); then its active pods are deleted.
- Replacements of failed pods wait ``backoff_base * 2^(failures-1)`` (capped) after the last failure,
  upstream's 10 s doubling to 6 min by default; settings make it short for tests.
- ``suspend`` deletes active pods and sets ``Suspended``; ``ttlSecondsAfterFinished`` deletes the
  finished Job (pods follow through the garbage collector) that many seconds after it finished.

- ``completionMode: Indexed`` (``controllers/indexed.py``): one pod per index, completed indexes in
  ``status.completedIndexes``, succeeded pods counted by index instead of through
  ``uncountedTerminatedPods``.

Not done: ``podFailurePolicy``, ``successPolicy``, ``backoffLimitPerIndex``,
``podReplacementPolicy: Failed`` (a replacement is created as soon as the old pod is terminating).
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.informer import Handlers, Informer, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import indexed as ix
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import JOBS, PODS, Create, Delete, Emit, Plan, Update
from edgek8s.controllers.base import enqueue_handlers
from edgek8s.controllers.runner import CONTROLLER_UID, PlanLoop, controller_index, owned_handlers
from edgek8s.model.resources import by_id
from edgek8s.model.timestamps import format_time, parse_time

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
_FINISHED = ("Complete", "Failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSettings:
    backoff_base: float = 10.0
    backoff_max: float = 360.0
    burst: int = 500  # pod creates per sync: a 10,000-completion Job fills in steps


def finished_condition(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for type_ in _FINISHED:
        cond = p.condition(job, type_)
        if cond is not None and cond.get("status") == "True":
            return cond
    return None


def _tracked(pod: Mapping[str, Any]) -> bool:
    return TRACKING_FINALIZER in (p.meta(pod).get("finalizers") or ())


def _release(pod: Mapping[str, Any]) -> Update:
    pod_meta = dict(p.meta(pod))
    pod_meta["finalizers"] = [f for f in pod_meta.get("finalizers") or () if f != TRACKING_FINALIZER]
    return Update(resource=PODS, body={**pod, "metadata": pod_meta})


def _delete(pod: Mapping[str, Any]) -> Delete:
    return Delete(resource=PODS, namespace=p.namespace(pod), name=p.name(pod), uid=p.uid(pod))


def _finish_time(pod: Mapping[str, Any]) -> datetime.datetime | None:
    times = [
        parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for cs in p.status(pod).get("containerStatuses") or ()
    ]
    times.append(parse_time(p.meta(pod).get("deletionTimestamp")))
    cond = p.condition(pod, "Ready") or {}
    times.append(parse_time(cond.get("lastTransitionTime")))
    found = [t for t in times if t is not None]
    return max(found) if found else parse_time(p.meta(pod).get("creationTimestamp"))


def _set_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: str
) -> None:
    for cond in conditions:
        if cond.get("type") == type_:
            if cond.get("status") != status:
                cond.update(status=status, lastTransitionTime=now)
            cond.update(reason=reason, message=message, lastProbeTime=now)
            return
    conditions.append({"type": type_, "status": status, "reason": reason, "message": message,
                       "lastProbeTime": now, "lastTransitionTime": now})


def _finished_plan(job: Mapping[str, Any], owned: list[Mapping[str, Any]], now: datetime.datetime) -> Plan:
    plan = Plan()
    plan.actions.extend(_release(pod) for pod in owned if _tracked(pod))
    ttl = p.spec(job).get("ttlSecondsAfterFinished")
    if isinstance(ttl, int) and not isinstance(ttl, bool):
        cond = finished_condition(job) or {}
        finished_at = parse_time(p.status(job).get("completionTime")) or parse_time(cond.get("lastTransitionTime"))
        if finished_at is not None:
            expires = finished_at + datetime.timedelta(seconds=ttl)
            if now >= expires:
                plan.actions.append(Delete(resource=JOBS, namespace=p.namespace(job), name=p.name(job),
                                           uid=p.uid(job), propagation="Background"))
            else:
                plan.requeue((expires - now).total_seconds())
    return plan


def sync_job(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: datetime.datetime, settings: JobSettings
) -> Plan:
    owned = [pod for pod in pods if p.controlled_by(pod, p.uid(job))]
    if p.is_deleting(job):
        return Plan(actions=[_release(pod) for pod in owned if _tracked(pod)])
    if finished_condition(job) is not None:
        return _finished_plan(job, owned, now)
    plan = Plan()
    spec, old_status = p.spec(job), p.status(job)
    now_text = format_time(now)
    uncounted = old_status.get("uncountedTerminatedPods") or {}
    pending_ok = set(uncounted.get("succeeded") or ())
    pending_failed = set(uncounted.get("failed") or ())
    succeeded = p.int_field(old_status, "succeeded", 0)
    failed = p.int_field(old_status, "failed", 0)
    by_uid = {p.uid(pod): pod for pod in owned}
    # Flush: recorded pods that no longer hold the finalizer are counted for good.
    for pending in (pending_ok, pending_failed):
        for pod_uid in list(pending):
            pod = by_uid.get(pod_uid)
            if pod is None or not _tracked(pod):
                pending.discard(pod_uid)
                if pending is pending_ok:
                    succeeded += 1
                else:
                    failed += 1
    releases: list[Mapping[str, Any]] = []
    active: list[Mapping[str, Any]] = []
    terminating = 0
    last_failure: datetime.datetime | None = None
    # Once the Job has succeeded, the pods it stops are not failures.
    succeeded_already = (p.condition(job, "SuccessCriteriaMet") or {}).get("status") == "True"
    completions = spec.get("completions")
    # Indexed: a succeeded pod completes its index; the index, not the uid, keeps it from counting twice.
    completed = ix.parse_intervals(old_status.get("completedIndexes")) if ix.is_indexed(job) else None
    for pod in owned:
        pod_uid = p.uid(pod)
        if p.phase(pod) == "Succeeded":
            index = ix.completion_index(pod)
            if completed is not None:
                if index is not None and isinstance(completions, int) and index < completions:
                    completed.add(index)
                if _tracked(pod):
                    releases.append(pod)
            elif _tracked(pod):
                pending_ok.add(pod_uid)
                releases.append(pod)
        elif p.phase(pod) == "Failed" or p.is_deleting(pod):
            terminating += p.phase(pod) != "Failed"
            if _tracked(pod) and succeeded_already and p.phase(pod) != "Failed":
                releases.append(pod)
            elif _tracked(pod):
                pending_failed.add(pod_uid)
                releases.append(pod)
            finish = _finish_time(pod)
            if finish is not None and (last_failure is None or finish > last_failure):
                last_failure = finish
        else:
            active.append(pod)
    if completed is not None:
        succeeded = len(completed)
    total_ok = succeeded + len(pending_ok)
    total_failed = failed + len(pending_failed)

    conditions = [dict(c) for c in old_status.get("conditions") or ()]
    start = parse_time(old_status.get("startTime"))
    suspended = bool(spec.get("suspend"))
    parallelism = p.int_field(spec, "parallelism", 1)
    backoff_limit = p.int_field(spec, "backoffLimit", 6)
    deadline = spec.get("activeDeadlineSeconds")
    failure: tuple[str, str] | None = None
    target = p.condition(job, "FailureTarget")
    complete = (p.condition(job, "SuccessCriteriaMet") or {}).get("status") == "True"
    if target is not None and target.get("status") == "True":
        failure = (str(target.get("reason") or ""), str(target.get("message") or ""))  # decided earlier
    elif complete:
        pass
    elif total_failed > backoff_limit:
        failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    elif isinstance(deadline, int) and start is not None and not suspended:
        ends = start + datetime.timedelta(seconds=deadline)
        if now >= ends:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        else:
            plan.requeue((ends - now).total_seconds())
    complete = complete or (isinstance(completions, int) and total_ok >= completions) or (
        completions is None and total_ok > 0 and not active
    )

    new_status: dict[str, Any] = dict(old_status)
    if failure is not None or complete:
        # Upstream's two steps: the interim condition (FailureTarget / SuccessCriteriaMet) at once, the
        # final one (Failed / Complete) once no pod runs and every finished pod is counted and released.
        plan.actions.extend(_delete(pod) for pod in active)
        settled = not active and not pending_ok and not pending_failed and not releases
        if failure is not None:
            _set_condition(conditions, "FailureTarget", "True", failure[0], failure[1], now_text)
            if settled:
                _set_condition(conditions, "Failed", "True", failure[0], failure[1], now_text)
                plan.actions.append(Emit(involved=dict(job), type="Warning", reason=failure[0], message=failure[1]))
        else:
            message = "Reached expected number of succeeded pods"
            _set_condition(conditions, "SuccessCriteriaMet", "True", "CompletionsReached", message, now_text)
            if settled:
                _set_condition(conditions, "Complete", "True", "CompletionsReached", message, now_text)
                new_status["completionTime"] = now_text
                plan.actions.append(Emit(involved=dict(job), type="Normal", reason="Completed",
                                         message="Job completed"))
        active = []
    elif suspended:
        plan.actions.extend(_delete(pod) for pod in active)
        if active or p.condition(job, "Suspended") is None:
            _set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now_text)
        active = []
    else:
        if p.condition(job, "Suspended") is not None:
            _set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now_text)
        if start is None:
            new_status["startTime"] = now_text
            if isinstance(deadline, int):
                plan.requeue(deadline)
        if isinstance(completions, int):
            wanted = min(parallelism, max(completions - total_ok, 0))
        else:
            wanted = len(active) if total_ok > 0 else parallelism  # a work queue: let the rest finish
        active = _manage_pods(job, active, wanted, total_failed, last_failure, now, settings, plan,
                              completed=completed)

    new_status["active"] = len(active)
    new_status["ready"] = sum(1 for pod in active if p.is_ready(pod))
    new_status["terminating"] = terminating
    new_status["succeeded"] = succeeded
    new_status["failed"] = failed
    if completed is not None:
        new_status["completedIndexes"] = ix.format_intervals(completed)
        if not completed:
            del new_status["completedIndexes"]  # omitempty, as upstream's string field
    new_status["uncountedTerminatedPods"] = {
        key: sorted(values) for key, values in (("succeeded", pending_ok), ("failed", pending_failed)) if values
    }
    if conditions:
        new_status["conditions"] = conditions
    for key in ("active", "succeeded", "failed", "terminating"):
        if not new_status[key] and key not in old_status:
            del new_status[key]
    if new_status != dict(old_status):
        plan.actions.append(Update(resource=JOBS, body={**job, "status": new_status}, status=True))
    # Only after the status holds their uids may the finished pods go.
    plan.actions.extend(_release(pod) for pod in releases)
    return plan


def _manage_pods(
    job: Mapping[str, Any],
    active: list[Mapping[str, Any]],
    wanted: int,
    failures: int,
    last_failure: datetime.datetime | None,
    now: datetime.datetime,
    settings: JobSettings,
    plan: Plan,
    *,
    completed: set[int] | None = None,
) -> list[Mapping[str, Any]]:
    """Create or delete pods towards ``wanted`` active; returns the active pods counted afterwards.
    ``completed``: the complete indexes of an Indexed Job (None for NonIndexed)."""
    completions = p.spec(job).get("completions")
    if completed is not None and isinstance(completions, int):
        active, unwanted = ix.surplus(active, completions, completed)
        plan.actions.extend(_delete(pod) for pod in unwanted)
    if len(active) > wanted:
        # Upstream's order: not yet scheduled, then not ready, then the newest go first.
        excess = sorted(
            active,
            key=lambda pod: (bool(p.spec(pod).get("nodeName")), p.is_ready(pod),
                             str(p.meta(pod).get("creationTimestamp") or "")),
        )[: len(active) - wanted]
        plan.actions.extend(_delete(pod) for pod in excess)
        return [pod for pod in active if pod not in excess]
    missing = wanted - len(active)
    if missing <= 0:
        return active
    if failures > 0 and last_failure is not None:
        delay = min(settings.backoff_base * 2 ** (failures - 1), settings.backoff_max)
        ready_at = last_failure + datetime.timedelta(seconds=delay)
        if now < ready_at:
            plan.requeue((ready_at - now).total_seconds())
            return active
    count = min(missing, settings.burst)
    ref = p.controller_reference(job, api_version="batch/v1", kind="Job")
    template = p.spec(job).get("template") or {}
    indexes: list[int | None] = [None] * count
    if completed is not None and isinstance(completions, int):
        taken = completed | {i for pod in active if (i := ix.completion_index(pod)) is not None}
        indexes = list(ix.free_indexes(completions, taken, count))
    for index in indexes:
        body = p.pod_from_template(template, owner_ref=ref, namespace_=p.namespace(job),
                                   generate_name=f"{p.name(job)}-", finalizers=[TRACKING_FINALIZER])
        if index is not None:
            ix.add_index(body, p.name(job), index)
        plan.actions.append(Create(resource=PODS, namespace=p.namespace(job), body=body))
    if count < missing:
        plan.requeue(0)
    return active + [{} for _ in indexes]  # placeholders: the new pods count as active, not ready


# --- the loop -----------------------------------------------------------------------------------------

_ORPHAN = "pod:"  # queue keys of pods whose Job is gone but that still hold the tracking finalizer


def release_orphan(pod: Mapping[str, Any], jobs: Informer) -> Plan:
    """A pod holding the tracking finalizer whose Job no longer exists (or is not its Job) is released."""
    ref = p.controller_of(pod)
    if not _tracked(pod) or ref is None or ref.get("kind") != "Job":
        return Plan()
    job = jobs.get(p.namespace(pod), str(ref.get("name")))
    if job is not None and p.uid(job) == ref.get("uid"):
        return Plan()
    return Plan(actions=[_release(pod)])


class JobController(PlanLoop):
    """Informers: Jobs (keys) and Pods (by controller uid; orphans holding our finalizer get released)."""

    name = "job-controller"

    def __init__(self, *, settings: JobSettings | None = None, clock: Clock | None = None) -> None:
        super().__init__()
        self._settings = settings or JobSettings()
        self._clock = clock or SystemClock()
        self._jobs: Informer | None = None
        self._pods: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._jobs = informers.informer(by_id(JOBS))
        self._pods = controller_index(informers.informer(by_id(PODS)))
        self._jobs.add_handlers(enqueue_handlers(self.queue))
        self.primary = self._jobs
        owned = owned_handlers(self, self._jobs, "Job", track=True)
        assert owned.on_add is not None and owned.on_update is not None
        on_add, on_update = owned.on_add, owned.on_update

        def orphan_check(pod: Obj) -> None:
            if _tracked(pod) and release_orphan(pod, self._jobs_informer()).actions:
                self.queue.add(_ORPHAN + key_of(pod))

        def added(pod: Obj) -> None:
            on_add(pod)
            orphan_check(pod)

        def updated(old: Obj, new: Obj) -> None:
            on_update(old, new)
            orphan_check(new)

        self._pods.add_handlers(Handlers(on_add=added, on_update=updated, on_delete=owned.on_delete))
        return []

    def _jobs_informer(self) -> Informer:
        assert self._jobs is not None
        return self._jobs

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._jobs is not None and self._pods is not None
        if key.startswith(_ORPHAN):
            pod = self._pods.get_by_key(key.removeprefix(_ORPHAN))
            return (release_orphan(pod, self._jobs), None) if pod is not None else None
        job = self._jobs.get_by_key(key)
        if job is None:
            return None
        pods = self._pods.by_index(CONTROLLER_UID, p.uid(job))
        return sync_job(job, pods, self._clock.now(), self._settings), job
