"""Device writes per idle Raft entry: the journal's write path on ext4 as a Raspberry Pi mounts it.

``bench idlewrites`` counts ``/proc/PID/io`` write_bytes: pages the process dirtied. That is not what
reaches an SD card: on an ext4 with a journal (every Raspberry Pi OS root), the jbd2 thread writes the
filesystem journal's commits (descriptor, inode table block, commit block: ~12 KiB each), which no
process is charged for; and with large folios a dirtied folio is charged whole. This bench measures the
device: each case gets its own loop-mounted ext4 image (so ``/sys/block/loopN/stat`` counts only its
writes), and a ``DurableJournal`` there appends ``--records`` Lease-sized commands (673 bytes, a node
Lease renewal), one ``sync`` (pwrite + fdatasync) every ``--interval`` seconds (10: an idle master
journals one entry every ~8.6 s). The window runs from the first record until ``--tail`` seconds after
the last, so delayed journal commits and write-back are counted.

Filesystems: ``pi`` (``mkfs.ext4 -O ^huge_file``; mount ``defaults,noatime``: Raspberry Pi OS),
``pi-commit60`` (the same mounted with ``commit=60``), ``nojournal`` (``-O ^has_journal``, like this
VM's disk). Journal modes: ``append`` (preallocation off: the file grows with each record) and
``preallocated`` (the default: 1 MiB of zeroed space reserved ahead). All cases run at once.

Needs root, ``mkfs.ext4`` and loop devices. The last stdout line is JSON, per case: device KiB, write
requests and write_bytes pages per record, and device B/s at 7 entries per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procs

FILESYSTEMS: dict[str, tuple[list[str], str]] = {
    "pi": (["-O", "^huge_file"], "defaults,noatime"),
    "pi-commit60": (["-O", "^huge_file"], "defaults,noatime,commit=60"),
    "nojournal": (["-O", "^has_journal"], "defaults,noatime"),
}
MODES = {"append": 0, "preallocated": 1 << 20}
COMMAND = 673  # bytes: a node Lease renewal's command
ENTRIES_PER_MINUTE = 7  # an idle master with one worker (docs/raft.md)


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def _device_writes(device: str) -> tuple[int, int]:
    """(write requests, sectors written) of a block device."""
    fields = Path(f"/sys/block/{device}/stat").read_text().split()
    return int(fields[4]), int(fields[6])


def _thread_write_bytes() -> int:
    for line in Path("/proc/thread-self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


class Case:
    """One ext4 image on a loop device, mounted, and a journal appending on it."""

    def __init__(self, base: Path, fs: str, mode: str) -> None:
        self.name = f"{fs}/{mode}"
        self.mode = mode
        self.image = base / f"{fs}-{mode}.img"
        self.mount = base / f"{fs}-{mode}"
        self.device = ""
        self.result: dict[str, Any] = {}
        mkfs_options, mount_options = FILESYSTEMS[fs]
        self.image.touch()
        os.truncate(self.image, 1 << 30)  # sparse; -b 4096: below 512 MiB mke2fs would pick 1 KiB blocks
        _run("mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0", *mkfs_options,
             str(self.image))
        self.device = _run("losetup", "--find", "--show", str(self.image))
        self.mount.mkdir()
        _run("mount", "-o", mount_options, self.device, str(self.mount))

    def remove(self) -> None:
        if os.path.ismount(self.mount):
            subprocess.run(["umount", str(self.mount)], check=False)
        if self.device:
            subprocess.run(["losetup", "--detach", self.device], check=False)

    def measure(self, records: int, interval: float, settle: float, tail: float) -> None:
        from edgek8s.raft.journal import DurableJournal

        journal = DurableJournal(self.mount / "raft.journal", snapshot_path=self.mount / "none",
                                 preallocate=MODES[self.mode])
        index = 0

        def append() -> None:
            nonlocal index
            index += 1
            journal.add(os.urandom(COMMAND), index, 1)
            journal.sync()

        try:
            for _ in range(3):  # a journal that already holds entries, as a running master's does
                append()
            time.sleep(settle)
            device = Path(self.device).name
            (ios, sectors), pages = _device_writes(device), _thread_write_bytes()
            for n in range(records):
                append()
                if n < records - 1:
                    time.sleep(interval)
            time.sleep(tail)
            (ios_after, sectors_after), pages_after = _device_writes(device), _thread_write_bytes()
        finally:
            journal._destroy()
        kib = (sectors_after - sectors) / 2 / records
        self.result = {
            "device_kib_per_record": round(kib, 1),
            "device_write_requests_per_record": round((ios_after - ios) / records, 2),
            "write_bytes_pages_per_record": round((pages_after - pages) / 4096 / records, 2),
            f"device_bytes_per_s_at_{ENTRIES_PER_MINUTE}_entries_per_min": round(kib * 1024 * ENTRIES_PER_MINUTE / 60),
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench journalwrites", description=__doc__)
    parser.add_argument("--records", type=int, default=30)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between records")
    parser.add_argument("--settle", type=float, default=65.0, help="wait before the window (> commit=60)")
    parser.add_argument("--tail", type=float, default=65.0, help="the window ends this long after the last record")
    parser.add_argument("--filesystems", default=",".join(FILESYSTEMS), help="comma-separated subset")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench journalwrites: run as root (mkfs, losetup, mount)", file=sys.stderr)
        return 2
    procs.install_cleanup()
    base = procs.make_temp_dir("bench-journalwrites-")
    cases: list[Case] = []
    try:
        for fs in args.filesystems.split(","):
            for mode in MODES:
                cases.append(Case(base, fs, mode))
        print(f"{len(cases)} cases, ~{(args.settle + args.records * args.interval + args.tail) / 60:.1f} min...",
              flush=True)
        threads = [threading.Thread(target=c.measure, args=(args.records, args.interval, args.settle, args.tail))
                   for c in cases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for case in cases:
            case.remove()
        procs.remove_temp_dir(base)
    results = {c.name: c.result for c in cases}
    for name, figures in results.items():
        print(f"  {name:<26} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    print(json.dumps({"command_bytes": COMMAND, "records": args.records, "interval_s": args.interval,
                      "cases": results}))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
