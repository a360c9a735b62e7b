"""RaftNode: the asyncio face of one master's Raft replica.

The only way the rest of edgek8s talks to PySyncObj. It owns the tick thread (``EdgeSyncObj``) and
bridges it to the event loop:

- ``propose(payload)`` registers a future, enqueues the command with a callback, and the callback hops
  to the loop with ``call_soon_threadsafe`` (never ``sync=True`` on the loop). A write that is known
  not to have been appended (no leader yet, queue full, a follower's leader said "not leader") is
  retried until the deadline; a write whose fate is unknown (leader changed after forwarding, timeout)
  raises ``OutcomeUnknown``: it may still apply, so callers make commands idempotent.
- ``barrier()`` commits a no-op and waits until it is applied locally: a read after it is
  linearizable. Concurrent readers share barriers; a reader never uses one proposed before it arrived.
- Leadership changes reach the loop through ``leadership_changed`` (an ``asyncio.Event`` set on every
  change) and ``is_leader``.

PySyncObj names and FAIL_REASON codes do not leave this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pysyncobj import FAIL_REASON, SyncObjConf

from edgek8s._util.deadlines import Deadlines
from edgek8s.config import RaftConfig
from edgek8s.pki.cipher import RaftCipher, derive_raft_key
from edgek8s.raft.syncobj import EdgeSyncObj, MachineConsumer

logger = logging.getLogger(__name__)

BARRIER = b""  # the state machine treats an empty payload as a no-op that still takes an index


class StateMachine(Protocol):
    """What the replicated store must provide. ``apply`` runs on the Raft thread and never raises."""

    def apply(self, payload: bytes, index: int) -> Any: ...

    def snapshot(self) -> Any: ...

    def restore(self, data: Any) -> None: ...


class RaftError(Exception):
    """Base of Raft-level failures."""


class NotCommitted(RaftError):
    """The command was certainly not applied (no leader within the deadline, queue full)."""


class OutcomeUnknown(RaftError):
    """The command may or may not have been applied (leader lost after it was sent, or timeout)."""


_NOT_APPENDED = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.NOT_LEADER}
_EXPIRED: Any = object()  # the error code of a write still pending at its deadline (not a FAIL_REASON)


@dataclass(frozen=True, slots=True)
class RaftStatus:
    address: str
    leader: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    last_log_index: int
    members: list[str]
    connected: list[str]
    fsyncs: int


def syncobj_conf(config: RaftConfig, *, on_state_changed: Callable[[int, int], None] | None = None) -> SyncObjConf:
    return SyncObjConf(
        bindAddress=config.self_address,
        fullDumpFile=str(config.snapshot_path),
        dynamicMembershipChange=True,
        appendEntriesPeriod=config.heartbeat_period,
        raftMinTimeout=config.election_timeout_min,
        raftMaxTimeout=config.election_timeout_max,
        leaderFallbackTimeout=config.leader_fallback_timeout,
        connectionTimeout=config.connection_timeout,
        connectionRetryTime=config.connection_retry,
        autoTickPeriod=config.tick_period,
        # No single entry may take PySyncObj's chunked path: it is broken for entries > 64 KiB.
        appendEntriesBatchSizeBytes=16 * 1024 * 1024,
        logCompactionMinEntries=config.compaction_min_entries,
        logCompactionMinTime=config.compaction_min_seconds,
        onStateChanged=on_state_changed,
        commandsQueueSize=20_000,
        useFork=True,
    )


def build_syncobj(
    config: RaftConfig, machine: StateMachine, *, on_state_changed: Callable[[int, int], None] | None = None
) -> tuple[EdgeSyncObj, MachineConsumer]:
    """Open the journal and bind the Raft port (blocking); the tick thread is not started yet."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cipher = RaftCipher(derive_raft_key(config.cluster_secret))
    consumer = MachineConsumer(machine.apply, machine.snapshot, machine.restore)
    obj = EdgeSyncObj(
        config.self_address,
        list(config.peers),
        conf=syncobj_conf(config, on_state_changed=on_state_changed),
        journal_path=config.journal_path,
        cipher=cipher,
        consumer=consumer,
    )
    return obj, consumer


