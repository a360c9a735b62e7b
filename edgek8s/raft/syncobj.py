"""PySyncObj, made crash-safe and well-behaved for a Kubernetes store: a small set of documented overrides.

PySyncObj 0.3.17 is used as shipped (never edited); ``EdgeSyncObj`` subclasses it. Each override below
closes one measured hole and has a test in tests/component/test_raft_overrides.py that fails without it:

1. Durable journal (``journal.DurableJournal``) swapped in after ``SyncObj.__init__`` (which only knows
   its own mmap journal); the tick loop is our own thread so the swap happens before the first tick.
2. Group commit: the journal is fdatasync'ed before a follower acknowledges entries (``_SyncingTransport``;
   an acknowledgement identical to one sent within half a heartbeat is not repeated)
   and at the start of every tick, before the leader counts its own log towards a commit; commands
   queued in one tick are appended together and sent in one AppendEntries (``_checkCommandsToApply``),
   instead of PySyncObj's choice between one send per command and one send per heartbeat. Proposals
   wake the tick thread once per batch (``_applyCommand``), not once per command. A leader sends the
   new commit index before applying (``_SyncObj__applyLogEntries``), so followers apply in parallel.
   Commands a follower forwards in one tick travel in one message, and so do the leader's answers.
3. A leader never moves a follower's nextIndex backwards on a success reply (upstream resends entries
   the follower already has), and a follower never truncates entries that match the leader's (Raft
   §5.3: only a *conflicting* entry and what follows it is deleted); upstream truncated, re-appended and
   could shrink a log it had already acknowledged.
4. Pre-vote (Raft thesis §9.6): a node whose election timer fires first asks whether it could win; peers
   that heard from a live leader lately, over a link that is still up, say no. Upstream, a restarted
   node deposed a healthy leader by bumping the term. When the link to the leader closes (its process
   died), followers ask for a pre-vote at once instead of waiting for the election timeout.
5. Keepalive pings between all members: upstream drops idle follower-to-follower links after
   ``connectionTimeout``, so the first vote request of an election was lost and failover took two
   rounds.
7. One membership change at a time: upstream's guard was dead code (two concurrent adds both passed).
8. Cheaper frames (``_FramedConnection``): pickle protocol 5 and no zlib, instead of protocol 2 + zlib;
   a waiting frame is read with one ``recv`` (upstream: recv, getsockopt, recv until EAGAIN). A command
   forwarded to the leader does not wake the leader's own tick thread (it drains the queue anyway).
6. Raft frames are authenticated and encrypted with the cluster key (``edgek8s.pki.cipher.RaftCipher``); PySyncObj
   unpickles whatever a peer sends, so an unauthenticated Raft port is remote code execution.
17. Check-quorum that steps a cut-off leader down *before* a successor can be elected: upstream's
   ``leaderFallbackTimeout`` check runs at the start of a tick, before the poll that reads the
   followers' answers, so it had to be long (1.5 s, past the 0.6 s minimum election timeout: a cut-off
   leader still believed it led, and ran the controllers, after its successor started). Here it runs
   after the poll, and counts silence in tick time (each tick adds at most ``_QUORUM_STEP_MAX``): a
   leader whose own tick thread was starved is not deposed by answers it has not read yet.
18. A follower whose log ends with entries the leader does not have (a deposed leader's uncommitted
   writes) is repaired in one round trip, not one per entry: it answers a mismatch with the first
   index after its commit index, not just one index back (entries up to the commit index are in every
   later leader's log, Raft §5.4). And a failure answer never moves the leader's nextIndex above the
   lowest one answered since the last success: upstream advances nextIndex optimistically on every
   send, so answers to later sends ("log too short") undid the walk back, and under write load a
   healed old leader never caught up (measured: stuck for 20 s).

Everything here runs on the tick thread, except ``propose`` entry points that only enqueue.

Time: PySyncObj's deadlines use its own clock (CLOCK_MONOTONIC_RAW, here ~0.26 s apart from
``time.monotonic()`` and drifting with NTP slew); every comparison with them uses ``raft_clock``.
"""

from __future__ import annotations

import errno
import logging
import pickle
import queue
import random
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.syncobj import _COMMAND_TYPE, _RAFT_STATE, _bchr
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from edgek8s.pki.cipher import RaftCipher
from edgek8s.raft.journal import DurableJournal

logger = logging.getLogger(__name__)

