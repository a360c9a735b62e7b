"""The `writecpu` benchmark: CPU time per acknowledged create on each edgek8s master.

On a shared 2-core machine wall-clock throughput is mostly noise from the neighbours; the CPU time a
master spends per acknowledged write is not, and on 2 cores it is what bounds throughput. This starts
the same 3-master cluster as `bench store` (durability on), creates 1 KiB ConfigMaps with 1 client and
then with 64 clients, and reads every master's CPU time from /proc before and after each phase:
  * per master and role (leader, follower): CPU µs per acknowledged write, split into the event-loop
    thread (HTTP, registry, watch fan-out) and the other threads (PySyncObj's tick thread: journal,
    replication, apply);
  * journal fdatasyncs per acknowledged write on each master (1 / the Raft batch size it made durable);
  * the sum over the masters, the load client's own CPU, throughput and latency (noisy: shown only).
`--to leader` sends every request to the leader, so follower CPU is replication alone; the default
spreads requests round robin over the masters like `bench store` (two thirds are forwarded).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from asyncio.subprocess import Process
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs
from bench.edgek8s_cluster import EdgeCluster
from bench.load import LoadResult, Request, make_session, run_load
from bench.stats import ms, rounded
from bench.store import CONCURRENT_CLIENTS, value_string

WARMUP_OPS = 200


@dataclass
class Sample:
    total: list[float | None]
    loop: list[float | None]
    system: list[float | None]
    switches: list[int | None]

    @staticmethod
    def take(pids: list[int | None]) -> Sample:
        return Sample(
            total=[None if pid is None else procs.cpu_seconds(pid) for pid in pids],
            loop=[None if pid is None else procs.main_thread_cpu_seconds(pid) for pid in pids],
            system=[None if pid is None else procs.cpu_seconds(pid, system_only=True) for pid in pids],
            switches=[None if pid is None else procs.context_switches(pid) for pid in pids],
        )


def _per_write_us(after: float | None, before: float | None, writes: int) -> float | None:
    if after is None or before is None or writes <= 0:
        return None
    return round((after - before) / writes * 1e6, 1)


@dataclass
class PhaseResult:
    name: str
    clients: int
    load: LoadResult
    leader: int
    leader_after: int | None
    masters: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        totals = [m["cpu_us_per_write"] for m in self.masters]
        followers = [m["cpu_us_per_write"] for m in self.masters if m["role"] == "follower"]
        known = [t for t in totals if t is not None]
        return {
            "clients": self.clients,
            "acknowledged": self.load.ok,
            "failed": self.load.failed,
            "cpu_us_per_write_all_masters": round(sum(known), 1) if len(known) == len(totals) else None,
        "context_switches_per_write_all_masters": round(
            sum(m["context_switches_per_write"] or 0 for m in self.masters), 2
        ),
            "cpu_us_per_write_leader": self.masters[self.leader]["cpu_us_per_write"],
            "cpu_us_per_write_follower_mean": (
                round(sum(f for f in followers if f is not None) / len(followers), 1) if followers else None
            ),
            "load_client_cpu_us_per_write": _per_write_us(self.load.client_cpu_s, 0.0, self.load.ok),
            "writes_per_s": rounded(self.load.throughput, 1),
            "p50_ms": ms(self.load.latency(50)),
            "p99_ms": ms(self.load.latency(99)),
            "leader_changed": self.leader_after != self.leader,
            "masters": self.masters,
        }


def _requests(cluster: EdgeCluster, phase: str, value: str, *, leader: int, to_leader: bool) -> Any:
    def make(client: int, seq: int) -> Request:
        node = leader if to_leader else (client + seq) % cluster.node_count
        return cluster.create_request(node, f"cm-{phase}-{client}-{seq}", value)

    return make


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"  # pip install py-spy into the venv
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


async def _start_profilers(
    cluster: EdgeCluster, leader: int, out_dir: Path, phase: str, *, gil_only: bool
) -> list[Process]:
    """py-spy on every master (collapsed stacks, one file per master); stopped by `_stop_profilers`."""
    profilers = []
    for i, (m, pid) in enumerate(zip(cluster.masters, cluster.pids(), strict=True)):
        if pid is None:
            continue
        role = "leader" if i == leader else "follower"
        profilers.append(await asyncio.create_subprocess_exec(
            _py_spy(), "record", "--pid", str(pid), "--format", "raw", "--nonblocking", "--threads",
            "--rate", "200", *(["--gil"] if gil_only else []),
            "--output", str(out_dir / f"{phase}-{role}-{m.name}.txt"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        ))
    await asyncio.sleep(1.0)  # py-spy attaches
    return profilers


async def _stop_profilers(profilers: list[Process]) -> None:
    for p in profilers:
        if p.returncode is None:
            p.send_signal(signal.SIGINT)
    for p in profilers:
        await p.wait()


async def _fsyncs(session: Any, cluster: EdgeCluster) -> list[int | None]:
    """Each master's journal fdatasync count (one per Raft batch it made durable), None if unreachable."""
    counts: list[int | None] = []
    for i in range(cluster.node_count):
        try:
            counts.append(int((await cluster.status(session, i))["journalFsyncs"]))
        except (cluster.error, KeyError, TypeError, ValueError):
            counts.append(None)
    return counts


