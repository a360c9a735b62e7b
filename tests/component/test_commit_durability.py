"""No entry is applied (and so acknowledged to any client) before a majority of masters has fsynced it.

Three real masters in this process, real fdatasync. Every ``DurableJournal.sync`` records, once it
returns, the last index it made durable on its node; every ``ClusterState.apply`` records the index it
is about to apply. Both records take a number from one counter, so they are totally ordered: a sync is
recorded right after its fdatasync returns and before the node sends the acknowledgement (or, on the
leader, counts itself) that the commit depends on, and any node applies an entry only after it is
committed. So at each apply, a majority of nodes must already show a durable index at least as high.

Applying comes before acknowledging on every node (a follower answers a forwarded write once it has
applied it), so the check also covers the early commit-index hand-off (a leader tells followers before
it applies) and the leader's fdatasync running in parallel with its followers'.

The second test breaks the rule on purpose (followers acknowledge without syncing) and shows that the
check catches it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.model.resources import by_id, resource_id
from edgek8s.raft.journal import DurableJournal
from edgek8s.raft.syncobj import EdgeSyncObj
from edgek8s.store.state import ClusterState
from tests.support.cluster import started_cluster

CONFIGMAPS = by_id(resource_id("", "configmaps"))

pytestmark = pytest.mark.timeout(120)


class Ledger:
    """Durable indexes per journal and applied indexes, in one total order."""

    def __init__(self) -> None:
        self._order = itertools.count()
        self._lock = threading.Lock()
        self.durable: dict[int, list[tuple[int, int]]] = {}  # journal -> [(order, last durable index)]
        self.applied: list[tuple[int, int]] = []  # [(order, index)]

    def synced(self, journal: DurableJournal, last_index: int) -> None:
        with self._lock:
            self.durable.setdefault(id(journal), []).append((next(self._order), last_index))

    def applying(self, index: int) -> None:
        with self._lock:
            self.applied.append((next(self._order), index))

    def violations(self, members: int = 3) -> list[tuple[int, int]]:
        """(index, nodes durable) of every apply that came before a majority had made it durable."""
        found = []
        for order, index in self.applied:
            durable = sum(
                1 for records in self.durable.values()
                if max((last for at, last in records if at < order), default=0) >= index
            )
            if durable <= members // 2:
                found.append((index, durable))
        return found


def record_syncs_and_applies(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger = Ledger()
    original_sync = DurableJournal.sync
    original_apply = ClusterState.apply

    def sync(self: DurableJournal) -> None:
        last = self[-1][1] if len(self) else 0  # everything added so far is written by this sync
        original_sync(self)
        ledger.synced(self, last)

    def apply(self: ClusterState, payload: bytes, index: int) -> Any:
        ledger.applying(index)
        return original_apply(self, payload, index)

    monkeypatch.setattr(DurableJournal, "sync", sync)
    monkeypatch.setattr(ClusterState, "apply", apply)
    return ledger


async def write_through_every_master(tmp_path: Path, writes: int) -> None:
    async with started_cluster(tmp_path, loops=[]) as cluster:
        clients = [InProcessClient(m.store, manager="test") for m in cluster.running()]
        for i in range(writes):  # one writer, round-robin: writes through the leader and forwarded ones
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i}", "namespace": "default"}, "data": {"v": "x" * 1024}}
            await clients[i % len(clients)].create(CONFIGMAPS, body)
        # and a concurrent burst: entries of one tick share an append and an fsync
        await asyncio.gather(*(clients[i % len(clients)].create(CONFIGMAPS, {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"burst-{i}", "namespace": "default"},
        }) for i in range(100)))


async def test_no_entry_is_applied_before_a_majority_has_fsynced_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = record_syncs_and_applies(monkeypatch)
    await write_through_every_master(tmp_path, writes=60)
    assert len(ledger.applied) > 3 * 160  # every master applied every write
    assert ledger.violations() == []


async def test_the_check_catches_acknowledgements_sent_before_the_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = record_syncs_and_applies(monkeypatch)
    syncs: Callable[[DurableJournal], None] = DurableJournal.sync

    def acknowledge_at_once(self: EdgeSyncObj, node: Any, message: Any) -> bool:
        return bool(self._SyncObj__transport.send_now(node, message))  # the bug: no sync first

    def lazy_follower_sync(self: DurableJournal) -> None:
        # followers fsync only now and then, so their acknowledgements run ahead of their disks
        if getattr(self, "_test_leader", False) or next(counter) % 20 == 0:
            syncs(self)

    counter = itertools.count()
    original_check = EdgeSyncObj._checkCommandsToApply

    def mark_leader(self: EdgeSyncObj) -> None:
        self.journal()._test_leader = self.is_leader()  # type: ignore[attr-defined]
        original_check(self)

    monkeypatch.setattr(EdgeSyncObj, "_edge_acknowledge", acknowledge_at_once)
    monkeypatch.setattr(DurableJournal, "sync", lazy_follower_sync)
    monkeypatch.setattr(EdgeSyncObj, "_checkCommandsToApply", mark_leader)
    await write_through_every_master(tmp_path, writes=30)
    assert ledger.violations() != []
