"""A crash-safe Raft journal for PySyncObj, with group commit.

PySyncObj 0.3.17's ``FileJournal`` writes entries into an mmap and never fsyncs it, and stores the term
and vote with a plain rename: a power cut can lose acknowledged writes or let a node vote twice in a
term. This journal implements PySyncObj's ``Journal`` interface on a plain append-only file:

- ``add`` only buffers; ``sync`` writes the buffer with one ``write`` and one ``fdatasync``. The Raft
  node calls ``sync`` before any message leaves the node and before the leader counts its own log for
  commit, so nothing is acknowledged (to a peer, or through a commit to a client) before it is durable,
  and every entry that arrived in one tick shares one fdatasync (group commit).
- ``set_current_term`` (term and vote) is written to a small metadata file with fsync of the file and
  its directory before returning, i.e. before any vote is sent.
- Records are ``len | crc32 | index | term | command``, the checksum covering length, index, term and
  command (so a zero-filled tail never passes); on load, a torn or corrupt tail is cut off (it was never
  acknowledged, because acknowledgement waits for the fdatasync that would have covered it).
- Before entries are dropped for a snapshot (``deleteEntriesTo``/``clear``), the snapshot file that
  replaces them is fsynced together with its directory: PySyncObj writes it with a bare rename.
- Compaction rewrites the journal into a new file, fsyncs it and renames it into place.
- Preallocation (SD-card wear, docs/raft.md "Idle disk writes"): the file is extended with
  ``posix_fallocate`` 1 MiB at a time ahead of the log, so an append overwrites zeroed space inside the
  file instead of growing it. On ext4 an append that changes the file size (or allocates a block) makes
  every fdatasync commit the filesystem journal; an overwrite inside the file needs that only for the
  first write into each block, so the inode's time updates can wait for the periodic commit. The file
  therefore ends with up to 1 MiB of zeros after the last record: on load, an all-zero rest is free
  space; anything else after the last valid record is a torn tail and is cut (``ftruncate``), so a stale
  record past the end can never be read as the successor of a new one. Truncation and compaction drop
  the preallocated space; the next write reserves it again.

Memory: only the newest ``resident_tail`` commands stay in memory; older ones (already applied, and
needed again only by a lagging follower or a restart) are read back from the file on demand, so the
log costs ~50 bytes per entry until compaction, not the size of every command. The tail is 256 entries
(more than a tick's batch at 64 writers; 1,024 cost ~1.1 MB more per master with 1.5 KB commands).

Runs only on PySyncObj's tick thread; no locking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj.journal import Journal

logger = logging.getLogger(__name__)

Entry = tuple[bytes, int, int]  # (command, index, term), PySyncObj's shape
# An entry; once its command is evicted to the file, only its term (an int: the index follows from the
# position, Raft indexes being contiguous), which saves a tuple and an int per entry (~1 MB per 10,000).
_Slot = tuple[bytes | None, int, int] | int

_MAGIC = b"EDGEK8S-JOURNAL-2\n"
_RECORD_HEADER = struct.Struct("<IIQQ")  # payload length, crc32(length, index, term, payload), index, term
_CHECKED = struct.Struct("<IQQ")


def _record(command: bytes, index: int, term: int) -> bytes:
    crc = zlib.crc32(command, zlib.crc32(_CHECKED.pack(len(command), index, term)))
    return _RECORD_HEADER.pack(len(command), crc, index, term) + command
_META = struct.Struct("<Q")
_PREALLOCATE = 1 << 20  # bytes reserved past the log's end at a time (bounds the zero tail)


def fsync_directory(path: Path) -> None:
    """Make a rename or create inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that after a crash it holds either the old or the new bytes."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)


