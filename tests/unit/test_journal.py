"""DurableJournal: group-committed, crash-safe Raft log on real files in tmp_path.

A "crash" is simulated by abandoning a journal without ``sync``/``_destroy`` (its descriptor is closed,
its buffer is lost) and opening the same path again; torn or corrupt tails are made by editing the
file's bytes. The record layout is ``len:u32 | crc32(command):u32 | index:u64 | term:u64 | command``
(little-endian) after a magic line.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgek8s.raft.journal import DurableJournal

Entry = tuple[bytes, int, int]
HEADER = struct.Struct("<IIQQ")
MAGIC_LEN = len(b"EDGEK8S-JOURNAL-1\n")


def record_size(entry: Entry) -> int:
    return HEADER.size + len(entry[0])


def file_size_for(entries: list[Entry]) -> int:
    return MAGIC_LEN + sum(record_size(e) for e in entries)


def make_entries(count: int, *, start: int = 1, term: int = 1, tag: str = "cmd") -> list[Entry]:
    return [(f"{tag}-{i}".encode() * (1 + i % 3), i, term + i // 4) for i in range(start, start + count)]


class Journals:
    """Opens journals on one path; abandons (crashes) or closes them; cleans up at teardown."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "raft.journal"
        self.snapshot = directory / "raft.snapshot"
        self._open: list[DurableJournal] = []

    def open(self, on_sync: Callable[[int], None] | None = None) -> DurableJournal:
        journal = DurableJournal(self.path, snapshot_path=self.snapshot, on_sync=on_sync)
        self._open.append(journal)
        return journal

    def crash(self, journal: DurableJournal) -> None:
        """The process dies: buffered records are lost, nothing more is written."""
        os.close(journal._fd)
        self._open.remove(journal)

    def reopen(self, journal: DurableJournal) -> DurableJournal:
        """A clean restart: PySyncObj's _destroy (which syncs), then load."""
        journal._destroy()
        self._open.remove(journal)
        return self.open()

    def restart_after_crash(self, journal: DurableJournal) -> DurableJournal:
        self.crash(journal)
        return self.open()

    def size(self) -> int:
        """Where the records end; asserts that only zeros (preallocated space) follow."""
        data = self.path.read_bytes()
        offset = MAGIC_LEN
        while offset + HEADER.size <= len(data) and data[offset : offset + HEADER.size] != bytes(HEADER.size):
            offset += HEADER.size + HEADER.unpack_from(data, offset)[0]
        assert data.count(0, offset) == len(data) - offset, "non-zero bytes after the last record"
        return offset

    def close_all(self) -> None:
        for journal in self._open:
            with contextlib.suppress(OSError):
                os.close(journal._fd)
        self._open.clear()


@pytest.fixture
def journals(tmp_path: Path) -> Iterator[Journals]:
    js = Journals(tmp_path)
    yield js
    js.close_all()


def add_all(journal: DurableJournal, entries: list[Entry]) -> None:
    for command, idx, term in entries:
        journal.add(command, idx, term)


