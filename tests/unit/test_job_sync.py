"""Job sync tables: parallelism, completions, finalizer tracking, backoff, deadlines, suspend, TTL."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from edgek8s.controllers.actions import JOBS, PODS, Create, Delete, Emit, Plan, Update
from edgek8s.controllers.job import TRACKING_FINALIZER, JobSettings, sync_job
from tests.support.builders import NOW, meta, owner, pod, template, ts

SETTINGS = JobSettings(backoff_base=10.0, backoff_max=360.0, burst=500)
JOB_OWNER = owner("Job", "work", "batch/v1")


def job(*, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    full_spec = {"parallelism": 1, "completions": 1, "backoffLimit": 6, "template": template(restartPolicy="Never")}
    full_spec.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("work"), "spec": full_spec,
            "status": status if status is not None else {"startTime": ts(100)}}


def job_pod(name: str, phase: str = "Running", *, tracked: bool = True, finished_ago: float = 100.0,
            **kwargs: Any) -> dict[str, Any]:
    obj = pod(name, owners=JOB_OWNER, phase=phase, node_name="n1", **kwargs)
    if tracked:
        obj["metadata"]["finalizers"] = [TRACKING_FINALIZER]
    if phase in ("Succeeded", "Failed"):
        obj["status"]["containerStatuses"] = [{"name": "c", "state": {"terminated": {"finishedAt": ts(finished_ago)}}}]
        obj["status"]["conditions"] = [{"type": "Ready", "status": "False", "lastTransitionTime": ts(finished_ago)}]
    return obj


def counts(plan: Plan) -> tuple[int, int]:
    return (sum(isinstance(a, Create) for a in plan.actions),
            sum(isinstance(a, Delete) and a.resource == PODS for a in plan.actions))


def job_status(plan: Plan) -> dict[str, Any]:
    [update] = [a for a in plan.actions if isinstance(a, Update) and a.resource == JOBS]
    assert update.status
    return update.body["status"]


def released(plan: Plan) -> list[str]:
    return [a.body["metadata"]["name"] for a in plan.actions if isinstance(a, Update) and a.resource == PODS]


def condition_types(status: dict[str, Any]) -> set[str]:
    return {c["type"] for c in status.get("conditions", []) if c["status"] == "True"}


@pytest.mark.parametrize(
    ("spec", "pods", "creates", "deletes"),
    [
        ({"parallelism": 3, "completions": 5}, [], 3, 0),
        ({"parallelism": 3, "completions": 5}, ["Running"], 2, 0),
        ({"parallelism": 3, "completions": 2}, [], 2, 0),  # never more than completions left
        ({"parallelism": 3, "completions": 5}, ["Succeeded"] * 3, 2, 0),
        ({"parallelism": 1, "completions": 5}, ["Running", "Running"], 0, 1),  # parallelism lowered
        ({"parallelism": 2, "completions": None}, [], 2, 0),  # work queue
        ({"parallelism": 2, "completions": None}, ["Succeeded", "Running"], 0, 0),  # let the rest finish
    ],
)
def test_pods_towards_parallelism(spec: dict[str, Any], pods: list[str], creates: int, deletes: int) -> None:
    existing = [job_pod(f"p{i}", phase) for i, phase in enumerate(pods)]
    assert counts(sync_job(job(**spec), existing, NOW, SETTINGS)) == (creates, deletes)


def test_new_pods_carry_tracking_finalizer_owner_and_labels() -> None:
    plan = sync_job(job(status={}), [], NOW, SETTINGS)
    [create] = [a for a in plan.actions if isinstance(a, Create)]
    assert create.body["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    assert create.body["metadata"]["ownerReferences"] == [{**JOB_OWNER[0]}]
    assert create.body["metadata"]["generateName"] == "work-"
    status = job_status(plan)
    assert status["startTime"] == ts(0) and status["active"] == 1


def test_finished_pod_is_recorded_before_release_then_counted() -> None:
    done = job_pod("p0", "Succeeded")
    first = sync_job(job(completions=2), [done], NOW, SETTINGS)
    status = job_status(first)
    assert status["uncountedTerminatedPods"] == {"succeeded": ["uid-p0"]}
    assert status.get("succeeded", 0) == 0
    writes = first.writes()
    status_at = next(i for i, a in enumerate(writes) if isinstance(a, Update) and a.resource == JOBS)
    release_at = next(i for i, a in enumerate(writes) if isinstance(a, Update) and a.resource == PODS)
    assert status_at < release_at  # never release a pod before its uid is in the status
    assert TRACKING_FINALIZER not in writes[release_at].body["metadata"]["finalizers"]  # type: ignore[union-attr]
    # Next sync: the pod no longer holds the finalizer -> counted for good.
    done_released = job_pod("p0", "Succeeded", tracked=False)
    second = sync_job(job(completions=2, status=status), [done_released], NOW, SETTINGS)
    status2 = job_status(second)
    assert status2["succeeded"] == 1 and status2["uncountedTerminatedPods"] == {}


def test_counted_pod_deleted_stays_counted() -> None:
    status = {"startTime": ts(100), "succeeded": 1, "uncountedTerminatedPods": {}}
    plan = sync_job(job(completions=2, status=status), [], NOW, SETTINGS)  # the pod is gone
    assert counts(plan) == (1, 0)  # one more to run, not two
    status = {"startTime": ts(100), "uncountedTerminatedPods": {"failed": ["uid-gone"]}}
    plan = sync_job(job(status=status), [], NOW, SETTINGS)
    assert job_status(plan)["failed"] == 1


def test_running_pod_deleted_counts_as_failed() -> None:
    leaving = job_pod("p0", "Running", deletionTimestamp=ts(1))
    plan = sync_job(job(), [leaving], NOW, SETTINGS)
    status = job_status(plan)
    assert status["uncountedTerminatedPods"] == {"failed": ["uid-p0"]} and status["terminating"] == 1
    assert released(plan) == ["p0"]


def test_completes_in_two_steps_and_stops_the_rest() -> None:
    pods = [job_pod("p0", "Succeeded", tracked=False), job_pod("p1", "Succeeded"), job_pod("p2", "Running")]
    first = sync_job(job(parallelism=2, completions=2, status={"startTime": ts(100), "succeeded": 1}), pods, NOW,
                     SETTINGS)
    status = job_status(first)
    assert condition_types(status) == {"SuccessCriteriaMet"}  # interim: a pod still runs, one is uncounted
    assert counts(first) == (0, 1) and released(first) == ["p1"]
    # The stopped pod holds its finalizer while it terminates; it is released without counting as failed.
    stopping = job_pod("p2", "Running", deletionTimestamp=ts(0))
    pods = [pods[0], job_pod("p1", "Succeeded", tracked=False), stopping]
    second = sync_job(job(parallelism=2, completions=2, status=status), pods, NOW, SETTINGS)
    status = job_status(second)
    assert status["succeeded"] == 2 and released(second) == ["p2"] and "Complete" not in condition_types(status)
    third = sync_job(job(parallelism=2, completions=2, status=status), pods[:2], NOW, SETTINGS)
    status = job_status(third)
    assert {"Complete", "SuccessCriteriaMet"} <= condition_types(status)
    assert status["completionTime"] == ts(0) and status.get("failed", 0) == 0 and status["succeeded"] == 2
    assert any(isinstance(a, Emit) and a.reason == "Completed" for a in third.actions)


@pytest.mark.parametrize(
    ("failures", "finished_ago", "creates", "requeue"),
    [
        (1, 5.0, 0, 5.0),  # 10 s after the first failure
        (1, 11.0, 1, None),
        (3, 30.0, 0, 10.0),  # 40 s after the third
        (9, 300.0, 0, 60.0),  # capped at 360 s
    ],
)
def test_backoff_before_replacing_failed_pods(failures: int, finished_ago: float, creates: int,
                                              requeue: float | None) -> None:
    status = {"startTime": ts(1000), "failed": failures - 1}
    plan = sync_job(job(backoffLimit=20, status=status), [job_pod("f", "Failed", finished_ago=finished_ago)], NOW,
                    SETTINGS)
    assert counts(plan)[0] == creates
    assert plan.requeue_after == requeue


def test_backoff_limit_fails_the_job() -> None:
    pods = [job_pod("f", "Failed"), job_pod("r", "Running")]
    plan = sync_job(job(backoffLimit=1, parallelism=2, completions=3, status={"startTime": ts(100), "failed": 1}),
                    pods, NOW, SETTINGS)
    status = job_status(plan)
    assert condition_types(status) == {"FailureTarget"}  # the running pod must stop first
    assert counts(plan) == (0, 1)
    settled = sync_job(job(backoffLimit=1, status=status), [job_pod("f", "Failed", tracked=False)], NOW, SETTINGS)
    status = job_status(settled)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and status["failed"] == 2


def test_active_deadline() -> None:
    early = sync_job(job(activeDeadlineSeconds=300, status={"startTime": ts(100)}), [job_pod("r")], NOW, SETTINGS)
    assert early.requeue_after == 200 and not any(isinstance(a, Delete) for a in early.actions)
    late = sync_job(job(activeDeadlineSeconds=60, status={"startTime": ts(100)}), [job_pod("r")], NOW, SETTINGS)
    status = job_status(late)
    assert next(c for c in status["conditions"] if c["type"] == "FailureTarget")["reason"] == "DeadlineExceeded"
    assert counts(late) == (0, 1)
    done = sync_job(job(activeDeadlineSeconds=60, status=status), [], NOW, SETTINGS)
    assert next(c for c in job_status(done)["conditions"] if c["type"] == "Failed")["reason"] == "DeadlineExceeded"


def test_suspend_and_resume() -> None:
    plan = sync_job(job(suspend=True), [job_pod("r")], NOW, SETTINGS)
    assert counts(plan) == (0, 1)
    status = job_status(plan)
    assert "Suspended" in condition_types(status)
    resumed = sync_job(job(suspend=False, status=status), [], NOW, SETTINGS)
    assert counts(resumed) == (1, 0)
    assert "Suspended" not in condition_types(job_status(resumed))


def finished_job(ttl: int | None, finished_ago: float) -> dict[str, Any]:
    status = {"startTime": ts(1000), "completionTime": ts(finished_ago), "succeeded": 1,
              "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": ts(finished_ago)}]}
    extra = {"ttlSecondsAfterFinished": ttl} if ttl is not None else {}
    return job(status=status, **extra)


def test_finished_job_releases_leftover_pods_and_expires() -> None:
    plan = sync_job(finished_job(None, 10), [job_pod("p", "Succeeded")], NOW, SETTINGS)
    assert released(plan) == ["p"] and plan.requeue_after is None
    waiting = sync_job(finished_job(100, 10), [], NOW, SETTINGS)
    assert waiting.actions == [] and waiting.requeue_after == 90
    expired = sync_job(finished_job(100, 100), [], NOW, SETTINGS)
    [delete] = expired.actions
    assert isinstance(delete, Delete) and delete.resource == JOBS and delete.propagation == "Background"


def test_steady_state_writes_nothing() -> None:
    first = sync_job(job(parallelism=2, completions=4), [job_pod("a"), job_pod("b")], NOW, SETTINGS)
    status = job_status(first)
    again = sync_job(job(parallelism=2, completions=4, status=status), [job_pod("a"), job_pod("b")],
                     NOW + datetime.timedelta(seconds=5), SETTINGS)
    assert again.actions == []


def test_burst_limits_creates() -> None:
    plan = sync_job(job(parallelism=50, completions=50), [], NOW, JobSettings(burst=8))
    assert counts(plan) == (8, 0) and plan.requeue_after == 0
