"""The agent's durable memory of what it runs: pod specs and the configmaps and secrets they use.

Edge autonomy: when every master is unreachable, a restarted agent restores its pods from here. Each
object is one JSON file, written atomically (temp file, fsync, rename, fsync of the directory) and
only when its bytes changed, so an idle agent writes nothing. Secrets (and the whole tree) are 0600
files in 0700 directories.

Last call wins: saves and deletes of one object run one at a time, in the order they were called, and
one that a later call supersedes before it starts is skipped. A pod's worker saving the spec it syncs
and the informer saving that pod as terminating (or deleting it) race otherwise: two file writes in two
threads can land in either order, and a restart during an outage would run a deleted pod again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgek8s.pki.layout import write_private

KINDS = ("pods", "configmaps", "secrets")


def _write_atomically(path: Path, data: bytes) -> None:
    write_private(path, data)  # temp file, fsync, rename; 0600 in a 0700 directory
    dir_fd = os.open(path.parent, os.O_RDONLY)  # and the rename itself survives a power cut
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class LocalState:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[Path, bytes] = {}  # what is on disk, to skip unchanged writes
        self._tickets = itertools.count()
        self._latest: dict[Path, int] = {}  # path -> ticket of the newest save or delete called
        self._locks: dict[Path, asyncio.Lock] = {}

    def _path(self, kind: str, namespace: str, name: str) -> Path:
        if kind not in KINDS or "/" in namespace or "/" in name or name.startswith("."):
            raise ValueError(f"bad local state key {kind}/{namespace}/{name}")
        return self.root / kind / f"{namespace}_{name}.json"

    async def save(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        path = self._path(kind, str(meta.get("namespace", "")), str(meta["name"]))
        data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()

        def write() -> None:
            if self._known.get(path) != data:
                _write_atomically(path, data)
                self._known[path] = data
        await self._latest_wins(path, write)

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        path = self._path(kind, namespace, name)

        def remove() -> None:
            self._known.pop(path, None)
            _remove(path)
        await self._latest_wins(path, remove)

    async def _latest_wins(self, path: Path, operation: Callable[[], None]) -> None:
        ticket = next(self._tickets)  # taken when called, before any await: call order is intent order
        self._latest[path] = ticket
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:
            if self._latest.get(path) != ticket:
                return  # a later save or delete of this object was called meanwhile: it has the last word
            await asyncio.to_thread(operation)
        if self._latest.get(path) == ticket:  # no later call is waiting: forget the path
            del self._latest[path]
            self._locks.pop(path, None)

    async def load(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        path = self._path(kind, namespace, name)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        self._known[path] = data
        obj: dict[str, Any] = json.loads(data)
        return obj

    async def load_all(self, kind: str) -> list[dict[str, Any]]:
        directory = self.root / kind
        if not directory.is_dir():
            return []
        objects = []
        for path in sorted(directory.glob("*.json")):
            try:
                data = await asyncio.to_thread(path.read_bytes)
                objects.append(json.loads(data))
                self._known[path] = data
            except (OSError, ValueError):
                continue  # a torn file cannot exist (atomic rename); an unreadable one is skipped
        return objects
