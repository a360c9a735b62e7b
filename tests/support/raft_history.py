"""The committed Raft log of a stopped master, decoded: for checking fencing in chaos histories.

``committed_commands(data_dir, upto)`` reads a *copy* of the journal (opening the live file would let
the journal cut a torn tail) and returns every regular entry up to Raft index ``upto`` as
``LogEntry(index, term, command)``. ``fencing_violations`` walks them in log order with the epoch in
force (set by each ``claim-leadership`` entry, as ``ClusterState.apply`` does) and reports:
- a write fenced at an epoch below the one in force (apply rejected it, but a stale leader got it
  committed into the log), and
- a write fenced at epoch E appended in a Raft term other than E (only the leader of term E makes
  writes fenced at E: anything else means a deposed leader's write reached the log).
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgek8s.config import JOURNAL_FILE, SNAPSHOT_FILE
from edgek8s.model import jsoncodec
from edgek8s.raft.journal import DurableJournal

_REGULAR = 0  # PySyncObj's _COMMAND_TYPE.REGULAR: a replicated call, pickled (func id, args)


@dataclass(frozen=True, slots=True)
class LogEntry:
    index: int
    term: int
    command: dict[str, Any]


def committed_commands(data_dir: Path, upto: int) -> list[LogEntry]:
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / JOURNAL_FILE
        shutil.copyfile(data_dir / JOURNAL_FILE, copy)
        meta = data_dir / (JOURNAL_FILE + ".meta")
        if meta.exists():
            shutil.copyfile(meta, Path(scratch) / meta.name)
        journal = DurableJournal(copy, snapshot_path=Path(scratch) / SNAPSHOT_FILE)
        try:
            entries = [journal[i] for i in range(len(journal))]
        finally:
            journal._destroy()
    found = []
    for raw, index, term in entries:
        if index > upto or not raw or raw[0] != _REGULAR:
            continue
        _func, (payload,) = pickle.loads(raw[1:])  # our own journal: trusted
        if payload:  # an empty payload is a barrier
            found.append(LogEntry(index, term, jsoncodec.loads(payload)))
    return found


def fencing_violations(entries: list[LogEntry], start_epoch: int = 0) -> list[str]:
    epoch = start_epoch
    problems = []
    for entry in entries:
        command = entry.command
        if command.get("op") == "claim-leadership":
            epoch = max(epoch, int(command["epoch"]))
            continue
        fence = command.get("fence")
        if fence is None:
            continue
        if int(fence) < epoch:
            problems.append(f"index {entry.index}: {command.get('op')} fenced at {fence} committed in epoch {epoch}")
        if int(fence) != entry.term:
            problems.append(f"index {entry.index}: {command.get('op')} fenced at {fence} appended in term {entry.term}")
    return problems
