"""SchedulingQueue: priority then FIFO, backoff after failures, parking until nodes change."""

from __future__ import annotations

import asyncio

from edgek8s._util.workqueue import ExponentialBackoff
from edgek8s.scheduler.queue import SchedulingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(queue: SchedulingQueue) -> list[str]:
    keys = []
    while (key := queue.pop_nowait()) is not None:
        keys.append(key)
    return keys


async def test_priority_then_first_come() -> None:
    queue = SchedulingQueue()
    for key, priority in (("a", 0), ("b", 10), ("c", 0), ("d", 10), ("e", -1)):
        queue.add(key, priority)
    queue.add("a", 0)  # already waiting: not twice
    assert drain(queue) == ["b", "d", "a", "c", "e"]
    asyncio.get_running_loop().call_later(0.01, queue.add, "late", 0)
    assert await asyncio.wait_for(queue.pop(), 1.0) == "late"  # pop waits for the next add


async def test_unschedulable_pods_wait_for_a_node_change_and_their_backoff() -> None:
    clock = Clock()
    queue = SchedulingQueue(backoff=ExponentialBackoff(base=0.05, cap=1.0, jitter=0.0), clock=clock,
                            unschedulable_flush=30.0)
    queue.add("p")
    assert drain(queue) == ["p"]
    queue.unschedulable("p")
    assert drain(queue) == []
    assert queue.stats()["unschedulable"] == 1
    clock.now += 1.0  # backoff over
    queue.move_all()
    assert drain(queue) == ["p"]
    queue.unschedulable("p")
    queue.move_all()  # backoff (0.1 s) not over: waits on a timer, then comes back by itself
    assert drain(queue) == []
    await asyncio.sleep(0.2)
    assert drain(queue) == ["p"]
    queue.done("p")


async def test_flush_retries_parked_pods_and_delete_forgets_them() -> None:
    clock = Clock()
    queue = SchedulingQueue(backoff=ExponentialBackoff(base=0.0, cap=0.0, jitter=0.0), clock=clock,
                            unschedulable_flush=30.0)
    for key in ("a", "b"):
        queue.add(key)
    assert drain(queue) == ["a", "b"]
    queue.unschedulable("a")
    queue.unschedulable("b")
    assert "a" in queue and "b" in queue
    queue.delete("b")
    assert "b" not in queue
    queue.flush_unschedulable()
    assert drain(queue) == []
    clock.now += 31
    queue.flush_unschedulable()
    assert drain(queue) == ["a"]
    assert len(queue) == 0


async def test_a_pod_changed_during_its_attempt_is_not_parked() -> None:
    queue = SchedulingQueue(backoff=ExponentialBackoff(base=0.0, cap=0.0, jitter=0.0))
    queue.add("p")
    assert drain(queue) == ["p"]
    queue.add("p", 5)  # e.g. a toleration added while the scheduler was deciding
    assert drain(queue) == []
    queue.unschedulable("p")
    assert drain(queue) == ["p"]


async def test_retry_after_a_failed_binding() -> None:
    queue = SchedulingQueue(backoff=ExponentialBackoff(base=0.01, cap=0.01, jitter=0.0))
    queue.add("p")
    assert drain(queue) == ["p"]
    queue.retry("p")
    assert drain(queue) == []
    await asyncio.sleep(0.05)
    assert drain(queue) == ["p"]
