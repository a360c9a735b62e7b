"""Deadlines: many futures with deadlines under one timer (the Raft propose bridge's wait)."""

from __future__ import annotations

import asyncio
import time

import pytest

from edgek8s._util.deadlines import Deadlines


async def test_a_result_in_time_is_returned_and_forgotten() -> None:
    deadlines = Deadlines()
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, future.set_result, "done")
    assert await deadlines.wait(future, 5.0, "expired") == "done"
    assert len(deadlines) == 0


async def test_a_future_still_pending_at_its_deadline_gets_the_expiry_value() -> None:
    deadlines = Deadlines()
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    assert await deadlines.wait(future, 0.05, "expired") == "expired"
    assert time.monotonic() - started >= 0.05
    assert future.done() and future.result() == "expired"  # a producer checking done() drops its late result
    assert len(deadlines) == 0


async def test_an_earlier_deadline_added_later_is_not_held_up_by_a_later_one() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    slow: asyncio.Future[str] = loop.create_future()
    fast: asyncio.Future[str] = loop.create_future()
    slow_wait = asyncio.create_task(deadlines.wait(slow, 30.0, "slow expired"))
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await deadlines.wait(fast, 0.05, "fast expired") == "fast expired"
    assert time.monotonic() - started < 10.0
    assert not slow.done()  # the later deadline is still running
    slow.set_result("slow done")
    assert await slow_wait == "slow done"


async def test_every_wait_expires_at_its_own_deadline_in_order() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    expired_at: dict[int, float] = {}
    started = time.monotonic()

    async def wait(i: int) -> None:
        future: asyncio.Future[int] = loop.create_future()
        assert await deadlines.wait(future, 0.02 * (i + 1), -1) == -1
        expired_at[i] = time.monotonic() - started

    await asyncio.gather(*(wait(i) for i in (3, 0, 2, 1)))
    for i, at in expired_at.items():
        assert at >= 0.02 * (i + 1)
    assert sorted(expired_at, key=expired_at.__getitem__) == [0, 1, 2, 3]
    assert len(deadlines) == 0


async def test_cancelling_the_waiter_cancels_the_future_and_forgets_it() -> None:
    deadlines = Deadlines()
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(deadlines.wait(future, 5.0, "expired"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert future.cancelled()
    assert len(deadlines) == 0


async def test_waits_found_due_together_by_a_late_sweep_resume_in_deadline_order() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    resumed: list[int] = []

    async def wait(i: int) -> None:
        future: asyncio.Future[int] = loop.create_future()
        assert await deadlines.wait(future, 0.02 * (i + 1), -1) == -1
        resumed.append(i)

    tasks = [asyncio.create_task(wait(i)) for i in (3, 0, 2, 1)]
    await asyncio.sleep(0)  # every wait has begun
    time.sleep(0.1)  # noqa: ASYNC251  (a busy event loop, injected: every deadline passes before the first sweep)
    await asyncio.gather(*tasks)
    assert resumed == [0, 1, 2, 3]
