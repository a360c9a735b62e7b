"""Job and CronJob controllers on a real 3-master cluster, with hollow agents running and finishing pods.

The CronJob controller gets a FakeClock: the test moves time to the next schedule minute instead of
sleeping through it.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ControllersConfig, ServerConfig
from edgek8s.controllers.cronjob import CronJobController, job_name
from edgek8s.controllers.indexed import INDEX_KEY
from edgek8s.controllers.job import TRACKING_FINALIZER
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.server.loops import leader_loops
from tests.support.clock import FakeClock
from tests.support.cluster import LocalCluster, absent, eventually, started_cluster
from tests.support.hollow_agents import EXIT_CODE, RUN_SECONDS, HollowAgents, running

PODS = by_id(resource_id("", "pods"))
EVENTS = by_id(resource_id("", "events"))
JOBS = by_id(resource_id("batch", "jobs"))
CRON_JOBS = by_id(resource_id("batch", "cronjobs"))

pytestmark = pytest.mark.timeout(120)


class Harness:
    def __init__(self, cluster: LocalCluster, client: InProcessClient, clock: FakeClock,
                 cron: list[CronJobController]) -> None:
        self.cluster, self.client, self.clock, self.cron = cluster, client, clock, cron

    def tick(self, moment: datetime.datetime) -> None:
        self.clock.set(moment)
        for controller in self.cron:
            controller.resync_all()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = FakeClock(datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0))
    cron: list[CronJobController] = []

    def loops(config: ServerConfig) -> list[LeaderLoop]:
        controller = CronJobController(clock=clock)
        cron.append(controller)
        return [controller if isinstance(loop, CronJobController) else loop for loop in leader_loops(config)]

    config = ControllersConfig(job_backoff_base=0.05, job_backoff_max=0.2)
    async with started_cluster(tmp_path, controllers=config, loops=loops) as cluster:
        client = InProcessClient(cluster.running()[0].store, manager="test")
        async with running(HollowAgents(client, ["n1", "n2"])):
            yield Harness(cluster, client, clock, cron)


def pod_template(run_seconds: float, exit_code: int = 0) -> dict[str, Any]:
    return {"metadata": {"annotations": {RUN_SECONDS: str(run_seconds), EXIT_CODE: str(exit_code)}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}


def job(name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": template, **spec}}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or ()
                 if c["type"] == type_ and c["status"] == "True"), None)


async def job_pods(client: InProcessClient, uid: str) -> list[dict[str, Any]]:
    return [p for p in (await client.list(PODS, "default")).items
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or ())]


async def finished(client: InProcessClient, name: str, type_: str) -> dict[str, Any] | None:
    current = await client.get(JOBS, "default", name)
    return current if condition(current, type_) else None


async def test_job_runs_to_completions_with_parallelism(harness: Harness) -> None:
    client = harness.client
    created = await client.create(JOBS, job("work", pod_template(0.2), completions=4, parallelism=2))
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    peak = 0
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        pods = await job_pods(client, uid)
        peak = max(peak, sum(1 for p in pods if p["status"].get("phase") in ("Pending", "Running")))
        if await finished(client, "work", "Complete"):
            break
        await asyncio.sleep(0.02)
    done = await eventually(lambda: finished(client, "work", "Complete"))
    status = done["status"]
    assert status["succeeded"] == 4 and status.get("failed", 0) == 0 and status["completionTime"]
    assert peak <= 2, f"{peak} pods ran at once with parallelism 2"

    async def released() -> Any:
        pods = await job_pods(client, uid)
        return len(pods) == 4 and all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ())
                                      for p in pods)

    await eventually(released)
    # A counted pod deleted later does not change the count.
    victim = (await job_pods(client, uid))[0]
    await client.delete(PODS, "default", victim["metadata"]["name"])
    await asyncio.sleep(0.3)
    assert (await client.get(JOBS, "default", "work"))["status"]["succeeded"] == 4


async def test_indexed_job_runs_each_index_once(harness: Harness) -> None:
    client = harness.client
    created = await client.create(JOBS, job("idx", pod_template(0.1), completions=5, parallelism=2,
                                            completionMode="Indexed"))
    uid = created["metadata"]["uid"]
    overlap = set()
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        live = [p for p in await job_pods(client, uid) if p["status"].get("phase") in ("Pending", "Running")
                and not p["metadata"].get("deletionTimestamp")]
        indexes = [p["metadata"]["annotations"][INDEX_KEY] for p in live]
        if len(indexes) != len(set(indexes)) or len(live) > 2:
            overlap.add(tuple(sorted(indexes)))
        if await finished(client, "idx", "Complete"):
            break
        await asyncio.sleep(0.02)
    done = await eventually(lambda: finished(client, "idx", "Complete"))
    assert not overlap, f"an index ran twice at once, or more than parallelism: {overlap}"
    assert (done["status"]["succeeded"], done["status"]["completedIndexes"]) == (5, "0-4")
    pods = await job_pods(client, uid)
    succeeded = sorted(p["metadata"]["labels"][INDEX_KEY] for p in pods if p["status"].get("phase") == "Succeeded")
    assert succeeded == ["0", "1", "2", "3", "4"]
    for pod in pods:
        index = pod["metadata"]["annotations"][INDEX_KEY]
        assert pod["spec"]["hostname"] == f"idx-{index}" and pod["metadata"]["name"].startswith(f"idx-{index}-")
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX_KEY}']"}}} in pod["spec"]["containers"][0]["env"]


async def test_backoff_limit_and_deadline_fail_the_job(harness: Harness) -> None:
    client = harness.client
    await client.create(JOBS, job("crash", pod_template(0.05, exit_code=1), backoffLimit=2))
    failed = await eventually(lambda: finished(client, "crash", "Failed"))
    assert (condition(failed, "Failed") or {}).get("reason") == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 3
    slow = await client.create(JOBS, job("slow", pod_template(600), parallelism=2, completions=2,
                                         activeDeadlineSeconds=1))
    late = await eventually(lambda: finished(client, "slow", "Failed"))
    assert (condition(late, "Failed") or {}).get("reason") == "DeadlineExceeded"

    async def no_active_pods() -> bool:
        pods = await job_pods(client, slow["metadata"]["uid"])
        return all(p["status"].get("phase") != "Running" or p["metadata"].get("deletionTimestamp") for p in pods)

    await eventually(no_active_pods)


async def test_ttl_after_finished_deletes_the_job(harness: Harness) -> None:
    client = harness.client
    await client.create(JOBS, job("brief", pod_template(0.05), ttlSecondsAfterFinished=0))
    await eventually(lambda: absent(client, JOBS, "default", "brief"))


def cron_job(name: str, policy: str, run_seconds: float, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": policy, "successfulJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"template": pod_template(run_seconds)}}, **spec}}


def next_five(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0) + datetime.timedelta(minutes=5)


async def test_cron_job_schedule_history_and_forbid(harness: Harness) -> None:
    client, clock = harness.client, harness.clock
    cj = await client.create(CRON_JOBS, cron_job("tick", "Allow", 0.05))
    other = await client.create(CRON_JOBS, cron_job("busy", "Forbid", 600))
    await asyncio.sleep(0.3)
    assert (await client.list(JOBS, "default")).items == []  # nothing due before the first */5 minute
    names, dues = [], []
    for _ in range(3):
        due = next_five(clock.now())
        harness.tick(due)
        dues.append(due)
        names.append(job_name(cj, due))

        async def ran(name: str = names[-1]) -> Any:
            try:
                return await finished(client, name, "Complete")
            except errors.NotFound:
                return None

        await eventually(ran)
    current = await client.get(CRON_JOBS, "default", "tick")
    assert current["status"]["lastScheduleTime"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert current["status"]["lastSuccessfulTime"]

    async def history_trimmed() -> Any:
        jobs = [j["metadata"]["name"] for j in (await client.list(JOBS, "default")).items
                if j["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]]
        return jobs == [names[-1]]

    await eventually(history_trimmed)
    # Forbid: the first run still runs at the next two times, so no second Job starts.
    busy = [j for j in (await client.list(JOBS, "default")).items
            if j["metadata"]["ownerReferences"][0]["uid"] == other["metadata"]["uid"]]
    assert [j["metadata"]["name"] for j in busy] == [job_name(other, dues[0])]

    async def refused() -> bool:
        events = (await client.list(EVENTS, "default")).items
        return any(e["reason"] == "JobAlreadyActive" and e["involvedObject"]["name"] == "busy" for e in events)

    await eventually(refused)
