"""Admin commands that talk to a running cluster: ``status`` and ``snapshot save``."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from pathlib import Path
from typing import Any

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.raft.journal import fsync_directory


async def _master_status(url: str, tls: ssl.SSLContext | None) -> dict[str, Any] | str:
    try:
        async with RestClient(url, timeout=3.0, ssl_context=tls) as client:
            status: dict[str, Any] = await client.get("/edgek8s/v1/status")
            ready = await client.request("GET", "/readyz")
            status["ready"] = ready == b"ok"
            return status
    except errors.StatusError as exc:
        return exc.message


async def print_status(server: str, tls: ssl.SSLContext | None = None) -> int:
    first = await _master_status(server, tls)
    if isinstance(first, str):
        print(f"cannot reach {server}: {first}")
        return 1
    masters = first.get("masters") or {first["name"]: {"api": server, "raft": first["raftAddress"]}}
    names = sorted(masters)
    results = await asyncio.gather(*(_master_status(masters[n]["api"], tls) for n in names))
    print(f"leader: {first['leader']}   term: {first['term']}   members: {', '.join(first['members'])}")
    print(f"{'NAME':<10} {'RAFT':<22} {'API':<28} {'ROLE':<9} {'TERM':>5} {'APPLIED':>9} {'HEALTH'}")
    healthy = 0
    for name, result in zip(names, results, strict=True):
        info = masters[name]
        if isinstance(result, str):
            print(f"{name:<10} {info['raft']:<22} {info['api']:<28} {'-':<9} {'-':>5} {'-':>9} unreachable: {result}")
            continue
        role = "leader" if result["isLeader"] else "follower"
        health = "ready" if result["ready"] else "not ready"
        healthy += bool(result["ready"])
        print(
            f"{name:<10} {info['raft']:<22} {info['api']:<28} {role:<9} {result['term']:>5} "
            f"{result['appliedIndex']:>9} {health}"
        )
    return 0 if healthy > len(names) // 2 else 1


async def save_snapshot(server: str, path: Path, tls: ssl.SSLContext | None = None) -> int:
    """Stream a consistent snapshot into ``path`` (written to a temp file, fsynced, then renamed)."""
    lines: list[bytes] = []
    async with RestClient(server, timeout=300.0, ssl_context=tls) as client:
        async for line in client.stream_lines("/edgek8s/v1/snapshot"):
            lines.append(line)
    header = json.loads(lines[0]) if lines else {}
    count = len(lines) - 1
    if count < 0 or count != header.get("objects"):
        print(f"snapshot from {server} was cut short; nothing written")
        return 1
    await asyncio.to_thread(_write_durably, path, b"".join(lines))
    print(f"saved {count} objects at resourceVersion {header['rv']} to {path}")
    return 0


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent.resolve())
