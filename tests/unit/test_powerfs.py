"""powerfs (tests/support/powerfs.py) loses exactly what was not made durable, on real FUSE mounts.

Every test mounts a fresh powerfs over a backing directory in tmp_path, drives it with plain syscalls
and checks both the mount and the backing directory after a power cut.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.powerfs import PowerFS

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse to mount FUSE")

MakeFS = Callable[..., PowerFS]


@pytest.fixture
def make_fs(tmp_path: Path) -> Iterator[MakeFS]:
    started: list[PowerFS] = []

    def make(name: str = "fs", **kwargs: Any) -> PowerFS:
        fs = PowerFS(tmp_path / f"{name}-backing", tmp_path / f"{name}-mnt", **kwargs)
        fs.start()
        started.append(fs)
        return fs

    yield make
    for fs in started:
        fs.stop()


@pytest.fixture
def fs(make_fs: MakeFS) -> PowerFS:
    return make_fs()


def write_file(path: Path, data: bytes, *, sync: bool = False, dirsync: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if dirsync:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def test_fsynced_data_survives_a_cut(fs: PowerFS) -> None:
    path = fs.mountpoint / "journal"
    write_file(path, b"durable bytes", sync=True, dirsync=True)

    fs.power_cut()

    assert path.read_bytes() == b"durable bytes"
    assert (fs.backing / "journal").read_bytes() == b"durable bytes"
    assert fs.stats()["last_cut"]["dropped_bytes"] == 0


def test_unsynced_data_is_lost(fs: PowerFS) -> None:
    path = fs.mountpoint / "journal"
    write_file(path, b"first", sync=True, dirsync=True)
    with open(path, "ab") as f:
        f.write(b" second")
    write_file(fs.mountpoint / "never-synced", b"gone")
    assert path.read_bytes() == b"first second"  # visible before the cut, like the page cache
    assert (fs.backing / "journal").read_bytes() == b"first"  # but not on the "disk"

    fs.power_cut()

    assert path.read_bytes() == b"first"
    assert not (fs.mountpoint / "never-synced").exists()  # its creation was never made durable either
    assert sorted(os.listdir(fs.backing)) == ["journal"]
    assert fs.stats()["last_cut"]["dropped_bytes"] == len(b" second") + len(b"gone")


def test_unsynced_overwrite_in_place_reverts(fs: PowerFS) -> None:
    path = fs.mountpoint / "data"
    old = bytes(range(256)) * 40  # 10 KiB: spans page boundaries
    write_file(path, old, sync=True, dirsync=True)
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, b"X" * 5000, 3000)
        assert os.pread(fd, 10, 2995) == old[2995:3000] + b"XXXXX"
    finally:
        os.close(fd)

    fs.power_cut()

    assert path.read_bytes() == old


def test_fdatasync_makes_data_durable_like_fsync(fs: PowerFS) -> None:
    path = fs.mountpoint / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b"entry-1;")
        os.fdatasync(fd)
    finally:
        os.close(fd)

    fs.power_cut()

    assert path.read_bytes() == b"entry-1;"
    assert fs.stats()["fsyncs"] == 1


def test_append_after_the_last_fsync_is_cut_off_exactly(fs: PowerFS) -> None:
    path = fs.mountpoint / "log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    synced = b"".join(f"record-{i:04d}\n".encode() for i in range(500))  # ~6 KiB, crosses a page
    try:
        for i in range(500):
            os.write(fd, f"record-{i:04d}\n".encode())
        os.fdatasync(fd)
        for i in range(500, 800):
            os.write(fd, f"record-{i:04d}\n".encode())
        assert os.fstat(fd).st_size == len(synced) + 300 * 12
    finally:
        os.close(fd)

    fs.power_cut()

    assert path.read_bytes() == synced
    assert (fs.backing / "log").read_bytes() == synced


def test_unsynced_truncate_reverts_and_synced_truncate_sticks(fs: PowerFS) -> None:
    path = fs.mountpoint / "log"
    write_file(path, b"a" * 9000, sync=True, dirsync=True)
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 100)
        os.pwrite(fd, b"b", 5000)  # the hole between 100 and 5000 must read as zeros
        assert os.pread(fd, 9000, 0) == b"a" * 100 + bytes(4900) + b"b"
    finally:
        os.close(fd)
    fs.power_cut()
    assert path.read_bytes() == b"a" * 9000

    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, 100)
        os.fsync(fd)
    finally:
        os.close(fd)
    fs.power_cut()
    assert path.read_bytes() == b"a" * 100

    write_file(path, b"replaced via O_TRUNC")  # no fsync: the truncation is lost too
    fs.power_cut()
    assert path.read_bytes() == b"a" * 100


def test_throughput_of_small_appends_with_fdatasync(fs: PowerFS, tmp_path: Path) -> None:
    n = 2000
    record = b"r" * 100

    def run(path: Path) -> float:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            start = time.perf_counter()
            for _ in range(n):
                os.write(fd, record)
                os.fdatasync(fd)
            return time.perf_counter() - start
        finally:
            os.close(fd)

    through_fuse = run(fs.mountpoint / "journal")
    direct = run(tmp_path / "direct-journal")
    print(
        f"\n{n} x (write {len(record)} B + fdatasync): powerfs {n / through_fuse:.0f}/s "
        f"({through_fuse:.2f} s), direct {n / direct:.0f}/s ({direct:.2f} s)"
    )
    assert through_fuse < 30
    assert (fs.backing / "journal").stat().st_size == n * len(record)
    fs.power_cut()
    assert (fs.mountpoint / "journal").stat().st_size == n * len(record)


@pytest.mark.parametrize("fsync_in_thread", [False, True])
def test_random_writes_truncates_and_fsyncs_match_a_model(make_fs: MakeFS, fsync_in_thread: bool) -> None:
    fs = make_fs(fsync_in_thread=fsync_in_thread)
    rng = random.Random(1234)
    cuts = 0
    path = fs.mountpoint / "model"
    current = bytearray()
    durable = b""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.fsync(fd)
    fsync_dir(fs.mountpoint)
    try:
        for step in range(400):
            action = rng.random()
            if action < 0.6:
                off = rng.randrange(0, len(current) + 3 * 4096)
                data = rng.randbytes(rng.choice([1, 7, 100, 4096, 5000, 13000]))
                os.pwrite(fd, data, off)
                if off > len(current):
                    current.extend(bytes(off - len(current)))
                current[off : off + len(data)] = data
            elif action < 0.75:
                size = rng.randrange(0, len(current) + 8192)
                os.ftruncate(fd, size)
                del current[size:]
                current.extend(bytes(size - len(current)))
            elif action < 0.85:
                (os.fsync if rng.random() < 0.5 else os.fdatasync)(fd)
                durable = bytes(current)
            elif action < 0.9:
                os.close(fd)
                fs.power_cut()
                cuts += 1
                fd = os.open(path, os.O_RDWR)
                current = bytearray(durable)
            assert os.fstat(fd).st_size == len(current), step
            off = rng.randrange(0, len(current) + 1)
            assert os.pread(fd, 20000, off) == bytes(current[off : off + 20000]), step
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(current)
    fs.power_cut()
    assert path.read_bytes() == durable
    assert (fs.backing / "model").read_bytes() == durable
    assert cuts > 5
    assert fs.stats()["internal_errors"] == 0


def test_torn_cut_keeps_a_subset_of_unsynced_sectors(fs: PowerFS) -> None:
    path = fs.mountpoint / "log"
    old = b"o" * 4096
    write_file(path, old, sync=True, dirsync=True)
    new = b"n" * 64 * 512
    with open(path, "r+b") as f:
        f.write(new)

    fs.power_cut(torn=True, seed=7)

    after = path.read_bytes()
    assert len(after) in (len(old), len(new))
    for i in range(0, len(after), 512):
        sector = after[i : i + 512]
        assert sector in (new[i : i + 512], old[i : i + 512], bytes(len(sector))), i
    stats = fs.stats()
    assert stats["torn_cuts"] == 1
    kept = sum(1 for i in range(0, len(after), 512) if after[i : i + 512] == new[i : i + 512] and i >= 4096)
    assert stats["last_cut"]["torn_kept_bytes"] > 0
    assert kept * 512 <= stats["last_cut"]["torn_kept_bytes"]


def test_replace_by_rename_needs_a_directory_fsync(make_fs: MakeFS) -> None:
    # edgek8s.raft.journal.write_file_durably: write tmp, fsync it, rename over the old file, fsync dir.
    fs = make_fs(metadata="dirsync")
    target = fs.mountpoint / "meta"
    write_file(target, b"term=1", sync=True, dirsync=True)

    write_file(fs.mountpoint / "meta.tmp", b"term=2", sync=True)
    os.replace(fs.mountpoint / "meta.tmp", target)
    fs.power_cut()
    assert target.read_bytes() == b"term=1"  # the rename was not durable: the old file is back
    assert sorted(os.listdir(fs.mountpoint)) == ["meta"]

    write_file(fs.mountpoint / "meta.tmp", b"term=3", sync=True)
    os.replace(fs.mountpoint / "meta.tmp", target)
    fsync_dir(fs.mountpoint)
    fs.power_cut()
    assert target.read_bytes() == b"term=3"
    assert sorted(os.listdir(fs.backing)) == ["meta"]  # the replaced file is gone, no trash left


def test_new_file_needs_file_fsync_in_filesync_mode_and_dir_fsync_in_dirsync_mode(make_fs: MakeFS) -> None:
    lenient = make_fs("lenient")
    strict = make_fs("strict", metadata="dirsync")
    for fs in (lenient, strict):
        write_file(fs.mountpoint / "new", b"payload", sync=True)
        fs.power_cut()
    assert (lenient.mountpoint / "new").read_bytes() == b"payload"
    assert not (strict.mountpoint / "new").exists()


def test_unlink_and_mkdir_are_undone_unless_the_directory_was_fsynced(make_fs: MakeFS) -> None:
    fs = make_fs(metadata="dirsync")
    mnt = fs.mountpoint
    write_file(mnt / "keep", b"k", sync=True, dirsync=True)
    os.unlink(mnt / "keep")
    (mnt / "sub").mkdir()
    write_file(mnt / "sub" / "inner", b"i", sync=True, dirsync=True)  # durable inside a non-durable dir
    assert sorted(os.listdir(mnt)) == ["sub"]

    fs.power_cut()

    assert sorted(os.listdir(mnt)) == ["keep"]
    assert (mnt / "keep").read_bytes() == b"k"
    assert sorted(os.listdir(fs.backing)) == ["keep"]

    os.unlink(mnt / "keep")
    (mnt / "sub").mkdir()
    fsync_dir(mnt)
    fs.power_cut()
    assert sorted(os.listdir(mnt)) == ["sub"]
    assert sorted(os.listdir(fs.backing)) == ["sub"]


def test_immediate_mode_only_simulates_file_data(make_fs: MakeFS) -> None:
    fs = make_fs(metadata="immediate")
    write_file(fs.mountpoint / "new", b"lost")
    fs.power_cut()
    assert (fs.mountpoint / "new").read_bytes() == b""


def test_clean_unmount_writes_everything_back(make_fs: MakeFS) -> None:
    fs = make_fs()
    write_file(fs.mountpoint / "f", b"unsynced at unmount")
    fs.stop()
    assert (fs.backing / "f").read_bytes() == b"unsynced at unmount"
    assert sorted(os.listdir(fs.backing)) == ["f"]


def test_control_file_and_stats(fs: PowerFS) -> None:
    write_file(fs.mountpoint / "f", b"x")
    assert ".powerfs-ctl" not in os.listdir(fs.mountpoint)
    stats = fs.stats()
    assert stats["dirty_files"] == 1
    assert stats["pending_entry_ops"] == 1
    fd = os.open(fs.ctl_path, os.O_WRONLY)
    try:
        os.write(fd, b"sync\n")
        with pytest.raises(OSError):
            os.write(fd, b"bogus\n")
    finally:
        os.close(fd)
    fs.power_cut()
    assert (fs.mountpoint / "f").read_bytes() == b"x"
    stats = fs.stats()
    assert stats["cuts"] == 1
    assert stats["internal_errors"] == 0
