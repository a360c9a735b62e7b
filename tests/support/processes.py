"""ProcessCluster: N real ``edgek8s server`` processes on loopback, for chaos tests.

Unlike ``tests.support.cluster.LocalCluster`` (every master in the test's own process), each master here
is a separate OS process that can be killed with SIGKILL mid-write, the way a crash or power loss ends
it. Every master runs in its own session (so its own process group, including any child PySyncObj forks
for snapshots); ``kill`` sends SIGKILL to the whole group and returns only once no process of the group is
left running, so nothing holds the data dir open afterwards (required before a ``PowerFS.power_cut``).

A master is restarted with exactly the same flags (name, data dir, Raft and API ports), as a rebooted
host would be. Data dirs default to ``<base>/<name>`` and can be given per master (e.g. on a PowerFS
mount). Logs go to ``<base>/<name>.log`` (appended across restarts). ``stop_all`` ends everything; use it
in a fixture finalizer so a failing test leaves no process behind.

The HTTP helpers (``status``, ``wait_ready``, ``find_leader``) take the test's ``aiohttp.ClientSession``;
all traffic goes to 127.0.0.1, or, with ``hosts`` (tests/support/simhosts.py), each master runs in its
own simulated host on the standard ports and the test's clients must run in the controller namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from edgek8s._util.ports import free_ports

LOOPBACK = "127.0.0.1"
HOST_RAFT_PORT, HOST_API_PORT = 7946, 6443  # on a simulated host of its own, as on a Pi
_REPO_ROOT = Path(__file__).resolve().parents[2]


def group_members(pgid: int) -> list[int]:
    """Pids of the processes of group ``pgid`` that are still running (zombies excluded: they hold no files)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # comm may contain spaces and parentheses: the fields we need follow the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


class ClusterError(RuntimeError):
    pass


class Placement(Protocol):
    """Where a master runs: a simulated host (tests/support/simhosts.py ``Host``) with its own address."""

    @property
    def address(self) -> str: ...

    def argv(self, *command: str) -> list[str]: ...


