"""Shared fixtures: fail any test that leaks asyncio tasks (as kopf's suite does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    pending = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    if pending:
        # Give tasks that are already being cancelled (server handlers at shutdown) a moment to finish.
        await asyncio.wait(pending, timeout=2.0)
    leaked = [t for t in pending if not t.done()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked asyncio tasks: {[t.get_name() for t in leaked]}"
