"""CronJob sync: start a Job at each scheduled time, honour concurrency, deadlines and history. Pure.

``sync_cron_job(cj, jobs, now)`` returns the Plan for one CronJob given the Jobs it controls.
Upstream's ``pkg/controller/cronjob`` (``syncCronJob``):

- ``status.active`` is rebuilt from the Jobs themselves (unknown unfinished Jobs are added, finished
  or missing ones dropped), ``lastSuccessfulTime`` follows the newest completed Job.
- The time to run is the latest schedule time at or before now and after ``lastScheduleTime`` (or
  the creation time); with ``startingDeadlineSeconds``, times older than that many seconds are
  missed, not run late. More than 100 missed times give a ``TooManyMissedTimes`` warning; only the
  latest runs, as upstream.
- ``Forbid`` skips a run while a Job is active (it runs later if still within the deadline);
  ``Replace`` deletes the active Jobs first; ``Allow`` runs beside them.
- The Job's name is ``<cronjob>-<scheduled minutes since the epoch>``, so a create retried after a
  lost response or a stale cache finds AlreadyExists instead of running twice.
- Finished Jobs beyond ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit`` are deleted, oldest
  first, with their pods (Background propagation).
- The plan asks to be woken at the next schedule time: no polling, and tests drive ``now``.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.informer import Informer, InformerFactory
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import CRON_JOBS, JOBS, Create, Delete, Emit, Plan, Update
from edgek8s.controllers.base import enqueue_handlers
from edgek8s.controllers.cron import CronError, parse_schedule, zone
from edgek8s.controllers.job import finished_condition
from edgek8s.controllers.runner import CONTROLLER_UID, PlanLoop, controller_index, enqueue_all, owned_handlers
from edgek8s.model.resources import by_id
from edgek8s.model.timestamps import format_time, parse_time

SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100
_WAKE_SLACK = 0.1  # upstream's nextScheduleTimeDuration adds 100 ms so the wake-up is past the minute


def job_name(cj: Mapping[str, Any], scheduled: datetime.datetime) -> str:
    return f"{p.name(cj)}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: Mapping[str, Any], name: str, scheduled: datetime.datetime | None) -> dict[str, Any]:
    """A Job body from the CronJob's jobTemplate (also what ``kubectl create job --from`` builds)."""
    template = p.spec(cj).get("jobTemplate") or {}
    tmeta = p.meta(template)
    annotations = dict(tmeta.get("annotations") or {})
    if scheduled is not None:
        annotations[SCHEDULED_ANNOTATION] = scheduled.isoformat()
    job_meta: dict[str, Any] = {
        "name": name,
        "namespace": p.namespace(cj),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [p.controller_reference(cj, api_version="batch/v1", kind="CronJob")],
    }
    if annotations:
        job_meta["annotations"] = annotations
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": copy.deepcopy(dict(p.spec(template)))}


def _job_ref(job: Mapping[str, Any]) -> dict[str, Any]:
    return p.object_reference(job, api_version="batch/v1", kind="Job")


def _started(job: Mapping[str, Any]) -> tuple[str, str]:
    """Upstream's byJobStartTime: start time (second precision), then name (``<cronjob>-<minutes>``)."""
    return str(p.status(job).get("startTime") or p.meta(job).get("creationTimestamp") or ""), p.name(job)


def _history_deletes(cj: Mapping[str, Any], finished: list[Mapping[str, Any]], plan: Plan) -> None:
    spec = p.spec(cj)
    for type_, key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(key)
        if not isinstance(limit, int) or isinstance(limit, bool):
            continue
        kind = sorted((j for j in finished if (finished_condition(j) or {}).get("type") == type_), key=_started)
        for job in kind[: max(len(kind) - limit, 0)]:
            plan.actions.append(Delete(resource=JOBS, namespace=p.namespace(job), name=p.name(job),
                                       uid=p.uid(job), propagation="Background"))
            plan.actions.append(Emit(involved=dict(cj), type="Normal", reason="SuccessfulDelete",
                                     message=f"Deleted job {p.name(job)}"))


def _count_missed(schedule_next: Any, earliest: datetime.datetime, now: datetime.datetime) -> int:
    count, t = 0, earliest
    while count <= MAX_MISSED:
        t = schedule_next(t)
        if t is None or t > now:
            break
        count += 1
    return count


