"""Scheduler throughput, scheduling latency and leader failover on a real 3-master cluster.

Throughput: 3 `edgek8s server` processes; 100 hollow Node objects (Ready, allocatable like a Pi 4:
4 CPUs, 4 or 8 GiB, 110 pods; arm64 and amd64 half each; their node Leases renewed every 10 s as
kubemark's hollow kubelets do); then 3,000 pending pods created over HTTP by 32 clients as fast as
the API takes them (a third arm64-only and a third amd64-only by their image platforms, in groups of
30 with one owner). A watch records when each pod is first seen and when it is first seen bound:
  pods_per_s                  pods / (last bound - first create sent): the whole pipeline
  p99_scheduling_latency_s    p99 of (seen bound - seen created), from the watch events
Backlog (`backlog_pods_per_s`): with every node tainted, as many pods again are created and marked
Unschedulable; the taint is lifted from all nodes at once and the time until the last is bound gives
the scheduler's own rate (a full queue: binding-bound, not creation-bound).
Anchors: the 300 pods/s target on these 2 cores; upstream's scheduler_perf CI thresholds of 680-810
pods/s (Go, 5,000 nodes, bigger machines). The upstream figure is an anchor, NOT measured here.

Failover (`controller_failover_p99_s`): kill -9 the leader while pods keep arriving (one new pod every
25 ms sent to the survivors); the sample is the time from the kill until the watch shows the first
pod created after the kill bound, which only the next leader's scheduler can do. The killed master is
restarted and caught up before the next kill. 20 kills, 5 with --quick.

The pure scheduling cost (``Framework.schedule`` on the same 100 nodes, in this process) is measured
too, so the report can say where the leader's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench import hollow, procs
from bench.api import ApiCluster
from bench.edgek8s_cluster import EdgeCluster
from bench.load import dumps, fetch, make_session
from bench.stats import fmt, percentile, ratio, rounded

TARGET_PODS_PER_S = 300.0
UPSTREAM_CI_PODS_PER_S = (680.0, 810.0)  # scheduler_perf SchedulingBasic thresholds: an anchor, not measured
NAMESPACE = "default"
CREATE_CLIENTS = 32
GROUP = 30  # pods per fake owner (a ReplicaSet), for selector spreading
FAILOVER_PROBE_S = 0.025
PLATFORMS = ("linux/arm64", "linux/amd64", None)


@dataclass(frozen=True)
class Plan:
    quick: bool
    nodes: int
    pods: int
    kills: int

    @staticmethod
    def make(quick: bool, nodes: int | None, pods: int | None, kills: int | None) -> Plan:
        if quick:
            return Plan(True, nodes or 100, pods or 1_000, 5 if kills is None else kills)
        return Plan(False, nodes or 100, pods or 3_000, 20 if kills is None else kills)


@dataclass
class Run:
    plan: Plan
    leader: int | None = None
    nodes_s: float | None = None
    create_failed: int = 0
    first_sent: float | None = None
    created_done: float | None = None
    seen: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)
    placed_on: dict[str, str] = field(default_factory=dict)
    arch_violations: int = 0
    leader_cpu_s: float | None = None
    framework_ms_per_pod: float | None = None
    framework_profile: str = ""
    held_marked: int = 0
    drain_s: float | None = None
    drain_leader_cpu_s: float | None = None
    drained: int = 0
    held_latencies: list[float] = field(default_factory=list)
    failover_s: list[float] = field(default_factory=list)
    failover_missed: int = 0
    error: str | None = None


# -- objects ---------------------------------------------------------------------------------------


def pod_body(name: str, i: int) -> bytes:
    platform = PLATFORMS[i % len(PLATFORMS)]
    meta: dict[str, Any] = {
        "name": name, "namespace": NAMESPACE, "labels": {"app": f"group-{i // GROUP}"},
        # A kind the cluster does not serve, so the garbage collector keeps the pods (no such ReplicaSet).
        "ownerReferences": [{"apiVersion": "bench.edgek8s.io/v1", "kind": "PodGroup", "name": f"group-{i // GROUP}",
                             "uid": f"00000000-0000-4000-8000-{i // GROUP:012d}", "controller": True}],
    }
    if platform:
        meta["annotations"] = {"edgek8s.io/image-platforms": platform}
    return dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1",
                                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]},
    })


# -- cluster I/O -----------------------------------------------------------------------------------


async def post(session: aiohttp.ClientSession, url: str, body: bytes, timeout_s: float = 30.0) -> int:
    status, _ = await fetch(session, "POST", url, body=body, timeout_s=timeout_s)
    return status


async def create_pods(session: aiohttp.ClientSession, urls: list[str], names: list[str]) -> int:
    """Create the pods by CREATE_CLIENTS closed-loop clients spread over the masters; the failures."""
    next_index = iter(range(len(names)))
    failed = 0

    async def creator(c: int) -> None:
        nonlocal failed
        for i in next_index:
            status = await post(session, f"{urls[c % len(urls)]}/api/v1/namespaces/{NAMESPACE}/pods",
                                pod_body(names[i], i))
            failed += status != 201

    await asyncio.gather(*(creator(c) for c in range(CREATE_CLIENTS)))
    return failed


async def current_rv(session: aiohttp.ClientSession, url: str) -> str:
    status, body = await fetch(session, "GET", f"{url}/api/v1/namespaces/{NAMESPACE}/pods?limit=1")
    if status != 200:
        raise RuntimeError(f"listing pods: HTTP {status}")
    return str(json.loads(body)["metadata"]["resourceVersion"])


async def watch_pods(session: aiohttp.ClientSession, url: str, rv: str, seen: dict[str, float],
                     bound: dict[str, float], placed_on: dict[str, str], ready: asyncio.Event,
                     unschedulable: set[str] | None = None) -> None:
    """Record the first time each pod is seen, and seen bound (and which were marked unschedulable),
    until cancelled."""
    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
    async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params=params,
                           timeout=aiohttp.ClientTimeout(total=None)) as response:
        if response.status != 200:
            raise RuntimeError(f"watch: HTTP {response.status}")
        ready.set()
        while line := await response.content.readline():
            now = time.perf_counter()
            event = json.loads(line)
            if event.get("type") == "ERROR":
                raise RuntimeError(f"watch error: {event.get('object')}")
            obj = event.get("object") or {}
            name = (obj.get("metadata") or {}).get("name")
            if not name or event.get("type") == "BOOKMARK":
                continue
            seen.setdefault(name, now)
            node = (obj.get("spec") or {}).get("nodeName")
            if unschedulable is not None and any(
                    c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
                    for c in (obj.get("status") or {}).get("conditions") or ()):
                unschedulable.add(name)
            if node and name not in bound:
                bound[name] = now
                placed_on[name] = node


async def wait_bound(watch: asyncio.Task[None], bound: dict[str, float], count: int) -> None:
    """Until the watch has seen ``count`` pods bound (or a deadline scaled to the count passes)."""
    deadline = time.monotonic() + max(60.0, count / 20)
    while len(bound) < count and time.monotonic() < deadline:
        if watch.done():
            watch.result()  # a failed watch fails the phase
        await asyncio.sleep(0.05)


async def stop_watch(watch: asyncio.Task[None]) -> None:
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process from /proc (clock ticks -> seconds)."""
    if pid is None:
        return None
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- phases ----------------------------------------------------------------------------------------


