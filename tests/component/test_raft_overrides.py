"""One test per override of PySyncObj in edgek8s/raft/syncobj.py; each fails without its override.

Where the upstream behaviour can be called directly (``SyncObj._SyncObj__onMessageReceived``), the
test also shows the bug it fixes, so the override stays justified.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import pickle
import secrets
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import FAIL_REASON, SyncObj
from pysyncobj.monotonic import monotonic as raft_clock
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import _RAFT_STATE
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from edgek8s.client.rest import RestClient
from edgek8s.config import RaftConfig
from edgek8s.model.resources import by_id, resource_id
from edgek8s.raft.node import RaftNode, build_syncobj
from edgek8s.raft.syncobj import EdgeSyncObj, _FramedConnection
from tests.support.cluster import LocalCluster, free_port, wait_for

CM = "/api/v1/namespaces/default/configmaps"


class ToyMachine:
    def __init__(self) -> None:
        self.applied: list[tuple[bytes, int]] = []

    def apply(self, payload: bytes, index: int) -> int:
        if payload == b"boom":
            raise RuntimeError("apply bug")
        self.applied.append((payload, index))
        return index

    def snapshot(self) -> Any:
        return list(self.applied)

    def restore(self, data: Any) -> None:
        self.applied = list(data)


@pytest.fixture
def lonely_syncobj(tmp_path: Path) -> Iterator[tuple[EdgeSyncObj, Any]]:
    """A replica whose peer never answers: its handlers can be driven message by message."""
    peer = f"127.0.0.1:{free_port()}"
    config = RaftConfig(
        self_address=f"127.0.0.1:{free_port()}", peers=(peer,), data_dir=tmp_path / "r", cluster_secret=b"k" * 32
    )
    obj, _consumer = build_syncobj(config, ToyMachine())
    try:
        yield obj, TCPNode(peer)
    finally:
        obj._doDestroy()


def _fill_log(obj: EdgeSyncObj, last_index: int, term: int = 1) -> None:
    log = obj._SyncObj__raftLog
    for index in range(log[-1][1] + 1, last_index + 1):
        log.add(b"\x01", index, term)  # no-op entries: harmless if applied
    obj._SyncObj__raftCurrentTerm = term


def _append(prev: int, indexes: list[int], term: int = 1) -> dict[str, Any]:
    return {
        "type": "append_entries", "term": term, "commit_index": 1, "prevLogIdx": prev, "prevLogTerm": term,
        "entries": [(b"\x01", i, term) for i in indexes],
    }


def test_follower_keeps_entries_matching_the_leaders(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, leader = lonely_syncobj
    _fill_log(obj, 6)
    # A delayed AppendEntries repeating entries 3-4, after the follower already has 1-6.
    obj._SyncObj__onMessageReceived(leader, _append(2, [3, 4]))
    assert obj._SyncObj__raftLog[-1][1] == 6
    # Upstream truncates from 3 and re-adds only 3-4: entries it had acknowledged (5, 6) are gone.
    SyncObj._SyncObj__onMessageReceived(obj, leader, _append(2, [3, 4]))
    assert obj._SyncObj__raftLog[-1][1] == 4


def test_follower_still_truncates_conflicting_entries(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, leader = lonely_syncobj
    _fill_log(obj, 6, term=1)
    message = _append(2, [3, 4, 5], term=2)
    message["prevLogTerm"] = 1
    message["entries"][0] = (b"\x01", 3, 1)  # 3 matches, 4 conflicts (term 2 vs 1)
    obj._SyncObj__onMessageReceived(leader, message)
    log = obj._SyncObj__raftLog
    assert [(e[1], e[2]) for e in log[-3:]] == [(3, 1), (4, 2), (5, 2)]


def test_leader_never_moves_next_index_backwards(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, follower = lonely_syncobj
    _fill_log(obj, 10)
    obj._SyncObj__raftState = _RAFT_STATE.LEADER
    obj._SyncObj__raftNextIndex[follower] = 11  # entries up to 10 already sent
    obj._SyncObj__raftMatchIndex[follower] = 3
    obj._SyncObj__lastResponseTime[follower] = 0.0
    ack = {"type": "next_node_idx", "next_node_idx": 6, "reset": False, "success": True}
    obj._SyncObj__onMessageReceived(follower, ack)
    assert obj._SyncObj__raftMatchIndex[follower] == 5
    assert obj._SyncObj__raftNextIndex[follower] == 11
    obj._SyncObj__raftNextIndex[follower] = 11
    obj._SyncObj__raftMatchIndex[follower] = 3
    SyncObj._SyncObj__onMessageReceived(obj, follower, ack)
    assert obj._SyncObj__raftNextIndex[follower] == 6  # upstream: resend 6-10, which the follower has


def test_pre_vote_is_refused_while_a_leader_is_heard(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _fill_log(obj, 5, term=1)
    answers: list[dict[str, Any]] = []
    transport = obj._SyncObj__transport
    transport.send = lambda node, message: answers.append(message) or True
    request = {"type": "edgek8s_pre_vote", "term": 2, "last_log_index": 99, "last_log_term": 1}
    obj._SyncObj__raftLeader = peer
    obj._SyncObj__connectedNodes.add(peer)
    obj._edge_last_leader_contact = raft_clock()
    obj._SyncObj__onMessageReceived(peer, request)  # a live leader was heard just now: no
    obj._edge_last_leader_contact = 0.0
    obj._SyncObj__onMessageReceived(peer, request)  # silent for long: yes
    stale = dict(request, last_log_term=0)
    obj._SyncObj__onMessageReceived(peer, stale)  # candidate's log is behind: no
    obj._edge_last_leader_contact = raft_clock()
    obj._SyncObj__connectedNodes.discard(peer)
    obj._SyncObj__onMessageReceived(peer, request)  # heard lately, but the leader's link closed: yes
    assert [a["granted"] for a in answers] == [False, True, False, True]
    assert obj._SyncObj__raftCurrentTerm == 1  # answering a pre-vote never changes the term


def test_granting_a_pre_vote_steps_aside(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    obj._SyncObj__transport.send = lambda node, message: True
    obj._edge_prevote_term = 1  # our own pre-vote round is under way
    obj._SyncObj__raftElectionDeadline = raft_clock()  # and our timer is about to fire
    obj._SyncObj__onMessageReceived(peer, {"type": "edgek8s_pre_vote", "term": 1, "last_log_index": 9,
                                           "last_log_term": 0})
    assert obj._edge_prevote_term == -1
    assert obj._SyncObj__raftElectionDeadline >= raft_clock() + obj.conf.raftMinTimeout * 0.9


def test_losing_the_link_to_the_leader_starts_a_pre_vote_soon(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    obj._SyncObj__raftLeader = peer
    obj._SyncObj__connectedNodes.add(peer)
    obj._SyncObj__raftElectionDeadline = raft_clock() + 60
    obj._SyncObj__onNodeDisconnected(peer)
    assert obj._SyncObj__raftElectionDeadline <= raft_clock() + obj.conf.raftMinTimeout / 3


def _as_leader_with_queue(obj: EdgeSyncObj, peer: Any, commands: int) -> list[dict[str, Any]]:
    _fill_log(obj, 3)
    obj._SyncObj__raftState = _RAFT_STATE.LEADER
    obj._SyncObj__raftLeader = obj.selfNode
    obj._SyncObj__noopIDx = 1
    obj._SyncObj__connectedNodes.add(peer)
    obj._SyncObj__raftNextIndex[peer] = 4
    obj._SyncObj__raftMatchIndex[peer] = 3
    obj._SyncObj__lastResponseTime[peer] = raft_clock()
    obj.journal().sync()
    sent: list[dict[str, Any]] = []
    transport = obj._SyncObj__transport
    original = transport.send
    transport.send = lambda node, message: sent.append(message) or original(node, message)
    for i in range(commands):
        obj._applyCommand(b"\x00" + pickle.dumps(i), None)
    return sent


def test_commands_of_one_tick_share_one_append_and_one_fsync(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    sent = _as_leader_with_queue(obj, peer, 50)
    before = obj.journal().fsync_count
    obj._checkCommandsToApply()
    appends = [m for m in sent if m["type"] == "append_entries"]
    assert [len(m["entries"]) for m in appends] == [50]
    # The leader sends first (followers sync in parallel), then makes all 50 durable with one fdatasync.
    assert obj.journal().fsync_count - before == 1
    assert not obj.journal().dirty
    obj._onTick(0.0)  # nothing left to sync before it counts itself towards a commit
    assert obj.journal().fsync_count - before == 1


def test_upstream_sends_one_append_per_command(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    sent = _as_leader_with_queue(obj, peer, 50)
    SyncObj._checkCommandsToApply(obj)  # upstream's loop, with appendEntriesUseBatch off as edgek8s needs
    appends = [m for m in sent if m["type"] == "append_entries"]
    assert len(appends) == 50


def test_leader_sends_the_commit_index_before_applying(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _as_leader_with_queue(obj, peer, 0)
    consumer = obj._SyncObj__consumers[0]
    for payload in (b"a", b"b"):
        consumer.apply_command(payload, callback=None)
    obj._checkCommandsToApply()  # appended as 4 and 5, sent, made durable
    events: list[str] = []
    apply = consumer._edge_apply
    consumer._edge_apply = lambda payload, index: events.append(f"apply {index}") or apply(payload, index)
    transport = obj._SyncObj__transport
    send = transport.send
    transport.send = lambda node, message: (
        message.get("type") == "append_entries" and events.append(f"send commit {message['commit_index']}")
    ) or send(node, message)
    obj._SyncObj__raftMatchIndex[peer] = 5  # the peer acknowledged both
    obj._onTick(0.0)
    assert events == ["send commit 5", "apply 4", "apply 5"]  # and no second AppendEntries after the apply


def _record_wire(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What leaves through PySyncObj's own TCPTransport.send (after edgek8s's holding and batching)."""
    wire: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(TCPTransport, "send", lambda self, node, message: wire.append((node, message)) or True)
    return wire