# --- round trip ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([(b"a", 1, 1), (b"b", 2, 1), (b"c", 3, 2)], id="small"),
        pytest.param([(b"", 1, 0), (b"\x00" * 10, 2, 0), (bytes(range(256)), 3, 7)], id="binary-and-empty"),
        pytest.param([(b"x" * 300_000, 5, 2), (b"y", 6, 2)], id="large"),
        pytest.param(make_entries(500), id="many"),
        pytest.param([(b"far", 2**40, 2**33)], id="wide-index-and-term"),
    ],
)
def test_synced_entries_survive_reopen_and_crash(journals: Journals, entries: list[Entry]) -> None:
    journal = journals.open()
    add_all(journal, entries)
    journal.sync()
    assert journals.size() == file_size_for(entries)

    crashed = journals.restart_after_crash(journal)
    assert list(crashed) == entries
    assert len(crashed) == len(entries)
    assert crashed[-1] == entries[-1]
    assert crashed[: len(entries) // 2] == entries[: len(entries) // 2]

    clean = journals.reopen(crashed)
    assert list(clean) == entries
    assert not clean.dirty


def test_a_fresh_journal_is_empty_with_term_zero(journals: Journals) -> None:
    journal = journals.open()
    assert (len(journal), journal.getCurrentTerm(), journal.getVotedForNodeId()) == (0, 0, None)
    assert not journal.dirty
    assert journals.size() == MAGIC_LEN


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([(1, "10.0.0.1:4321")], (1, "10.0.0.1:4321")),
        ([(1, "10.0.0.1:4321"), (2, None)], (2, None)),
        ([(3, None), (3, "node-b:4321")], (3, "node-b:4321")),
        ([(7, "a"), (7, "a"), (8, "b")], (8, "b")),
        ([(2**40, "big")], (2**40, "big")),
    ],
)
def test_term_and_vote_are_durable_when_set_current_term_returns(
    journals: Journals, calls: list[tuple[int, str | None]], expected: tuple[int, str | None]
) -> None:
    journal = journals.open()
    for term, vote in calls:
        journal.setCurrentTerm(term, vote)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId()) == expected

    # Durable before any sync of the log, i.e. a crash right after the vote keeps it.
    after_crash = journals.restart_after_crash(journal)
    assert (after_crash.getCurrentTerm(), after_crash.getVotedForNodeId()) == expected
    assert not list(journals.path.parent.glob("*.tmp"))


# --- torn and corrupt tails ----------------------------------------------------------------------------

TORN_ENTRIES: list[Entry] = [(b"first-command", 1, 1), (b"second-command", 2, 1), (b"third-command-payload", 3, 2)]
LAST = file_size_for(TORN_ENTRIES[:2])  # offset of the last record
MIDDLE = file_size_for(TORN_ENTRIES[:1])


def _flip(offset: int, mask: int = 0x01) -> Callable[[bytearray], bytearray]:
    def corrupt(data: bytearray) -> bytearray:
        data[offset] ^= mask
        return data

    return corrupt


def _cut(length: int) -> Callable[[bytearray], bytearray]:
    return lambda data: data[:length]


def _append(extra: bytes) -> Callable[[bytearray], bytearray]:
    return lambda data: data + extra


def _zero_from(offset: int) -> Callable[[bytearray], bytearray]:
    return lambda data: data[:offset] + bytearray(len(data) - offset)




@pytest.mark.parametrize(
    ("corrupt", "survivors"),
    [
        pytest.param(_cut(LAST + HEADER.size + 5), 2, id="cut-in-payload"),
        pytest.param(_cut(LAST + 10), 2, id="cut-in-header"),
        pytest.param(_cut(LAST + HEADER.size), 2, id="cut-after-header"),
        pytest.param(_cut(file_size_for(TORN_ENTRIES) - 1), 2, id="last-byte-missing"),
        pytest.param(_cut(LAST + 1), 2, id="one-byte-of-record"),
        pytest.param(_flip(LAST + HEADER.size + 3), 2, id="flip-payload-byte"),
        pytest.param(_flip(file_size_for(TORN_ENTRIES) - 1, 0x80), 2, id="flip-final-byte"),
        pytest.param(_flip(LAST + 4), 2, id="flip-crc-byte"),
        pytest.param(_flip(LAST, 0x40), 2, id="flip-length-longer"),
        pytest.param(_flip(LAST, 0x01), 2, id="flip-length-shorter"),
        pytest.param(_flip(MIDDLE + HEADER.size), 1, id="flip-middle-record-cuts-the-rest"),
        pytest.param(_append(b"\xde\xad\xbe\xef" * 10), 3, id="garbage-after-last-record"),
        pytest.param(_append(HEADER.pack(5, 0, 4, 2)[:10]), 3, id="partial-header-after-last-record"),
        pytest.param(_append(HEADER.pack(50, 0, 4, 2) + b"short"), 3, id="partial-record-after-last-record"),
        pytest.param(_flip(LAST + 8), 2, id="flip-index-byte"),
        pytest.param(_flip(LAST + 16), 2, id="flip-term-byte"),
        pytest.param(_append(bytes(4 * HEADER.size)), 3, id="zero-filled-tail"),
        pytest.param(_zero_from(LAST), 2, id="last-record-zeroed"),
    ],
)
def test_a_torn_or_corrupt_tail_is_cut_off_and_earlier_entries_survive(
    journals: Journals, corrupt: Callable[[bytearray], bytearray], survivors: int
) -> None:
    journal = journals.open()
    add_all(journal, TORN_ENTRIES)
    journal.sync()
    journals.crash(journal)
    journals.path.write_bytes(bytes(corrupt(bytearray(journals.path.read_bytes()))))

    loaded = journals.open()

    expected = TORN_ENTRIES[:survivors]
    assert list(loaded) == expected
    assert journals.size() == file_size_for(expected)  # the tail is cut on disk too
    assert not loaded.dirty

    # New entries go right after the good ones and survive the next restart.
    new: Entry = (b"after-repair", survivors + 1, 3)
    loaded.add(*new)
    loaded.sync()
    assert list(journals.restart_after_crash(loaded)) == [*expected, new]