def sync_cron_job(cj: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], now: datetime.datetime) -> Plan:
    plan = Plan()
    spec, old_status = p.spec(cj), p.status(cj)
    owned = [j for j in jobs if p.controlled_by(j, p.uid(cj))]
    finished = [j for j in owned if finished_condition(j) is not None]
    running = p.by_creation(j for j in owned if finished_condition(j) is None and not p.is_deleting(j))
    new_status: dict[str, Any] = dict(old_status)
    last_success = parse_time(old_status.get("lastSuccessfulTime"))
    for job in finished:
        done = parse_time(p.status(job).get("completionTime"))
        if (finished_condition(job) or {}).get("type") == "Complete" and done is not None:
            last_success = done if last_success is None or done > last_success else last_success
    if last_success is not None:
        new_status["lastSuccessfulTime"] = format_time(last_success)
    active_refs = [_job_ref(j) for j in running]

    if not p.is_deleting(cj):
        _history_deletes(cj, finished, plan)
        active_refs = _schedule(cj, spec, old_status, running, active_refs, now, new_status, plan)

    if active_refs:
        new_status["active"] = active_refs
    else:
        new_status.pop("active", None)
    if new_status != dict(old_status):
        plan.actions.append(Update(resource=CRON_JOBS, body={**cj, "status": new_status}, status=True))
    return plan


def _schedule(
    cj: Mapping[str, Any],
    spec: Mapping[str, Any],
    old_status: Mapping[str, Any],
    running: list[Mapping[str, Any]],
    active_refs: list[dict[str, Any]],
    now: datetime.datetime,
    new_status: dict[str, Any],
    plan: Plan,
) -> list[dict[str, Any]]:
    """Decide whether a Job starts now; returns the active references afterwards."""
    try:
        schedule = parse_schedule(str(spec.get("schedule") or ""))
        tz = zone(spec.get("timeZone"))
    except CronError as exc:
        plan.actions.append(Emit(involved=dict(cj), type="Warning", reason="InvalidSchedule",
                                 message=f"invalid schedule: {spec.get('schedule')}: {exc}"))
        return active_refs
    local_now = now.astimezone(tz)
    upcoming = schedule.next_after(local_now)
    if upcoming is not None:
        plan.requeue((upcoming - local_now).total_seconds() + _WAKE_SLACK)
    if spec.get("suspend"):
        return active_refs
    earliest = parse_time(old_status.get("lastScheduleTime")) or parse_time(p.meta(cj).get("creationTimestamp"))
    if earliest is None:
        earliest = now
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and not isinstance(deadline, bool):
        earliest = max(earliest, now - datetime.timedelta(seconds=deadline))
    earliest_local = earliest.astimezone(tz)
    scheduled = schedule.latest_at_or_before(local_now)
    if scheduled is None or scheduled <= earliest_local:
        return active_refs
    if _count_missed(schedule.next_after, earliest_local, local_now) > MAX_MISSED:
        plan.actions.append(Emit(involved=dict(cj), type="Warning", reason="TooManyMissedTimes",
                                 message=f"too many missed start times: > {MAX_MISSED}. Set or decrease "
                                         ".spec.startingDeadlineSeconds or check clock skew"))
    name = job_name(cj, scheduled)
    if any(p.name(j) == name for j in running):
        new_status["lastScheduleTime"] = format_time(scheduled)
        return active_refs
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and running:
        plan.actions.append(Emit(involved=dict(cj), type="Normal", reason="JobAlreadyActive",
                                 message="Not starting job because prior execution is running and concurrency "
                                         "policy is Forbid"))
        return active_refs
    if policy == "Replace":
        for job in running:
            plan.actions.append(Delete(resource=JOBS, namespace=p.namespace(job), name=p.name(job),
                                       uid=p.uid(job), propagation="Background"))
            plan.actions.append(Emit(involved=dict(cj), type="Normal", reason="SuccessfulDelete",
                                     message=f"Deleted job {p.name(job)}"))
        active_refs = []
    body = job_from_template(cj, name, scheduled)
    plan.actions.append(Create(resource=JOBS, namespace=p.namespace(cj), body=body, exists_ok=True))
    plan.actions.append(Emit(involved=dict(cj), type="Normal", reason="SuccessfulCreate",
                             message=f"Created job {name}"))
    new_status["lastScheduleTime"] = format_time(scheduled)
    return [*active_refs, _job_ref(body)]


# --- the loop -----------------------------------------------------------------------------------------


class CronJobController(PlanLoop):
    """Informers: CronJobs (keys) and Jobs (by controller uid). Wakes itself at each next schedule time."""

    name = "cronjob-controller"

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__()
        self._clock = clock or SystemClock()
        self._cron_jobs: Informer | None = None
        self._jobs: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._cron_jobs = informers.informer(by_id(CRON_JOBS))
        self._jobs = controller_index(informers.informer(by_id(JOBS)))
        self._cron_jobs.add_handlers(enqueue_handlers(self.queue))
        self.primary = self._cron_jobs
        self._jobs.add_handlers(owned_handlers(self, self._cron_jobs, "CronJob", track=False))
        return []

    def resync_all(self) -> None:
        """Look at every CronJob now (tests call it after moving their clock); a no-op before ``run``."""
        if self._cron_jobs is not None:
            enqueue_all(self, self._cron_jobs)()

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._cron_jobs is not None and self._jobs is not None
        cj = self._cron_jobs.get_by_key(key)
        if cj is None:
            return None
        return sync_cron_job(cj, self._jobs.by_index(CONTROLLER_UID, p.uid(cj)), self._clock.now()), cj
