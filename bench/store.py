"""The `store` benchmark: edgek8s's replicated object store against etcd 3.4.

Both systems run as 3 members on loopback with default durability (fsync on)
and get the same loads with 1 KiB values, spread round-robin over the members:
  * sequential (1 client) writes: throughput and latency p50/p99;
  * 64 concurrent clients: throughput (and latency);
  * RSS (VmRSS) of each member process once 10,000 objects/keys exist;
  * leader-kill failover: kill -9 the leader, time to the first acknowledged
    write on a survivor, restart the killed member, wait until it is ready;
    repeated (20 kills, 5 with --quick).
etcd runs with its default election settings (heartbeat 100 ms, election
1000 ms) and, for failover only, also tuned (50 ms / 250 ms).
edgek8s writes are ConfigMap creates (`POST .../configmaps` -> 201); etcd
writes are raw puts through the v3 JSON gateway. If `edgek8s server` does not
start, the etcd half still runs and the edgek8s figures are null.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from bench import procs
from bench.edgek8s_cluster import EdgeCluster, EdgeUnavailable
from bench.etcd import DEFAULT_ELECTION_MS, DEFAULT_HEARTBEAT_MS, EtcdCluster, etcd_version
from bench.failover import FailoverResult, FailoverTarget, measure_failover
from bench.load import LoadResult, Request, RequestFactory, Validator, make_session, run_load
from bench.stats import fmt, ms, ratio, rounded

VALUE_BYTES = 1024
CONCURRENT_CLIENTS = 64
MAX_CONNECTIONS = 192  # >= CONCURRENT_CLIENTS and >= failover probes in flight (100)
TUNED_HEARTBEAT_MS = 50
TUNED_ELECTION_MS = 250

TARGET_THROUGHPUT_RATIO = 1.0
TARGET_SEQ_P99_MS = 5.0
TARGET_FAILOVER_P99_S = 1.0
TARGET_RSS_MB = 80.0


@dataclass(frozen=True)
class Plan:
    quick: bool
    warmup_ops: int
    seq_ops: int
    seq_time_cap_s: float
    concurrent_ops: int
    concurrent_time_cap_s: float
    rss_objects: int
    kills: int
    failover_budget_s: float
    tuned_etcd: bool

    @staticmethod
    def make(quick: bool, kills: int | None, tuned_etcd: bool) -> Plan:
        if quick:
            n = 5 if kills is None else kills
            return Plan(True, 20, 500, 30.0, 10_000, 90.0, 10_000, n, 90.0, tuned_etcd)
        n = 20 if kills is None else kills
        return Plan(False, 50, 2_000, 45.0, 30_000, 120.0, 10_000, n, 180.0, tuned_etcd)


class Cluster(FailoverTarget, Protocol):
    def rss_bytes(self) -> list[int | None]: ...


@dataclass
class SystemRun:
    """Everything measured on one system."""

    warmup_failed: int = 0
    seq: LoadResult | None = None
    concurrent: LoadResult | None = None
    rss_mb: list[float | None] | None = None
    rss_objects: int = 0
    failover: FailoverResult | None = None
    error: str | None = None

    @property
    def rss_max_mb(self) -> float | None:
        values = [v for v in self.rss_mb or [] if v is not None]
        return max(values) if values else None


def merge(a: LoadResult, b: LoadResult | None) -> LoadResult:
    """Two back-to-back runs of the same load as one (RSS is sampled between them)."""
    if b is None:
        return a
    out = LoadResult(clients=a.clients, ops_budget=a.ops_budget + b.ops_budget)
    out.ok, out.failed, out.resent = a.ok + b.ok, a.failed + b.failed, a.resent + b.resent
    out.outcomes = a.outcomes + b.outcomes
    out.latencies_s = a.latencies_s + b.latencies_s
    out.elapsed_s = a.elapsed_s + b.elapsed_s
    out.client_cpu_s = a.client_cpu_s + b.client_cpu_s
    out.hit_time_cap = a.hit_time_cap or b.hit_time_cap
    return out


WriteFactory = Callable[[str], RequestFactory]


async def run_system(
    session: aiohttp.ClientSession,
    cluster: Cluster,
    plan: Plan,
    label: str,
    factory_for_phase: WriteFactory,
    validate: Validator,
    run: SystemRun,
) -> None:
    """Loads, RSS at `plan.rss_objects` objects, then failover; fills `run` as it goes."""
    objects = 0

    async def load(phase: str, clients: int, ops: int, cap: float) -> LoadResult:
        nonlocal objects
        result = await run_load(
            session,
            clients=clients,
            total_ops=ops,
            time_cap_s=cap,
            factory=factory_for_phase(phase),
            validate=validate,
        )
        objects += result.ok
        return result

    warm = await load("w", 1, plan.warmup_ops, 30.0)
    run.warmup_failed = warm.failed
    run.seq = await load("s", 1, plan.seq_ops, plan.seq_time_cap_s)
    print(f"  [{label}] 1 client: {run.seq.throughput:,.0f} writes/s", flush=True)
    # The concurrent load is split where the store reaches rss_objects objects,
    # so RSS is read at exactly that size while the throughput covers all of it.
    started = time.perf_counter()
    first_ops = max(1, min(plan.concurrent_ops, plan.rss_objects - objects))
    part_a = await load("c", CONCURRENT_CLIENTS, first_ops, plan.concurrent_time_cap_s)
    for attempt in range(3):  # top up after failed writes; not counted in throughput
        missing = plan.rss_objects - objects
        if missing <= 0 or time.perf_counter() - started > plan.concurrent_time_cap_s:
            break
        await load(f"t{attempt}", CONCURRENT_CLIENTS, missing, 60.0)
    run.rss_objects = objects
    run.rss_mb = [None if b is None else round(b / 2**20, 1) for b in cluster.rss_bytes()]
    rest = plan.concurrent_ops - first_ops
    remaining_cap = plan.concurrent_time_cap_s - part_a.elapsed_s
    part_b = None
    if rest > 0 and remaining_cap > 1.0:
        part_b = await load("d", CONCURRENT_CLIENTS, rest, remaining_cap)
    run.concurrent = merge(part_a, part_b)
    print(
        f"  [{label}] {CONCURRENT_CLIENTS} clients: {run.concurrent.throughput:,.0f} writes/s; "
        f"RSS at {run.rss_objects:,} objects: {run.rss_mb} MB",
        flush=True,
    )
    run.failover = FailoverResult()
    await measure_failover(
        session, cluster, plan.kills, label=label, result=run.failover, budget_s=plan.failover_budget_s
    )


def value_string() -> str:
    return secrets.token_hex(VALUE_BYTES // 2)


def etcd_factory(cluster: EtcdCluster, value: bytes) -> WriteFactory:
    def for_phase(phase: str) -> RequestFactory:
        def make(client: int, seq: int) -> Request:
            node = (client + seq) % cluster.node_count
            return cluster.put_request(node, f"/bench/{phase}/{client}/{seq}", value)

        return make

    return for_phase


def edge_factory(cluster: EdgeCluster, value: str) -> WriteFactory:
    def for_phase(phase: str) -> RequestFactory:
        def make(client: int, seq: int) -> Request:
            node = (client + seq) % cluster.node_count
            return cluster.create_request(node, f"cm-{phase}-{client}-{seq}", value)

        return make

    return for_phase


async def guarded(label: str, run: SystemRun, body: Awaitable[None]) -> None:
    """Run one system's half; record (not raise) its failure so the other half
    and the report still happen. Ctrl-C still propagates."""
    try:
        await body
    except EdgeUnavailable as exc:
        run.error = f"edgek8s server not available: {exc}"
        print(run.error, flush=True)
    except Exception as exc:  # reported, not hidden
        run.error = f"{label} run failed: {type(exc).__name__}: {exc}"
        print(run.error, flush=True)
        traceback.print_exc(file=sys.stderr)


async def bench_etcd(session: aiohttp.ClientSession, plan: Plan, value: str, run: SystemRun) -> None:
    cluster = EtcdCluster()
    try:
        await cluster.start(session)
        await run_system(session, cluster, plan, "etcd", etcd_factory(cluster, value.encode()), cluster.write_ok, run)
    except Exception:  # keep the evidence; Ctrl-C needs none
        kept = cluster.stop(keep_logs=True)
        print(f"  member logs kept in {kept}", flush=True)
        raise
    finally:
        cluster.stop()


async def bench_etcd_tuned(session: aiohttp.ClientSession, plan: Plan, run: SystemRun) -> None:
    cluster = EtcdCluster(heartbeat_ms=TUNED_HEARTBEAT_MS, election_ms=TUNED_ELECTION_MS)
    try:
        await cluster.start(session)
        run.failover = FailoverResult()
        await measure_failover(
            session, cluster, plan.kills, label="etcd tuned", result=run.failover, budget_s=plan.failover_budget_s
        )
    except Exception:  # keep the evidence; Ctrl-C needs none
        kept = cluster.stop(keep_logs=True)
        print(f"  member logs kept in {kept}", flush=True)
        raise
    finally:
        cluster.stop()


async def bench_edgek8s(session: aiohttp.ClientSession, plan: Plan, value: str, run: SystemRun) -> None:
    cluster = EdgeCluster()
    try:
        await cluster.start(session)
        await run_system(session, cluster, plan, "edgek8s", edge_factory(cluster, value), cluster.write_ok, run)
    except Exception:  # keep the evidence; Ctrl-C needs none
        kept = cluster.stop(keep_logs=True)
        print(f"  member logs kept in {kept}", flush=True)
        raise
    finally:
        cluster.stop()


# -- report ----------------------------------------------------------------


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return "MET" if met else "MISSED"


def target_met(value: float | None, target: float, higher_is_better: bool) -> bool | None:
    if value is None:
        return None
    return value >= target if higher_is_better else value <= target


def print_system(name: str, run: SystemRun, unit: str) -> None:
    print(f"{name}:")
    if run.error:
        print(f"  ERROR: {run.error}")
    for title, res in (("1 client ", run.seq), (f"{CONCURRENT_CLIENTS} clients", run.concurrent)):
        if res is None:
            continue
        print(
            f"  {title}: {res.throughput:>9,.0f} {unit}/s  p50 {fmt(ms(res.latency(50)), ' ms', 2)}"
            f"  p99 {fmt(ms(res.latency(99)), ' ms', 2)}"
            f"  max {fmt(ms(max(res.latencies_s, default=None)), ' ms', 2)}"
            f"  ok {res.ok} failed {res.failed} (load client CPU {res.client_cpu_s / res.elapsed_s:.0%})"
            + ("  [time cap hit]" if res.hit_time_cap else "")
        )
    if run.rss_mb is not None:
        print(f"  RSS with {run.rss_objects:,} objects: {run.rss_mb} MB per member (max {fmt(run.rss_max_mb, ' MB')})")
    if run.failover is not None:
        print_failover(run.failover)


def print_failover(fo: FailoverResult) -> None:
    s = fo.summary()
    print(
        f"  failover over {s['kills']} kills: p50 {fmt(s['p50_s'], ' s', 3)}  p99 {fmt(s['p99_s'], ' s', 3)}"
        f"  min {fmt(s['min_s'], ' s', 3)}  max {fmt(s['max_s'], ' s', 3)}  no ack within cap: {fo.no_ack}"
    )
    if fo.stopped_early:
        print(f"  failover stopped early: {fo.stopped_early}")


def figures(plan: Plan, version: str, etcd: SystemRun, tuned: SystemRun | None, edge: SystemRun) -> dict[str, Any]:
    def tp(r: LoadResult | None) -> float | None:
        return None if r is None else rounded(r.throughput, 1)

    def lat(r: LoadResult | None, p: float) -> float | None:
        return None if r is None else ms(r.latency(p))

    def fo(r: SystemRun | None, key: str) -> Any:
        return None if r is None or r.failover is None else r.failover.summary()[key]

    def failed(r: SystemRun) -> int | None:
        loads = [x for x in (r.seq, r.concurrent) if x is not None]
        return sum(x.failed for x in loads) if loads else None

    def capped(r: SystemRun) -> bool | None:
        loads = [x for x in (r.seq, r.concurrent) if x is not None]
        return any(x.hit_time_cap for x in loads) if loads else None

    edge_64, etcd_64 = tp(edge.concurrent), tp(etcd.concurrent)
    out: dict[str, Any] = {
        "benchmark": "store",
        "quick": plan.quick,
        "throughput_ratio_vs_etcd": rounded(ratio(edge_64, etcd_64)),
        "seq_create_p99_ms": lat(edge.seq, 99),
        "failover_p99_s": fo(edge, "p99_s"),
        "rss_mb_10k_objects": edge.rss_max_mb,
        "edgek8s_writes_per_s_1": tp(edge.seq),
        "edgek8s_writes_per_s_64": edge_64,
        "edgek8s_seq_create_p50_ms": lat(edge.seq, 50),
        "edgek8s_create_p50_ms_64": lat(edge.concurrent, 50),
        "edgek8s_create_p99_ms_64": lat(edge.concurrent, 99),
        "edgek8s_failover_p50_s": fo(edge, "p50_s"),
        "edgek8s_failover_max_s": fo(edge, "max_s"),
        "edgek8s_failover_no_ack": fo(edge, "no_ack_within_cap"),
        "edgek8s_failover_kills": fo(edge, "kills"),
        "edgek8s_rss_mb_per_master": edge.rss_mb,
        "edgek8s_rss_objects": edge.rss_objects or None,
        "edgek8s_failed_writes": failed(edge),
        "edgek8s_load_time_capped": capped(edge),
        "edgek8s_error": edge.error,
        "etcd_version": version,
        "etcd_puts_per_s_1": tp(etcd.seq),
        "etcd_puts_per_s_64": etcd_64,
        "etcd_seq_put_p50_ms": lat(etcd.seq, 50),
        "etcd_seq_put_p99_ms": lat(etcd.seq, 99),
        "etcd_put_p50_ms_64": lat(etcd.concurrent, 50),
        "etcd_put_p99_ms_64": lat(etcd.concurrent, 99),
        "etcd_failover_p50_s": fo(etcd, "p50_s"),
        "etcd_failover_p99_s": fo(etcd, "p99_s"),
        "etcd_failover_max_s": fo(etcd, "max_s"),
        "etcd_failover_no_ack": fo(etcd, "no_ack_within_cap"),
        "etcd_failover_kills": fo(etcd, "kills"),
        "etcd_election": {"heartbeat_ms": DEFAULT_HEARTBEAT_MS, "election_ms": DEFAULT_ELECTION_MS},
        "etcd_tuned_failover_p50_s": fo(tuned, "p50_s"),
        "etcd_tuned_failover_p99_s": fo(tuned, "p99_s"),
        "etcd_tuned_failover_max_s": fo(tuned, "max_s"),
        "etcd_tuned_election": {"heartbeat_ms": TUNED_HEARTBEAT_MS, "election_ms": TUNED_ELECTION_MS},
        "etcd_rss_mb_10k_keys": etcd.rss_max_mb,
        "etcd_rss_mb_per_member": etcd.rss_mb,
        "etcd_rss_keys": etcd.rss_objects or None,
        "etcd_failed_puts": failed(etcd),
        "etcd_load_time_capped": capped(etcd),
        "etcd_error": etcd.error,
        "kills": plan.kills,
        "clients": CONCURRENT_CLIENTS,
        "value_bytes": VALUE_BYTES,
    }
    out["targets_met"] = {
        "throughput_ratio_vs_etcd>=1.0": target_met(out["throughput_ratio_vs_etcd"], TARGET_THROUGHPUT_RATIO, True),
        "seq_create_p99_ms<=5": target_met(out["seq_create_p99_ms"], TARGET_SEQ_P99_MS, False),
        "failover_p99_s<=1.0": target_met(out["failover_p99_s"], TARGET_FAILOVER_P99_S, False),
        "rss_mb_10k_objects<=80": target_met(out["rss_mb_10k_objects"], TARGET_RSS_MB, False),
    }
    return out


def print_summary(f: dict[str, Any]) -> None:
    def x(v: float | None) -> str:
        return fmt(v, "x", 2)

    print("edgek8s vs etcd anchor (same run) and targets:")
    print(
        f"  writes/s @{CONCURRENT_CLIENTS} clients: edgek8s {fmt(f['edgek8s_writes_per_s_64'])}"
        f"  etcd {fmt(f['etcd_puts_per_s_64'])}  ratio {x(f['throughput_ratio_vs_etcd'])}"
        f"  [target >= {TARGET_THROUGHPUT_RATIO}x: "
        f"{verdict(f['throughput_ratio_vs_etcd'], TARGET_THROUGHPUT_RATIO, True)}]"
    )
    print(
        f"  writes/s @1 client:  edgek8s {fmt(f['edgek8s_writes_per_s_1'])}"
        f"  etcd {fmt(f['etcd_puts_per_s_1'])}"
        f"  ratio {x(ratio(f['edgek8s_writes_per_s_1'], f['etcd_puts_per_s_1']))}"
    )
    print(
        f"  sequential write p99: edgek8s {fmt(f['seq_create_p99_ms'], ' ms', 2)}"
        f"  etcd {fmt(f['etcd_seq_put_p99_ms'], ' ms', 2)}"
        f"  ratio {x(ratio(f['seq_create_p99_ms'], f['etcd_seq_put_p99_ms']))}"
        f"  [target <= {TARGET_SEQ_P99_MS} ms: {verdict(f['seq_create_p99_ms'], TARGET_SEQ_P99_MS, False)}]"
    )
    print(
        f"  failover p99: edgek8s {fmt(f['failover_p99_s'], ' s', 3)}"
        f"  etcd {fmt(f['etcd_failover_p99_s'], ' s', 3)} (defaults)"
        f"  ratio {x(ratio(f['failover_p99_s'], f['etcd_failover_p99_s']))}"
        f"  etcd tuned {fmt(f['etcd_tuned_failover_p99_s'], ' s', 3)}"
        f"  [target <= {TARGET_FAILOVER_P99_S} s:"
        f" {verdict(f['failover_p99_s'], TARGET_FAILOVER_P99_S, False)}]"
    )
    print(
        f"  RSS per member at 10k objects (max): edgek8s {fmt(f['rss_mb_10k_objects'], ' MB')}"
        f"  etcd {fmt(f['etcd_rss_mb_10k_keys'], ' MB')}"
        f"  ratio {x(ratio(f['rss_mb_10k_objects'], f['etcd_rss_mb_10k_keys']))}"
        f"  [target <= {TARGET_RSS_MB} MB: {verdict(f['rss_mb_10k_objects'], TARGET_RSS_MB, False)}]"
    )


async def run(plan: Plan, only: str | None) -> dict[str, Any]:
    procs.cancel_on_sigterm()
    host = {"cpus": os.cpu_count(), "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
    version = etcd_version()
    value = value_string()
    etcd, edge = SystemRun(), SystemRun()
    tuned = SystemRun() if plan.tuned_etcd and only != "edgek8s" else None
    async with make_session(MAX_CONNECTIONS) as session:
        if only in (None, "etcd"):
            print(
                f"etcd {version}: 3 members, defaults (heartbeat 100 ms, election 1000 ms), fsync on",
                flush=True,
            )
            await guarded("etcd", etcd, bench_etcd(session, plan, value, etcd))
            if tuned is not None:
                print(
                    f"etcd tuned: heartbeat {TUNED_HEARTBEAT_MS} ms, election {TUNED_ELECTION_MS} ms",
                    flush=True,
                )
                await guarded("etcd tuned", tuned, bench_etcd_tuned(session, plan, tuned))
        else:
            etcd.error = "skipped (--only edgek8s)"
        if only in (None, "edgek8s"):
            print("edgek8s: 3 masters, default durability", flush=True)
            await guarded("edgek8s", edge, bench_edgek8s(session, plan, value, edge))
        else:
            edge.error = "skipped (--only etcd)"
    print()
    print(f"store benchmark{' (quick)' if plan.quick else ''}: 3 members each on loopback, {VALUE_BYTES} B values")
    print_system(f"etcd {version} (defaults: heartbeat 100 ms, election 1000 ms)", etcd, "puts")
    if tuned is not None:
        print(f"etcd tuned (heartbeat {TUNED_HEARTBEAT_MS} ms, election {TUNED_ELECTION_MS} ms), failover only:")
        if tuned.error:
            print(f"  ERROR: {tuned.error}")
        if tuned.failover is not None:
            print_failover(tuned.failover)
    print_system("edgek8s (ConfigMap creates)", edge, "creates")
    f = figures(plan, version, etcd, tuned, edge)
    host["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    f["host"] = host
    print(
        f"host: {host['cpus']} CPUs shared by the load client and all members;"
        f" 1-min load average {host['loadavg_1m_at_start']} at start, {host['loadavg_1m_at_end']} at end"
    )
    print_summary(f)
    return f


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer ops and 5 kills instead of 20")
    parser.add_argument("--kills", type=int, default=None, help="leader kills per system (default 20, quick 5)")
    parser.add_argument("--only", choices=("etcd", "edgek8s"), default=None, help="run one system only")
    parser.add_argument("--no-tuned-etcd", action="store_true", help="skip the tuned-election etcd failover run")
    args = parser.parse_args(argv)
    plan = Plan.make(args.quick, args.kills, not args.no_tuned_etcd)
    figs = procs.run_benchmark(run(plan, args.only))
    return 1 if figs["etcd_error"] and args.only != "edgek8s" else 0