def test_a_file_that_is_not_a_journal_is_refused(journals: Journals) -> None:
    journals.path.write_bytes(b"PYSYNCOBJ mmap journal\x00\x00\x00")
    with pytest.raises(ValueError, match="is not an edgek8s journal"):
        journals.open()
    assert journals.path.read_bytes() == b"PYSYNCOBJ mmap journal\x00\x00\x00"  # left alone


# --- conflict truncation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synced", "buffered", "cut_at"),
    [
        (0, 5, 2),  # only buffered entries dropped
        (0, 5, 0),
        (5, 0, 2),  # only synced entries dropped
        (5, 0, 0),
        (3, 3, 4),  # inside the buffered part
        (3, 3, 3),  # exactly at the boundary
        (3, 3, 1),  # inside the synced part, dropping the buffer too
        (3, 3, 0),
        (3, 0, 3),  # == len: nothing to drop
        (3, 2, 9),  # beyond the end: nothing to drop
    ],
)
def test_delete_entries_from_truncates_buffered_and_synced_entries(
    journals: Journals, synced: int, buffered: int, cut_at: int
) -> None:
    entries = make_entries(synced + buffered)
    journal = journals.open()
    add_all(journal, entries[:synced])
    journal.sync()
    add_all(journal, entries[synced:])

    journal.deleteEntriesFrom(cut_at)

    kept = entries[:cut_at]
    assert list(journal) == kept
    # The leader's entries that replace the conflicting ones (a newer term).
    replacement = make_entries(2, start=len(kept) + 1, term=9, tag="leader")
    add_all(journal, replacement)
    journal.sync()
    assert not journal.dirty
    assert journals.size() == file_size_for(kept + replacement)

    assert list(journals.restart_after_crash(journal)) == kept + replacement


@pytest.mark.parametrize("then_sync", [True, False])
def test_truncating_synced_entries_needs_a_sync_to_be_durable(journals: Journals, then_sync: bool) -> None:
    entries = make_entries(4)
    journal = journals.open()
    add_all(journal, entries)
    journal.sync()
    count = journal.fsync_count

    journal.deleteEntriesFrom(2)

    assert journal.dirty  # the ftruncate is not durable yet
    assert journals.size() == file_size_for(entries[:2])
    if then_sync:
        journal.sync()
        assert not journal.dirty
        assert journal.fsync_count == count + 1
    assert list(journals.restart_after_crash(journal)) == entries[:2]


