"""WorkQueue: dedup, one worker per key, delays, rate limiting, shutdown (client-go semantics)."""

from __future__ import annotations

import asyncio
import random

import pytest

from edgek8s._util.workqueue import ExponentialBackoff, ShutDown, WorkQueue


async def test_pending_keys_are_deduplicated_and_fifo() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_is_never_processed_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # changed while being processed: not handed to another worker now
    assert len(queue) == 0
    other = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not other.done()
    queue.done(key)  # ... but queued again once the first worker is done
    assert await asyncio.wait_for(other, 1) == "a"
    queue.done("a")
    assert len(queue) == 0


async def test_concurrent_workers_each_get_distinct_keys() -> None:
    queue: WorkQueue[int] = WorkQueue()
    active: set[int] = set()
    seen: list[int] = []

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            assert key not in active
            active.add(key)
            await asyncio.sleep(0)
            seen.append(key)
            active.discard(key)
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(200):
        queue.add(i % 10)
        if i % 7 == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    queue.shutdown()
    await asyncio.gather(*workers)
    assert set(seen) == set(range(10))


async def test_add_after_keeps_the_earliest_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 5.0)
    queue.add_after("a", 0.02)
    queue.add_after("a", 3.0)
    assert await asyncio.wait_for(queue.get(), 1.0) == "a"
    queue.done("a")
    queue.shutdown()  # cancels nothing pending now: the 5 s timer was replaced


def test_backoff_grows_exponentially_within_jitter_and_cap() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base=0.01, cap=1.0, jitter=0.1, rng=random.Random(1))
    delays = [backoff.when("k") for _ in range(10)]
    for n, delay in enumerate(delays):
        nominal = min(1.0, 0.01 * 2**n)
        assert nominal * 0.9 <= delay <= nominal * 1.1
    assert backoff.retries("k") == 10
    backoff.forget("k")
    assert backoff.retries("k") == 0 and backoff.when("k") <= 0.011
    assert backoff.when("other") <= 0.011  # per key


async def test_rate_limited_requeue_and_forget() -> None:
    queue: WorkQueue[str] = WorkQueue(backoff=ExponentialBackoff(base=0.01, cap=0.05, jitter=0.0))
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.wait_for(queue.get(), 1.0) == "a"
    assert loop.time() - start >= 0.009
    queue.done("a")
    queue.forget("a")
    assert queue.num_requeues("a") == 0


async def test_shutdown_wakes_waiters_drains_and_ignores_adds() -> None:
    queue: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add_after("later", 10.0)
    queue.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)
    queue.add("x")
    with pytest.raises(ShutDown):
        await queue.get()


async def test_a_cancelled_getter_does_not_swallow_a_wakeup() -> None:
    queue: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("a")
    first.cancel()  # woken and cancelled in the same step
    assert await asyncio.wait_for(second, 1) == "a"
    with pytest.raises(asyncio.CancelledError):
        await first
