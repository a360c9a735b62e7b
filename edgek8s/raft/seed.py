"""Seed a new replica's data dir with a state, in PySyncObj's own snapshot format (for restores).

PySyncObj loads ``fullDumpFile`` at its first tick: a gzip'd pickle of
``([own attributes, consumer state], last entry, entry before it, cluster members)``. Writing one by
hand, with two no-op entries at the snapshot's index, makes the replica start as if it had compacted
its log at that index; every master of the restored cluster is seeded from the same file, so their
states agree and resourceVersions continue from the snapshot's.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

from pysyncobj import pickle
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import _COMMAND_TYPE, _bchr

from edgek8s.raft.journal import write_file_durably


def write_seed(snapshot_path: Path, *, machine_state: Any, index: int, members: list[str]) -> None:
    """Write the snapshot file of a fresh replica whose state is ``machine_state`` at ``index``."""
    index = max(index, 2)
    noop = _bchr(_COMMAND_TYPE.NO_OP)
    previous, last = (noop, index - 1, 0), (noop, index, 0)
    data = ([{}, machine_state], last, previous, {TCPNode(address) for address in members})
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as compressed:
        pickle.dump(data, compressed)
    snapshot_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_file_durably(snapshot_path, buffer.getvalue())