async def _phase(
    session: Any, cluster: EdgeCluster, *, name: str, clients: int, ops: int, value: str, to_leader: bool,
    profile_dir: Path | None, gil_only: bool = False,
) -> PhaseResult:
    leader = await cluster.find_leader(session, 10.0)
    pids = cluster.pids()
    profilers = [] if profile_dir is None else await _start_profilers(
        cluster, leader, profile_dir, name, gil_only=gil_only
    )
    fsyncs_before = await _fsyncs(session, cluster)
    before = Sample.take(pids)
    try:
        load = await run_load(
            session, clients=clients, total_ops=ops, time_cap_s=300.0,
            factory=_requests(cluster, name, value, leader=leader, to_leader=to_leader), validate=cluster.write_ok,
        )
        after = Sample.take(pids)
    finally:
        await _stop_profilers(profilers)
    fsyncs_after = await _fsyncs(session, cluster)
    try:
        leader_after: int | None = await cluster.find_leader(session, 10.0)
    except cluster.error:
        leader_after = None
    result = PhaseResult(name, clients, load, leader, leader_after)
    for i, m in enumerate(cluster.masters):
        total = _per_write_us(after.total[i], before.total[i], load.ok)
        loop = _per_write_us(after.loop[i], before.loop[i], load.ok)
        system = _per_write_us(after.system[i], before.system[i], load.ok)
        switches_after, switches_before = after.switches[i], before.switches[i]
        syncs_after, syncs_before = fsyncs_after[i], fsyncs_before[i]
        result.masters.append({
            "master": m.name,
            "role": "leader" if i == leader else "follower",
            "cpu_us_per_write": total,
            "loop_thread_us": loop,
            "other_threads_us": None if total is None or loop is None else round(total - loop, 1),
            "kernel_us": system,
            "context_switches_per_write": (
                None if switches_after is None or switches_before is None or not load.ok
                else round((switches_after - switches_before) / load.ok, 2)
            ),
            "fdatasyncs_per_write": (
                None if syncs_after is None or syncs_before is None or not load.ok
                else round((syncs_after - syncs_before) / load.ok, 3)
            ),
        })
    return result


def _print_phase(result: PhaseResult) -> None:
    f = result.figures()
    print(
        f"{result.name}: {result.clients} client(s), {f['acknowledged']} acknowledged ({f['failed']} failed), "
        f"{f['writes_per_s']:,} writes/s, p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms"
        + ("  [LEADER CHANGED: figures unreliable]" if f["leader_changed"] else "")
    )
    for m in result.masters:
        print(
            f"  {m['master']} {m['role']:<8} {m['cpu_us_per_write']} µs CPU/write"
            f" (loop thread {m['loop_thread_us']}, other threads {m['other_threads_us']};"
            f" in the kernel {m['kernel_us']}),"
            f" {m['context_switches_per_write']} context switches/write,"
            f" {m['fdatasyncs_per_write']} fdatasyncs/write"
        )
    print(
        f"  all masters: {f['cpu_us_per_write_all_masters']} µs CPU/write;"
        f" load client {f['load_client_cpu_us_per_write']} µs/write"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    procs.cancel_on_sigterm()
    value = value_string()
    to_leader = args.to == "leader"
    async with make_session(CONCURRENT_CLIENTS * 2) as session:
        cluster = EdgeCluster()
        try:
            await cluster.start(session)
            leader = await cluster.find_leader(session, 10.0)
            await run_load(
                session, clients=1, total_ops=WARMUP_OPS, time_cap_s=60.0,
                factory=_requests(cluster, "w", value, leader=leader, to_leader=to_leader),
                validate=cluster.write_ok,
            )
            await asyncio.sleep(0.5)  # let the warm-up's trailing heartbeats settle before the first sample
            seq = await _phase(session, cluster, name="sequential", clients=1, ops=args.seq_ops, value=value,
                               to_leader=to_leader, profile_dir=args.py_spy, gil_only=args.gil)
            _print_phase(seq)
            conc = await _phase(session, cluster, name="concurrent", clients=CONCURRENT_CLIENTS,
                                ops=args.concurrent_ops, value=value, to_leader=to_leader,
                                profile_dir=args.py_spy, gil_only=args.gil)
            _print_phase(conc)
        except Exception:
            kept = cluster.stop(keep_logs=True)
            print(f"  member logs kept in {kept}", flush=True)
            raise
        finally:
            cluster.stop()
    return {
        "benchmark": "writecpu",
        "to": args.to,
        "sequential": seq.figures(),
        "concurrent": conc.figures(),
        "host_loadavg_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench writecpu", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 sequential and 2,000 concurrent writes")
    parser.add_argument("--seq-ops", type=int, default=None, help="sequential writes (default 1,000)")
    parser.add_argument("--concurrent-ops", type=int, default=None, help="writes with 64 clients (default 6,000)")
    parser.add_argument("--to", choices=("all", "leader"), default="all",
                        help="spread requests over all masters (default) or send them all to the leader")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR",
                        help="record each master with py-spy (pip install py-spy; venv or PATH) into DIR, one "
                             "collapsed-stack file per phase and master (py-spy's own CPU inflates the figures)")
    parser.add_argument("--gil", action="store_true",
                        help="with --py-spy: only samples holding the GIL (Python's own CPU, not waits or syscalls)")
    args = parser.parse_args(argv)
    args.seq_ops = args.seq_ops or (300 if args.quick else 1_000)
    args.concurrent_ops = args.concurrent_ops or (2_000 if args.quick else 6_000)
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    figs = procs.run_main(run(args))
    print(json.dumps(figs), flush=True)
    return 0
