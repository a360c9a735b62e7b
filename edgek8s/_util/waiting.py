"""Waiting for an asyncio.Event with a timeout, without losing a cancellation.

On Python 3.11 ``asyncio.wait_for(event.wait(), timeout)`` swallows a cancellation that arrives in the
same loop iteration as the event's set (cpython gh-86296, fixed in 3.12): it returns normally, and a loop
that its owner stops by cancelling goes on running, so the owner's ``await task`` hangs. A stop that
cancels a pod worker just woken by an update hung an agent's shutdown that way. ``asyncio.timeout``
keeps the cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; whether it is set. Never clears it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()
