"""keep_running: a failing loop is logged and restarted; fatal errors and cancellation pass through."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgek8s._util.supervise import keep_running

logger = logging.getLogger("test-supervise")


class Boom(Exception):
    pass


async def test_a_failing_loop_is_logged_and_restarted_until_it_returns(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise TypeError("string indices must be integers")

    with caplog.at_level(logging.ERROR, logger="test-supervise"):
        await asyncio.wait_for(keep_running("demo", loop, logger=logger, base=0.01, cap=0.02), 5)
    assert runs == 3
    failures = [r for r in caplog.records if "loop demo failed" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)  # the traceback is in the log


async def test_a_fatal_error_propagates_at_once() -> None:
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        raise Boom()

    with pytest.raises(Boom):
        await keep_running("demo", loop, logger=logger, fatal=(Boom,), base=0.01)
    assert runs == 1


async def test_cancellation_is_not_swallowed_even_when_a_task_group_converts_it() -> None:
    started = asyncio.Event()

    async def child() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise Boom() from None  # a child that turns cancellation into an error, as sloppy code does

    async def loop() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(child())
            started.set()

    task = asyncio.create_task(keep_running("demo", loop, logger=logger, base=0.01))
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises((asyncio.CancelledError, BaseExceptionGroup)):
        await asyncio.wait_for(task, 5)
    assert task.done()