@dataclass
class MasterProcess:
    name: str
    raft_port: int
    api_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    host: Placement | None = None  # None: loopback of this namespace

    @property
    def address(self) -> str:
        return LOOPBACK if self.host is None else self.host.address

    @property
    def raft_address(self) -> str:
        return f"{self.address}:{self.raft_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.api_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class ProcessCluster:
    """Masters ``m1..mN``; indexes are 0-based. Nothing runs until ``start_all``/``start``."""

    def __init__(
        self,
        base: Path,
        size: int = 3,
        *,
        data_dirs: Sequence[Path] | None = None,
        python: str = sys.executable,
        extra_env: dict[str, str] | None = None,
        hosts: Sequence[Placement] | None = None,
    ) -> None:
        if data_dirs is not None and len(data_dirs) != size:
            raise ValueError("one data dir per master")
        if hosts is not None and len(hosts) != size:
            raise ValueError("one host per master")
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.python = python
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), self.env.get("PYTHONPATH")) if p)
        self.env.update(extra_env or {})
        self.secret_file = self.base / "cluster.secret"
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        # Each simulated host has its own address: every master uses the standard ports there.
        ports = free_ports(2 * size) if hosts is None else [HOST_RAFT_PORT, HOST_API_PORT] * size
        self.masters = [
            MasterProcess(
                name=f"m{i + 1}",
                raft_port=ports[2 * i],
                api_port=ports[2 * i + 1],
                data_dir=Path(data_dirs[i]) if data_dirs is not None else self.base / f"m{i + 1}",
                log_path=self.base / f"m{i + 1}.log",
                host=None if hosts is None else hosts[i],
            )
            for i in range(size)
        ]
        self._index_by_raft = {m.raft_address: i for i, m in enumerate(self.masters)}

    # --- processes -----------------------------------------------------------------------------------

    def argv(self, index: int) -> list[str]:
        m = self.masters[index]
        argv = [self.python, "-m", "edgek8s", "server", "--name", m.name, "--data-dir", str(m.data_dir)]
        argv += ["--raft-address", m.raft_address]
        for other in self.masters:
            if other is not m:
                argv += ["--peer", other.raft_address]
        argv += ["--listen", f"{m.address}:{m.api_port}", "--cluster-secret-file", str(self.secret_file)]
        return argv if m.host is None else m.host.argv(*argv)

    def start(self, index: int) -> None:
        m = self.masters[index]
        if m.running:
            raise ClusterError(f"{m.name} is already running")
        with open(m.log_path, "ab") as log:
            log.write(f"=== start #{m.starts + 1} of {m.name} at {time.time():.3f} ===\n".encode())
            log.flush()
            m.proc = subprocess.Popen(
                self.argv(index),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.base,
            )
        m.starts += 1

    def start_all(self) -> None:
        for i, m in enumerate(self.masters):
            if not m.running:
                self.start(i)

    def kill(self, index: int) -> None:
        """SIGKILL the master's whole process group; return once none of it runs any more."""
        self.kill_many([index])

    def kill_many(self, indexes: Sequence[int], timeout: float = 10.0) -> None:
        """SIGKILL several masters at (nearly) the same instant: all signals first, then the reaping."""
        procs = [self.masters[i].proc for i in indexes]
        for proc in procs:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for i, proc in zip(indexes, procs, strict=True):
            if proc is None:
                continue
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            while group_members(proc.pid):  # a forked snapshot writer may outlive the master briefly
                if time.monotonic() > deadline:
                    raise ClusterError(f"{self.masters[i].name}: processes {group_members(proc.pid)} survive SIGKILL")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                time.sleep(0.01)
            self.masters[i].proc = None

    def freeze(self, indexes: Sequence[int]) -> None:
        """SIGSTOP the masters' process groups (a frozen master does nothing, as at the instant of a power loss)."""
        self._signal(indexes, signal.SIGSTOP)

    def thaw(self, indexes: Sequence[int]) -> None:
        self._signal(indexes, signal.SIGCONT)

    def _signal(self, indexes: Sequence[int], sig: int) -> None:
        for i in indexes:
            proc = self.masters[i].proc
            if proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)

    def kill_all(self) -> None:
        self.kill_many([i for i, m in enumerate(self.masters) if m.proc is not None])

    def stop_all(self, grace: float = 5.0) -> None:
        """SIGTERM every master, SIGKILL what is left after ``grace`` seconds. Safe to call twice."""
        live = [(i, m.proc) for i, m in enumerate(self.masters) if m.proc is not None]
        for _, proc in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
                os.killpg(proc.pid, signal.SIGCONT)  # a frozen master must run to act on SIGTERM
        deadline = time.monotonic() + grace
        for _, proc in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self.kill_many([i for i, _ in live])

    def running(self) -> list[int]:
        return [i for i, m in enumerate(self.masters) if m.running]

    def index_of(self, raft_address: str | None) -> int | None:
        return None if raft_address is None else self._index_by_raft.get(raft_address)

    def log_tail(self, index: int, max_bytes: int = 3000) -> str:
        try:
            data = self.masters[index].log_path.read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode("utf-8", "replace")

    def log_errors(self) -> list[str]:
        """Lines of the masters' logs that report an internal error (ERROR/CRITICAL records, tracebacks).

        A healthy master logs none, crashes and power cuts included: a raft tick or an apply that raised
        is a bug even when every client-visible check passes.
        """
        found = []
        for m in self.masters:
            try:
                text = m.log_path.read_text(errors="replace")
            except OSError:
                continue
            found += [
                f"{m.name}: {line}"
                for line in text.splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
            ]
        return found

    def describe(self) -> str:
        """Log tails of every master, for assertion messages."""
        return "\n".join(f"--- {m.name} ({m.log_path}) ---\n{self.log_tail(i)}" for i, m in enumerate(self.masters))

    # --- HTTP ------------------------------------------------------------------------------------------

    async def status(self, session: aiohttp.ClientSession, index: int, timeout: float = 2.0) -> dict[str, Any]:
        url = f"{self.masters[index].url}/edgek8s/v1/status"
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            if response.status != 200:
                raise ClusterError(f"status of {self.masters[index].name}: HTTP {response.status} {body[:200]!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    async def wait_ready(
        self, session: aiohttp.ClientSession, indexes: Sequence[int] | None = None, timeout: float = 30.0
    ) -> None:
        """Wait until ``/readyz`` answers 200 on every given master (default: all)."""
        deadline = time.monotonic() + timeout
        for index in range(len(self.masters)) if indexes is None else indexes:
            m = self.masters[index]
            last = "no answer yet"
            while True:
                if m.proc is None or m.proc.poll() is not None:
                    code = None if m.proc is None else m.proc.returncode
                    raise ClusterError(f"{m.name} is not running (exit code {code}):\n{self.log_tail(index)}")
                try:
                    async with session.get(f"{m.url}/readyz", timeout=aiohttp.ClientTimeout(total=3.0)) as response:
                        body = await response.read()
                        if response.status == 200:
                            break
                        last = f"HTTP {response.status} {body[:200]!r}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise ClusterError(f"{m.name} not ready in {timeout} s ({last}):\n{self.log_tail(index)}")
                await asyncio.sleep(0.05)

    async def find_leader(self, session: aiohttp.ClientSession, timeout: float = 15.0) -> tuple[int, dict[str, Any]]:
        """The running master that says it is the leader and that a majority of all masters (itself
        included) name as leader, with its status. A deposed leader that has not noticed yet is not returned.
        """
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            statuses: dict[int, dict[str, Any]] = {}
            for index in self.running():
                try:
                    statuses[index] = await self.status(session, index, timeout=1.0)
                except (aiohttp.ClientError, TimeoutError, OSError, ClusterError, ValueError) as exc:
                    last = f"{self.masters[index].name}: {type(exc).__name__}: {exc}"
            for index, status in statuses.items():
                address = self.masters[index].raft_address
                backers = [i for i, s in statuses.items() if s.get("leader") == address]
                if status.get("isLeader") and len(backers) > len(self.masters) / 2:
                    return index, status
            if statuses:
                last = f"views of the leader: {[(self.masters[i].name, s.get('leader')) for i, s in statuses.items()]}"
            await asyncio.sleep(0.05)
        raise ClusterError(f"no leader among running masters in {timeout} s ({last})")

    async def wait_converged(
        self, session: aiohttp.ClientSession, timeout: float = 20.0, settle: float = 0.3
    ) -> list[dict[str, Any]]:
        """Wait until every running master reports the same appliedIndex (== commitIndex), stable for ``settle``.

        Returns the statuses. Only meaningful while no client writes or reads with barriers are in flight.
        """
        deadline = time.monotonic() + timeout
        last: list[Any] = []
        while time.monotonic() < deadline:
            try:
                statuses = [await self.status(session, i) for i in self.running()]
            except (aiohttp.ClientError, TimeoutError, OSError, ClusterError, ValueError) as exc:
                last = [repr(exc)]
                await asyncio.sleep(0.1)
                continue
            applied = {s["appliedIndex"] for s in statuses}
            if len(applied) == 1 and all(s["commitIndex"] == s["appliedIndex"] for s in statuses):
                await asyncio.sleep(settle)
                try:
                    again = [await self.status(session, i) for i in self.running()]
                except (aiohttp.ClientError, TimeoutError, OSError, ClusterError, ValueError) as exc:
                    last = [repr(exc)]
                    continue
                if {s["appliedIndex"] for s in again} == applied:
                    return again
            last = [(s["name"], s["commitIndex"], s["appliedIndex"]) for s in statuses]
            await asyncio.sleep(0.1)
        raise ClusterError(f"replicas did not converge in {timeout} s: {last}")


