"""CronJob sync tables: when a Job starts, concurrency policies, deadlines, history, status."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from edgek8s.controllers.actions import CRON_JOBS, JOBS, Create, Delete, Emit, Plan, Update
from edgek8s.controllers.cronjob import SCHEDULED_ANNOTATION, job_name, sync_cron_job
from tests.support.builders import NOW, meta, owner, template, ts

CJ_OWNER = owner("CronJob", "tick", "batch/v1")


def cron_job(schedule: str = "*/5 * * * *", *, age: float = 600.0, status: dict[str, Any] | None = None,
             **spec: Any) -> dict[str, Any]:
    full = {"schedule": schedule, "concurrencyPolicy": "Allow", "suspend": False, "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": template()}}}
    full.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("tick", age=age), "spec": full,
            "status": status or {}}


def job(name: str, state: str = "", *, started_ago: float = 60.0, done_ago: float = 30.0) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job",
                           "metadata": meta(name, ownerReferences=CJ_OWNER, age=started_ago),
                           "spec": {}, "status": {"startTime": ts(started_ago)}}
    if state:
        obj["status"]["conditions"] = [{"type": state, "status": "True", "lastTransitionTime": ts(done_ago)}]
        if state == "Complete":
            obj["status"]["completionTime"] = ts(done_ago)
    return obj


def created(plan: Plan) -> list[dict[str, Any]]:
    return [a.body for a in plan.actions if isinstance(a, Create)]


def deleted(plan: Plan) -> list[str]:
    return [a.name for a in plan.actions if isinstance(a, Delete)]


def new_status(plan: Plan) -> dict[str, Any]:
    [update] = [a for a in plan.actions if isinstance(a, Update)]
    assert update.resource == CRON_JOBS and update.status
    return update.body["status"]


def reasons(plan: Plan) -> list[str]:
    return [a.reason for a in plan.actions if isinstance(a, Emit)]


def test_starts_a_job_at_the_scheduled_time() -> None:
    plan = sync_cron_job(cron_job(), [], NOW)
    [body] = created(plan)
    assert body["metadata"]["name"] == job_name(cron_job(), NOW) == f"tick-{int(NOW.timestamp()) // 60}"
    assert body["metadata"]["labels"] == {"team": "a"}
    assert body["metadata"]["ownerReferences"] == CJ_OWNER
    assert body["metadata"]["annotations"][SCHEDULED_ANNOTATION] == NOW.isoformat()
    assert body["spec"] == {"template": template()}
    create = next(a for a in plan.actions if isinstance(a, Create))
    assert create.resource == JOBS and create.exists_ok  # a retried create must not run twice
    status = new_status(plan)
    assert status["lastScheduleTime"] == ts(0)
    assert [ref["name"] for ref in status["active"]] == [body["metadata"]["name"]]
    assert plan.requeue_after == pytest.approx(300.1)
    assert reasons(plan) == ["SuccessfulCreate"]


def test_nothing_due_sleeps_until_the_next_time() -> None:
    plan = sync_cron_job(cron_job(status={"lastScheduleTime": ts(0)}), [], NOW + datetime.timedelta(seconds=70))
    assert plan.actions == [] and plan.requeue_after == pytest.approx(230.1)
    fresh = sync_cron_job(cron_job(age=60.0), [], NOW - datetime.timedelta(seconds=30))  # created after 11:55
    assert created(fresh) == []


@pytest.mark.parametrize(
    ("policy", "creates", "deletes", "reason"),
    [
        ("Allow", 1, [], "SuccessfulCreate"),
        ("Forbid", 0, [], "JobAlreadyActive"),
        ("Replace", 1, ["tick-old"], "SuccessfulDelete"),
    ],
)
def test_concurrency_policy(policy: str, creates: int, deletes: list[str], reason: str) -> None:
    cj = cron_job(concurrencyPolicy=policy, status={"lastScheduleTime": ts(300)})
    plan = sync_cron_job(cj, [job("tick-old")], NOW)
    assert len(created(plan)) == creates and deleted(plan) == deletes
    assert reason in reasons(plan)
    if policy == "Forbid":
        assert "lastScheduleTime" not in new_status(plan) or new_status(plan)["lastScheduleTime"] == ts(300)


@pytest.mark.parametrize(("deadline", "creates"), [(10, 0), (60, 1), (None, 1)])
def test_starting_deadline(deadline: int | None, creates: int) -> None:
    extra = {"startingDeadlineSeconds": deadline} if deadline is not None else {}
    cj = cron_job("0 * * * *", status={"lastScheduleTime": ts(3600)}, **extra)
    plan = sync_cron_job(cj, [], NOW + datetime.timedelta(seconds=30))
    assert len(created(plan)) == creates


def test_too_many_missed_runs_only_the_latest() -> None:
    cj = cron_job("* * * * *", age=86400.0)
    plan = sync_cron_job(cj, [], NOW)
    assert "TooManyMissedTimes" in reasons(plan)
    [body] = created(plan)
    assert body["metadata"]["name"] == job_name(cj, NOW)


def test_suspend_starts_nothing() -> None:
    plan = sync_cron_job(cron_job(suspend=True), [], NOW)
    assert created(plan) == [] and plan.requeue_after is not None


def test_active_list_and_last_success_follow_the_jobs() -> None:
    status = {"lastScheduleTime": ts(0), "active": [{"kind": "Job", "name": "tick-gone", "namespace": "default"}]}
    jobs = [job("tick-running"), job("tick-done", "Complete", done_ago=20)]
    plan = sync_cron_job(cron_job(status=status), jobs, NOW)
    new = new_status(plan)
    assert [ref["name"] for ref in new["active"]] == ["tick-running"]
    assert new["active"][0]["uid"] == "uid-tick-running"
    assert new["lastSuccessfulTime"] == ts(20)


def test_history_limits_delete_the_oldest() -> None:
    jobs = [job(f"ok{i}", "Complete", started_ago=1000 - i * 100) for i in range(5)]
    jobs += [job(f"bad{i}", "Failed", started_ago=1000 - i * 100) for i in range(2)]
    plan = sync_cron_job(cron_job(status={"lastScheduleTime": ts(0)}), jobs, NOW)
    assert deleted(plan) == ["ok0", "ok1", "bad0"]
    assert all(a.propagation == "Background" for a in plan.actions if isinstance(a, Delete))


def test_same_scheduled_time_is_not_run_twice() -> None:
    cj = cron_job(status={"lastScheduleTime": ts(300)})
    plan = sync_cron_job(cj, [job(job_name(cj, NOW))], NOW)
    assert created(plan) == []
    assert new_status(plan)["lastScheduleTime"] == ts(0)


def test_invalid_schedule_warns() -> None:
    plan = sync_cron_job(cron_job("61 * * * *"), [], NOW)
    assert created(plan) == [] and reasons(plan) == ["InvalidSchedule"]


def test_time_zone() -> None:
    # 07:00 in New York (UTC-5 in January) is 12:00 UTC, which is NOW.
    plan = sync_cron_job(cron_job("0 7 * * *", timeZone="America/New_York", status={"lastScheduleTime": ts(60)}),
                         [], NOW)
    [body] = created(plan)
    assert body["metadata"]["name"] == job_name(cron_job(), NOW)
    utc = sync_cron_job(cron_job("0 7 * * *", status={"lastScheduleTime": ts(60)}), [], NOW)
    assert created(utc) == []


def test_deleting_cron_job_starts_nothing() -> None:
    cj = cron_job()
    cj["metadata"]["deletionTimestamp"] = ts(1)
    assert created(sync_cron_job(cj, [], NOW)) == []


def test_history_ties_on_start_time_keep_the_latest_schedule() -> None:
    jobs = [job(f"tick-{minute}", "Complete", started_ago=5) for minute in (29932130, 29932125, 29932120)]
    plan = sync_cron_job(cron_job(successfulJobsHistoryLimit=1, status={"lastScheduleTime": ts(0)}), jobs, NOW)
    assert deleted(plan) == ["tick-29932120", "tick-29932125"]