def test_a_follower_forwards_the_commands_of_a_tick_in_one_message(
    lonely_syncobj: tuple[EdgeSyncObj, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj, leader = lonely_syncobj
    obj._SyncObj__raftLeader = leader
    wire = _record_wire(monkeypatch)
    consumer = obj._SyncObj__consumers[0]
    for payload in (b"a", b"b", b"c"):
        consumer.apply_command(payload, callback=lambda result, error: None)
    obj._checkCommandsToApply()
    assert [m["type"] for _node, m in wire] == ["edgek8s_batch"]
    parts = wire[0][1]["messages"]
    assert [p["type"] for p in parts] == ["apply_command"] * 3
    assert len({p["request_id"] for p in parts}) == 3


def test_a_leader_answers_a_batch_in_one_message_before_the_append(
    lonely_syncobj: tuple[EdgeSyncObj, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj, follower = lonely_syncobj
    _as_leader_with_queue(obj, follower, 0)
    wire = _record_wire(monkeypatch)
    command = b"\x00" + pickle.dumps("x")
    batch = {"type": "edgek8s_batch", "messages": [
        {"type": "apply_command", "command": command, "request_id": i} for i in (1, 2, 3)
    ]}
    obj._SyncObj__onMessageReceived(follower, batch)
    obj._checkCommandsToApply()
    kinds = [m["type"] for _node, m in wire]
    assert kinds == ["edgek8s_batch", "append_entries"]  # the indexes first, then the entries
    answers = wire[0][1]["messages"]
    assert [(a["request_id"], a["log_idx"]) for a in answers] == [(1, 4), (2, 5), (3, 6)]
    assert [e[1] for e in wire[1][1]["entries"]] == [4, 5, 6]


def test_proposals_are_pickled_with_protocol_5(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _as_leader_with_queue(obj, peer, 0)
    consumer = obj._SyncObj__consumers[0]
    consumer.propose(b"\x00\xff payload", lambda result, error: None)
    consumer.apply_command(b"upstream", callback=lambda result, error: None)
    obj._checkCommandsToApply()
    ours, upstream = obj._SyncObj__raftLog[-2][0], obj._SyncObj__raftLog[-1][0]
    assert ours[1:3] == b"\x80\x05" and upstream[1:3] == b"\x80\x02"  # upstream: protocol 2
    obj._SyncObj__raftMatchIndex[peer] = 5
    obj._onTick(0.0)
    machine = consumer._edge_apply.__self__
    assert machine.applied[-2:] == [(b"\x00\xff payload", 4), (b"upstream", 5)]  # both apply alike


def _wake_up_bytes(obj: EdgeSyncObj) -> int:
    """Bytes waiting in the tick thread's wake-up pipe (each one a write syscall by a proposer); drains it."""
    pipe = obj._SyncObj__pipeNotifier._PipeNotifier__pipeR
    count = 0
    while True:
        try:
            chunk = os.read(pipe, 4096)
        except BlockingIOError:
            return count
        count += len(chunk)


def test_a_burst_of_proposals_wakes_the_tick_thread_once(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _wake_up_bytes(obj)
    sent = _as_leader_with_queue(obj, peer, 50)
    assert _wake_up_bytes(obj) == 1
    obj._checkCommandsToApply()
    assert [len(m["entries"]) for m in sent if m["type"] == "append_entries"] == [50]
    obj._applyCommand(b"\x00" + pickle.dumps("late"), None)  # queued after the drain: must wake it again
    assert _wake_up_bytes(obj) == 1


def test_upstream_wakes_the_tick_thread_per_command(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    _wake_up_bytes(obj)
    for i in range(50):
        SyncObj._applyCommand(obj, b"\x00" + pickle.dumps(i), None)
    assert _wake_up_bytes(obj) == 50


def _forwarded(command: Any) -> dict[str, Any]:
    return {"type": "apply_command", "command": b"\x00" + pickle.dumps(command), "request_id": 1}


def test_a_command_forwarded_to_the_leader_does_not_wake_its_own_tick_thread(
    lonely_syncobj: tuple[EdgeSyncObj, Any],
) -> None:
    obj, peer = lonely_syncobj
    sent = _as_leader_with_queue(obj, peer, 0)
    _wake_up_bytes(obj)
    obj._edge_tick_ident = threading.get_ident()  # this thread plays the tick thread
    obj._SyncObj__onMessageReceived(peer, _forwarded("forwarded"))
    assert _wake_up_bytes(obj) == 0  # the tick drains the queue before it polls again
    obj._checkCommandsToApply()
    assert [len(m["entries"]) for m in sent if m["type"] == "append_entries"] == [1]
    obj._SyncObj__onMessageReceived(peer, _forwarded("late"))  # after this tick's drain, before its poll
    obj._edge_before_poll()
    assert _wake_up_bytes(obj) == 1


def test_upstream_wakes_its_own_tick_thread_for_a_forwarded_command(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _as_leader_with_queue(obj, peer, 0)
    _wake_up_bytes(obj)
    obj._edge_tick_ident = threading.get_ident()
    message = _forwarded("forwarded")
    SyncObj._applyCommand(obj, message["command"], (peer, message["request_id"]))  # what upstream's handler does
    assert _wake_up_bytes(obj) == 1


def test_follower_acknowledges_only_durable_entries(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, leader = lonely_syncobj
    _fill_log(obj, 3)
    obj.journal().sync()
    acks: list[tuple[int, bool]] = []
    transport = obj._SyncObj__transport
    original = transport.send_now

    def record(node: Any, message: dict[str, Any]) -> bool:
        if message["type"] == "next_node_idx":
            acks.append((message["next_node_idx"], not obj.journal().dirty))
        return bool(original(node, message))

    transport.send_now = record
    before = obj.journal().fsync_count
    obj._SyncObj__onMessageReceived(leader, _append(3, [4, 5]))
    obj._SyncObj__onMessageReceived(leader, _append(5, [6, 7]))
    assert acks == []  # held until the entries are durable
    obj._onTick(0.0)
    assert acks == [(8, True)]  # one acknowledgement, the newest, after one fdatasync for both messages
    assert obj.journal().fsync_count - before == 1
    assert obj._SyncObj__raftLog[-1][1] == 7


def test_a_repeated_acknowledgement_is_not_sent_again(
    lonely_syncobj: tuple[EdgeSyncObj, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj, leader = lonely_syncobj
    _fill_log(obj, 3)
    obj.journal().sync()
    now = [1000.0]
    monkeypatch.setattr("edgek8s.raft.syncobj.raft_clock", lambda: now[0])
    made: list[int] = []
    sent: list[int] = []
    transport = obj._SyncObj__transport
    acknowledge, send_now = obj._edge_acknowledge, transport.send_now
    monkeypatch.setattr(obj, "_edge_acknowledge",
                        lambda node, message: made.append(message["next_node_idx"]) or acknowledge(node, message))
    monkeypatch.setattr(transport, "send_now",
                        lambda node, message: sent.append(message["next_node_idx"]) or send_now(node, message))
    obj._SyncObj__onMessageReceived(leader, _append(3, [4, 5]))
    obj._onTick(0.0)  # durable: acknowledged
    commit_only = _append(5, [])
    commit_only["commit_index"] = 5
    obj._SyncObj__onMessageReceived(leader, commit_only)  # the leader's new commit index
    assert made == [6, 6]  # upstream answers both AppendEntries alike
    assert sent == [6]  # the repeat tells the leader nothing
    now[0] += obj.conf.appendEntriesPeriod  # a heartbeat later: answered, the leader must hear from us
    obj._SyncObj__onMessageReceived(leader, _append(5, []))
    assert sent == [6, 6]


async def test_restarted_follower_does_not_depose_the_leader(cluster: LocalCluster) -> None:
    leader = await cluster.wait_stable_leader()
    master = cluster.masters[leader]
    assert master is not None
    term = master.store.raft.status().term
    follower = (leader + 1) % 3
    for _ in range(5):
        await cluster.stop(follower)
        await asyncio.sleep(1.3)  # longer than an election timeout: the restarted node's timer fires first
        await cluster.start(follower)
        await asyncio.sleep(0.3)
    await wait_for(lambda: cluster.masters[follower] is not None and cluster.masters[follower].store.raft.leader
                   is not None)
    assert cluster.leader_index() == leader
    assert master.store.raft.status().term == term


async def test_idle_follower_links_stay_connected(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    followers = [m for i, m in enumerate(cluster.masters) if i != leader and m is not None]
    disconnected = 0
    deadline = time.monotonic() + 3 * cluster.configs[0].raft.connection_timeout
    while time.monotonic() < deadline:
        for follower in followers:
            disconnected += len(follower.store.raft.status().connected) != 2
        await asyncio.sleep(0.05)
    assert disconnected == 0


async def test_raft_port_refuses_unauthenticated_frames(
    cluster: LocalCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    host, port = cluster.configs[0].raft.self_address.rsplit(":", 1)
    frame = zlib.compress(pickle.dumps(Exploit()), 3)
    loop = asyncio.get_running_loop()

    def attack() -> bytes:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(struct.pack("i", len(frame)) + frame)
            sock.settimeout(5)
            try:
                return sock.recv(100)  # b"" once the replica drops the connection
            except ConnectionResetError:
                return b""

    assert await loop.run_in_executor(None, attack) == b""
    await asyncio.sleep(0.2)
    assert not marker.exists()
    refusals = [r.getMessage() for r in caplog.records if "refused a Raft connection" in r.getMessage()]
    assert refusals and "failed authentication" in refusals[0]


async def test_a_replica_with_another_secret_cannot_join(cluster: LocalCluster, tmp_path: Path) -> None:
    config = cluster.configs[0].raft
    intruder = RaftConfig(
        self_address=f"127.0.0.1:{free_port()}",
        peers=tuple([config.self_address, *config.peers]),
        data_dir=tmp_path / "intruder",
        cluster_secret=secrets.token_bytes(32),
    )
    node = RaftNode(intruder, ToyMachine())
    await node.start()
    try:
        await asyncio.sleep(1.5)
        assert node.status().connected == []
        assert node.leader is None
    finally:
        await node.stop()


async def test_apply_that_raises_does_not_halt_replication(tmp_path: Path) -> None:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    secret = secrets.token_bytes(32)
    nodes = [
        RaftNode(
            RaftConfig(
                self_address=a,
                peers=tuple(x for x in addresses if x != a),
                data_dir=tmp_path / a.replace(":", "_"),
                cluster_secret=secret,
            ),
            ToyMachine(),
        )
        for a in addresses
    ]
    for node in nodes:
        await node.start()
    try:
        assert await nodes[0].propose(b"boom", timeout=10) is None
        index = await nodes[1].propose(b"after", timeout=10)
        assert isinstance(index, int)
        await nodes[2].barrier()
    finally:
        for node in nodes:
            await node.stop()


def _membership_outcomes(obj: EdgeSyncObj, peer: Any, check: Any) -> list[int]:
    _as_leader_with_queue(obj, peer, 0)
    outcomes: list[int] = []
    obj._SyncObj__changeCluster = check
    for _ in range(2):
        obj.addNodeToCluster(f"127.0.0.1:{free_port()}", callback=lambda _r, err: outcomes.append(err))
    obj._checkCommandsToApply()
    return outcomes


def test_one_membership_change_at_a_time(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    members = len(obj.members())
    outcomes = _membership_outcomes(obj, peer, obj._SyncObj__changeCluster)
    assert outcomes == [FAIL_REASON.REQUEST_DENIED]  # the first is pending (its callback fires on commit)
    assert len(obj.members()) == members + 1


def test_upstream_lets_two_membership_changes_through(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    members = len(obj.members())
    upstream = functools.partial(SyncObj._SyncObj__changeCluster, obj)
    assert _membership_outcomes(obj, peer, upstream) == []
    assert len(obj.members()) == members + 2


async def test_add_and_remove_a_master_at_runtime(tmp_path: Path) -> None:
    cluster = LocalCluster.build(tmp_path, size=4)
    fourth = cluster.configs[3]
    # Masters 0-2 start as a 3-member cluster; master 3 knows them and is added at runtime.
    for i in range(3):
        others = tuple(p for p in cluster.configs[i].raft.peers if p != fourth.raft.self_address)
        raft = dataclasses.replace(cluster.configs[i].raft, peers=others)
        cluster.configs[i] = dataclasses.replace(cluster.configs[i], raft=raft)
    for i in range(3):
        await cluster.start(i)
    try:
        await cluster.wait_ready()
        async with RestClient(cluster.urls[0]) as client:
            await client.create(CM, {"metadata": {"name": "before-join"}})
            await client.create("/edgek8s/v1/members", {"address": fourth.raft.self_address})
            await cluster.start(3)
            joined = cluster.masters[3]
            assert joined is not None
            await joined.store.ready(timeout=20)
            assert (await joined.store.get(by_id(resource_id("", "configmaps")), "default", "before-join",
                                           consistent=True)).uid
            await client.delete(f"/edgek8s/v1/members?address={fourth.raft.self_address}")
            await wait_for(lambda: all(len(m.store.raft.status().members) == 3 for m in cluster.running()[:3]))
    finally:
        await cluster.stop()


async def test_down_master_catches_up_through_a_snapshot(tmp_path: Path) -> None:
    cluster = LocalCluster.build(tmp_path, raft={"compaction_min_entries": 50, "compaction_min_seconds": 1.0})
    await cluster.start()
    try:
        await cluster.wait_ready()
        leader = await cluster.wait_leader()
        lagging = (leader + 1) % 3
        await cluster.stop(lagging)
        writer = cluster.urls[(leader + 2) % 3]
        async with RestClient(writer) as client:
            for i in range(300):
                await client.create(CM, {"metadata": {"name": f"c{i}"}})
        snapshot = cluster.configs[leader].raft.snapshot_path
        await wait_for(snapshot.exists, timeout=10)
        await cluster.start(lagging)
        master = cluster.masters[lagging]
        assert master is not None
        await master.store.ready(timeout=20)
        reference = cluster.masters[leader]
        assert reference is not None
        await wait_for(lambda: master.store.state.count() == reference.store.state.count(), timeout=20)
    finally:
        await cluster.stop()


async def test_wiped_master_rejoins(cluster: LocalCluster, clients: list[RestClient]) -> None:
    for i in range(20):
        await clients[i % 3].create(CM, {"metadata": {"name": f"w{i}"}})
    leader = await cluster.wait_leader()
    wiped = (leader + 1) % 3
    await cluster.stop(wiped)
    data_dir = cluster.configs[wiped].raft.data_dir
    for child in data_dir.iterdir():
        os.remove(child)
    await cluster.start(wiped)
    master = cluster.masters[wiped]
    assert master is not None
    await master.store.ready(timeout=20)
    listed, _rv = await master.store.list(by_id(resource_id("", "configmaps")), "default", consistent=True)
    assert {o.fields["metadata.name"] for o in listed} >= {f"w{i}" for i in range(20)}


def test_frames_are_pickle_5_without_zlib(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    left, right = socket.socketpair()
    try:
        sender = TcpConnection(obj._poller, socket=left)
        sender.__class__ = _FramedConnection
        message = {"type": "append_entries", "entries": [(b"\x00" + bytes(range(256)) * 8, 7, 2)]}
        sender.send(message)
        raw = right.recv(1 << 16)
        (length,) = struct.unpack("i", raw[:4])
        assert length == len(raw) - 4
        assert pickle.loads(raw[4:]) == message  # plain pickle: no zlib layer
        assert raw[4:6] == b"\x80\x05"  # protocol 5
    finally:
        left.close()
        right.close()


class _CountingSocket:
    """A socket whose ``send``, ``recv`` and ``getsockopt`` calls are counted (each one a syscall)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sends = 0
        self.reads = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self._sock.send(data)

    def recv(self, size: int) -> bytes:
        self.reads += 1
        return self._sock.recv(size)

    def getsockopt(self, *args: Any) -> Any:
        self.reads += 1
        return self._sock.getsockopt(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@contextlib.contextmanager
def _counted_connection(obj: EdgeSyncObj) -> Iterator[tuple[Any, _CountingSocket, socket.socket]]:
    """A PySyncObj connection over a socket pair whose sends are counted, and the far end."""
    left, right = socket.socketpair()
    try:
        sender = TcpConnection(obj._poller, socket=left)
        counting = _CountingSocket(left)
        sender._TcpConnection__socket = counting
        yield sender, counting, right
    finally:
        left.close()
        right.close()


def test_messages_of_a_tick_leave_in_one_send(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    with _counted_connection(obj) as (sender, counting, far_end):
        obj._SyncObj__transport._adopt(sender)
        messages = [{"type": "apply_command", "command": b"x" * 100, "request_id": i} for i in range(5)]
        for message in messages:
            sender.send(message)
        assert counting.sends == 0  # buffered until the tick flushes
        obj._SyncObj__transport.flush()
        assert counting.sends == 1
        raw = far_end.recv(1 << 16)
        received = []
        while raw:
            (length,) = struct.unpack("i", raw[:4])
            received.append(pickle.loads(raw[4 : 4 + length]))
            raw = raw[4 + length :]
        assert received == messages  # in order, all of them


def test_upstream_sends_each_message_on_its_own(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    with _counted_connection(obj) as (sender, counting, _far_end):
        for i in range(5):
            sender.send({"type": "apply_command", "command": b"x" * 100, "request_id": i})
        assert counting.sends == 5


def _read_counted(obj: EdgeSyncObj, *, framed: bool) -> tuple[int, list[Any]]:
    """Syscalls a connection makes to read two frames that are waiting, and the messages it parsed."""
    left, right = socket.socketpair()
    try:
        left.setblocking(False)
        receiver = TcpConnection(obj._poller, socket=left)
        if framed:
            obj._SyncObj__transport._adopt(receiver)
        counting = _CountingSocket(left)
        receiver._TcpConnection__socket = counting
        messages = [{"type": "ping", "n": 1}, {"type": "ping", "n": 2}]
        for message in messages:
            data = pickle.dumps(message, protocol=5) if framed else zlib.compress(pickle.dumps(message))
            right.sendall(struct.pack("i", len(data)) + data)
        time.sleep(0.05)
        receiver._TcpConnection__tryReadBuffer()
        parsed = []
        while (message := receiver._TcpConnection__processParseMessage()) is not None:
            parsed.append(message)
        return counting.reads, parsed
    finally:
        left.close()
        right.close()


def test_a_waiting_frame_is_read_with_one_syscall(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    assert _read_counted(obj, framed=True) == (1, [{"type": "ping", "n": 1}, {"type": "ping", "n": 2}])


def test_upstream_reads_with_three_syscalls(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, _peer = lonely_syncobj
    reads, parsed = _read_counted(obj, framed=False)
    assert reads == 3 and len(parsed) == 2  # recv, getsockopt(SO_ERROR), recv until EAGAIN


async def test_every_raft_connection_uses_the_cheap_frames(cluster: LocalCluster) -> None:
    for master in cluster.running():
        transport = master.store.raft._sync._SyncObj__transport
        classes = {type(conn) for conn in transport._connections.values()}
        assert classes == {_FramedConnection}, classes


def test_check_quorum_counts_silence_in_tick_time(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, peer = lonely_syncobj
    _as_leader_with_queue(obj, peer, 0)
    timeout = obj._edge_quorum_timeout
    obj._SyncObj__lastResponseTime[peer] = raft_clock()
    obj._edge_check_quorum()
    assert obj.is_leader()
    # The tick thread was starved for longer than the timeout: the answers it has not read yet must not
    # depose it (one tick counts at most _QUORUM_STEP_MAX of silence).
    obj._SyncObj__lastResponseTime[peer] = raft_clock() - 3 * timeout
    obj._edge_quorum_checked = raft_clock() - 3 * timeout
    obj._edge_check_quorum()
    assert obj.is_leader()
    # Still no answer, tick after tick: it steps down once the ticks add up to the timeout.
    deadline = time.monotonic() + 5 * timeout
    while obj.is_leader() and time.monotonic() < deadline:
        time.sleep(0.01)
        obj._edge_check_quorum()
    assert not obj.is_leader()
    assert obj.leader_address() is None


def _cut_off(nodes: list[RaftNode], cut: str) -> None:
    """Drop every Raft message between the node at ``cut`` and the others (a fault injected in the
    transports; the TCP links stay up, as in a real partition)."""
    for node in nodes:
        transport = node._sync._SyncObj__transport
        for name in ("send", "send_now"):
            original = getattr(transport, name)

            def send(target: Any, message: Any, _original: Any = original, _node: RaftNode = node) -> bool:
                if (_node.address == cut) != (target.id == cut):
                    return True  # lost on the wire
                return bool(_original(target, message))

            setattr(transport, name, send)


async def _three_nodes(tmp_path: Path) -> list[RaftNode]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    secret = secrets.token_bytes(32)
    nodes = [
        RaftNode(RaftConfig(self_address=a, peers=tuple(x for x in addresses if x != a),
                            data_dir=tmp_path / a.replace(":", "_"), cluster_secret=secret), ToyMachine())
        for a in addresses
    ]
    for node in nodes:
        await node.start()
    await wait_for(lambda: sum(n.is_leader for n in nodes) == 1, timeout=10)
    return nodes


async def test_a_cut_off_leader_steps_down_before_a_successor_is_elected(tmp_path: Path) -> None:
    """Raft messages between the leader and the others are dropped: the leader must stop believing it
    leads before either of the others can become leader. Upstream's fallback (1.5 s, checked before the
    poll) left it leading ~0.3-0.9 s into its successor's term."""
    nodes = await _three_nodes(tmp_path)
    try:
        old = next(n for n in nodes if n.is_leader)
        await old.propose(b"before", timeout=5)
        _cut_off(nodes, old.address)
        cut_at = time.monotonic()
        stepped_down = elected = None
        deadline = cut_at + 10
        while (stepped_down is None or elected is None) and time.monotonic() < deadline:
            now = time.monotonic() - cut_at
            if stepped_down is None and not old.is_leader:
                stepped_down = now
            if elected is None and any(n.is_leader for n in nodes if n is not old):
                elected = now
            await asyncio.sleep(0.002)
        print(f"cut-off leader stepped down after {stepped_down} s; successor elected after {elected} s")
        assert stepped_down is not None and elected is not None
        assert stepped_down < elected
    finally:
        for node in nodes:
            await node.stop()


async def test_a_leader_that_loses_one_follower_keeps_leading(tmp_path: Path) -> None:
    """Check-quorum counts a majority, not every follower: one follower cut off deposes nobody."""
    nodes = await _three_nodes(tmp_path)
    try:
        leader = next(n for n in nodes if n.is_leader)
        follower = next(n for n in nodes if n is not leader)
        term = leader.term
        _cut_off(nodes, follower.address)
        await asyncio.sleep(2.0)  # five check-quorum timeouts
        assert leader.is_leader and leader.term == term
        assert isinstance(await leader.propose(b"still", timeout=5), int)
    finally:
        for node in nodes:
            await node.stop()


def test_a_mismatch_is_answered_with_the_index_after_the_commit(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    """A deposed leader's uncommitted suffix (here 5-10, term 1) is repaired in one round trip."""
    obj, leader = lonely_syncobj
    _fill_log(obj, 10, term=1)
    obj._SyncObj__raftCommitIndex = 4
    obj.journal().sync()
    answers: list[dict[str, Any]] = []
    transport = obj._SyncObj__transport
    transport.send_now = lambda node, message: answers.append(message) or True
    obj._SyncObj__onMessageReceived(leader, {
        "type": "append_entries", "term": 2, "commit_index": 12, "prevLogIdx": 8, "prevLogTerm": 2, "entries": [],
    })
    assert [(a["next_node_idx"], a["success"], a["reset"]) for a in answers] == [(5, False, True)]  # upstream: 8
    answers.clear()
    obj._SyncObj__onMessageReceived(leader, {  # "log too short" answers stay as upstream makes them
        "type": "append_entries", "term": 2, "commit_index": 12, "prevLogIdx": 15, "prevLogTerm": 2, "entries": [],
    })
    assert [(a["next_node_idx"], a["reset"]) for a in answers] == [(11, True)]


def test_a_stale_failure_answer_does_not_undo_the_walk_back(lonely_syncobj: tuple[EdgeSyncObj, Any]) -> None:
    obj, follower = lonely_syncobj
    _as_leader_with_queue(obj, follower, 0)
    _fill_log(obj, 20)
    obj._SyncObj__raftState = _RAFT_STATE.LEADER

    def answer(next_index: int, success: bool, handler: Any = obj._SyncObj__onMessageReceived) -> int:
        handler(follower, {"type": "next_node_idx", "next_node_idx": next_index, "reset": not success,
                           "success": success})
        return int(obj._SyncObj__raftNextIndex[follower])

    obj._SyncObj__raftNextIndex[follower] = 21  # sent optimistically up to 20
    assert answer(10, False) == 10  # mismatch at 10
    obj._SyncObj__raftNextIndex[follower] = 21  # resent from 10: optimistic again
    assert answer(16, False) == 10  # an answer to an earlier send ("too short") must not undo it
    assert answer(21, True) == 21 and obj._SyncObj__raftMatchIndex[follower] == 20
    assert answer(16, False) == 16  # after a success, a new walk back starts from the answer
    upstream = functools.partial(SyncObj._SyncObj__onMessageReceived, obj)
    obj._SyncObj__raftNextIndex[follower] = 21
    answer(10, False, upstream)
    assert answer(16, False, upstream) == 16  # upstream: the walk back is undone
