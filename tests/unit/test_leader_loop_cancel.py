"""A leader loop cancelled while one of its tasks fails must end: the term may not survive its leadership.

asyncio.TaskGroup (3.11) raises its children's errors in place of the CancelledError it was cancelled
with; a supervisor that restarts loops on any Exception would then swallow the cancellation and keep a
deposed leader's loops running (found in `bench scheduler`: a deposed master kept restarting its
scheduler with a stale fence for minutes).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import ClusterClient
from edgek8s.server.leadership import LeaderGate


class FailsWhenCancelled:
    name = "fails-when-cancelled"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        async def stubborn() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise RuntimeError("a write failed while the term was ending") from None

        async with asyncio.TaskGroup() as group:
            group.create_task(stubborn())
            self.started.set()
            await asyncio.sleep(3600)


async def test_supervised_loop_ends_when_cancelled_even_if_a_task_fails() -> None:
    loop = FailsWhenCancelled()
    gate = LeaderGate(cast(Any, None), identity="m0", loops=[loop])
    task = asyncio.create_task(gate._supervise(loop, cast(Any, None), cast(Any, None)))
    await asyncio.wait_for(loop.started.wait(), 1.0)
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait({task}, timeout=2.0)  # not wait_for: it would cancel again and wait forever
    assert task.done(), "the supervisor swallowed the cancellation and restarted the loop"
    with pytest.raises((asyncio.CancelledError, ExceptionGroup)):
        task.result()
