"""``edgek8s snapshot restore``: build a fresh data dir from a snapshot file (like ``etcdctl snapshot restore``).

Run it on every master with the same file, then start the masters: they form a new cluster whose
state is the snapshot's. Refuses a data dir that already holds Raft data, so it never overwrites a
live member; a snapshot file that is cut short or malformed is refused before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgek8s.config import SNAPSHOT_FILE, ConfigError
from edgek8s.model.resources import ResourceId, by_id
from edgek8s.raft.seed import write_seed
from edgek8s.store.state import EXPORT_FORMAT, ClusterState, encode_object


def read_snapshot(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not lines:
        raise ConfigError(f"{path} is empty")
    try:
        header = json.loads(lines[0])
        records = [json.loads(line) for line in lines[1:]]
    except ValueError as exc:
        raise ConfigError(f"{path} is not an edgek8s snapshot: {exc}") from None
    if header.get("format") != EXPORT_FORMAT:
        raise ConfigError(f"{path}: unsupported snapshot format {header.get('format')!r}")
    if header.get("objects") != len(records):
        raise ConfigError(f"{path} is truncated: {len(records)} of {header.get('objects')} objects")
    return header, records


def snapshot_to_state(header: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    objects: dict[str, dict[str, dict[str, bytes]]] = {}
    for record in records:
        rid = str(record["res"])
        by_id(ResourceId(rid))  # unknown resource types are an error, not silently dropped
        objects.setdefault(rid, {}).setdefault(str(record["ns"]), {})[str(record["name"])] = encode_object(
            record["object"]
        )
    state = {"format": 1, "rv": int(header["rv"]), "objects": objects, "dedup": [], "masters": {}}
    ClusterState().restore(state)  # validates that the state loads
    return state


def restore_snapshot(path: Path, *, data_dir: Path, self_address: str, peers: tuple[str, ...]) -> None:
    header, records = read_snapshot(path)
    try:
        state = snapshot_to_state(header, records)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: invalid record: {exc}") from None
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ConfigError(f"--data-dir {data_dir} is not empty; restore only into a new data dir")
    write_seed(
        data_dir / SNAPSHOT_FILE,
        machine_state=state,
        index=int(header["rv"]),
        members=sorted({self_address, *peers}),
    )