def test_truncating_only_buffered_entries_touches_nothing_on_disk(journals: Journals) -> None:
    journal = journals.open()
    add_all(journal, make_entries(2))
    journal.sync()
    before = journals.path.read_bytes()
    add_all(journal, make_entries(3, start=3))

    journal.deleteEntriesFrom(3)

    assert journals.path.read_bytes() == before
    assert journal.dirty  # one buffered entry is left
    journal.sync()
    assert list(journals.restart_after_crash(journal)) == make_entries(3)


# --- compaction ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synced", "buffered", "entry_to"),
    [(5, 0, 2), (3, 3, 4), (3, 3, 1), (3, 3, 0), (4, 0, 4), (2, 2, 10)],
)
@pytest.mark.parametrize("snapshot_exists", [True, False])
def test_delete_entries_to_keeps_the_tail_durably(
    journals: Journals, synced: int, buffered: int, entry_to: int, snapshot_exists: bool
) -> None:
    if snapshot_exists:
        journals.snapshot.write_bytes(b"snapshot covering the dropped entries")
    entries = make_entries(synced + buffered)
    journal = journals.open()
    add_all(journal, entries[:synced])
    journal.sync()
    add_all(journal, entries[synced:])

    journal.deleteEntriesTo(entry_to)

    tail = entries[entry_to:]
    assert list(journal) == tail
    assert not journal.dirty
    assert journals.size() == file_size_for(tail)
    assert sorted(p.name for p in journals.path.parent.iterdir()) == sorted(
        ["raft.journal", *(["raft.snapshot"] if snapshot_exists else [])]
    )

    # Durable as it stands; and the compacted journal keeps working (append, truncate, reopen).
    journal = journals.restart_after_crash(journal)
    assert list(journal) == tail
    more = make_entries(3, start=len(entries) + 1, term=5, tag="more")
    add_all(journal, more)
    journal.sync()
    journal.deleteEntriesFrom(len(tail) + 2)
    journal.sync()
    assert list(journals.restart_after_crash(journal)) == tail + more[:2]


def test_compaction_then_truncation_then_compaction(journals: Journals) -> None:
    entries = make_entries(10)
    journal = journals.open()
    add_all(journal, entries)
    journal.deleteEntriesTo(3)  # syncs the buffer first
    journal.deleteEntriesFrom(4)  # entries[3:7] remain
    add_all(journal, [(b"new", 8, 4)])
    journal.deleteEntriesTo(2)
    expected = [*entries[5:7], (b"new", 8, 4)]
    assert list(journal) == expected
    assert list(journals.reopen(journal)) == expected


def test_clear_drops_everything_durably(journals: Journals) -> None:
    journals.snapshot.write_bytes(b"snapshot")
    journal = journals.open()
    add_all(journal, make_entries(3))
    journal.sync()
    add_all(journal, make_entries(2, start=4))

    journal.clear()

    assert len(journal) == 0
    journal.sync()
    assert journals.size() == MAGIC_LEN
    journal = journals.restart_after_crash(journal)
    assert len(journal) == 0
    fresh = [(b"after-clear", 10, 3)]
    add_all(journal, fresh)
    journal.sync()
    assert list(journals.restart_after_crash(journal)) == fresh


def test_clear_of_an_unsynced_journal(journals: Journals) -> None:
    journal = journals.open()
    add_all(journal, make_entries(3))
    journal.clear()
    assert len(journal) == 0 and not journal.dirty
    add_all(journal, [(b"x", 1, 1)])
    journal.sync()
    assert list(journals.restart_after_crash(journal)) == [(b"x", 1, 1)]


# --- group commit and write-back -----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 100, 1000])
def test_one_fdatasync_covers_every_buffered_add(journals: Journals, count: int) -> None:
    synced_lengths: list[int] = []
    journal = journals.open(on_sync=synced_lengths.append)
    assert journal.fsync_count == 0

    add_all(journal, make_entries(count))
    assert journal.fsync_count == 0
    journal.sync()
    assert journal.fsync_count == 1
    assert synced_lengths == [count]

    journal.sync()  # nothing new: no fdatasync
    journal.flush()
    assert journal.fsync_count == 1

    add_all(journal, make_entries(3, start=count + 1))
    journal.flush()  # PySyncObj's name for it
    assert journal.fsync_count == 2
    assert synced_lengths == [count, count + 3]


