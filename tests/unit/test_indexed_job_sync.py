"""Indexed Job sync tables: pod indexes, hostname and env, completedIndexes, one pod per index."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.controllers.actions import JOBS, PODS, Create, Delete, Plan, Update
from edgek8s.controllers.indexed import INDEX_KEY, format_intervals, parse_intervals
from edgek8s.controllers.job import sync_job
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.registry.strategy import prepare_create
from tests.support.builders import NOW
from tests.unit.test_job_sync import SETTINGS, job, job_pod


def indexed(**spec: Any) -> dict[str, Any]:
    return job(completionMode="Indexed", **spec)


def at(index: int | str | None, name: str, phase: str = "Running", **kwargs: Any) -> dict[str, Any]:
    pod = job_pod(name, phase, **kwargs)
    if index is not None:
        pod["metadata"]["annotations"] = {INDEX_KEY: str(index)}
        pod["metadata"]["labels"][INDEX_KEY] = str(index)
    return pod


def created(plan: Plan) -> list[dict[str, Any]]:
    return [a.body for a in plan.actions if isinstance(a, Create)]


def deleted(plan: Plan) -> list[str]:
    return sorted(a.name for a in plan.actions if isinstance(a, Delete) and a.resource == PODS)


def status(plan: Plan) -> dict[str, Any]:
    [update] = [a for a in plan.actions if isinstance(a, Update) and a.resource == JOBS]
    return update.body["status"]


@pytest.mark.parametrize(("indexes", "text"), [
    (set(), ""), ({3}, "3"), ({0, 1}, "0-1"), ({0, 1, 2, 5, 7, 8}, "0-2,5,7-8"), ({9, 4, 5, 6}, "4-6,9"),
])
def test_intervals_round_trip(indexes: set[int], text: str) -> None:
    assert format_intervals(indexes) == text
    assert parse_intervals(text) == indexes


def test_first_sync_creates_the_lowest_indexes_with_hostname_env_and_label() -> None:
    plan = sync_job(indexed(parallelism=2, completions=4), [], NOW, SETTINGS)
    bodies = created(plan)
    assert [b["metadata"]["annotations"][INDEX_KEY] for b in bodies] == ["0", "1"]
    first = bodies[0]
    assert first["metadata"]["labels"][INDEX_KEY] == "0"
    assert first["metadata"]["generateName"] == "work-0-"
    assert first["spec"]["hostname"] == "work-0"
    assert first["spec"]["containers"][0]["env"] == [
        {"name": "JOB_COMPLETION_INDEX",
         "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{INDEX_KEY}']"}}}]


def test_template_hostname_and_own_env_are_kept() -> None:
    template_spec = {"hostname": "fixed", "restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox",
                                     "env": [{"name": "JOB_COMPLETION_INDEX", "value": "mine"}]}]}
    the_job = indexed(completions=1)
    the_job["spec"]["template"]["spec"] = template_spec
    [body] = created(sync_job(the_job, [], NOW, SETTINGS))
    assert body["spec"]["hostname"] == "fixed"
    assert body["spec"]["containers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "value": "mine"}]


def test_succeeded_pods_complete_their_index_and_free_ones_are_filled() -> None:
    pods = [at(0, "a", "Succeeded"), at(1, "b"), at(2, "c", "Failed")]
    plan = sync_job(indexed(parallelism=3, completions=4), pods, NOW, SETTINGS)
    new = status(plan)
    assert new["completedIndexes"] == "0" and new["succeeded"] == 1
    assert "succeeded" not in new.get("uncountedTerminatedPods", {})  # by index, not uid
    assert new["uncountedTerminatedPods"] == {"failed": ["uid-c"]}
    # 0 is done and 1 runs; the failed index 2 is retried (its 10 s backoff ended long ago), then 3.
    assert sorted(b["metadata"]["annotations"][INDEX_KEY] for b in created(plan)) == ["2", "3"]


def test_a_second_success_of_one_index_counts_once() -> None:
    pods = [at(0, "a", "Succeeded", tracked=False), at(0, "a2", "Succeeded")]
    plan = sync_job(indexed(completions=2, status={"startTime": "x", "completedIndexes": "0", "succeeded": 1}),
                    pods, NOW, SETTINGS)
    new = status(plan)
    assert (new["succeeded"], new["completedIndexes"]) == (1, "0")
    released = [a.body["metadata"]["name"] for a in plan.actions if isinstance(a, Update) and a.resource == PODS]
    assert released == ["a2"]
    assert [b["metadata"]["annotations"][INDEX_KEY] for b in created(plan)] == ["1"]


def test_duplicates_out_of_range_unlabelled_and_completed_indexes_are_deleted() -> None:
    pods = [at(1, "one", age=500), at(1, "one-again", age=100), at(7, "seven"), at(None, "bare"), at("x", "bad"),
            at(0, "zero-running")]
    plan = sync_job(indexed(parallelism=4, completions=3, status={"startTime": "x", "completedIndexes": "0"}),
                    pods, NOW, SETTINGS)
    assert deleted(plan) == ["bad", "bare", "one-again", "seven", "zero-running"]
    assert [b["metadata"]["annotations"][INDEX_KEY] for b in created(plan)] == ["2"]


def test_all_indexes_complete_the_job() -> None:
    pods = [at(0, "a", "Succeeded"), at(1, "b", "Succeeded", tracked=False)]
    plan = sync_job(indexed(parallelism=2, completions=2, status={"startTime": "x", "completedIndexes": "1",
                                                                  "succeeded": 1}), pods, NOW, SETTINGS)
    new = status(plan)
    assert new["completedIndexes"] == "0-1" and new["succeeded"] == 2
    assert any(c["type"] == "SuccessCriteriaMet" for c in new["conditions"])
    assert created(plan) == []


@pytest.mark.parametrize(("spec", "message"), [
    ({"parallelism": 2, "completionMode": "Indexed"},
     "spec.completions: Required value: when completion mode is Indexed"),
    ({"completions": 2, "completionMode": "Sometimes"}, 'spec.completionMode: Unsupported value: "Sometimes"'),
])
def test_api_rejects_bad_completion_modes(spec: dict[str, Any], message: str) -> None:
    body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
            "spec": {**spec, "template": {"spec": {"restartPolicy": "Never",
                                                   "containers": [{"name": "c", "image": "busybox"}]}}}}
    with pytest.raises(errors.StatusError) as raised:
        prepare_create(by_id(resource_id("batch", "jobs")), body, namespace="default")
    assert message in str(raised.value)