# --- client-side history of ConfigMap creates -------------------------------------------------------

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
_UNKNOWN_STATUSES = {500, 502, 503, 504}  # the write may or may not have been applied


@dataclass
class WriteHistory:
    """What the clients were told about each create (every name is used once).

    ``acked``: name -> (uid, resourceVersion) of a 201: the write is durable on a majority and must survive.
    ``unknown``: name -> why (5xx, connection error, timeout): it may or may not exist afterwards.
    ``anomalies``: answers a create of a fresh name must never get (409 AlreadyExists means the server
    applied one request twice or invented the object; 4xx means the test sent garbage).
    """

    acked: dict[str, tuple[str, int]] = field(default_factory=dict)
    ack_times: dict[str, float] = field(default_factory=dict)  # name -> time.monotonic() of the 201
    unknown: dict[str, str] = field(default_factory=dict)
    anomalies: dict[str, str] = field(default_factory=dict)

    @property
    def attempted(self) -> set[str]:
        return set(self.acked) | set(self.unknown) | set(self.anomalies)


async def create_configmap(
    session: aiohttp.ClientSession, url: str, name: str, history: WriteHistory, timeout: float = 5.0
) -> bool:
    """POST one ConfigMap named ``name`` to the master at ``url``; record the outcome. True if acknowledged."""
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"writer": name}}
    try:
        async with session.post(
            f"{url}{CONFIGMAPS}", json=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw = await response.read()
            code = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        history.unknown[name] = f"{type(exc).__name__}: {exc}"
        return False
    if code == 201:
        meta = json.loads(raw)["metadata"]
        history.acked[name] = (meta["uid"], int(meta["resourceVersion"]))
        history.ack_times[name] = time.monotonic()
        return True
    if code in _UNKNOWN_STATUSES:
        history.unknown[name] = f"HTTP {code}"
    else:
        history.anomalies[name] = f"HTTP {code} {raw[:300]!r}"
    return False


async def export_objects(
    session: aiohttp.ClientSession, url: str, timeout: float = 30.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``GET /edgek8s/v1/snapshot`` (linearizable): the header and every object record, checked complete."""
    async with session.get(f"{url}/edgek8s/v1/snapshot", timeout=aiohttp.ClientTimeout(total=timeout)) as response:
        raw = await response.read()
        if response.status != 200:
            raise ClusterError(f"snapshot from {url}: HTTP {response.status} {raw[:300]!r}")
    lines = raw.splitlines()
    header: dict[str, Any] = json.loads(lines[0])
    records = [json.loads(line) for line in lines[1:]]
    if len(records) != header["objects"]:
        raise ClusterError(f"snapshot from {url} cut short: {len(records)} of {header['objects']} objects")
    return header, records


def configmaps_of(records: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """name -> (uid, resourceVersion) of the ConfigMaps in namespace default of an export.

    Raises if a name occurs twice (the store keys objects by name: a duplicate is corruption).
    """
    found: dict[str, tuple[str, int]] = {}
    for record in records:
        if record["ns"] != "default" or record["object"].get("kind") != "ConfigMap":
            continue
        meta = record["object"]["metadata"]
        if record["name"] in found:
            raise ClusterError(f"ConfigMap {record['name']} exported twice")
        found[record["name"]] = (meta["uid"], int(meta["resourceVersion"]))
    return found


async def check_acknowledged_creates(
    cluster: ProcessCluster, session: aiohttp.ClientSession, history: WriteHistory
) -> None:
    """Every acknowledged create is on every master with the uid and resourceVersion its client was told;
    no fresh name was answered 409 or 4xx; no two acks share a resourceVersion; nothing exists that
    nobody asked for; uids are unique. Exports are linearizable (a barrier through each master)."""
    assert not history.anomalies, f"impossible answers to creates of fresh names: {list(history.anomalies.items())[:5]}"
    rvs = [rv for _uid, rv in history.acked.values()]
    assert len(set(rvs)) == len(rvs), "two acknowledged creates were given the same resourceVersion"
    for m in cluster.masters:
        _header, records = await export_objects(session, m.url)
        stored = configmaps_of(records)  # raises on a name exported twice
        missing = sorted(set(history.acked) - set(stored))
        assert not missing, f"{m.name}: {len(missing)} acknowledged creates missing, e.g. {missing[:10]}"
        changed = [n for n in history.acked if stored[n] != history.acked[n]]
        assert not changed, f"{m.name}: stored (uid, rv) differs from the acknowledged one for {changed[:10]}"
        phantom = sorted(set(stored) - history.attempted)
        assert not phantom, f"{m.name}: ConfigMaps nobody created: {phantom[:10]}"
        assert len({uid for uid, _rv in stored.values()}) == len(stored), f"{m.name}: a uid is used twice"
        print(f"{m.name}: all {len(history.acked)} acknowledged creates present ({len(stored)} ConfigMaps)")


async def local_configmaps(
    session: aiohttp.ClientSession, url: str, timeout: float = 30.0
) -> dict[str, tuple[str, int]]:
    """``GET configmaps?resourceVersion=0``: this master's replica as is (no barrier), as name -> (uid, rv)."""
    async with session.get(
        f"{url}{CONFIGMAPS}", params={"resourceVersion": "0"}, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        raw = await response.read()
        if response.status != 200:
            raise ClusterError(f"list from {url}: HTTP {response.status} {raw[:300]!r}")
    found: dict[str, tuple[str, int]] = {}
    for item in json.loads(raw)["items"]:
        meta = item["metadata"]
        if meta["name"] in found:
            raise ClusterError(f"ConfigMap {meta['name']} listed twice by {url}")
        found[meta["name"]] = (meta["uid"], int(meta["resourceVersion"]))
    return found


async def replicas_identical(
    cluster: ProcessCluster, session: aiohttp.ClientSession, attempts: int = 5
) -> tuple[int, dict[str, tuple[str, int]]]:
    """Wait until every running master has applied the same index, then list each replica locally.

    Returns (applied index, the common ConfigMaps). Raises with the differences if the replicas hold
    different ConfigMaps at the same applied index (retried if the index moved while listing).
    """
    for _ in range(attempts):
        before = await cluster.wait_converged(session)
        listed = [await local_configmaps(session, cluster.masters[i].url) for i in cluster.running()]
        after = await cluster.wait_converged(session, settle=0.0)
        index = before[0]["appliedIndex"]
        if after[0]["appliedIndex"] != index:
            continue  # something committed meanwhile (a restarted master registering itself): again
        first = listed[0]
        for i, other in zip(cluster.running()[1:], listed[1:], strict=True):
            if other != first:
                only_first = sorted(set(first.items()) - set(other.items()))[:10]
                only_other = sorted(set(other.items()) - set(first.items()))[:10]
                raise ClusterError(
                    f"replicas differ at applied index {index}: {cluster.masters[cluster.running()[0]].name} "
                    f"only {only_first}; {cluster.masters[i].name} only {only_other}"
                )
        return index, first
    raise ClusterError(f"applied index kept moving over {attempts} attempts")
