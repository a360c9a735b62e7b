"""RaftNode.propose must not swallow a cancellation that arrives as the write completes; it times out.

Python 3.11's asyncio.wait_for returns the result when the awaited future is done at the moment the
waiting task is cancelled, losing the cancellation: a leader loop cancelled by the leader gate (its
term ended) would go on writing. The Raft thread is replaced by a future the test resolves itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import FAIL_REASON

from edgek8s.config import RaftConfig
from edgek8s.raft.node import OutcomeUnknown, RaftNode


class _Machine:
    def apply(self, payload: bytes, index: int) -> Any:
        return None

    def snapshot(self) -> Any:
        return {}

    def restore(self, data: Any) -> None:
        return None


async def test_a_cancellation_racing_the_commit_is_not_lost(tmp_path: Path) -> None:
    config = RaftConfig(self_address="127.0.0.1:1", peers=(), data_dir=tmp_path, cluster_secret=b"x" * 32)
    node = RaftNode(config, _Machine())
    committed: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
    node._submit = lambda _payload: committed  # type: ignore[method-assign]
    task = asyncio.create_task(node.propose(b"{}", timeout=5.0))
    await asyncio.sleep(0)  # the proposer now waits for the commit
    committed.set_result(("applied", FAIL_REASON.SUCCESS))
    task.cancel()  # in the same loop step: the term ended just as the write committed
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_write_that_does_not_commit_in_time_is_of_unknown_outcome(tmp_path: Path) -> None:
    config = RaftConfig(self_address="127.0.0.1:1", peers=(), data_dir=tmp_path, cluster_secret=b"x" * 32)
    node = RaftNode(config, _Machine())
    never: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
    node._submit = lambda _payload: never  # type: ignore[method-assign]
    with pytest.raises(OutcomeUnknown, match="timed out"):
        await node.propose(b"{}", timeout=0.05)
    assert never.done()  # resolved at its deadline: a late answer from the Raft thread is dropped
