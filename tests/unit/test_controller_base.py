"""Controller building blocks: expectations, slow-start batches, workers (pure or loop-only parts)."""

from __future__ import annotations

import asyncio

import pytest

from edgek8s._util.workqueue import ExponentialBackoff, WorkQueue
from edgek8s.controllers.base import Expectations, is_pod_available, parse_time, run_workers, slow_start_batch
from edgek8s.model import errors


def test_expectations_wait_for_every_create_and_tracked_delete() -> None:
    now = [0.0]
    exp = Expectations(ttl=10, clock=lambda: now[0])
    assert exp.satisfied("ns/a")
    exp.expect_creations("ns/a", 2)
    exp.expect_deletions("ns/a", ["u1"])
    assert not exp.satisfied("ns/a")
    exp.creation_observed("ns/a")
    exp.creation_observed("ns/a")
    assert not exp.satisfied("ns/a")
    exp.deletion_observed("ns/a", "other-uid")
    assert not exp.satisfied("ns/a")
    exp.deletion_observed("ns/a", "u1")
    assert exp.satisfied("ns/a")


def test_expectations_expire_so_a_lost_event_cannot_wedge_a_key() -> None:
    now = [0.0]
    exp = Expectations(ttl=10, clock=lambda: now[0])
    exp.expect_creations("k", 1)
    now[0] = 10.5
    assert exp.satisfied("k")


@pytest.mark.parametrize(("count", "fail_at", "done", "calls"), [
    (10, None, 10, 10),   # batches 1, 2, 4, 3
    (10, 2, 2, 3),        # the 3rd call fails: batch 2 (calls 2-3) has one failure, stop
    (0, None, 0, 0),
])
async def test_slow_start_batches(count: int, fail_at: int | None, done: int, calls: int) -> None:
    made = []

    async def make() -> int:
        n = len(made)
        made.append(n)
        if n == fail_at:
            raise errors.Invalid("no")
        return n

    succeeded, error = await slow_start_batch(count, 1, make)
    assert (succeeded, len(made)) == (done, calls)
    assert (error is None) == (fail_at is None)


async def test_slow_start_re_raises_fenced() -> None:
    async def make() -> None:
        raise errors.Fenced("fenced: stale leader epoch 1")

    with pytest.raises(errors.Fenced):
        await slow_start_batch(4, 1, make)


async def test_workers_retry_failures_and_stop_when_fenced() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff=ExponentialBackoff(base=0.001, cap=0.01, jitter=0))
    attempts: dict[str, int] = {}

    async def sync(key: str) -> None:
        attempts[key] = attempts.get(key, 0) + 1
        if key == "flaky" and attempts[key] < 3:
            raise errors.Conflict("stale")
        if key == "fenced" and attempts.get("flaky", 0) >= 3:
            raise errors.Fenced("fenced: stale leader epoch 3")
        if key == "fenced":
            queue.add_after("fenced", 0.005)

    queue.add("flaky")
    queue.add("fenced")
    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(run_workers(queue, sync, workers=2, name="t"), 5)
    assert info.group_contains(errors.Fenced)
    assert attempts["flaky"] == 3 and queue.shutting_down


def test_availability_needs_min_ready_seconds() -> None:
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T12:00:00Z"}
    pod = {"status": {"conditions": [ready]}}
    since = parse_time("2024-05-01T12:00:00Z")
    assert since is not None
    assert is_pod_available(pod, 0, since)
    assert not is_pod_available(pod, 5, since + 4)
    assert is_pod_available(pod, 5, since + 5)
    assert not is_pod_available({"status": {}}, 0, since)