class _LoopHandoff:
    """Runs callables from the Raft thread on the event loop, in order, one loop wake-up per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []

    def post(self, work: Callable[[], None]) -> None:  # any thread
        with self._lock:
            self._pending.append(work)
            if len(self._pending) > 1:
                return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:  # event loop
        with self._lock:
            pending, self._pending = self._pending, []
        for work in pending:
            work()


class RaftNode:
    """One replica; start it inside a running event loop."""

    def __init__(self, config: RaftConfig, machine: StateMachine) -> None:
        self._config = config
        self._machine = machine
        self._loop: asyncio.AbstractEventLoop | None = None
        self._obj: EdgeSyncObj | None = None
        self.leadership_changed = asyncio.Event()
        self._next_barrier: asyncio.Future[None] | None = None
        self._barrier_task: asyncio.Task[None] | None = None
        self._membership_lock = asyncio.Lock()
        self._deadlines = Deadlines()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handoff = _LoopHandoff(self._loop)
        # Binding the Raft port and reading the journal are blocking: keep them off the loop.
        obj, self._consumer = await asyncio.to_thread(
            build_syncobj, self._config, self._machine, on_state_changed=self._on_state_changed
        )
        obj.start()
        self._obj = obj
        logger.info("raft replica %s started, peers %s", self._config.self_address, self._config.peers)

    async def stop(self) -> None:
        if self._barrier_task is not None:
            self._barrier_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._barrier_task
        if self._obj is not None:
            await asyncio.to_thread(self._obj.stop)
            self._obj = None

    @property
    def _sync(self) -> EdgeSyncObj:
        if self._obj is None:
            raise RaftError("raft replica is not running")
        return self._obj

    def _on_state_changed(self, old: int, new: int) -> None:
        # Runs on the tick thread.
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.leadership_changed.set)

    # --- writes --------------------------------------------------------------------------------------

    def _submit(self, payload: bytes) -> asyncio.Future[tuple[Any, int]]:
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[tuple[Any, int]] = loop.create_future()

        def resolve(result: Any, error: int) -> None:
            if not future.done():
                future.set_result((result, error))

        def callback(result: Any, error: int) -> None:  # tick thread
            self._handoff.post(lambda: resolve(result, error))

        self._consumer.propose(payload, callback)
        return future

    async def propose(self, payload: bytes, *, timeout: float | None = None) -> Any:
        """Replicate ``payload`` and return what ``apply`` returned for it on this replica."""
        deadline = time.monotonic() + (timeout if timeout is not None else self._config.propose_timeout)
        delay = 0.01
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotCommitted("no raft leader accepted the write in time")
            # One shared timer for every pending write, not asyncio.timeout's timer per write (~5% of
            # the loop). Not asyncio.wait_for either: on Python 3.11 it swallows a cancellation that
            # arrives as the write completes, and a cancelled leader loop would then go on running.
            result, error = await self._deadlines.wait(self._submit(payload), remaining, (None, _EXPIRED))
            if error is _EXPIRED:
                raise OutcomeUnknown("timed out waiting for the write to commit")
            if error == FAIL_REASON.SUCCESS:
                return result
            if error not in _NOT_APPENDED:
                raise OutcomeUnknown(f"leader changed while the write was in flight (reason {error})")
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)

    async def barrier(self) -> None:
        """Return once everything committed before this call is applied on this replica."""
        if self._next_barrier is None:
            assert self._loop is not None
            self._next_barrier = self._loop.create_future()
            if self._barrier_task is None or self._barrier_task.done():
                self._barrier_task = asyncio.create_task(self._run_barriers(), name="raft-barriers")
        await asyncio.shield(self._next_barrier)

    async def _run_barriers(self) -> None:
        while self._next_barrier is not None:
            future, self._next_barrier = self._next_barrier, None
            try:
                await self.propose(BARRIER)
            except RaftError as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(None)
            # An exception nobody awaited must not be reported as unretrieved.
            if future.done() and not future.cancelled() and future.exception() is not None:
                future.exception()

    # --- membership ----------------------------------------------------------------------------------

    async def _change_membership(self, change: Callable[..., None], address: str) -> None:
        async with self._membership_lock:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[int] = loop.create_future()

            def resolve(error: int) -> None:
                if not future.done():
                    future.set_result(error)

            def callback(_result: Any, error: int) -> None:  # tick thread
                loop.call_soon_threadsafe(resolve, error)

            change(address, callback=callback)
            try:
                async with asyncio.timeout(self._config.propose_timeout):  # not wait_for: see propose
                    error = await future
            except TimeoutError:
                raise OutcomeUnknown("membership change did not commit in time") from None
            if error != FAIL_REASON.SUCCESS:
                raise NotCommitted(f"membership change refused (reason {error})")

    async def add_member(self, address: str) -> None:
        await self._change_membership(self._sync.addNodeToCluster, address)

    async def remove_member(self, address: str) -> None:
        await self._change_membership(self._sync.removeNodeFromCluster, address)

    # --- status --------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._config.self_address

    @property
    def is_leader(self) -> bool:
        return self._obj is not None and self._obj.is_leader()

    @property
    def term(self) -> int:
        return 0 if self._obj is None else self._obj.term()

    @property
    def leader(self) -> str | None:
        return None if self._obj is None else self._obj.leader_address()

    def status(self) -> RaftStatus:
        obj = self._sync
        return RaftStatus(
            address=self._config.self_address,
            leader=obj.leader_address(),
            is_leader=obj.is_leader(),
            term=obj.term(),
            commit_index=obj.commit_index(),
            applied_index=obj.last_applied(),
            last_log_index=obj.last_log_index(),
            members=obj.members(),
            connected=obj.connected_peers(),
            fsyncs=obj.journal().fsync_count,
        )

    def post_to_loop(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the loop, in order with the answers to proposals (any thread; after ``start``)."""
        self._handoff.post(work)

    def add_tick_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` on the Raft thread after each tick (install before ``start``... or after)."""
        self._sync.add_tick_hook(hook)