class DurableJournal(Journal):  # type: ignore[misc]
    """PySyncObj journal whose entries are durable once ``sync`` returns."""

    def __init__(
        self,
        path: Path,
        *,
        snapshot_path: Path,
        on_sync: Callable[[int], None] | None = None,
        resident_tail: int = 256,
        preallocate: int = _PREALLOCATE,
    ) -> None:
        self._path = path
        self._meta_path = path.with_name(path.name + ".meta")
        self._snapshot_path = snapshot_path
        self._on_sync = on_sync
        self._resident_tail = resident_tail
        self._resident_from = 0  # entries before this position have their command evicted
        self._entries: list[_Slot] = []
        self._offsets = array("q")  # file offset of each entry's record
        self._pending = bytearray()  # records added but not yet written
        self._pending_from = 0  # index into _entries of the first entry in _pending
        self._dirty = False  # written or truncated since the last fdatasync
        self._preallocate_step = preallocate  # 0: plain appends (bench journalwrites compares)
        self._allocated = 0  # file size: the log's end plus the preallocated zero tail
        self._preallocation_failed = False
        self._term, self._voted_for = self._load_meta()
        self._fd = self._open_and_load()
        self.fsync_count = 0

    # --- loading -------------------------------------------------------------------------------------

    def _load_meta(self) -> tuple[int, Any]:
        try:
            raw = self._meta_path.read_bytes()
        except FileNotFoundError:
            return 0, None
        (term,) = _META.unpack_from(raw)
        voted = raw[_META.size :].decode() or None
        return term, voted

    def _open_and_load(self) -> int:
        fresh = not self._path.exists()
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        if fresh or os.fstat(fd).st_size == 0:
            os.write(fd, _MAGIC)
            os.fsync(fd)
            fsync_directory(self._path.parent)
            self._end = self._allocated = len(_MAGIC)
            return fd
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        if not data.startswith(_MAGIC):
            os.close(fd)
            raise ValueError(f"{self._path} is not an edgek8s journal")
        offset = len(_MAGIC)
        while offset + _RECORD_HEADER.size <= len(data):
            length, crc, index, term = _RECORD_HEADER.unpack_from(data, offset)
            start = offset + _RECORD_HEADER.size
            payload = data[start : start + length]
            expected = zlib.crc32(payload, zlib.crc32(_CHECKED.pack(length, index, term)))
            if len(payload) != length or crc != expected or index == 0:
                break
            self._entries.append((payload, index, term))
            self._offsets.append(offset)
            offset = start + length
        self._allocated = len(data)
        if data.count(0, offset) != len(data) - offset:  # not only preallocated zeros
            logger.warning("journal %s: cutting %d bytes of torn tail", self._path, len(data) - offset)
            os.ftruncate(fd, offset)
            os.fsync(fd)
            self._allocated = offset
        self._end = offset
        self._pending_from = len(self._entries)
        self._fd = fd
        self._evict()
        return fd

    # --- durability ----------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return self._dirty or bool(self._pending)

    def sync(self) -> None:
        """Write buffered records and fdatasync: after this, every entry added so far is durable."""
        if self._pending:
            if self._preallocate_step and self._end + len(self._pending) > self._allocated:
                self._preallocate(self._end + len(self._pending))
            os.pwrite(self._fd, self._pending, self._end)
            self._end += len(self._pending)
            self._allocated = max(self._allocated, self._end)
            self._pending.clear()
            self._pending_from = len(self._entries)
            self._dirty = True
        if self._dirty:
            os.fdatasync(self._fd)
            self._dirty = False
            self.fsync_count += 1
            if self._on_sync is not None:
                self._on_sync(len(self._entries))
        self._evict()

    def _preallocate(self, needed: int) -> None:
        """Extend the file with zeros up to the next multiple of the step at or past ``needed``."""
        target = -(-needed // self._preallocate_step) * self._preallocate_step
        try:
            os.posix_fallocate(self._fd, self._allocated, target - self._allocated)
        except OSError as exc:  # e.g. ENOSPC: plain appends still work while there is room
            if not self._preallocation_failed:
                logger.warning("journal %s: cannot preallocate (%s); appending without", self._path, exc)
            self._preallocation_failed = True
            self._allocated = os.fstat(self._fd).st_size
            return
        self._allocated = target

    def _evict(self) -> None:
        """Drop commands of written entries older than the resident tail (they stay in the file).

        The first entry stays resident: PySyncObj reads ``log[0]`` on every lookup.
        """
        limit = min(len(self._entries) - self._resident_tail, self._pending_from)
        entries = self._entries
        self._resident_from = max(self._resident_from, 1)
        while self._resident_from < limit:
            position = self._resident_from
            slot = entries[position]
            if isinstance(slot, tuple):
                _command, idx, term = slot
                first = entries[0]
                assert isinstance(first, tuple)
                entries[position] = term if idx == first[1] + position else (None, idx, term)
            self._resident_from += 1

    def _slot(self, position: int) -> tuple[bytes | None, int, int]:
        slot = self._entries[position]
        if isinstance(slot, int):
            first = self._entries[0]
            assert isinstance(first, tuple)
            return None, first[1] + position, slot
        return slot

    def _record_end(self, position: int) -> int:
        return self._offsets[position + 1] if position + 1 < len(self._offsets) else self._end

    def _read_commands(self, first: int, last: int) -> list[bytes]:
        """Commands of the written entries first..last (inclusive) with one read."""
        start = self._offsets[first]
        data = os.pread(self._fd, self._record_end(last) - start, start)
        commands = []
        for position in range(first, last + 1):
            begin = self._offsets[position] - start + _RECORD_HEADER.size
            commands.append(data[begin : self._record_end(position) - start])
        return commands

    def _entry(self, position: int) -> Entry:
        command, idx, term = self._slot(position)
        if command is None:
            command = self._read_commands(position, position)[0]
        return command, idx, term

    def _slice(self, positions: range) -> list[Entry]:
        result: list[Entry] = []
        evicted_end = min(positions.stop, self._resident_from) if positions.step == 1 else positions.start
        if positions.step == 1 and positions.start < evicted_end:
            commands = self._read_commands(positions.start, evicted_end - 1)
            for position, command in zip(range(positions.start, evicted_end), commands, strict=True):
                _none, idx, term = self._slot(position)
                result.append((command if _none is None else _none, idx, term))
            positions = range(evicted_end, positions.stop)
        result.extend(self._entry(position) for position in positions)
        return result

    def _make_snapshot_durable(self) -> None:
        if self._snapshot_path.exists():
            fd = os.open(self._snapshot_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(self._snapshot_path.parent)

    # --- PySyncObj Journal interface -----------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        command = bytes(command)
        self._offsets.append(self._end + len(self._pending))
        self._entries.append((command, idx, term))
        self._pending += _record(command, idx, term)

    def clear(self) -> None:
        self._make_snapshot_durable()
        self._truncate_to(0)

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        if entryFrom < len(self._entries):
            self._truncate_to(entryFrom)

    def _truncate_to(self, count: int) -> None:
        """Keep the first ``count`` entries."""
        if count >= self._pending_from:
            # Everything dropped is still only in the buffer.
            keep = self._offsets[count] - self._end if count < len(self._offsets) else len(self._pending)
            del self._pending[keep:]
        else:
            self._pending.clear()
            self._end = self._allocated = self._offsets[count]
            os.ftruncate(self._fd, self._end)
            self._dirty = True
            self._pending_from = count
        del self._entries[count:]
        del self._offsets[count:]
        self._resident_from = min(self._resident_from, count)

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Drop the first ``entryTo`` entries (they are covered by a snapshot) by rewriting the file."""
        self._make_snapshot_durable()
        self.sync()
        kept = [self._entry(position) for position in range(entryTo, len(self._entries))]
        tmp = self._path.with_name(self._path.name + ".compact")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        buffer = bytearray(_MAGIC)
        offsets = array("q")
        for command, idx, term in kept:
            offsets.append(len(buffer))
            buffer += _record(command, idx, term)
        os.write(fd, buffer)
        os.fsync(fd)
        os.replace(tmp, self._path)
        fsync_directory(self._path.parent)
        os.close(self._fd)
        self._fd = fd
        self._entries = list[_Slot](kept)
        self._offsets = offsets
        self._end = self._allocated = len(buffer)
        self._pending_from = len(kept)
        self._resident_from = 0
        self._evict()

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, slice):
            return self._slice(range(*item.indices(len(self._entries))))
        # PySyncObj reads log[-1] and log[0] several times per tick: a resident entry is returned as is.
        try:
            entry = self._entries[item]
        except IndexError:
            raise IndexError("journal index out of range") from None
        if isinstance(entry, tuple) and entry[0] is not None:
            return entry
        return self._entry(item if item >= 0 else item + len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        with contextlib.suppress(OSError):
            self.sync()
            os.close(self._fd)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        # The commit index is volatile state in Raft; a restarted node learns it from the leader.
        pass

    def getRaftCommitIndex(self) -> int:
        return 1

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        if (term, votedForNodeId) == (self._term, self._voted_for):
            return
        voted = b"" if votedForNodeId is None else str(votedForNodeId).encode()
        write_file_durably(self._meta_path, _META.pack(term) + voted)
        self._term, self._voted_for = term, votedForNodeId

    def getCurrentTerm(self) -> int:
        return self._term

    def getVotedForNodeId(self) -> Any:
        return self._voted_for

    def onOneSecondTimer(self) -> None:
        pass

    def flush(self) -> None:
        self.sync()
