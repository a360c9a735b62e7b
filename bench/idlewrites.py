"""Idle disk writes of an idle production cluster, per process, and the Raft entries that cause them.

Setup: 3 masters and ``--workers`` (1) workers formed exactly as ``edgek8s up`` forms them
(``local_cluster.form_cluster``: cluster-init TLS masters, workers joined by token; log level WARNING),
no pods; ``--node-lease-duration-seconds`` is passed to the agents (renewal every quarter of it). After
``--settle`` seconds, ``/proc/<pid>/io`` write_bytes of each master and agent over ``--seconds`` (120),
and the Raft entries committed meanwhile, read from a copy of master-1's journal and grouped by
operation and object (a node Lease renewal every 10 s per node, the controller Lease every 60 s; a
``barrier`` is a linearizable read's no-op). ``write_bytes`` counts whole pages: each fdatasync'd entry
dirties at least one (docs/raft.md, "Idle disk writes"), so the pages and entries are reported too: one
page more or less is 4096/seconds B/s. What reaches the device (the filesystem's own journal commits
included, which no process is charged for) is measured by ``bench journalwrites``.

Anchor: an idle k3s server writes 6-10 kB/s; target <= 1 kB/s per process (issue #6, SD-card wear).
The last stdout line is JSON with ``idle_disk_write_bytes_per_s`` (the largest), per process, and the
entries per minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench import procs
from bench.podstartup import LOG_LEVEL

_REGULAR = 0  # PySyncObj's command type of a replicated call: pickled (function id, args)


def journal_entries(data_dir: Path, scratch: Path) -> list[tuple[int, bytes]]:
    """(index, command) of every entry in a copy of ``data_dir``'s journal (the live file is not opened:
    loading cuts a torn tail)."""
    from edgek8s.config import JOURNAL_FILE
    from edgek8s.raft.journal import DurableJournal

    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / JOURNAL_FILE
    shutil.copyfile(data_dir / JOURNAL_FILE, copy)
    journal = DurableJournal(copy, snapshot_path=scratch / "none")
    try:
        return [(index, command) for command, index, _term in journal[0:len(journal)]]
    finally:
        journal._destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def describe(command: bytes) -> str:
    """``op resource/name`` of a store command, ``barrier`` for a no-op, or the PySyncObj entry type."""
    if not command or command[0] != _REGULAR:
        return f"raft-internal-{command[0] if command else 'empty'}"
    _func, (payload,) = pickle.loads(command[1:])  # our own journal: trusted
    if not payload:
        return "barrier"
    body = json.loads(payload)
    return f"{body.get('op')} {body.get('res', '')}/{body.get('name', '')}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench idlewrites", description=__doc__)
    parser.add_argument("--seconds", type=float, default=120.0, help="the idle window")
    parser.add_argument("--settle", type=float, default=20.0, help="wait this long after forming first")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--node-lease-duration-seconds", type=int, default=None,
                        help="the agents' node Lease duration (default: theirs, 40 s, renewed every 10 s)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench idlewrites: run as root (the worker's agent runs Podman rootful)", file=sys.stderr)
        return 2
    result = procs.run_main(run(args))
    print(f"idle disk writes (B/s): {result['idle_disk_write_bytes_per_s_by_process']} "
          "(target <= 1 kB/s per process; idle k3s server 6-10 kB/s)")
    print(f"write_bytes pages: {result['write_bytes_pages_by_process']}, Raft entries committed: "
          f"{result['raft_entries']} ({result['master_pages_per_entry']} pages per entry on master-1)")
    print(f"Raft entries per minute: {result['raft_entries_per_minute']}")
    print(json.dumps(result))
    return 0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgek8s.server.local_cluster import down

    procs.install_cleanup()
    base = procs.make_temp_dir("bench-idlewrites-")
    state_dir = base / "cluster"
    try:
        manifest = await asyncio.to_thread(_form, state_dir, args.workers, args.node_lease_duration_seconds)
        watched = {**{m["name"]: int(m["pid"]) for m in manifest["masters"]},
                   **{f"agent-{w['name']}": int(w["pid"]) for w in manifest["workers"]}}
        data_dir = state_dir / manifest["masters"][0]["name"] / "data"
        await asyncio.sleep(args.settle)
        first = len(await asyncio.to_thread(journal_entries, data_dir, base / "scratch"))
        before = {k: procs.write_bytes(p) or 0 for k, p in watched.items()}
        print(f"idle for {args.seconds:.0f}s...", flush=True)
        await asyncio.sleep(args.seconds)
        after = {k: procs.write_bytes(p) or 0 for k, p in watched.items()}
        entries = (await asyncio.to_thread(journal_entries, data_dir, base / "scratch"))[first:]
    finally:
        await asyncio.to_thread(down, state_dir, quiet=True)
        procs.remove_temp_dir(base)
    idle = {k: round((after[k] - before[k]) / args.seconds, 1) for k in watched}
    pages = {k: (after[k] - before[k]) // 4096 for k in watched}
    kinds = Counter(describe(command) for _index, command in entries)
    lease = args.node_lease_duration_seconds or "default (40)"
    return {
        "configuration": f"3 masters (cluster-init, TLS, mTLS) and {args.workers} worker(s) formed as `edgek8s up` "
                         f"does, no pods, log level {LOG_LEVEL}, node Lease duration {lease} s",
        "seconds": args.seconds,
        "workers": args.workers,
        "idle_disk_write_bytes_per_s": max(idle.values()),
        "idle_disk_write_bytes_per_s_by_process": idle,
        "write_bytes_pages_by_process": pages,
        "raft_entries": len(entries),
        "master_pages_per_entry": round(pages["master-1"] / len(entries), 2) if entries else None,
        "raft_entries_per_minute": {k: round(60 * n / args.seconds, 1) for k, n in kinds.most_common()},
    }


def _form(state_dir: Path, workers: int, lease_duration: int | None) -> dict[str, Any]:
    from edgek8s.server.local_cluster import form_cluster

    os.environ["EDGEK8S_LOG_LEVEL"] = LOG_LEVEL  # inherited by every node process
    if lease_duration is not None:
        os.environ["EDGEK8S_NODE_LEASE_DURATION_SECONDS"] = str(lease_duration)
    return form_cluster(state_dir, masters=3, workers=workers, sample_app=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