_FRAME = struct.Struct("i")  # PySyncObj's frame header: native int length
_PING = "edgek8s_ping"
_PRE_VOTE = "edgek8s_pre_vote"
_PRE_VOTE_RESPONSE = "edgek8s_pre_vote_response"
_BATCH = "edgek8s_batch"  # several messages of one tick to one peer, handled in order as if sent one by one
_BATCHED = frozenset({"apply_command", "apply_command_response"})  # a forwarded command and its answer
_QUORUM_STEP_MAX = 0.1  # seconds of silence one tick may add at most (a starved tick thread adds no more)


class _FramedConnection(TcpConnection):  # type: ignore[misc]
    """PySyncObj's connection with cheaper frames: pickle protocol 5 and no zlib.

    Upstream pickles every message with protocol 2 (bytes go through a latin-1 round trip) and
    zlib-compresses it; on a LAN that costs far more CPU than it saves (~18% of a write's CPU here).
    Frames stay ``length | AEAD(pickle)``; every connection of an edgek8s replica is of this class, so
    replicas of different edgek8s versions with different framing must not be mixed (the journal and
    snapshot formats are unaffected).

    Frames are only buffered here: the transport flushes every connection with frames once per tick
    step (``_SyncingTransport.flush``), so all messages of a tick to one peer leave in one ``send``
    syscall instead of one each (a loopback or LAN send costs the sender the receiver's TCP work too).
    """

    _TcpConnection__readBuffer: bytes
    _TcpConnection__writeBuffer: bytes
    recvLastTimestamp: int
    _edge_outbox: list[_FramedConnection] | None = None  # the transport's connections with frames to flush
    _edge_queued = False
    _last_refusal_log = 0.0  # class-wide: a flood of bad connections logs once per 10 s

    def _log_refused(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - _FramedConnection._last_refusal_log < 10.0:
            return
        _FramedConnection._last_refusal_log = now
        try:
            peer = self._TcpConnection__socket.getpeername()
        except (AttributeError, OSError):
            peer = "?"
        # The frame's content is never logged: it may be an attack payload or someone's secret.
        logger.warning("refused a Raft connection from %s: a frame failed authentication or decoding (%s)",
                       peer, type(exc).__name__)

    def send(self, message: Any) -> None:
        if self.sendRandKey:
            message = (self.sendRandKey, message)
        data = pickle.dumps(message, protocol=5)
        if self.encryptor:
            data = self.encryptor.encrypt_at_time(data, 0)
        self._TcpConnection__writeBuffer += _FRAME.pack(len(data)) + data
        if self._edge_outbox is None:
            self._TcpConnection__trySendBuffer()
        elif not self._edge_queued:
            self._edge_queued = True
            self._edge_outbox.append(self)

    def flush(self) -> None:
        self._edge_queued = False
        if self._TcpConnection__writeBuffer:
            self._TcpConnection__trySendBuffer()

    def _TcpConnection__processRead(self) -> bool:
        """One ``recv`` per readable socket when it holds less than a buffer's worth.

        Upstream follows every ``recv`` with a ``getsockopt(SO_ERROR)`` and reads again until EAGAIN:
        three syscalls per message received (~3 messages per write on each replica). A short read
        means the socket is drained; PySyncObj's poll is level-triggered, so anything that arrives
        later wakes the next poll. A socket error still surfaces: ``recv`` raises it or returns b"".
        """
        size: int = self._TcpConnection__recvBufferSize
        try:
            incoming: bytes = self._TcpConnection__socket.recv(size)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.disconnect()
            return False
        if not incoming:
            self.disconnect()
            return False
        self._TcpConnection__readBuffer += incoming
        return len(incoming) == size

    def _TcpConnection__processParseMessage(self) -> Any:
        buffer = self._TcpConnection__readBuffer
        if len(buffer) < _FRAME.size:
            return None
        (length,) = _FRAME.unpack_from(buffer)
        if len(buffer) - _FRAME.size < length:
            return None
        data = buffer[_FRAME.size : _FRAME.size + length]
        try:
            if self.encryptor:
                stamp = self.encryptor.extract_timestamp(data)
                if stamp < self.recvLastTimestamp:
                    raise ValueError("replayed frame")
                self.recvLastTimestamp = stamp
                data = self.encryptor.decrypt(data)
            message = pickle.loads(data)
            if self.recvRandKey:
                key, message = message
                if key != self.recvRandKey:
                    raise ValueError("frame for another connection")
        except Exception as exc:  # an unauthenticated or malformed frame: drop the connection, as upstream does
            self._log_refused(exc)
            self.disconnect()
            return None
        self._TcpConnection__readBuffer = buffer[_FRAME.size + length :]
        return message


class _SyncingTransport(TCPTransport):  # type: ignore[misc]
    """Makes the journal durable before a follower acknowledges entries: the choke point of group commit.

    Only ``next_node_idx`` tells a leader "I hold these entries" (and lets it count this replica towards
    a commit). Votes need the term and vote on disk, which ``DurableJournal.setCurrentTerm`` already
    guarantees; a leader's own entries are made durable at the start of the next tick, before it counts
    itself, so its AppendEntries go out without waiting for its fsync (followers sync in parallel).

    Messages are buffered per connection and leave at ``flush`` (see ``_FramedConnection``), which the
    tick calls before it waits, before the leader's fsync and after the acknowledgements.
    """

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        self._edge_outbox: list[_FramedConnection] = []
        self._edge_held: dict[Any, list[dict[str, Any]]] = {}
        super().__init__(syncObj, selfNode, otherNodes)

    def flush(self) -> None:
        """Send what every connection has buffered (tick thread)."""
        if not self._edge_outbox:
            return
        outbox = list(self._edge_outbox)
        self._edge_outbox.clear()
        for connection in outbox:
            connection.flush()

    def _adopt(self, connection: Any) -> None:
        connection.__class__ = _FramedConnection
        connection._edge_outbox = self._edge_outbox

    def send(self, node: Any, message: Any) -> bool:
        if isinstance(message, dict):
            kind = message.get("type")
            if kind == "next_node_idx":
                return bool(self._syncObj._edge_acknowledge(node, message))
            if kind in _BATCHED and self._syncObj._edge_batching:
                self._edge_held.setdefault(node, []).append(message)
                return True
        return bool(super().send(node, message))

    def send_held(self) -> None:
        """Send the forwarded commands (or their answers) held while the tick drained its queue: one
        message per peer instead of one per command (each costs a pickle, a seal and an open)."""
        held, self._edge_held = self._edge_held, {}
        for node, messages in held.items():
            super().send(node, messages[0] if len(messages) == 1 else {"type": _BATCH, "messages": messages})

    def send_now(self, node: Any, message: Any) -> bool:
        return bool(super().send(node, message))

    def addNode(self, node: Any) -> None:
        super().addNode(node)
        connection = self._connections.get(node)
        if connection is not None:
            self._adopt(connection)

    def _onNewIncomingConnection(self, conn: Any) -> None:
        self._adopt(conn)
        super()._onNewIncomingConnection(conn)


class MachineConsumer(SyncObjConsumer):  # type: ignore[misc]
    """Bridges PySyncObj's replicated call to a pure ``apply(payload, index)``; never raises."""

    def __init__(
        self,
        apply: Callable[[bytes, int], Any],
        snapshot: Callable[[], Any],
        restore: Callable[[Any], None],
    ) -> None:
        self._edge_apply = apply
        self._edge_snapshot = snapshot
        self._edge_restore = restore
        super().__init__()

    @replicated  # type: ignore[untyped-decorator]
    def apply_command(self, payload: bytes) -> Any:
        # Runs on every replica, on the tick thread. The index is the entry's Raft log index:
        # PySyncObj increments lastApplied right after this call returns.
        index = self._syncObj._SyncObj__raftLastApplied + 1
        try:
            return self._edge_apply(payload, index)
        except Exception:  # an exception here would halt PySyncObj's apply loop for good
            logger.exception("state machine apply raised at index %d; entry skipped", index)
            return None

    def propose(self, payload: bytes, callback: Callable[[Any, int], None]) -> None:
        """Queue ``apply_command(payload)`` for replication, as the @replicated wrapper would (any thread).

        The wrapper pickles with protocol 2, where bytes take a latin-1 round trip: ~10 µs for a 1.5 KB
        command on the event loop, against ~1.5 µs with protocol 5. The entry is otherwise the same, and
        PySyncObj unpickles either (journals written before stay readable).
        """
        sync = self._syncObj
        consumer = id(self)
        func_id = sync._methodToID[(consumer, sync._getFuncName((consumer, "apply_command")))]
        sync._applyCommand(pickle.dumps((func_id, (payload,)), protocol=5), callback, _COMMAND_TYPE.REGULAR)

    def _serialize(self) -> Any:
        return self._edge_snapshot()

    def _deserialize(self, data: Any) -> None:
        self._edge_restore(data)


class EdgeSyncObj(SyncObj):  # type: ignore[misc]
    """PySyncObj with the overrides listed in the module docstring."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        *,
        conf: SyncObjConf,
        journal_path: Path,
        cipher: RaftCipher,
        consumer: MachineConsumer,
    ) -> None:
        # Attributes set before SyncObj.__init__ are excluded from PySyncObj's snapshots.
        self._edge_cipher = cipher
        self._edge_journal: DurableJournal | None = None
        self._edge_batching = False
        self._edge_send_pending = False
        self._edge_last_leader_contact = 0.0
        self._edge_last_ping = 0.0
        self._edge_prevote_term = -1
        self._edge_prevote_votes: set[str] = set()
        self._edge_prevote_won = False
        self._edge_commit_sent = 0  # the commit index this leader last told its followers
        self._edge_stop = threading.Event()
        self._edge_thread: threading.Thread | None = None
        self._edge_tick_hooks: list[Callable[[], None]] = []
        self._edge_pending_acks: dict[Any, Any] = {}
        self._edge_last_ack: dict[Any, tuple[tuple[Any, ...], float]] = {}  # node -> (what, when) last sent
        self._edge_wake_pending = False  # a byte is in the tick thread's wake-up pipe, not yet seen
        self._edge_quorum_timeout = float(conf.leaderFallbackTimeout)
        self._edge_quorum_heard = 0.0  # newest time a majority had answered this leader (raft_clock)
        self._edge_quorum_silence = 0.0  # tick time since then
        self._edge_quorum_checked = 0.0
        self._edge_next_floor: dict[Any, tuple[int, int]] = {}  # 18: node -> (term, lowest failure answer)
        conf.leaderFallbackTimeout = float("inf")  # 17: upstream's check (before the poll) is replaced
        self._edge_tick_ident: int | None = None  # the tick thread, once it runs
        self._edge_queued_by_tick = False  # the tick thread queued a command since its last drain began
        conf.autoTick = False
        conf.appendEntriesUseBatch = False
        super().__init__(self_address, peers, conf, consumers=[consumer], transportClass=_SyncingTransport)
        self._install_journal(DurableJournal(journal_path, snapshot_path=Path(conf.fullDumpFile)))
        # Upstream runs tick callbacks right before it waits in poll: whatever the tick sent leaves now.
        self.addOnTickCallback(self._SyncObj__transport.flush)
        self.addOnTickCallback(self._edge_before_poll)

    # --- 1. durable journal --------------------------------------------------------------------------

    def _install_journal(self, journal: DurableJournal) -> None:
        """Replace the mmap journal SyncObj.__init__ made, before the first tick."""
        if len(journal) == 0:
            journal.add(_bchr(_COMMAND_TYPE.NO_OP), 1, 0)
            journal.sync()
        self._SyncObj__raftLog = journal
        self._SyncObj__raftCurrentTerm = max(journal.getCurrentTerm(), journal[-1][2])
        self._SyncObj__votedForNodeId = journal.getVotedForNodeId()
        self._SyncObj__raftCommitIndex = journal.getRaftCommitIndex()
        self._edge_journal = journal

    def journal(self) -> DurableJournal:
        assert self._edge_journal is not None
        return self._edge_journal

    # --- own tick thread -----------------------------------------------------------------------------

    def start(self) -> None:
        self._edge_thread = threading.Thread(target=self._edge_tick_loop, name="raft-tick", daemon=True)
        self._edge_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._edge_stop.set()
        if self._edge_thread is not None:
            self._edge_thread.join(timeout)

    def _edge_tick_loop(self) -> None:
        self._edge_tick_ident = threading.get_ident()
        period = self.conf.autoTickPeriod
        while not self._edge_stop.is_set():
            try:
                self._onTick(period)
            except Exception:
                logger.exception("raft tick failed")
                time.sleep(period)
        try:
            self._doDestroy()
        except Exception:
            logger.exception("raft shutdown failed")

    def add_tick_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on the tick thread after every tick (set up before ``start``)."""
        self._edge_tick_hooks.append(hook)

    def _onTick(self, timeToWait: float = 0.0) -> None:
        # 2. The leader counts itself towards a commit at the start of the tick: be durable first.
        # Followers acknowledge what the last poll delivered, all covered by this one fdatasync.
        if self._edge_journal is not None:
            self._edge_journal.sync()
        self._edge_flush_acks()
        self._edge_maybe_pre_vote()
        self._edge_keepalive()
        self._SyncObj__transport.flush()
        super()._onTick(timeToWait)
        self._edge_check_quorum()  # after the poll: the followers' answers of this tick are counted
        for hook in self._edge_tick_hooks:
            hook()

    # --- 17. check-quorum ----------------------------------------------------------------------------

    def _edge_check_quorum(self) -> None:
        """Step down when a majority has not answered for ``leaderFallbackTimeout`` of tick time."""
        now = raft_clock()
        if self._SyncObj__raftState != _RAFT_STATE.LEADER:
            self._edge_quorum_silence = 0.0
            self._edge_quorum_checked = now
            return
        others = self._SyncObj__otherNodes
        needed = (len(others) + 1) // 2  # answers from others that make a majority with this leader
        if needed == 0:
            return
        answered = sorted((self._SyncObj__lastResponseTime.get(node, 0.0) for node in others), reverse=True)
        heard = answered[needed - 1] if len(answered) >= needed else 0.0
        step = min(max(0.0, now - self._edge_quorum_checked), _QUORUM_STEP_MAX)
        self._edge_quorum_checked = now
        if heard > self._edge_quorum_heard:
            self._edge_quorum_heard = heard
            self._edge_quorum_silence = max(0.0, now - heard)
        else:
            self._edge_quorum_silence += step
        if self._edge_quorum_silence < self._edge_quorum_timeout:
            return
        logger.warning(
            "%s: no answer from a majority for %.0f ms; stepping down as leader of term %d",
            self.selfNode.id, self._edge_quorum_silence * 1000, self._SyncObj__raftCurrentTerm,
        )
        self._SyncObj__setState(_RAFT_STATE.FOLLOWER)
        self._SyncObj__raftLeader = None
        self._edge_quorum_silence = 0.0

    # --- 2. group commit -----------------------------------------------------------------------------

    def _edge_acknowledge(self, node: Any, message: Any) -> bool:
        """Hold an acknowledgement until the entries it covers are durable (the start of the next tick).

        Every AppendEntries handled in one poll round then shares one fdatasync; only the newest
        acknowledgement per leader is kept (a later next_node_idx supersedes an earlier one, except that a
        reset must not be lost, so a reset is sent after a sync at once).
        """
        if message.get("reset") and not message.get("success"):
            message = self._edge_conflict_hint(message)
        journal = self._edge_journal
        if journal is None or not journal.dirty:
            return self._edge_send_ack(node, message)
        if message.get("reset"):
            journal.sync()
            self._edge_flush_acks()
            return self._edge_send_ack(node, message)
        self._edge_pending_acks[node] = message
        return True

    def _edge_conflict_hint(self, message: dict[str, Any]) -> dict[str, Any]:
        """18. A mismatch at index P (P within this log) is answered with the first index after the commit
        index: one round trip repairs a whole divergent suffix. A "log too short" answer is left as is."""
        answered = int(message["next_node_idx"])
        hint = self._SyncObj__raftCommitIndex + 1
        if answered <= self._SyncObj__getCurrentLogIndex() and hint < answered:
            return dict(message, next_node_idx=hint)
        return message

    def _edge_flush_acks(self) -> None:
        if not self._edge_pending_acks:
            return
        pending, self._edge_pending_acks = self._edge_pending_acks, {}
        for node, message in pending.items():
            self._edge_send_ack(node, message)

    def _edge_send_ack(self, node: Any, message: Any) -> bool:
        """Send an acknowledgement unless the leader got the very same one (same term, index, outcome)
        within half a heartbeat period.

        Upstream answers every AppendEntries, so the empty one that only carries a new commit index got
        a second, identical acknowledgement: 2 of a follower's 4 messages per write, each a send, a
        wake-up of the leader and a decryption there. The leader learns nothing from a repeat; it
        still hears from every follower at least every half heartbeat (``lastResponseTime``, leader
        fallback), and a reset or a new term always goes out.
        """
        now = raft_clock()
        what = (self._SyncObj__raftCurrentTerm, message.get("next_node_idx"), message.get("success"),
                message.get("reset"))
        last = self._edge_last_ack.get(node)
        if (not message.get("reset") and last is not None and last[0] == what
                and now - last[1] < self.conf.appendEntriesPeriod / 2):
            return True
        self._edge_last_ack[node] = (what, now)
        return bool(self._SyncObj__transport.send_now(node, message))

    def _applyCommand(self, command: bytes, callback: Any, commandType: int | None = None) -> None:
        """Queue a command for the tick thread (any thread); wake the tick thread once per batch.

        Upstream writes a byte to the tick thread's pipe for every command: a syscall, a wake-up and a GIL
        hand-off each, ~18% of the event loop's time under load. The flag is cleared by the tick thread
        before it drains the queue, so a command queued after the drain began always writes a byte.
        """
        if commandType is not None:
            command = _bchr(commandType) + command
        try:
            self._SyncObj__commandsQueue.put_nowait((command, callback))
        except queue.Full:
            self._SyncObj__callErrCallback(FAIL_REASON.QUEUE_FULL, callback)
            return
        if threading.get_ident() == self._edge_tick_ident:
            # The leader queuing a command a follower forwarded (while handling its message): the tick
            # thread drains the queue before it polls again, so writing to its own pipe only cost a
            # syscall and an extra empty tick per forwarded write. ``_edge_before_poll`` covers a command
            # queued after the drain.
            self._edge_queued_by_tick = True
            return
        if not self._edge_wake_pending:
            self._edge_wake_pending = True
            self._SyncObj__pipeNotifier.notify()

    def _edge_before_poll(self) -> None:
        if self._edge_queued_by_tick:  # queued by this thread after this tick's drain began
            self._edge_queued_by_tick = False
            self._SyncObj__pipeNotifier.notify()

    def _checkCommandsToApply(self) -> None:
        self._edge_wake_pending = False  # before draining: see _applyCommand
        self._edge_queued_by_tick = False
        self._edge_batching = True
        try:
            super()._checkCommandsToApply()
        finally:
            self._edge_batching = False
        # Before the AppendEntries: a follower must learn a forwarded command's index before its commit.
        self._SyncObj__transport.send_held()
        if self._edge_send_pending:
            self._edge_send_pending = False
            self._SyncObj__sendAppendEntries()
            self._SyncObj__transport.flush()
            # Sync while the followers sync the same entries: by the time their acks arrive the leader
            # can count itself, instead of paying its own fsync after theirs.
            if self._edge_journal is not None:
                self._edge_journal.sync()

    def _SyncObj__sendAppendEntries(self) -> None:
        if self._edge_batching:
            self._edge_send_pending = True
            return
        self._edge_commit_sent = self._SyncObj__raftCommitIndex
        SyncObj._SyncObj__sendAppendEntries(self)

    def _SyncObj__applyLogEntries(self) -> bool:
        """A leader tells its followers the new commit index before it applies the entries, not after.

        A write forwarded by a follower is answered once that follower has applied it, which it does on
        learning the commit index: upstream made it wait for the leader's own apply of the whole batch.
        Returns whether an AppendEntries is still due (upstream: whenever something was applied).
        """
        leader = self._SyncObj__raftState == _RAFT_STATE.LEADER
        if leader and self._SyncObj__raftCommitIndex != self._edge_commit_sent:
            self._SyncObj__sendAppendEntries()
            self._SyncObj__transport.flush()
            SyncObj._SyncObj__applyLogEntries(self)
            return False
        return bool(SyncObj._SyncObj__applyLogEntries(self))

    # --- 7. one membership change at a time ---------------------------------------------------------

    def _SyncObj__changeCluster(self, request: Any) -> bool:
        # Upstream's guard checks an index it never sets, so two concurrent changes both went through.
        accepted = bool(SyncObj._SyncObj__changeCluster(self, request))
        if accepted:
            self._SyncObj__changeClusterIDx = self._SyncObj__getCurrentLogIndex() + 1
        return accepted

    # --- 3, 4, 5: message handling -------------------------------------------------------------------

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == _PING:
            return
        if kind == _PRE_VOTE:
            self._edge_on_pre_vote(node, message)
            return
        if kind == _PRE_VOTE_RESPONSE:
            self._edge_on_pre_vote_response(node, message)
            return
        if kind == _BATCH:
            for part in message["messages"]:
                if isinstance(part, dict) and part.get("type") in _BATCHED:
                    SyncObj._SyncObj__onMessageReceived(self, node, part)
            return
        if kind == "append_entries" and message["term"] >= self._SyncObj__raftCurrentTerm:
            self._edge_last_leader_contact = raft_clock()
            trimmed = self._edge_skip_matching_entries(message)
            if trimmed is None:
                return
            message = trimmed
        if kind == "next_node_idx" and self._SyncObj__raftState == _RAFT_STATE.LEADER:
            before = self._SyncObj__raftNextIndex.get(node)
            message = self._edge_floor_next_index(node, message)
            SyncObj._SyncObj__onMessageReceived(self, node, message)
            if message["success"] and not message["reset"] and before is not None:
                next_index = self._SyncObj__raftNextIndex
                next_index[node] = max(next_index.get(node, before), before)
            return
        SyncObj._SyncObj__onMessageReceived(self, node, message)

    def _edge_floor_next_index(self, node: Any, message: dict[str, Any]) -> dict[str, Any]:
        """18. Until a success, a failure answer moves nextIndex down only (answers to the optimistic sends
        made meanwhile would move it back up past the known mismatch)."""
        term = self._SyncObj__raftCurrentTerm
        if message["success"]:
            self._edge_next_floor.pop(node, None)
            return message
        if not message["reset"]:
            return message
        answered = int(message["next_node_idx"])
        floor_term, floor = self._edge_next_floor.get(node, (term, answered))
        if floor_term == term and floor < answered:
            message = dict(message, next_node_idx=floor)
            answered = floor
        self._edge_next_floor[node] = (term, answered)
        return message

    def _edge_skip_matching_entries(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Drop leading entries this log already holds with the same term (Raft §5.3, step 3).

        Returns the message to hand to PySyncObj, or None to drop it: when every entry is already here
        and this log goes further, PySyncObj would truncate the (matching) rest, so the message is
        treated as lost instead; a later AppendEntries carries the progress.
        """
        entries = message.get("entries")
        if not entries or "prevLogIdx" not in message or "transmission" in message:
            return message
        log = self._SyncObj__raftLog
        first_index = log[0][1]
        last_index = log[-1][1]
        skip = 0
        for _command, index, term in entries:
            if index > last_index or index < first_index:
                break
            if log[index - first_index][2] != term:
                break
            skip += 1
        if skip == 0:
            return message
        if skip == len(entries) and last_index > entries[-1][1]:
            self._SyncObj__raftElectionDeadline = raft_clock() + self._SyncObj__generateRaftTimeout()
            return None
        trimmed = dict(message)
        trimmed["prevLogIdx"] = entries[skip - 1][1]
        trimmed["prevLogTerm"] = entries[skip - 1][2]
        trimmed["entries"] = entries[skip:]
        return trimmed

    def _edge_maybe_pre_vote(self) -> None:
        """Before PySyncObj starts an election (term + 1), win a pre-vote round that changes no state."""
        if self.selfNode is None or self._SyncObj__raftState == _RAFT_STATE.LEADER:
            return
        now = raft_clock()
        if self._SyncObj__raftElectionDeadline >= now or not self._SyncObj__connectedToAnyone():
            return
        if self._SyncObj__transferInProgress:
            return  # the leader asked us to take over (TimeoutNow): no pre-vote
        if self._edge_prevote_won:
            self._edge_prevote_won = False
            return  # PySyncObj runs the real election in this tick
        self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
        self._edge_prevote_term = self._SyncObj__raftCurrentTerm + 1
        logger.info(
            "%s: no live leader (last heard %.0f ms ago); asking for a pre-vote for term %d",
            self.selfNode.id, (now - self._edge_last_leader_contact) * 1000, self._edge_prevote_term,
        )
        self._edge_prevote_votes = {self.selfNode.id}
        for node in self._SyncObj__otherNodes:
            self._SyncObj__transport.send(
                node,
                {
                    "type": _PRE_VOTE,
                    "term": self._edge_prevote_term,
                    "last_log_index": self._SyncObj__getCurrentLogIndex(),
                    "last_log_term": self._SyncObj__getCurrentLogTerm(),
                },
            )
        self._edge_check_pre_vote_won()

    def _edge_leader_is_live(self) -> bool:
        """Heard from a leader within the minimum election timeout (Raft thesis §4.2.3), over a link that is
        still up. A leader whose process died closed its links, so nobody waits out the timeout for it."""
        leader = self._SyncObj__raftLeader
        if leader is None or leader not in self._SyncObj__connectedNodes:
            return False
        return bool(raft_clock() - self._edge_last_leader_contact < self.conf.raftMinTimeout)

    def _SyncObj__onNodeDisconnected(self, node: Any) -> None:  # transport callback, tick thread
        if node in self._SyncObj__connectedNodes:
            logger.info("%s: lost the link to %s", self.selfNode.id, node.id)
        SyncObj._SyncObj__onNodeDisconnected(self, node)
        if node == self._SyncObj__raftLeader and self._SyncObj__raftState != _RAFT_STATE.LEADER:
            # The leader's link closed (its process died, or it restarted): ask for a pre-vote soon,
            # jittered so that followers seldom stand at the same moment and split the vote.
            soon = raft_clock() + random.uniform(0.0, self.conf.raftMinTimeout / 3)
            logger.info("%s: the link to the leader %s closed; asking for a pre-vote soon", self.selfNode.id, node.id)
            self._SyncObj__raftElectionDeadline = min(self._SyncObj__raftElectionDeadline, soon)

    def _edge_on_pre_vote(self, node: Any, message: dict[str, Any]) -> None:
        heard_from_leader = self._edge_leader_is_live()
        is_leader = self._SyncObj__raftState == _RAFT_STATE.LEADER
        last_term = self._SyncObj__getCurrentLogTerm()
        up_to_date = message["last_log_term"] > last_term or (
            message["last_log_term"] == last_term
            and message["last_log_index"] >= self._SyncObj__getCurrentLogIndex()
        )
        granted = (
            message["term"] > self._SyncObj__raftCurrentTerm
            and up_to_date
            and not heard_from_leader
            and not is_leader
        )
        if granted:
            logger.info("%s: granting a pre-vote to %s for term %d", self.selfNode.id, node.id, message["term"])
            # Step aside for the candidate we just encouraged: abandon our own pre-vote round and push our
            # election timer out, so two followers that lost the leader together do not split the vote.
            self._edge_prevote_term = -1
            self._edge_prevote_won = False
            deadline = raft_clock() + self._SyncObj__generateRaftTimeout()
            self._SyncObj__raftElectionDeadline = max(self._SyncObj__raftElectionDeadline, deadline)
        self._SyncObj__transport.send(
            node, {"type": _PRE_VOTE_RESPONSE, "term": message["term"], "granted": granted}
        )

    def _edge_on_pre_vote_response(self, node: Any, message: dict[str, Any]) -> None:
        if message["term"] != self._edge_prevote_term or not message["granted"]:
            return
        if self._SyncObj__raftState == _RAFT_STATE.LEADER:
            return
        self._edge_prevote_votes.add(node.id)
        self._edge_check_pre_vote_won()

    def _edge_check_pre_vote_won(self) -> None:
        members = len(self._SyncObj__otherNodes) + 1
        if len(self._edge_prevote_votes) > members / 2 and self._edge_prevote_term == (
            self._SyncObj__raftCurrentTerm + 1
        ):
            self._edge_prevote_term = -1
            self._edge_prevote_won = True
            self._SyncObj__raftElectionDeadline = 0.0

    def _edge_keepalive(self) -> None:
        now = raft_clock()
        if now - self._edge_last_ping < self.conf.connectionTimeout / 4:
            return
        self._edge_last_ping = now
        for node in self._SyncObj__otherNodes:
            self._SyncObj__transport.send(node, {"type": _PING})

    # --- 6. encryption -------------------------------------------------------------------------------

    @property
    def encryptor(self) -> RaftCipher:
        return self._edge_cipher

    # --- read-only views for the bridge (methods, not properties: SyncObj.__init__ evaluates them)

    def is_leader(self) -> bool:
        return bool(self._SyncObj__raftState == _RAFT_STATE.LEADER)

    def leader_address(self) -> str | None:
        leader = self._SyncObj__raftLeader
        return None if leader is None else str(leader.id)

    def members(self) -> list[str]:
        return sorted([self.selfNode.id, *(n.id for n in self._SyncObj__otherNodes)])

    def term(self) -> int:
        return int(self._SyncObj__raftCurrentTerm)

    def commit_index(self) -> int:
        return int(self._SyncObj__raftCommitIndex)

    def last_applied(self) -> int:
        return int(self._SyncObj__raftLastApplied)

    def last_log_index(self) -> int:
        return int(self._SyncObj__getCurrentLogIndex())

    def connected_peers(self) -> list[str]:
        return sorted(n.id for n in self._SyncObj__connectedNodes)

    def membership_change_pending(self) -> bool:
        return self._SyncObj__changeClusterIDx is not None