def test_term_changes_do_not_count_as_log_syncs(journals: Journals) -> None:
    journal = journals.open()
    journal.setCurrentTerm(4, "peer")
    assert journal.fsync_count == 0
    assert not journal.dirty


def test_nothing_is_written_before_sync(journals: Journals) -> None:
    journal = journals.open()
    assert not journal.dirty
    first = [(b"durable-one", 1, 1)]
    add_all(journal, first)
    journal.sync()
    assert not journal.dirty
    on_disk = journals.path.read_bytes()[: journals.size()]

    pending = [(b"PENDING-MARKER-%d" % i, i, 1) for i in range(2, 12)]
    add_all(journal, pending)

    assert journal.dirty
    assert len(journal) == 11  # visible to Raft at once...
    assert journals.path.read_bytes()[: journals.size()] == on_disk  # ...but not a byte on disk
    other = journals.open()  # what a restart would find now
    assert list(other) == first

    journal.sync()

    assert not journal.dirty
    data = journals.path.read_bytes()
    assert data.startswith(on_disk)
    assert all(command in data for command, _, _ in pending)
    assert journals.size() == file_size_for(first + pending)
    assert list(journals.open()) == first + pending


def test_unsynced_entries_are_lost_in_a_crash_synced_ones_are_not(journals: Journals) -> None:
    journal = journals.open()
    add_all(journal, make_entries(3))
    journal.sync()
    add_all(journal, make_entries(3, start=4))
    assert list(journals.restart_after_crash(journal)) == make_entries(3)


def test_destroy_syncs_what_is_buffered(journals: Journals) -> None:
    journal = journals.open()
    add_all(journal, make_entries(5))
    assert list(journals.reopen(journal)) == make_entries(5)


def test_the_commit_index_is_not_persisted(journals: Journals) -> None:
    journal = journals.open()
    journal.setRaftCommitIndex(42)
    assert journal.getRaftCommitIndex() == 1
    assert not journal.dirty


def test_old_commands_are_evicted_from_memory_and_read_back_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = DurableJournal(path, snapshot_path=tmp_path / "raft.snapshot", resident_tail=3)
    entries = make_entries(20)
    add_all(journal, entries)
    journal.sync()
    resident = [position for position, slot in enumerate(journal._entries)
                if isinstance(slot, tuple) and slot[0] is not None]
    assert resident == [0, 17, 18, 19]  # the first entry (PySyncObj reads log[0] constantly) and the tail
    # An evicted entry keeps only its term (its index follows from its position).
    assert [slot for slot in journal._entries[1:17]] == [term for _command, _index, term in entries[1:17]]
    assert journal[:] == entries
    assert journal[5] == entries[5] and journal[-1] == entries[-1] and journal[2:7] == entries[2:7]
    journal.deleteEntriesFrom(10)
    assert journal[:] == entries[:10]
    journal.deleteEntriesTo(4)
    assert journal[:] == entries[4:10]
    journal.sync()
    journal._destroy()
    reopened = DurableJournal(path, snapshot_path=tmp_path / "raft.snapshot", resident_tail=3)
    assert reopened[:] == entries[4:10]
    assert sum(isinstance(slot, tuple) and slot[0] is not None for slot in reopened._entries) == 4
    with pytest.raises(IndexError):
        reopened[6]
    reopened._destroy()


# --- preallocation -------------------------------------------------------------------------------------

PREALLOCATE = 1 << 20


