"""Keep a long-running loop alive: a loop that raises is logged with its traceback and restarted after a
back-off, instead of dying silently while its process keeps running without it.

Invariants: returning ends supervision (the loop is done); cancellation is never swallowed, including
the case where a TaskGroup inside the loop turned our cancellation into its children's errors; the
exception types in ``fatal`` propagate unchanged (they end something larger than this loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from edgek8s._util.workqueue import ExponentialBackoff


async def keep_running(
    name: str,
    start: Callable[[], Awaitable[None]],
    *,
    logger: logging.Logger,
    fatal: tuple[type[BaseException], ...] = (),
    base: float = 0.2,
    cap: float = 10.0,
) -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base=base, cap=cap, jitter=0.2)
    while True:
        try:
            await start()
            return
        except fatal:
            raise
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            delay = backoff.when(name)
            logger.exception("loop %s failed; restarting it in %.1fs", name, delay)
            await asyncio.sleep(delay)
