"""An `edgek8s server` with timestamps at each hop of a write, for `python -m bench seqtrace`.

Run as ``python -m bench.seqtrace_master <edgek8s server arguments>``. Before the server starts it
wraps (never edits) the methods a write crosses and records ``(time.monotonic_ns(), event, value)``
in memory: HTTP handler start, proposal, the tick thread's drain of the queue, forwarded commands and
their answers, every received Raft message by kind, journal fdatasyncs, acknowledgements, the leader's
commit (start of apply), the hand-off back to the loop and the response written, plus every poll
(enter/exit, timeout) of the tick thread. SIGUSR1 writes the records, one JSON array per line, to
``$EDGEK8S_SEQTRACE_OUT`` and clears them. ``$EDGEK8S_SEQTRACE_SWITCH_INTERVAL`` (seconds) sets the
GIL switch interval, for experiments. CLOCK_MONOTONIC is one clock for every process of the
machine, so records of different masters and the load client can be ordered against each other.

The wrappers cost ~1 µs per hop; only the benchmark uses this module.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web_app, web_response

from edgek8s.raft import journal as journal_mod
from edgek8s.raft import node as node_mod
from edgek8s.raft import syncobj as syncobj_mod

Record = tuple[int, ...] | tuple[Any, ...]
_records: list[Record] = []
_now = time.monotonic_ns
# With EDGEK8S_SEQTRACE_SCHED=1 each record also carries the recording thread's id, its CPU time and its
# run-queue delay (/proc/thread-self/schedstat: ~10 µs a read), so a stage on one thread splits into
# running, waiting for a CPU, and the rest (blocked in a syscall, or waiting for the GIL).
_SCHED = os.environ.get("EDGEK8S_SEQTRACE_SCHED") == "1"


def _rec(event: str, value: int = 0) -> None:
    if not _SCHED:
        _records.append((_now(), event, value))
        return
    with open("/proc/thread-self/schedstat", "rb") as stat:
        cpu, runq, _slices = stat.read().split()
    _records.append((_now(), event, value, threading.get_native_id(), int(cpu), int(runq)))


def _before(cls: Any, name: str, event: Callable[..., tuple[str, int] | None]) -> None:
    """Record ``event(self, *args)`` (when not None) before calling ``cls.name``."""
    original = getattr(cls, name)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        what = event(self, *args)
        if what is not None:
            _rec(*what)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapper)


def _message_event(_self: Any, node: Any, message: Any) -> tuple[str, int] | None:
    if not isinstance(message, dict):
        return None
    kind = message.get("type")
    if kind == "append_entries":
        if message.get("entries"):
            return "recv_ae_entries", int(message["entries"][-1][1])
        return "recv_ae_commit", int(message.get("commit_index", 0))
    if kind == "edgek8s_batch":
        kinds = {part.get("type") for part in message["messages"] if isinstance(part, dict)}
        return ("recv_fwd" if "apply_command" in kinds else "recv_answer"), len(message["messages"])
    if kind == "apply_command":
        return "recv_fwd", 1
    if kind == "apply_command_response":
        return "recv_answer", int(message.get("log_idx", 0))
    if kind == "next_node_idx":
        return f"recv_ack@{node.id}", int(message.get("next_node_idx", 0))
    return None


def install() -> None:
    sync_cls = syncobj_mod.EdgeSyncObj
    transport_cls = syncobj_mod._SyncingTransport
    connection_cls = syncobj_mod._FramedConnection

    original_handle = web_app.Application._handle

    async def handle(self: Any, request: Any) -> Any:
        if request.method == "POST":
            _rec("http_start")
        return await original_handle(self, request)

    web_app.Application._handle = handle  # type: ignore[method-assign]

    original_eof = web_response.Response.write_eof

    async def write_eof(self: Any, data: bytes = b"") -> None:
        _rec("resp_written", self.status)  # before: the client may have it before the drain returns
        await original_eof(self, data)

    web_response.Response.write_eof = write_eof  # type: ignore[method-assign]

    _before(node_mod.RaftNode, "_submit", lambda self, payload: ("propose", len(payload)))
    _before(node_mod._LoopHandoff, "post", lambda self, work: ("handoff_post", 0))
    _before(node_mod._LoopHandoff, "_run", lambda self: ("loop_run", len(self._pending)))

    def drain(self: Any) -> tuple[str, int] | None:
        size = len(self._SyncObj__commandsQueue._FastQueue__queue)
        return ("drain", size) if size else None

    _before(sync_cls, "_checkCommandsToApply", drain)
    _before(sync_cls, "_SyncObj__onMessageReceived", _message_event)

    def held(self: Any) -> tuple[str, int] | None:
        kinds = {m.get("type") for messages in self._edge_held.values() for m in messages}
        if "apply_command" in kinds:
            return "fwd_send", 0
        if "apply_command_response" in kinds:
            return "answer_send", 0
        return None

    _before(transport_cls, "send_held", held)
    _before(transport_cls, "send_now", lambda self, node, message: ("ack_send", int(message.get("next_node_idx", 0)))
            if isinstance(message, dict) and message.get("type") == "next_node_idx" else None)

    original_flush = connection_cls.flush

    def flush(self: Any) -> None:
        pending = len(self._TcpConnection__writeBuffer)
        if pending:  # before the send: the receiver may handle the frame before the send returns
            _rec("flush", pending)
        original_flush(self)

    connection_cls.flush = flush  # type: ignore[method-assign]

    original_sync = journal_mod.DurableJournal.sync

    def sync(self: Any) -> None:
        if not self.dirty:
            original_sync(self)
            return
        _rec("fsync_start")
        original_sync(self)
        _rec("fsync_done", len(self))

    journal_mod.DurableJournal.sync = sync  # type: ignore[method-assign]

    original_apply = sync_cls._SyncObj__applyLogEntries

    def apply_entries(self: Any) -> bool:
        commit, applied = self._SyncObj__raftCommitIndex, self._SyncObj__raftLastApplied
        if commit <= applied:
            return bool(original_apply(self))
        _rec("apply_start", commit)
        result = bool(original_apply(self))
        _rec("apply_done", commit)
        return result

    sync_cls._SyncObj__applyLogEntries = apply_entries  # type: ignore[method-assign]

    original_start = sync_cls.start

    def start(self: Any) -> None:
        poller = self._poller
        original_poll = poller.poll

        def poll(timeout: float) -> None:
            _rec("poll_enter", int(timeout * 1e6))
            original_poll(timeout)
            _rec("poll_exit", int(timeout * 1e6))

        poller.poll = poll
        original_start(self)

    sync_cls.start = start  # type: ignore[method-assign]

    def dump(_signum: int, _frame: Any) -> None:
        records, _records[:] = list(_records), []
        with open(os.environ["EDGEK8S_SEQTRACE_OUT"], "a") as out:
            out.write(json.dumps(records) + "\n")

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    install()
    interval = os.environ.get("EDGEK8S_SEQTRACE_SWITCH_INTERVAL")
    if interval:  # an experiment: the GIL switch interval of the traced masters
        sys.setswitchinterval(float(interval))
    from edgek8s.cli.main import main as edgek8s_main

    return edgek8s_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
