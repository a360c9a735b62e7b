"""A 3-master edgek8s cluster on loopback, started as 3 `edgek8s server` processes.

Written against the server's CLI/HTTP contract, not its code:
  <python> -m edgek8s server --name mN --data-dir DIR --raft-address 127.0.0.1:R
      --peer 127.0.0.1:R' --peer 127.0.0.1:R'' --listen 127.0.0.1:A --cluster-secret-file FILE
  GET  /readyz                 200 once the node knows a leader and has caught up
  GET  /edgek8s/v1/status      {"leader": "<raft address>|null", "term", "appliedIndex", ...}
  POST /api/v1/namespaces/default/configmaps   201 with the created object
Any master accepts writes (followers forward to the leader). If the server does
not start, `start` raises `EdgeUnavailable` with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.failover import agreed_leader
from bench.load import Request, send_once
from edgek8s._util.ports import free_ports


class EdgeUnavailable(RuntimeError):
    """The edgek8s server could not be started or did not become ready."""


class EdgeError(RuntimeError):
    pass


@dataclass
class Master:
    name: str
    raft_port: int
    api_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def raft_address(self) -> str:
        return f"{procs.LOOPBACK}:{self.raft_port}"

    @property
    def api_url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.api_port}"


def write_secret(path: Path) -> None:
    """32 random bytes, hex-encoded, in a file only the owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


class EdgeCluster(procs.ProcessGroup):
    """Start with `await cluster.start(session)`, always `cluster.stop()` (or use
    `async with`). Node indexes are 0..2; names m1..m3."""

    node_count = 3

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.base_dir = procs.make_temp_dir("bench-edgek8s-")
        self.secret_file = self.base_dir / "cluster.secret"
        write_secret(self.secret_file)
        ports = free_ports(2 * self.node_count)
        self.masters = [
            Master(
                name=f"m{i + 1}",
                raft_port=ports[2 * i],
                api_port=ports[2 * i + 1],
                data_dir=self.base_dir / f"m{i + 1}",
                log_path=self.base_dir / f"m{i + 1}.log",
            )
            for i in range(self.node_count)
        ]
        self._by_raft_address = {m.raft_address: i for i, m in enumerate(self.masters)}

    # -- process control -------------------------------------------------

    def argv(self, index: int) -> list[str]:
        m = self.masters[index]
        argv = [
            self.python, "-m", "edgek8s", "server",
            "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--raft-address", m.raft_address,
        ]  # fmt: skip
        for other in self.masters:
            if other is not m:
                argv += ["--peer", other.raft_address]
        argv += ["--listen", f"{procs.LOOPBACK}:{m.api_port}", "--cluster-secret-file", str(self.secret_file)]
        return argv

    def _spawn(self, index: int) -> None:
        m = self.masters[index]
        m.data_dir.mkdir(exist_ok=True)
        m.proc = procs.spawn(self.argv(index), m.log_path)

    async def start(self, session: aiohttp.ClientSession, timeout_s: float = 60.0) -> None:
        for i in range(self.node_count):
            self._spawn(i)
        deadline = time.monotonic() + timeout_s
        try:
            for i in range(self.node_count):
                await self.wait_ready(session, i, deadline)
        except EdgeError as exc:
            raise EdgeUnavailable(str(exc)) from exc

    member_word = "master"
    error = EdgeError

    def members_of_group(self) -> list[Any]:
        return self.masters

    async def restart(self, session: aiohttp.ClientSession, node: int, timeout_s: float) -> None:
        self.respawn(node)
        await self.wait_ready(session, node, time.monotonic() + timeout_s)

    def pids(self) -> list[int | None]:
        return [m.proc.pid if m.proc is not None and m.proc.poll() is None else None for m in self.masters]

    def rss_bytes(self) -> list[int | None]:
        return [None if pid is None else procs.rss_bytes(pid) for pid in self.pids()]

    # -- API -------------------------------------------------------------

    async def wait_ready(self, session: aiohttp.ClientSession, node: int, deadline: float) -> None:
        m = self.masters[node]
        last = "no answer yet"
        while time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                tail = procs.log_tail(m.log_path)
                raise EdgeError(f"{m.name} exited with code {m.proc.returncode}: {tail}")
            try:
                status, body, _ = await send_once(session, ("GET", f"{m.api_url}/readyz", None), 2.0)
                if status == 200:
                    return
                last = f"/readyz HTTP {status} {body[:200]!r}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.05)
        raise EdgeError(f"{m.name} not ready in time ({last}); log: {procs.log_tail(m.log_path)}")

    async def status(self, session: aiohttp.ClientSession, node: int, timeout_s: float = 2.0) -> dict[str, Any]:
        url = f"{self.masters[node].api_url}/edgek8s/v1/status"
        status, body, _ = await send_once(session, ("GET", url, None), timeout_s)
        if status != 200:
            raise EdgeError(f"status of {self.masters[node].name}: HTTP {status} {body[:200]!r}")
        data: dict[str, Any] = json.loads(body)
        return data

    async def find_leader(self, session: aiohttp.ClientSession, timeout_s: float) -> int:
        """Index of the live master that a majority of masters call the leader."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            views: dict[int, int | None] = {}
            for i, pid in enumerate(self.pids()):
                if pid is None:
                    continue
                try:
                    st = await self.status(session, i)
                except (aiohttp.ClientError, TimeoutError, OSError, EdgeError, ValueError) as exc:
                    last = f"{self.masters[i].name}: {type(exc).__name__}: {exc}"
                    continue
                leader = st.get("leader")
                views[i] = self._by_raft_address.get(leader) if isinstance(leader, str) else None
            index = agreed_leader(views, self.node_count)
            if index is not None and self.pids()[index] is not None:
                return index
            last = f"leader views {views}"
            await asyncio.sleep(0.05)
        raise EdgeError(f"no live leader found in time ({last})")

    def create_request(self, node: int, name: str, value: str) -> Request:
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}
        url = f"{self.masters[node].api_url}/api/v1/namespaces/default/configmaps"
        return ("POST", url, json.dumps(obj, separators=(",", ":")).encode())

    def write_request(self, node: int, tag: str) -> Request:
        return self.create_request(node, f"failover-{tag}", "x" * 1024)

    @staticmethod
    def write_ok(status: int, body: bytes) -> bool:
        return status == 201
