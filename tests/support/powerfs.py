"""powerfs: a FUSE pass-through filesystem that loses un-synced writes on a simulated power cut.

Role
----
Test helper for crash-consistency tests of code that relies on ``fsync``/``fdatasync`` (the Raft
journal), in the spirit of etcd's LazyFS. ``powerfs BACKING MOUNTPOINT`` mounts MOUNTPOINT as a view of
the directory BACKING. Writes are kept in memory, the way a page cache holds them, until the file is
fsynced; a *power cut* throws away everything that was not made durable, after which BACKING holds
exactly what an fsync-respecting disk would hold after losing power (in the model below), and the
mount keeps serving that state, as a rebooted machine would see it.

Run it as ``python -m tests.support.powerfs BACKING MOUNTPOINT [--metadata MODE]`` (as root, needs
``/dev/fuse``), or from tests through :class:`PowerFS`. Control:

- ``SIGUSR1``: power cut. ``SIGTERM``/``SIGINT``: clean shutdown (sync everything, unmount), as does
  ``fusermount3 -u MOUNTPOINT`` (a clean unmount writes everything back, like ``umount``).
- ``MOUNTPOINT/.powerfs-ctl`` (hidden from directory listings): reading it returns JSON statistics;
  writing ``cut`` performs a power cut, ``cut-torn SEED`` a torn power cut (below), ``sync`` makes
  everything durable, all before the ``write`` returns.

Invariants
----------
- BACKING only ever holds durable state, except while an entry operation is pending (see below): file
  contents in BACKING are written only by an fsync/fdatasync of that file (or by a clean shutdown), and
  every such write is followed by ``fsync`` of the backing file before the caller's fsync returns.
- Un-synced data lives in a per-inode overlay of 4 KiB pages plus a logical size, the *valid end*
  (backing bytes at or past it read as zeros; it drops when the file is truncated) and nothing else:
  a write touches only the pages it covers, never copies the file. Reads see the overlay over BACKING,
  so every process sees its own and others' writes, as with a page cache.
- The kernel caches nothing: files are opened with ``direct_io`` and entry/attribute timeouts are zero,
  so after a cut every access sees the post-cut state without invalidation.

What is simulated
-----------------
- File data: ``write`` and size changes (``truncate``/``ftruncate``, ``O_TRUNC``) are lost on a cut
  unless the file was fsynced/fdatasynced after them (fsync and fdatasync are treated alike). The
  fsync flushes the whole file, whichever descriptor wrote it. Closing a file does not make it durable.
- Directory entries (``create``/``mknod``/``symlink``/``link``/``mkdir``/``unlink``/``rmdir``/
  ``rename``) are applied to BACKING at once (so lookups just work), and recorded in an undo log until
  they are durable; removed and replaced entries are parked in ``BACKING/.powerfs-trash`` (hidden) so
  they can come back. When an entry operation becomes durable depends on ``--metadata``:

  * ``filesync`` (default; what ext4/xfs give in practice): when its directory is fsynced (either
    directory, for a rename), or when the file or directory it names is itself fsynced. So a new file
    that is written and fsynced survives; a ``rename`` survives only after fsync of a directory it
    touched or of the renamed file.
  * ``dirsync`` (strict POSIX): only when a directory it touched is fsynced.
  * ``immediate``: entry operations are durable at once (only file data is simulated; no trash).

  Making an operation durable also makes every earlier pending operation on the same inode durable
  (the create of a file that is then renamed, for instance). On a cut, pending operations are undone
  newest first: creates are removed (a new directory with all it now contains), removed or replaced
  entries are put back, renames are reversed. An undo whose precondition no longer holds (because a
  later operation was made durable, e.g. the name was taken since) is skipped and the durable state
  wins; in those rare interleavings the result approximates what a real file system would do.
- A cut that arrives while an fsync is in progress (only possible with ``--fsync-in-thread``) keeps
  that fsync's data: the fsync had not returned, so either outcome is allowed.
- Torn cut (``cut-torn SEED``, ``PowerFS.power_cut(torn=True)``): instead of losing all un-synced data,
  each un-synced 512-byte sector of a file independently survives or not, and the file ends up with
  either its durable or its un-synced size, chosen at random: a disk that wrote back part of the page
  cache, in any order, before the power went. Entry operations are undone as in a plain cut.

What is not simulated
---------------------
- mmap writes: files are opened ``direct_io`` (no kernel page cache, so nothing stale survives a cut),
  and with it the kernel refuses shared mappings (``mmap(MAP_SHARED)`` fails with ``ENODEV``); private
  mappings work for reading. Turning on ``keep_cache``/writeback caching to allow mmap would let the
  kernel hold dirty or stale pages that a cut cannot reach, so it is deliberately not offered.
- ``sync(2)``/``syncfs(2)`` make nothing durable (FUSE does not forward them); only ``fsync``/
  ``fdatasync`` of a file or directory do (or ``sync`` written to the control file).
- ``fallocate``, xattrs (``ENOSYS``), ``O_DIRECT`` alignment, and durability of inode metadata other
  than size (``chmod``/``chown``/``utime`` go to BACKING at once; symlinks' own attributes cannot be
  changed). ``st_nlink`` of a removed-but-pending file counts its trash link. ``RENAME_EXCHANGE`` is
  refused (``EINVAL``).
- Hardware faults: no torn sector writes, no lying fsync, no errors injected on fsync.
- A plain cut is the pessimistic end: no un-synced byte survives, whereas a real disk may have written
  some back (use the torn cut for that).
- Processes keep their open descriptors across a cut (the "reboot" does not kill them); a file opened
  before the cut and appended to after it may write at a stale offset. Kill the code under test before
  the cut and restart it afterwards, as after a real power loss.
- If the powerfs process itself dies without a clean shutdown, pending entry operations stay applied
  (the trash is purged at the next start), and un-synced data is lost.

Performance
-----------
One FUSE request per ``write`` and per ``fsync`` (the kernel caches nothing, but a plain append +
fdatasync loop causes no other requests). A small append costs one page copy (one 4 KiB ``pread`` when
it starts a page not yet in the overlay); an fsync one ``pwritev`` per run of dirty pages (whole pages,
so the tail page is rewritten on every fsync; ``bytes_flushed`` counts that), then the real
``fsync``/``fdatasync`` of the backing file. That runs inline on the trio thread by default (fastest for
one file: about 3,000 write+fdatasync pairs/s against about 7,000/s on the bare disk here);
``--fsync-in-thread`` runs it in a worker thread so requests for other files are served meanwhile,
at about 30% more latency per fsync. pyfuse3 serves requests from several trio tasks; all state is
touched only from the trio thread.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import logging
import os
import random
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import pyfuse3
import trio

log = logging.getLogger("powerfs")

PAGE = 4096
SECTOR = 512
CTL_NAME = b".powerfs-ctl"
TRASH_NAME = b".powerfs-trash"
CTL_INODE = 2
_FIRST_INODE = 3
MetadataMode = Literal["filesync", "dirsync", "immediate"]
METADATA_MODES: tuple[MetadataMode, ...] = ("filesync", "dirsync", "immediate")
_REPO_ROOT = Path(__file__).resolve().parents[2]


# --- un-synced file data --------------------------------------------------------------------------


class Dirty:
    """Un-synced contents of one file: an overlay of whole pages over the backing file.

    Logical byte ``x < size`` is ``pages[x // PAGE][x % PAGE]`` if that page is present, else the backing
    byte if ``x < valid_end``, else zero. Invariants: ``valid_end <= size`` and ``valid_end`` never
    exceeds the backing file's size (the backing file does not change while the overlay exists); page
    bytes at or past ``size`` are zero.
    """

    __slots__ = ("mtime_ns", "pages", "size", "valid_end", "written")

    def __init__(self, size: int) -> None:
        self.pages: dict[int, bytearray] = {}
        self.size = size
        self.valid_end = size
        self.written = 0  # bytes passed to write() since the last flush, for statistics
        self.mtime_ns = time.time_ns()

    def _load(self, fd: int, idx: int) -> bytearray:
        base = idx * PAGE
        page = bytearray(PAGE)
        n = min(PAGE, self.valid_end - base)
        if n > 0:
            data = os.pread(fd, n, base)
            page[: len(data)] = data
        return page

    def write(self, fd: int, off: int, buf: bytes) -> None:
        end = off + len(buf)
        src = memoryview(buf)
        pos = off
        while pos < end:
            idx, in_page = divmod(pos, PAGE)
            n = min(PAGE - in_page, end - pos)
            chunk = src[pos - off : pos - off + n]
            pos += n
            page = self.pages.get(idx)
            if page is None:
                if n == PAGE:  # whole page: nothing to read from the backing file
                    self.pages[idx] = bytearray(chunk)
                    continue
                page = self.pages[idx] = self._load(fd, idx)
            page[in_page : in_page + n] = chunk
        self.size = max(self.size, end)
        self.written += len(buf)
        self.mtime_ns = time.time_ns()

    def read(self, fd: int, off: int, size: int) -> bytes:
        end = min(off + size, self.size)
        out = bytearray()
        pos = off
        while pos < end:
            idx, in_page = divmod(pos, PAGE)
            page = self.pages.get(idx)
            if page is not None:
                n = min(PAGE - in_page, end - pos)
                out += page[in_page : in_page + n]
                pos += n
                continue
            run_end = min((idx + 1) * PAGE, end)  # coalesce a run of pages that are not in the overlay
            while run_end < end and run_end // PAGE not in self.pages:
                run_end = min(run_end + PAGE, end)
            avail = min(run_end, self.valid_end) - pos
            data = os.pread(fd, avail, pos) if avail > 0 else b""
            out += data
            out += bytes(run_end - pos - len(data))
            pos = run_end
        return bytes(out)

    def truncate(self, new_size: int) -> None:
        if new_size < self.size:
            self.valid_end = min(self.valid_end, new_size)
            last, in_page = divmod(new_size, PAGE)
            for idx in [i for i in self.pages if i > last or (i == last and in_page == 0)]:
                del self.pages[idx]
            page = self.pages.get(last)
            if page is not None:
                page[in_page:] = bytes(PAGE - in_page)
        self.size = new_size
        self.mtime_ns = time.time_ns()

    def flush(self, fd: int) -> int:
        """Write the overlay into the backing file (no fsync); returns the bytes written."""
        if self.valid_end < os.fstat(fd).st_size:
            os.ftruncate(fd, self.valid_end)
        written = 0
        run: list[memoryview] = []
        run_start = run_next = -1
        for idx in [*sorted(self.pages), -1]:
            if idx >= 0 and idx == run_next and len(run) < 512:
                run.append(self._page_view(idx))
                run_next += 1
                continue
            if run:
                written += _pwritev_all(fd, run, run_start * PAGE)
            if idx >= 0:
                run, run_start, run_next = [self._page_view(idx)], idx, idx + 1
        if os.fstat(fd).st_size != self.size:
            os.ftruncate(fd, self.size)
        return written

    def _page_view(self, idx: int) -> memoryview:
        return memoryview(self.pages[idx])[: max(0, min(PAGE, self.size - idx * PAGE))]

    def tear(self, fd: int, rng: random.Random) -> int:
        """Torn power cut: persist a random subset of sectors and one of the two sizes; returns bytes kept."""
        durable_size = os.fstat(fd).st_size
        final_size = rng.choice((durable_size, self.size))
        if self.valid_end < durable_size and rng.random() < 0.5:
            os.ftruncate(fd, self.valid_end)  # the truncation reached the disk, the later writes may not
        kept = 0
        for idx in sorted(self.pages):
            page = self.pages[idx]
            for sector in range(0, PAGE, SECTOR):
                pos = idx * PAGE + sector
                if pos >= final_size or rng.random() < 0.5:
                    continue
                chunk = page[sector : min(SECTOR, final_size - pos) + sector]
                os.pwrite(fd, chunk, pos)
                kept += len(chunk)
        os.ftruncate(fd, final_size)
        os.fsync(fd)
        return kept


def _pwritev_all(fd: int, bufs: list[memoryview], offset: int) -> int:
    total = sum(len(b) for b in bufs)
    done = os.pwritev(fd, bufs, offset)
    if done < total:  # short write on a regular file: only on ENOSPC-like conditions, finish or raise
        rest = memoryview(b"".join(bufs))[done:]
        while rest:
            n = os.pwrite(fd, rest, offset + done)
            if n <= 0:
                raise OSError(errno.EIO, "short write to backing file")
            done += n
            rest = rest[n:]
    return total


# --- inodes, handles, pending entry operations ----------------------------------------------------


@dataclass(eq=False)
class Inode:
    """A backing inode known to the kernel; an ``O_PATH`` descriptor keeps it reachable wherever it moves."""

    ino: int
    fd: int
    key: tuple[int, int]  # (st_dev, st_ino) in BACKING
    kind: int  # stat.S_IFMT bits
    nlookup: int = 0  # kernel lookup count
    pins: int = 0  # pending entry operations that refer to this inode
    handles: int = 0  # open file and directory handles
    data_fd: int = -1  # read/write descriptor of a regular file, while open or dirty
    dirty: Dirty | None = None

    @property
    def proc_path(self) -> str:
        return f"/proc/self/fd/{self.fd}"


@dataclass(eq=False)
class DirHandle:
    inode: Inode
    entries: list[bytes] | None = None


@dataclass(eq=False)
class CtlHandle:
    snapshot: bytes


@dataclass(eq=False)
class EntryOp:
    """A directory-entry change applied to BACKING but not yet durable, with what is needed to undo it."""

    kind: Literal["create", "mkdir", "remove", "rename"]
    subject: Inode  # the inode the entry names
    parent: Inode  # created / removed / rename-target entry lives here ...
    name: bytes  # ... under this name
    old_parent: Inode | None = None  # rename source
    old_name: bytes = b""
    trash: bytes | None = None  # removed (or replaced by the rename) entry, parked in the trash
    dirs: tuple[Inode, ...] = field(default=())

    def refs(self) -> Iterator[Inode]:
        yield self.subject
        yield self.parent
        if self.old_parent is not None:
            yield self.old_parent


@dataclass
class Stats:
    cuts: int = 0
    torn_cuts: int = 0
    writes: int = 0
    bytes_written: int = 0
    fsyncs: int = 0
    fsyncdirs: int = 0
    bytes_flushed: int = 0
    entry_ops: int = 0
    entry_ops_committed: int = 0
    entry_ops_undone: int = 0
    dropped_bytes_total: int = 0
    internal_errors: int = 0
    last_cut: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)  # FUSE requests served, by handler


P = ParamSpec("P")
R = TypeVar("R")


def _fuse_op(
    fn: Callable[Concatenate[PowerFSOperations, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[PowerFSOperations, P], Coroutine[Any, Any, R]]:
    """Turn ``OSError`` into the matching FUSE error; anything else is logged and becomes EIO.

    pyfuse3 stops its main loop on any exception other than ``FUSEError``; a test file system must keep
    serving, and must make internal errors visible (``internal_errors`` in the statistics).
    """

    name = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: PowerFSOperations, /, *args: P.args, **kwargs: P.kwargs) -> R:
        requests = self.stats.requests
        requests[name] = requests.get(name, 0) + 1
        try:
            return await fn(self, *args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
        except Exception:
            self.stats.internal_errors += 1
            log.exception("internal error in %s", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


def _nofollow_key(parent_fd: int, name: bytes) -> tuple[int, int] | None:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _remove_any(parent_fd: int, name: bytes) -> None:
    st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent_fd)
    else:
        os.unlink(name, dir_fd=parent_fd)


def _listdir(inode: Inode) -> list[bytes]:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=inode.fd)
    try:
        return sorted(os.fsencode(n) for n in os.listdir(fd))
    finally:
        os.close(fd)


class PowerFSOperations(pyfuse3.Operations):
    """The file system. All state is touched only from the trio thread; see the module docstring."""

    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(
        self, backing: Path, metadata: MetadataMode = "filesync", *, fsync_in_thread: bool = False
    ) -> None:
        super().__init__()
        if metadata not in METADATA_MODES:
            raise ValueError(f"metadata mode must be one of {METADATA_MODES}, not {metadata!r}")
        self.backing = backing.resolve()
        self.metadata: MetadataMode = metadata
        self.fsync_in_thread = fsync_in_thread
        self.stats = Stats()
        self._next_ino = _FIRST_INODE
        self._next_fh = 1
        root_fd = os.open(self.backing, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        st = os.fstat(root_fd)
        self.root = Inode(pyfuse3.ROOT_INODE, root_fd, (st.st_dev, st.st_ino), stat.S_IFDIR, nlookup=1)
        self._by_ino: dict[int, Inode] = {self.root.ino: self.root}
        self._by_key: dict[tuple[int, int], Inode] = {self.root.key: self.root}
        self._files: dict[int, Inode] = {}
        self._dirs: dict[int, DirHandle] = {}
        self._ctls: dict[int, CtlHandle] = {}
        self._ops: list[EntryOp] = []
        self._trash_items = 0
        self._trash_seq = 0
        with contextlib.suppress(FileNotFoundError):  # left over by a powerfs that did not shut down cleanly
            shutil.rmtree(TRASH_NAME, dir_fd=root_fd)

    # --- bookkeeping -------------------------------------------------------------------------------

    def _inode(self, ino: int) -> Inode:
        try:
            return self._by_ino[ino]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ESTALE) from None

    def _get(self, parent: Inode, name: bytes) -> tuple[Inode, os.stat_result]:
        """The inode that ``name`` in ``parent`` refers to (lookup count not changed)."""
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent.fd)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        inode = self._by_key.get(key)
        if inode is not None:
            os.close(fd)
            return inode, st
        inode = Inode(self._next_ino, fd, key, stat.S_IFMT(st.st_mode))
        self._next_ino += 1
        self._by_ino[inode.ino] = inode
        self._by_key[key] = inode
        return inode, st

    def _maybe_drop(self, inode: Inode) -> None:
        if inode is self.root or inode.nlookup > 0 or inode.pins > 0 or inode.handles > 0:
            return
        if inode.dirty is not None:
            return
        self._close_data(inode)
        del self._by_ino[inode.ino]
        del self._by_key[inode.key]
        os.close(inode.fd)

    def _close_data(self, inode: Inode) -> None:
        if inode.data_fd >= 0 and inode.handles == 0 and inode.dirty is None:
            os.close(inode.data_fd)
            inode.data_fd = -1

    def _data_fd(self, inode: Inode) -> int:
        if inode.data_fd < 0:
            try:
                inode.data_fd = os.open(inode.proc_path, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                inode.data_fd = os.open(inode.proc_path, os.O_RDONLY | os.O_CLOEXEC)
        return inode.data_fd

    def _dirty(self, inode: Inode) -> Dirty:
        if inode.dirty is None:
            inode.dirty = Dirty(os.fstat(self._data_fd(inode)).st_size)
        return inode.dirty

    def _attrs(self, inode: Inode, st: os.stat_result | None = None) -> pyfuse3.EntryAttributes:
        if st is None:
            st = os.fstat(inode.fd)
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = pyfuse3.InodeT(inode.ino)
        attr.generation = 0
        attr.entry_timeout = 0
        attr.attr_timeout = 0
        attr.st_mode = pyfuse3.ModeT(st.st_mode)
        attr.st_nlink = st.st_nlink
        attr.st_uid = st.st_uid
        attr.st_gid = st.st_gid
        attr.st_rdev = st.st_rdev
        attr.st_blksize = st.st_blksize
        attr.st_atime_ns = st.st_atime_ns
        attr.st_ctime_ns = st.st_ctime_ns
        attr.st_mtime_ns = st.st_mtime_ns
        if inode.dirty is not None:
            attr.st_size = inode.dirty.size
            attr.st_blocks = (inode.dirty.size + 511) // 512
            attr.st_mtime_ns = max(st.st_mtime_ns, inode.dirty.mtime_ns)
            attr.st_ctime_ns = max(st.st_ctime_ns, inode.dirty.mtime_ns)
        else:
            attr.st_size = st.st_size
            attr.st_blocks = st.st_blocks
        return attr

    def _ctl_attrs(self) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = pyfuse3.InodeT(CTL_INODE)
        attr.entry_timeout = 0
        attr.attr_timeout = 0
        attr.st_mode = pyfuse3.ModeT(stat.S_IFREG | 0o600)
        attr.st_nlink = 1
        attr.st_uid = os.getuid()
        attr.st_gid = os.getgid()
        attr.st_size = 0  # read with direct_io, so the size does not limit reads
        return attr

    def _reserved(self, parent: Inode, name: bytes) -> bool:
        return parent is self.root and name in (CTL_NAME, TRASH_NAME)

    def _new_fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _chown_new(self, parent: Inode, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        if (ctx.uid, ctx.gid) != (os.geteuid(), os.getegid()):
            os.chown(name, ctx.uid, ctx.gid, dir_fd=parent.fd, follow_symlinks=False)

    # --- the undo log of directory-entry operations -----------------------------------------------

    def _record(self, op: EntryOp) -> None:
        self.stats.entry_ops += 1
        if self.metadata == "immediate":
            return
        dirs = [op.parent] if op.old_parent in (None, op.parent) else [op.parent, op.old_parent]
        op.dirs = tuple(d for d in dirs if d is not None)
        for ref in op.refs():
            ref.pins += 1
        self._ops.append(op)

    def _release_op(self, op: EntryOp) -> None:
        for ref in op.refs():
            ref.pins -= 1
            self._maybe_drop(ref)

    def _commit(self, chosen: Callable[[EntryOp], bool]) -> int:
        """Make durable the chosen pending operations and every earlier one on the same inodes."""
        if not self._ops:
            return 0
        subjects: set[int] = set()
        commit = [False] * len(self._ops)
        for i in range(len(self._ops) - 1, -1, -1):
            op = self._ops[i]
            if chosen(op) or id(op.subject) in subjects:
                commit[i] = True
                subjects.add(id(op.subject))
        done = [op for op, c in zip(self._ops, commit, strict=True) if c]
        self._ops = [op for op, c in zip(self._ops, commit, strict=True) if not c]
        for op in done:
            if op.trash is not None:
                try:
                    self._trash_remove(op.trash)
                except OSError:
                    self.stats.internal_errors += 1
                    log.exception("could not purge %r from the trash", op.trash)
            self._release_op(op)
        self.stats.entry_ops_committed += len(done)
        return len(done)

    def _undo_all(self) -> tuple[int, int]:
        undone = failed = 0
        while self._ops:
            op = self._ops.pop()
            try:
                self._undo(op)
                undone += 1
            except OSError:
                failed += 1
                log.exception("could not undo %s of %r", op.kind, op.name)
            self._release_op(op)
        self.stats.entry_ops_undone += undone
        return undone, failed

    def _undo(self, op: EntryOp) -> None:
        here = _nofollow_key(op.parent.fd, op.name) == op.subject.key
        if op.kind == "create":
            if here:
                os.unlink(op.name, dir_fd=op.parent.fd)
        elif op.kind == "mkdir":
            if here:
                shutil.rmtree(op.name, dir_fd=op.parent.fd)
        elif op.kind == "rename":
            assert op.old_parent is not None
            if here and _nofollow_key(op.old_parent.fd, op.old_name) is None:
                os.rename(op.name, op.old_name, src_dir_fd=op.parent.fd, dst_dir_fd=op.old_parent.fd)
        if op.trash is not None:  # "remove", or the entry a rename replaced
            self._trash_restore(op.trash, op.parent, op.name)

    def _trash_fd(self) -> int:
        try:
            return os.open(TRASH_NAME, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root.fd)
        except FileNotFoundError:
            os.mkdir(TRASH_NAME, 0o700, dir_fd=self.root.fd)
            return os.open(TRASH_NAME, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root.fd)

    def _trash_park(self, parent: Inode, name: bytes) -> bytes:
        trash_fd = self._trash_fd()
        try:
            self._trash_seq += 1
            item = str(self._trash_seq).encode()
            os.rename(name, item, src_dir_fd=parent.fd, dst_dir_fd=trash_fd)
        finally:
            os.close(trash_fd)
        self._trash_items += 1
        return item

    def _trash_done(self) -> None:
        self._trash_items -= 1
        if self._trash_items == 0:
            with contextlib.suppress(OSError):
                os.rmdir(TRASH_NAME, dir_fd=self.root.fd)

    def _trash_remove(self, item: bytes) -> None:
        trash_fd = self._trash_fd()
        try:
            _remove_any(trash_fd, item)
        finally:
            os.close(trash_fd)
            self._trash_done()

    def _trash_restore(self, item: bytes, parent: Inode, name: bytes) -> None:
        trash_fd = self._trash_fd()
        try:
            if _nofollow_key(parent.fd, name) is None:
                try:
                    os.rename(item, name, src_dir_fd=trash_fd, dst_dir_fd=parent.fd)
                    return
                except OSError:
                    log.warning("could not restore %r, dropping it", name, exc_info=True)
            _remove_any(trash_fd, item)  # a durable entry took the name (or the directory is gone)
        finally:
            os.close(trash_fd)
            self._trash_done()

    # --- power cut and sync ------------------------------------------------------------------------

    def power_cut(self, torn_seed: int | None = None) -> dict[str, int]:
        """Lose everything not durable; with ``torn_seed``, let a random part of un-synced data survive."""
        rng = random.Random(torn_seed)
        dropped = files = kept = 0
        for inode in list(self._by_ino.values()):
            if inode.dirty is None:
                continue
            files += 1
            dropped += inode.dirty.written
            if torn_seed is not None and inode.data_fd >= 0:
                try:
                    kept += inode.dirty.tear(inode.data_fd, rng)
                except OSError:
                    log.exception("torn cut of inode %d", inode.ino)
            inode.dirty = None
            self._close_data(inode)
            self._maybe_drop(inode)
        undone, failed = self._undo_all()
        self.stats.cuts += 1
        self.stats.torn_cuts += torn_seed is not None
        self.stats.dropped_bytes_total += dropped
        self.stats.last_cut = {
            "dropped_bytes": dropped,
            "dirty_files": files,
            "torn_kept_bytes": kept,
            "undone_entry_ops": undone,
            "undo_failures": failed,
        }
        log.info("power cut #%d: %s", self.stats.cuts, self.stats.last_cut)
        return self.stats.last_cut

    def sync_all(self) -> None:
        """Make everything durable, as a clean unmount would."""
        for inode in list(self._by_ino.values()):
            if inode.dirty is not None:
                self.stats.bytes_flushed += inode.dirty.flush(inode.data_fd)
                os.fsync(inode.data_fd)
                inode.dirty = None
                self._close_data(inode)
                self._maybe_drop(inode)
        self._commit(lambda op: True)
        os.sync()

    def stats_dict(self) -> dict[str, Any]:
        dirty = [i.dirty for i in self._by_ino.values() if i.dirty is not None]
        return {
            **self.stats.__dict__,
            "metadata": self.metadata,
            "pid": os.getpid(),
            "dirty_files": len(dirty),
            "dirty_pages": sum(len(d.pages) for d in dirty),
            "pending_entry_ops": len(self._ops),
            "inodes": len(self._by_ino),
        }

    async def _sync_file(self, inode: Inode, datasync: bool) -> None:
        self.stats.fsyncs += 1
        if inode.dirty is not None:
            self.stats.bytes_flushed += inode.dirty.flush(inode.data_fd)
            inode.dirty = None
        if self.metadata == "filesync":
            self._commit(lambda op: op.subject is inode)
        await self._fsync_backing(self._data_fd(inode), datasync)

    async def _fsync_backing(self, fd: int, datasync: bool) -> None:
        sync = os.fdatasync if datasync else os.fsync
        if not self.fsync_in_thread:
            sync(fd)
            return
        fd = os.dup(fd)  # a release() may close the descriptor while the fsync runs
        try:
            await trio.to_thread.run_sync(sync, fd)
        finally:
            os.close(fd)

    # --- FUSE request handlers ---------------------------------------------------------------------

    @_fuse_op
    async def lookup(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = self._inode(parent_inode)
        if parent is self.root and name == CTL_NAME:
            return self._ctl_attrs()
        if self._reserved(parent, name) or (parent is self.root and name == b".."):
            raise pyfuse3.FUSEError(errno.ENOENT)
        inode, st = self._get(parent, name)
        inode.nlookup += 1
        return self._attrs(inode, st)

    async def forget(self, inode_list: Sequence[tuple[pyfuse3.InodeT, int]]) -> None:
        for ino, n in inode_list:
            inode = self._by_ino.get(ino)
            if inode is None or inode is self.root:
                continue
            inode.nlookup -= n
            try:
                self._maybe_drop(inode)
            except OSError:
                log.exception("forget %d", ino)

    @_fuse_op
    async def getattr(self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if inode == CTL_INODE:
            return self._ctl_attrs()
        return self._attrs(self._inode(inode))

    @_fuse_op
    async def setattr(
        self,
        inode: pyfuse3.InodeT,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: pyfuse3.FileHandleT | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        if inode == CTL_INODE:
            return self._ctl_attrs()
        node = self._inode(inode)
        if fields.update_size:
            if node.kind != stat.S_IFREG:
                raise pyfuse3.FUSEError(errno.EISDIR if node.kind == stat.S_IFDIR else errno.EINVAL)
            self._dirty(node).truncate(attr.st_size)
        if node.kind != stat.S_IFLNK:  # symlink mode/owner/times: not supported, silently kept
            if fields.update_mode:
                os.chmod(node.proc_path, stat.S_IMODE(attr.st_mode))
            if fields.update_uid or fields.update_gid:
                uid = attr.st_uid if fields.update_uid else -1
                gid = attr.st_gid if fields.update_gid else -1
                os.chown(node.proc_path, uid, gid)
            if fields.update_atime or fields.update_mtime:
                st = os.fstat(node.fd)
                atime = attr.st_atime_ns if fields.update_atime else st.st_atime_ns
                mtime = attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns
                os.utime(node.proc_path, ns=(atime, mtime))
                if fields.update_mtime and node.dirty is not None:
                    node.dirty.mtime_ns = mtime
        return self._attrs(node)

    @_fuse_op
    async def readlink(self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext) -> pyfuse3.FileNameT:
        return pyfuse3.FileNameT(os.readlink(b"", dir_fd=self._inode(inode).fd))

    @_fuse_op
    async def opendir(self, inode: pyfuse3.InodeT, ctx: pyfuse3.RequestContext) -> pyfuse3.FileHandleT:
        node = self._inode(inode)
        fh = self._new_fh()
        self._dirs[fh] = DirHandle(node)
        node.handles += 1
        return pyfuse3.FileHandleT(fh)

    @_fuse_op
    async def readdir(self, fh: pyfuse3.FileHandleT, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        dh = self._dirs[fh]
        if start_id == 0 or dh.entries is None:
            dh.entries = _listdir(dh.inode)
            if dh.inode is self.root:
                dh.entries = [n for n in dh.entries if n not in (CTL_NAME, TRASH_NAME)]
        for i in range(start_id, len(dh.entries)):
            name = dh.entries[i]
            try:
                inode, st = self._get(dh.inode, name)
            except FileNotFoundError:
                continue
            if not pyfuse3.readdir_reply(token, pyfuse3.FileNameT(name), self._attrs(inode, st), i + 1):
                self._maybe_drop(inode)
                break
            inode.nlookup += 1

    @_fuse_op
    async def releasedir(self, fh: pyfuse3.FileHandleT) -> None:
        dh = self._dirs.pop(fh)
        dh.inode.handles -= 1
        self._maybe_drop(dh.inode)

    @_fuse_op
    async def fsyncdir(self, fh: pyfuse3.FileHandleT, datasync: bool) -> None:
        node = self._dirs[fh].inode
        self.stats.fsyncdirs += 1
        if self.metadata == "filesync":
            self._commit(lambda op: node in op.dirs or op.subject is node)
        else:
            self._commit(lambda op: node in op.dirs)
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=node.fd)
        try:
            await self._fsync_backing(fd, datasync=False)
        finally:
            os.close(fd)

    def _check_new_name(self, parent: Inode, name: bytes) -> None:
        if self._reserved(parent, name):
            raise pyfuse3.FUSEError(errno.EEXIST)

    @_fuse_op
    async def mkdir(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        parent = self._inode(parent_inode)
        self._check_new_name(parent, name)
        os.mkdir(name, stat.S_IMODE(mode), dir_fd=parent.fd)
        return self._created("mkdir", parent, name, ctx)

    def _created(
        self, kind: Literal["create", "mkdir"], parent: Inode, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        self._chown_new(parent, name, ctx)
        inode, st = self._get(parent, name)
        self._record(EntryOp(kind, inode, parent, name))
        inode.nlookup += 1
        return self._attrs(inode, st)

    @_fuse_op
    async def mknod(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        rdev: int,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        parent = self._inode(parent_inode)
        self._check_new_name(parent, name)
        os.mknod(name, mode, rdev, dir_fd=parent.fd)
        return self._created("create", parent, name, ctx)

    @_fuse_op
    async def symlink(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        target: pyfuse3.FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        parent = self._inode(parent_inode)
        self._check_new_name(parent, name)
        os.symlink(target, name, dir_fd=parent.fd)
        return self._created("create", parent, name, ctx)

    @_fuse_op
    async def link(
        self,
        inode: pyfuse3.InodeT,
        new_parent_inode: pyfuse3.InodeT,
        new_name: pyfuse3.FileNameT,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = self._inode(inode)
        parent = self._inode(new_parent_inode)
        self._check_new_name(parent, new_name)
        os.link(node.proc_path, new_name, dst_dir_fd=parent.fd, follow_symlinks=True)
        self._record(EntryOp("create", node, parent, new_name))
        node.nlookup += 1
        return self._attrs(node)

    @_fuse_op
    async def unlink(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        parent = self._inode(parent_inode)
        if self._reserved(parent, name):
            raise pyfuse3.FUSEError(errno.EPERM)
        inode, st = self._get(parent, name)
        try:
            if stat.S_ISDIR(st.st_mode):
                raise pyfuse3.FUSEError(errno.EISDIR)
            self._remove(inode, parent, name)
        finally:
            self._maybe_drop(inode)

    @_fuse_op
    async def rmdir(
        self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT, ctx: pyfuse3.RequestContext
    ) -> None:
        parent = self._inode(parent_inode)
        if self._reserved(parent, name):
            raise pyfuse3.FUSEError(errno.EPERM)
        inode, st = self._get(parent, name)
        try:
            if not stat.S_ISDIR(st.st_mode):
                raise pyfuse3.FUSEError(errno.ENOTDIR)
            if _listdir(inode):
                raise pyfuse3.FUSEError(errno.ENOTEMPTY)
            self._remove(inode, parent, name)
        finally:
            self._maybe_drop(inode)

    def _remove(self, inode: Inode, parent: Inode, name: bytes) -> None:
        if self.metadata == "immediate":
            if inode.kind == stat.S_IFDIR:
                os.rmdir(name, dir_fd=parent.fd)
            else:
                os.unlink(name, dir_fd=parent.fd)
            self.stats.entry_ops += 1
            return
        self._record(EntryOp("remove", inode, parent, name, trash=self._trash_park(parent, name)))

    @_fuse_op
    async def rename(
        self,
        parent_inode_old: pyfuse3.InodeT,
        name_old: pyfuse3.FileNameT,
        parent_inode_new: pyfuse3.InodeT,
        name_new: pyfuse3.FileNameT,
        flags: pyfuse3.FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        old_parent = self._inode(parent_inode_old)
        new_parent = self._inode(parent_inode_new)
        if self._reserved(old_parent, name_old) or self._reserved(new_parent, name_new):
            raise pyfuse3.FUSEError(errno.EPERM)
        inode, _ = self._get(old_parent, name_old)
        try:
            self._rename(inode, old_parent, name_old, new_parent, name_new, flags)
        finally:
            self._maybe_drop(inode)

    def _rename(
        self, inode: Inode, old_parent: Inode, name_old: bytes, new_parent: Inode, name_new: bytes, flags: int
    ) -> None:
        try:
            victim = os.stat(name_new, dir_fd=new_parent.fd, follow_symlinks=False)
        except FileNotFoundError:
            victim = None
        if victim is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise pyfuse3.FUSEError(errno.EEXIST)
            if (victim.st_dev, victim.st_ino) == inode.key:
                return  # two links to the same inode: rename does nothing
        if self.metadata == "immediate" or victim is None:
            os.rename(name_old, name_new, src_dir_fd=old_parent.fd, dst_dir_fd=new_parent.fd)
            self._record(EntryOp("rename", inode, new_parent, name_new, old_parent, name_old))
            return
        # Park the replaced entry in the trash so a cut can bring it back; check first what rename(2)
        # would refuse, and put the victim back if the rename fails anyway (e.g. a loop of directories).
        if inode.kind == stat.S_IFDIR and not stat.S_ISDIR(victim.st_mode):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if inode.kind != stat.S_IFDIR and stat.S_ISDIR(victim.st_mode):
            raise pyfuse3.FUSEError(errno.EISDIR)
        if stat.S_ISDIR(victim.st_mode):
            fd = os.open(name_new, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=new_parent.fd)
            try:
                if os.listdir(fd):
                    raise pyfuse3.FUSEError(errno.ENOTEMPTY)
            finally:
                os.close(fd)
        item = self._trash_park(new_parent, name_new)
        try:
            os.rename(name_old, name_new, src_dir_fd=old_parent.fd, dst_dir_fd=new_parent.fd)
        except OSError:
            self._trash_restore(item, new_parent, name_new)
            raise
        self._record(EntryOp("rename", inode, new_parent, name_new, old_parent, name_old, trash=item))

    @_fuse_op
    async def open(
        self, inode: pyfuse3.InodeT, flags: pyfuse3.FlagT, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.FileInfo:
        fh = self._new_fh()
        if inode == CTL_INODE:
            snapshot = (json.dumps(self.stats_dict(), sort_keys=True) + "\n").encode()
            self._ctls[fh] = CtlHandle(snapshot)
            return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh), direct_io=True)
        node = self._inode(inode)
        self._data_fd(node)
        node.handles += 1
        self._files[fh] = node
        if flags & os.O_TRUNC:
            self._dirty(node).truncate(0)
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh), direct_io=True, keep_cache=False)

    @_fuse_op
    async def create(
        self,
        parent_inode: pyfuse3.InodeT,
        name: pyfuse3.FileNameT,
        mode: pyfuse3.ModeT,
        flags: pyfuse3.FlagT,
        ctx: pyfuse3.RequestContext,
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        parent = self._inode(parent_inode)
        self._check_new_name(parent, name)
        try:
            fd = os.open(
                name, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, stat.S_IMODE(mode), dir_fd=parent.fd
            )
        except FileExistsError:
            if flags & os.O_EXCL:
                raise
            inode, _ = self._get(parent, name)  # lost a race with another creator: plain open
            inode.nlookup += 1
            info = await self.open(pyfuse3.InodeT(inode.ino), flags, ctx)
            return info, self._attrs(inode)
        try:
            attrs = self._created("create", parent, name, ctx)
        except BaseException:
            os.close(fd)
            raise
        node = self._by_ino[attrs.st_ino]
        if node.data_fd < 0:
            node.data_fd = fd
        else:
            os.close(fd)
        node.handles += 1
        fh = self._new_fh()
        self._files[fh] = node
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh), direct_io=True, keep_cache=False), attrs

    @_fuse_op
    async def read(self, fh: pyfuse3.FileHandleT, off: int, size: int) -> bytes:
        ctl = self._ctls.get(fh)
        if ctl is not None:
            return ctl.snapshot[off : off + size]
        node = self._files[fh]
        if node.dirty is not None:
            return node.dirty.read(node.data_fd, off, size)
        return os.pread(node.data_fd, size, off)

    @_fuse_op
    async def write(self, fh: pyfuse3.FileHandleT, off: int, buf: bytes) -> int:
        if fh in self._ctls:
            return self._control(buf)
        node = self._files[fh]
        self._dirty(node).write(node.data_fd, off, buf)
        self.stats.writes += 1
        self.stats.bytes_written += len(buf)
        return len(buf)

    def _control(self, buf: bytes) -> int:
        words = buf.decode(errors="replace").split()
        if words == ["cut"]:
            self.power_cut()
        elif len(words) == 2 and words[0] == "cut-torn" and words[1].lstrip("-").isdigit():
            self.power_cut(torn_seed=int(words[1]))
        elif words == ["sync"]:
            self.sync_all()
        else:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return len(buf)

    @_fuse_op
    async def flush(self, fh: pyfuse3.FileHandleT) -> None:
        return None  # close() does not make anything durable

    @_fuse_op
    async def release(self, fh: pyfuse3.FileHandleT) -> None:
        if self._ctls.pop(fh, None) is not None:
            return
        node = self._files.pop(fh)
        node.handles -= 1
        self._close_data(node)
        self._maybe_drop(node)

    @_fuse_op
    async def fsync(self, fh: pyfuse3.FileHandleT, datasync: bool) -> None:
        if fh in self._ctls:
            return
        await self._sync_file(self._files[fh], datasync)

    @_fuse_op
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.root.proc_path)
        data = pyfuse3.StatvfsData()
        for name in (
            "f_bsize",
            "f_frsize",
            "f_blocks",
            "f_bfree",
            "f_bavail",
            "f_files",
            "f_ffree",
            "f_favail",
            "f_namemax",
        ):
            setattr(data, name, getattr(st, name))
        return data

    @_fuse_op
    async def access(self, inode: pyfuse3.InodeT, mode: pyfuse3.ModeT, ctx: pyfuse3.RequestContext) -> bool:
        return True  # runs as root without default_permissions: everything is allowed


# --- the powerfs process --------------------------------------------------------------------------


async def _serve(ops: PowerFSOperations) -> bool:
    """Serve until unmounted or told to stop; returns whether the file system is still mounted."""
    terminated = False

    async def on_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal terminated
        with trio.open_signal_receiver(signal.SIGUSR1, signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGUSR1:
                    try:
                        ops.power_cut()
                    except Exception:
                        ops.stats.internal_errors += 1
                        log.exception("power cut failed")
                else:
                    log.info("signal %d: clean shutdown", signum)
                    terminated = True
                    pyfuse3.terminate()

    async with trio.open_nursery() as nursery:
        await nursery.start(on_signals)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()
    return terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.powerfs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("backing", type=Path, help="directory that holds the durable state")
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument(
        "--metadata",
        choices=METADATA_MODES,
        default="filesync",
        help="when directory-entry operations become durable (see module docstring)",
    )
    parser.add_argument(
        "--fsync-in-thread",
        action="store_true",
        help="run the backing fsync in a worker thread so other requests are served meanwhile "
        "(better with many files fsyncing at once, ~30%% slower for one)",
    )
    parser.add_argument("--debug", action="store_true", help="log every FUSE request (libfuse debug)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s powerfs[%(process)d] %(levelname)s %(message)s",
    )
    os.umask(0)  # the kernel already applied the caller's umask to the modes we receive
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ops = PowerFSOperations(args.backing, args.metadata, fsync_in_thread=args.fsync_in_thread)
    options = set(pyfuse3.default_options) - {"default_permissions"}
    options |= {"fsname=powerfs", "subtype=powerfs"}
    if args.debug:
        options.add("debug")
    pyfuse3.init(ops, str(args.mountpoint), options)
    log.info("mounted %s on %s (metadata=%s)", args.backing, args.mountpoint, args.metadata)
    still_mounted = True
    try:
        still_mounted = trio.run(_serve, ops)
    finally:
        try:
            ops.sync_all()
        finally:
            pyfuse3.close(unmount=still_mounted)
    log.info("unmounted cleanly: %s", ops.stats_dict())
    return 0


# --- test helper ----------------------------------------------------------------------------------


class PowerFS:
    """Runs powerfs in a subprocess for a test: ``with PowerFS(backing, mnt) as fs: ... fs.power_cut()``.

    ``backing`` and ``mountpoint`` are created if missing. The process's log goes to ``log_path``
    (default: ``<mountpoint>.powerfs.log`` next to the mount point).
    """

    def __init__(
        self,
        backing: Path,
        mountpoint: Path,
        *,
        metadata: MetadataMode = "filesync",
        fsync_in_thread: bool = False,
        log_path: Path | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.backing = Path(backing)
        self.mountpoint = Path(mountpoint)
        self.metadata: MetadataMode = metadata
        self.fsync_in_thread = fsync_in_thread
        self.log_path = log_path or self.mountpoint.with_name(self.mountpoint.name + ".powerfs.log")
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ctl_path(self) -> Path:
        return self.mountpoint / CTL_NAME.decode()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn ``python -m tests.support.powerfs`` and wait until the mount answers."""
        if self._proc is not None:
            raise RuntimeError("powerfs already started")
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "tests.support.powerfs",
            str(self.backing),
            str(self.mountpoint),
            "--metadata",
            self.metadata,
            *(["--fsync-in-thread"] if self.fsync_in_thread else []),
        ]
        with open(self.log_path, "ab") as logf:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
        deadline = time.monotonic() + self.timeout
        while not os.path.ismount(self.mountpoint):
            if self._proc.poll() is not None:
                self._proc = None
                raise RuntimeError(f"powerfs exited before mounting:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"powerfs did not mount {self.mountpoint}:\n{self.log()}")
            time.sleep(0.02)

    def stats(self) -> dict[str, Any]:
        """Counters of the running file system (``cuts``, ``fsyncs``, ``last_cut``, ... see ``Stats``)."""
        if self._proc is None:
            raise RuntimeError("powerfs is not running")
        result: dict[str, Any] = json.loads(self.ctl_path.read_bytes())
        return result

    def power_cut(self, *, torn: bool = False, seed: int | None = None) -> None:
        """Lose everything not durable; returns once the file system serves the post-cut state.

        A plain cut goes through SIGUSR1 and waits for the ``cuts`` counter to move. ``torn=True`` lets a
        random subset of un-synced sectors survive (reproducible with ``seed``); it goes through the
        control file, whose ``write`` returns after the cut.
        """
        if self._proc is None:
            raise RuntimeError("powerfs is not running")
        if torn:
            seed = random.randrange(2**32) if seed is None else seed
            fd = os.open(self.ctl_path, os.O_WRONLY)
            try:
                os.write(fd, f"cut-torn {seed}\n".encode())
            finally:
                os.close(fd)
            return
        before = self.stats()["cuts"]
        self._proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + self.timeout
        while self.stats()["cuts"] <= before:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"powerfs did not acknowledge the power cut:\n{self.log()}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Unmount (a clean unmount: whatever is left un-synced is written back) and end the process."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            done = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True)
            if done.returncode != 0:  # busy: SIGTERM makes powerfs detach the mount lazily
                proc.send_signal(signal.SIGTERM)
        else:  # died: do not leave a dead mount behind
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(f"powerfs exited with {proc.returncode}:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> PowerFS:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