async def throughput(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    plan = run.plan
    urls = [m.api_url for m in cluster.masters]
    watcher_ready = asyncio.Event()
    rv = await current_rv(session, urls[0])
    watch = asyncio.create_task(watch_pods(session, urls[0], rv, run.seen, run.bound, run.placed_on, watcher_ready))
    await asyncio.wait_for(watcher_ready.wait(), 10.0)
    leader_pid = cluster.pids()[run.leader] if run.leader is not None else None
    cpu_before = cpu_seconds(leader_pid)
    names = [f"pod-{i:05d}" for i in range(plan.pods)]
    run.first_sent = time.perf_counter()
    try:
        run.create_failed = await create_pods(session, urls, names)
        run.created_done = time.perf_counter()
        await wait_bound(watch, run.bound, plan.pods - run.create_failed)
    finally:
        await stop_watch(watch)
    cpu_after = cpu_seconds(leader_pid)
    if cpu_before is not None and cpu_after is not None:
        run.leader_cpu_s = cpu_after - cpu_before
    arch_of = {hollow.node_name(i): hollow.node_arch(i) for i in range(plan.nodes)}
    for i, name in enumerate(names):
        platform = PLATFORMS[i % len(PLATFORMS)]
        if platform and name in run.placed_on and arch_of.get(run.placed_on[name]) != platform.split("/")[1]:
            run.arch_violations += 1


async def patch_nodes(session: aiohttp.ClientSession, cluster: EdgeCluster, plan: Plan, patch: bytes) -> None:
    headers = {"Content-Type": "application/merge-patch+json"}

    async def one(i: int) -> None:
        url = f"{cluster.masters[i % cluster.node_count].api_url}/api/v1/nodes/{hollow.node_name(i)}"
        async with session.patch(url, data=patch, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as r:
            if r.status != 200:
                raise RuntimeError(f"patching node {hollow.node_name(i)}: HTTP {r.status} {(await r.read())[:200]!r}")

    await asyncio.gather(*(one(i) for i in range(plan.nodes)))


async def backlog(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    """The scheduler's own rate: every node tainted, pods created and marked unschedulable, then the
    taint lifted at once and the whole backlog drained (binding-bound, not creation-bound)."""
    plan = run.plan
    urls = [m.api_url for m in cluster.masters]
    await patch_nodes(session, cluster, plan, dumps(
        {"spec": {"taints": [{"key": "bench/hold", "value": "true", "effect": "NoSchedule"}]}}))
    seen: dict[str, float] = {}
    bound: dict[str, float] = {}
    marked: set[str] = set()
    ready = asyncio.Event()
    watch = asyncio.create_task(watch_pods(session, urls[0], await current_rv(session, urls[0]), seen, bound, {},
                                           ready, marked))
    await asyncio.wait_for(ready.wait(), 10.0)
    names = [f"held-{i:05d}" for i in range(plan.pods)]
    try:
        await create_pods(session, urls, names)
        deadline = time.monotonic() + 60.0
        while len(marked) < plan.pods and time.monotonic() < deadline:
            if watch.done():
                watch.result()
            await asyncio.sleep(0.1)
        run.held_marked = len(marked)
        if bound:
            raise RuntimeError(f"{len(bound)} held pods were bound while every node was tainted")
        leader_pid = cluster.pids()[run.leader] if run.leader is not None else None
        cpu_before = cpu_seconds(leader_pid)
        started = time.perf_counter()
        await patch_nodes(session, cluster, plan, dumps({"spec": {"taints": None}}))
        await wait_bound(watch, bound, plan.pods)
    finally:
        await stop_watch(watch)
    run.drained = len(bound)
    cpu_after = cpu_seconds(leader_pid)
    if cpu_before is not None and cpu_after is not None:
        run.drain_leader_cpu_s = cpu_after - cpu_before
    if bound:
        run.drain_s = max(bound.values()) - started
        run.held_latencies = [t - started for t in bound.values()]


async def failover(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    for k in range(run.plan.kills):
        leader = await cluster.find_leader(session, 60.0)
        survivors = [i for i in range(cluster.node_count) if i != leader]
        url = cluster.masters[survivors[0]].api_url
        seen: dict[str, float] = {}
        bound: dict[str, float] = {}
        ready = asyncio.Event()
        watch = asyncio.create_task(watch_pods(session, url, await current_rv(session, url), seen, bound, {}, ready))
        await asyncio.wait_for(ready.wait(), 10.0)
        prefix = f"fo-{k:02d}-"
        probes: list[asyncio.Task[int]] = []
        t_kill = time.perf_counter()
        cluster.kill(leader)
        sample = None
        try:
            seq = 0
            while time.perf_counter() - t_kill < 30.0:
                if any(name.startswith(prefix) for name in bound):
                    sample = min(t for n, t in bound.items() if n.startswith(prefix)) - t_kill
                    break
                target = cluster.masters[survivors[seq % len(survivors)]].api_url
                probes.append(asyncio.create_task(post(
                    session, f"{target}/api/v1/namespaces/{NAMESPACE}/pods", pod_body(f"{prefix}{seq:04d}", seq),
                    timeout_s=5.0)))
                seq += 1
                await asyncio.sleep(FAILOVER_PROBE_S)
        finally:
            watch.cancel()
            for probe in probes:
                probe.cancel()
            await asyncio.gather(watch, *probes, return_exceptions=True)
        if sample is None:
            run.failover_missed += 1
        else:
            run.failover_s.append(sample)
        shown = "no pod bound within 30 s" if sample is None else f"{sample:.3f} s"
        print(f"  [failover] kill {k + 1}/{run.plan.kills}: leader {cluster.masters[leader].name} -> {shown}",
              flush=True)
        await cluster.restart(session, leader, timeout_s=60.0)


def framework_cost(run: Run) -> None:
    """The pure scheduling cost on the same cluster shape, in this process: timed without a profiler,
    then once more under cProfile for the breakdown."""
    from edgek8s.scheduler.plugins import default_framework
    from edgek8s.scheduler.podinfo import pod_info
    from edgek8s.scheduler.snapshot import Snapshot

    pods = [json.loads(pod_body(f"pod-{i:05d}", i)) for i in range(run.plan.pods)]
    for n, pod in enumerate(pods):
        pod["metadata"]["uid"] = f"uid-{n}"

    def schedule_all() -> None:
        snapshot = Snapshot()
        for i in range(run.plan.nodes):
            snapshot.upsert_node(json.loads(hollow.node_body(i)))
        framework = default_framework()
        for pod in pods:
            info = pod_info(pod)
            decision = framework.schedule(info, snapshot)
            if decision.node is not None:
                snapshot.assume(info, decision.node)

    started = time.process_time()
    schedule_all()
    run.framework_ms_per_pod = (time.process_time() - started) * 1000 / len(pods)
    profile = cProfile.Profile()
    profile.runcall(schedule_all)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
    run.framework_profile = "\n".join(line for line in text.getvalue().splitlines() if line.strip()[:1].isdigit())


async def measure(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    plan = run.plan
    await cluster.start(session)
    run.leader = await cluster.find_leader(session, 30.0)
    started = time.perf_counter()
    await hollow.create_nodes(session, cluster, plan.nodes)
    run.nodes_s = time.perf_counter() - started
    print(f"  3 masters ready (leader {cluster.masters[run.leader].name}); {plan.nodes} hollow nodes in "
          f"{run.nodes_s:.1f} s; creating {plan.pods:,} pods", flush=True)
    beats = asyncio.create_task(hollow.heartbeat(session, cluster, plan.nodes))
    try:
        await throughput(session, cluster, run)
        print(f"  {len(run.bound):,} of {plan.pods:,} pods bound; now a backlog of {plan.pods:,} held pods",
              flush=True)
        await backlog(session, cluster, run)
        print(f"  {run.drained:,} of {plan.pods:,} held pods bound after the taint was lifted", flush=True)
        if plan.kills:
            await failover(session, cluster, run)
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


# -- report ----------------------------------------------------------------------------------------


def figures(run: Run) -> dict[str, Any]:
    plan = run.plan
    latencies = [run.bound[n] - run.seen[n] for n in run.bound if n in run.seen and n.startswith("pod-")]
    bound = sum(1 for n in run.bound if n.startswith("pod-"))
    last = max((t for n, t in run.bound.items() if n.startswith("pod-")), default=None)
    pods_per_s = None
    if last is not None and run.first_sent is not None and bound:
        pods_per_s = bound / (last - run.first_sent)
    create_per_s = None
    if run.created_done is not None and run.first_sent is not None:
        create_per_s = (plan.pods - run.create_failed) / (run.created_done - run.first_sent)
    drain_per_s = None if not run.drain_s else run.drained / run.drain_s
    drain_cpu_ms = None if run.drain_leader_cpu_s is None or not run.drained else \
        run.drain_leader_cpu_s * 1000 / run.drained
    return {
        "bench": "scheduler",
        "mode": "quick" if plan.quick else "full",
        "nodes": plan.nodes,
        "pods": plan.pods,
        "pods_bound": bound,
        "pods_create_failed": run.create_failed,
        "pods_per_s": rounded(pods_per_s, 1),
        "pods_created_per_s": rounded(create_per_s, 1),
        "p50_scheduling_latency_s": rounded(percentile(latencies, 50)),
        "p99_scheduling_latency_s": rounded(percentile(latencies, 99)),
        "max_scheduling_latency_s": rounded(max(latencies, default=None)),
        "backlog_pods_per_s": rounded(drain_per_s, 1),
        "backlog_marked_unschedulable": run.held_marked,
        "backlog_p99_time_to_bind_s": rounded(percentile(run.held_latencies, 99)),
        "backlog_leader_cpu_ms_per_pod": rounded(drain_cpu_ms, 2),
        "backlog_pods_per_leader_cpu_s": rounded(None if not drain_cpu_ms else 1000 / drain_cpu_ms, 1),
        "target_pods_per_s": TARGET_PODS_PER_S,
        "ratio_to_target": rounded(ratio(pods_per_s, TARGET_PODS_PER_S), 2),
        "upstream_ci_pods_per_s_anchor_not_measured": list(UPSTREAM_CI_PODS_PER_S),
        "ratio_to_upstream_ci_low": rounded(ratio(pods_per_s, UPSTREAM_CI_PODS_PER_S[0]), 2),
        "backlog_ratio_to_target": rounded(ratio(drain_per_s, TARGET_PODS_PER_S), 2),
        "backlog_ratio_to_upstream_ci_low": rounded(ratio(drain_per_s, UPSTREAM_CI_PODS_PER_S[0]), 2),
        "arch_violations": run.arch_violations,
        "leader_cpu_ms_per_pod": rounded(None if run.leader_cpu_s is None or not bound
                                         else run.leader_cpu_s * 1000 / bound, 2),
        "framework_cpu_ms_per_pod": rounded(run.framework_ms_per_pod, 3),
        "controller_failover_p99_s": rounded(percentile(run.failover_s, 99)),
        "controller_failover_p50_s": rounded(percentile(run.failover_s, 50)),
        "controller_failover_max_s": rounded(max(run.failover_s, default=None)),
        "failover_kills": len(run.failover_s) + run.failover_missed,
        "failover_missed": run.failover_missed,
        "failover_samples_s": [round(s, 3) for s in run.failover_s],
        "error": run.error,
    }


def print_report(run: Run, f: dict[str, Any]) -> None:
    print()
    print(f"scheduler benchmark ({f['mode']}): {f['nodes']} hollow nodes, {f['pods']:,} pods, 3 masters, "
          f"{os.cpu_count()} CPUs")
    if run.error:
        print(f"  ERROR: {run.error}")
    print(f"  pods bound/s: {fmt(f['pods_per_s'])}   target {TARGET_PODS_PER_S:.0f}: "
          f"{fmt(f['ratio_to_target'], 'x', 2)}   upstream CI 680-810 (anchor, not measured here): "
          f"{fmt(f['ratio_to_upstream_ci_low'], 'x', 2)} of 680")
    print(f"  pods created/s (32 clients, same run): {fmt(f['pods_created_per_s'])}; "
          f"bound {f['pods_bound']:,}, create failures {f['pods_create_failed']}, arch violations "
          f"{f['arch_violations']}")
    print(f"  backlog drain (all nodes tainted, {f['backlog_marked_unschedulable']:,} pods marked Unschedulable, taint "
          f"lifted): {fmt(f['backlog_pods_per_s'])} pods bound/s; target {fmt(f['backlog_ratio_to_target'], 'x', 2)}, "
          f"upstream CI anchor {fmt(f['backlog_ratio_to_upstream_ci_low'], 'x', 2)} of 680")
    print(f"    leader CPU while draining: {fmt(f['backlog_leader_cpu_ms_per_pod'], ' ms', 2)} per pod, i.e. "
          f"{fmt(f['backlog_pods_per_leader_cpu_s'])} pods per second of leader CPU (the rate with a core of its own)")
    print(f"  scheduling latency (watch: created -> bound): p50 {fmt(f['p50_scheduling_latency_s'], ' s', 3)}, "
          f"p99 {fmt(f['p99_scheduling_latency_s'], ' s', 3)}, max {fmt(f['max_scheduling_latency_s'], ' s', 3)}")
    print(f"  where the time goes: leader process CPU {fmt(f['leader_cpu_ms_per_pod'], ' ms', 2)} per pod "
          "(its share of API creates, Raft for every write, bindings, watches, events); pure schedule() "
          f"{fmt(f['framework_cpu_ms_per_pod'], ' ms', 3)} per pod")
    if run.framework_profile:
        print("  schedule() profile (tottime):")
        for line in run.framework_profile.splitlines():
            print(f"    {line.strip()}")
    print(f"  controller failover (kill -9 leader -> first pod bound by the next leader): "
          f"p50 {fmt(f['controller_failover_p50_s'], ' s', 3)}, p99 {fmt(f['controller_failover_p99_s'], ' s', 3)}, "
          f"max {fmt(f['controller_failover_max_s'], ' s', 3)} over {f['failover_kills']} kills "
          f"({f['failover_missed']} missed); target 2 s; upstream default lease 15 s")


async def run_all(plan: Plan, keep_logs: bool = False) -> dict[str, Any]:
    procs.cancel_on_sigterm()
    run = Run(plan)
    framework_cost(run)
    async with make_session(128) as session:
        cluster = ApiCluster()
        try:
            await measure(session, cluster, run)
        except Exception as exc:  # reported, not hidden; Ctrl-C still propagates
            run.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        finally:
            kept = cluster.stop(keep_logs=keep_logs or run.error is not None)
            if kept is not None:
                print(f"  master logs kept in {kept}", flush=True)
    f = figures(run)
    print_report(run, f)
    return f


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scheduler", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 pods and 5 leader kills")
    parser.add_argument("--nodes", type=int, default=None, help="hollow nodes (default 100)")
    parser.add_argument("--pods", type=int, default=None, help="pods (default 3,000, quick 1,000)")
    parser.add_argument("--kills", type=int, default=None, help="leader kills (default 20, quick 5)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the masters' logs")
    args = parser.parse_args(argv)
    plan = Plan.make(args.quick, args.nodes, args.pods, args.kills)
    if plan.pods < 1 or plan.nodes < 1 or plan.kills < 0:
        parser.error("--pods and --nodes must be >= 1, --kills >= 0")
    figs = procs.run_benchmark(run_all(plan, args.keep_logs))
    return 1 if figs["error"] else 0