def test_appends_overwrite_preallocated_space_instead_of_growing_the_file(journals: Journals) -> None:
    journal = journals.open()
    add_all(journal, make_entries(1))
    journal.sync()
    stat = journals.path.stat()
    assert stat.st_size == PREALLOCATE  # reserved ahead, zero-filled...
    assert stat.st_blocks * 512 >= PREALLOCATE  # ...and allocated, not a sparse hole
    entries = make_entries(50)
    for entry in entries[1:]:
        add_all(journal, [entry])
        journal.sync()
        assert journals.path.stat().st_size == PREALLOCATE  # no per-append size change
    assert journals.size() == file_size_for(entries)

    # A restart finds exactly the records, not the zeros, and appends right after them.
    journal = journals.restart_after_crash(journal)
    assert list(journal) == entries
    more = make_entries(2, start=51)
    add_all(journal, more)
    journal.sync()
    assert journals.size() == file_size_for(entries + more)
    assert list(journals.restart_after_crash(journal)) == entries + more


def test_a_zero_tail_is_free_space_and_not_cut(journals: Journals, caplog: pytest.LogCaptureFixture) -> None:
    journal = journals.open()
    add_all(journal, make_entries(3))
    journal.sync()
    journal = journals.restart_after_crash(journal)
    assert list(journal) == make_entries(3)
    assert journals.path.stat().st_size == PREALLOCATE
    assert "torn tail" not in caplog.text


def test_the_log_crosses_preallocation_steps(journals: Journals) -> None:
    big = [(bytes([i % 251 + 1]) * 400_000, i, 1) for i in range(1, 7)]  # ~2.4 MB: crosses two steps
    journal = journals.open()
    for entry in big:
        add_all(journal, [entry])
        journal.sync()
    size = journals.path.stat().st_size
    assert size % PREALLOCATE == 0 and size - journals.size() < PREALLOCATE  # bounded zero tail
    assert list(journals.restart_after_crash(journal)) == big


def test_a_stale_record_past_a_torn_end_is_never_read_after_new_ones(journals: Journals) -> None:
    """Power cut mid group commit: the second record's sector was lost, the third's survived. The third
    must not come back behind a new record that happens to end where it starts."""
    first, second, third = (b"a" * 40, 1, 1), (b"b" * 40, 2, 1), (b"c" * 40, 3, 1)
    journal = journals.open()
    add_all(journal, [first, second, third])
    journal.sync()
    journals.crash(journal)
    data = bytearray(journals.path.read_bytes())
    at = file_size_for([first])
    data[at : at + record_size(second)] = bytes(record_size(second))
    journals.path.write_bytes(bytes(data))

    journal = journals.open()
    assert list(journal) == [first]
    replacement = (b"B" * 40, 2, 2)  # same length: ends exactly where the stale third record starts
    add_all(journal, [replacement])
    journal.sync()
    assert list(journals.restart_after_crash(journal)) == [first, replacement]
    assert journals.size() == file_size_for([first, replacement])


@pytest.mark.parametrize("then", ["truncate", "compact"])
def test_truncation_and_compaction_drop_the_preallocated_tail(journals: Journals, then: str) -> None:
    entries = make_entries(10)
    journal = journals.open()
    add_all(journal, entries)
    journal.sync()
    if then == "truncate":
        journal.deleteEntriesFrom(4)
        kept = entries[:4]
    else:
        journal.deleteEntriesTo(4)
        kept = entries[4:]
    journal.sync()
    assert journals.path.stat().st_size == file_size_for(kept)
    more = make_entries(2, start=11, term=9, tag="more")
    add_all(journal, more)
    journal.sync()
    assert journals.path.stat().st_size == PREALLOCATE
    assert list(journals.restart_after_crash(journal)) == kept + more


def test_without_preallocation_appends_still_work(
    journals: Journals, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)  # fault injection
    entries = make_entries(5)
    journal = journals.open()
    for entry in entries:
        add_all(journal, [entry])
        journal.sync()
    assert journals.path.stat().st_size == file_size_for(entries)
    assert caplog.text.count("cannot preallocate") == 1
    assert list(journals.restart_after_crash(journal)) == entries
