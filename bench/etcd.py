"""A real 3-member etcd 3.4 cluster on loopback, the anchor of the store benchmark.

Each member gets its own client and peer port and a data dir in a temp dir;
durability is etcd's default (the WAL is fsynced before a put is acknowledged).
Writes go through the v3 JSON gateway (`POST /v3/kv/put`, base64 key and
value); any member accepts them (followers forward proposals to the leader).
Election settings default to etcd's own (heartbeat 100 ms, election timeout
1000 ms, pre-vote off) unless `EtcdCluster(heartbeat_ms=..., election_ms=...)`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.failover import agreed_leader
from bench.load import Request, send_once
from edgek8s._util.ports import free_ports

ETCD_BINARY = "/usr/bin/etcd"
DEFAULT_HEARTBEAT_MS = 100
DEFAULT_ELECTION_MS = 1000


class EtcdError(RuntimeError):
    pass


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def etcd_version() -> str:
    out = subprocess.run([ETCD_BINARY, "--version"], capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.splitlines()[0].split(":", 1)[1].strip()


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{procs.LOOPBACK}:{self.peer_port}"


class EtcdCluster(procs.ProcessGroup):
    """Start with `await cluster.start(session)`, always `cluster.stop()` (or use
    `async with`). Node indexes are 0..2."""

    node_count = 3

    def __init__(
        self,
        heartbeat_ms: int | None = None,
        election_ms: int | None = None,
        binary: str = ETCD_BINARY,
    ) -> None:
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.binary = binary
        self.base_dir = procs.make_temp_dir("bench-etcd-")
        self.token = f"bench-{secrets.token_hex(4)}"
        ports = free_ports(2 * self.node_count)
        self.members = [
            EtcdMember(
                name=f"e{i + 1}",
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                data_dir=self.base_dir / f"e{i + 1}.etcd",
                log_path=self.base_dir / f"e{i + 1}.log",
            )
            for i in range(self.node_count)
        ]
        self._member_ids: dict[str, int] = {}

    @property
    def election_settings(self) -> dict[str, int]:
        return {
            "heartbeat_ms": self.heartbeat_ms or DEFAULT_HEARTBEAT_MS,
            "election_ms": self.election_ms or DEFAULT_ELECTION_MS,
        }

    # -- process control -------------------------------------------------

    def _argv(self, m: EtcdMember) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        argv = [
            self.binary,
            "--name", m.name,
            "--data-dir", str(m.data_dir),
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "warn",
        ]  # fmt: skip
        if self.heartbeat_ms is not None:
            argv += ["--heartbeat-interval", str(self.heartbeat_ms)]
        if self.election_ms is not None:
            argv += ["--election-timeout", str(self.election_ms)]
        return argv

    def _spawn(self, index: int) -> None:
        m = self.members[index]
        m.proc = procs.spawn(self._argv(m), m.log_path)

    async def start(self, session: aiohttp.ClientSession, timeout_s: float = 30.0) -> None:
        for i in range(self.node_count):
            self._spawn(i)
        deadline = time.monotonic() + timeout_s
        for i in range(self.node_count):
            await self._wait_has_leader(session, i, deadline)
        for i in range(self.node_count):
            status = await self.status(session, i)
            self._member_ids[status["header"]["member_id"]] = i

    member_word = "member"
    error = EtcdError

    def members_of_group(self) -> list[Any]:
        return self.members

    async def restart(self, session: aiohttp.ClientSession, node: int, timeout_s: float) -> None:
        self.respawn(node)
        deadline = time.monotonic() + timeout_s
        await self._wait_has_leader(session, node, deadline)
        await self._wait_caught_up(session, node, deadline)

    def pids(self) -> list[int | None]:
        return [m.proc.pid if m.proc is not None and m.proc.poll() is None else None for m in self.members]

    def rss_bytes(self) -> list[int | None]:
        return [None if pid is None else procs.rss_bytes(pid) for pid in self.pids()]

    # -- API -------------------------------------------------------------

    async def status(self, session: aiohttp.ClientSession, node: int, timeout_s: float = 2.0) -> dict[str, Any]:
        url = f"{self.members[node].client_url}/v3/maintenance/status"
        status, body, _ = await send_once(session, ("POST", url, b"{}"), timeout_s)
        if status != 200:
            raise EtcdError(f"status of {self.members[node].name}: HTTP {status} {body[:200]!r}")
        data: dict[str, Any] = json.loads(body)
        return data

    async def _wait_has_leader(self, session: aiohttp.ClientSession, node: int, deadline: float) -> None:
        m = self.members[node]
        last = "no answer yet"
        while time.monotonic() < deadline:
            if m.proc is not None and m.proc.poll() is not None:
                raise EtcdError(f"{m.name} exited with {m.proc.returncode}: {procs.log_tail(m.log_path)}")
            try:
                st = await self.status(session, node)
                if st.get("leader", "0") not in ("0", 0):
                    return
                last = "no leader"
            except (aiohttp.ClientError, TimeoutError, OSError, EtcdError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.05)
        raise EtcdError(f"{m.name} has no leader in time ({last}): {procs.log_tail(m.log_path)}")

    async def _wait_caught_up(self, session: aiohttp.ClientSession, node: int, deadline: float) -> None:
        leader = await self.find_leader(session, timeout_s=max(0.1, deadline - time.monotonic()))
        target = int((await self.status(session, leader))["raftIndex"])
        while time.monotonic() < deadline:
            try:
                st = await self.status(session, node)
                if int(st.get("raftAppliedIndex", 0)) >= target:
                    return
            except (aiohttp.ClientError, TimeoutError, OSError, EtcdError, ValueError):
                pass
            await asyncio.sleep(0.05)
        raise EtcdError(f"{self.members[node].name} did not catch up to index {target} in time")

    async def find_leader(self, session: aiohttp.ClientSession, timeout_s: float) -> int:
        """Index of the live member that a majority of members call the leader."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            views: dict[int, int | None] = {}
            for i, pid in enumerate(self.pids()):
                if pid is None:
                    continue
                try:
                    st = await self.status(session, i)
                except (aiohttp.ClientError, TimeoutError, OSError, EtcdError, ValueError):
                    continue
                views[i] = self._member_ids.get(st.get("leader", "0"))
            leader = agreed_leader(views, self.node_count)
            if leader is not None and self.pids()[leader] is not None:
                return leader
            await asyncio.sleep(0.05)
        raise EtcdError("no live leader found in time")

    def put_request(self, node: int, key: str, value: bytes) -> Request:
        body = f'{{"key":"{b64(key.encode())}","value":"{b64(value)}"}}'.encode()
        return ("POST", f"{self.members[node].client_url}/v3/kv/put", body)

    def write_request(self, node: int, tag: str) -> Request:
        return self.put_request(node, f"/bench/failover/{tag}", b"x" * 1024)

    @staticmethod
    def write_ok(status: int, body: bytes) -> bool:
        # The gateway answers 200 with {"header": {... "revision": ...}}; errors
        # carry another status and {"error": ..., "code": ...}.
        return status == 200 and b'"revision"' in body and b'"error"' not in body
