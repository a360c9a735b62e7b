"""The `api` benchmark: GET and LIST latency of the Kubernetes API, and `kubectl get pods -A`.

3 edgek8s masters on loopback (plain HTTP, so every request is the anonymous admin) hold 3,000 pods
(1,000 with --quick) across 30 namespaces, bound by `spec.nodeName` to 100 hollow nodes whose Leases are
renewed every 10 s as a live cluster's are (the node lifecycle controller removes pods bound to absent
nodes and evicts pods from silent ones, so fake node names would shrink the data set mid-run). While
8 background clients update ConfigMaps continuously (unconditional PUTs, round-robin over masters):
  * GET one pod: 100 closed-loop clients, random pods, spread round-robin over the masters;
  * LIST all pods (`GET /api/v1/pods`, resourceVersion unset = linearizable): a few clients, as
    JSON and as a server-side Table (what kubectl's human output asks for);
  * LIST in pages of `limit=500` (kubectl's default chunk size), all pages, JSON and Table;
  * the real `kubectl get pods -A` against one master (private HOME and cache dir; the first run
    does discovery), wall time including kubectl's own start-up, with `kubectl version --client`
    timed as the start-up anchor.
Each figure is printed beside its anchor: the Kubernetes API call latency SLOs (single object p99
<= 1 s, cluster-scoped LIST p99 <= 30 s) and the 20 ms aim for a single-object p99.
The key `list_3000_pods_*` keeps its name with --quick; `pods` says how many pods were listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import shutil
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import hollow, procs
from bench.edgek8s_cluster import EdgeCluster
from bench.load import LoadResult, Request, dumps, fetch, make_session, run_load
from bench.stats import fmt, ms, percentile, ratio, rounded

# Code under test: the checkout this file belongs to (run the bench from a stable worktree).
CODE_ROOT = Path(__file__).resolve().parent.parent

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
# What kubectl 1.32 sends for `get` (Table first, plain JSON as the fallback).
KUBECTL_ACCEPT = f"{TABLE_ACCEPT},application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"

GET_CLIENTS = 100
BACKGROUND_WRITERS = 8
BACKGROUND_VALUE_BYTES = 1024
NODE_NAMES = 100
PAGE_LIMIT = 500
CREATE_CLIENTS = 32
MAX_CONNECTIONS = 192  # >= GET_CLIENTS + BACKGROUND_WRITERS + list clients

SLO_SINGLE_MS = 1000.0  # Kubernetes API SLO: mutating and read-only single-object calls, p99 <= 1 s
SLO_LIST_CLUSTER_MS = 30_000.0  # Kubernetes API SLO: cluster-scoped LIST, p99 <= 30 s
AIM_SINGLE_MS = 20.0  # edgek8s aim: single-object p99 <= 20 ms at 100 clients on 2 cores


@dataclass(frozen=True)
class Plan:
    quick: bool
    pods: int
    namespaces: int
    get_warmup_ops: int
    get_ops: int
    get_time_cap_s: float
    list_clients: int
    list_ops: int
    list_time_cap_s: float
    paged_runs: int
    kubectl_runs: int

    @staticmethod
    def make(quick: bool, pods: int | None) -> Plan:
        if quick:
            return Plan(True, pods or 1_000, 10, 500, 5_000, 30.0, 3, 30, 30.0, 5, 5)
        return Plan(False, pods or 3_000, 30, 2_000, 50_000, 60.0, 4, 200, 60.0, 20, 10)


# -- cluster ----------------------------------------------------------------


def code_env() -> dict[str, str]:
    """The masters' environment: this checkout's package first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CODE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


class ApiCluster(EdgeCluster):
    """EdgeCluster whose masters run the code of this checkout (cwd and PYTHONPATH)."""

    def _spawn(self, index: int) -> None:
        m = self.masters[index]
        m.data_dir.mkdir(exist_ok=True)
        m.proc = procs.spawn(self.argv(index), m.log_path, env=code_env())




def namespace_of(i: int, plan: Plan) -> str:
    return f"bench-{i % plan.namespaces:02d}"


def pod_name(i: int) -> str:
    return f"pod-{i:05d}"


def pod_body(i: int, plan: Plan) -> bytes:
    return dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name(i),
                "namespace": namespace_of(i, plan),
                "labels": {"app": f"app-{i % 20}", "tier": "bench"},
            },
            "spec": {
                "nodeName": hollow.node_name(i % NODE_NAMES),
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}],
            },
        }
    )


async def populate(session: aiohttp.ClientSession, cluster: EdgeCluster, plan: Plan) -> tuple[float, int]:
    """Create the namespaces and pods (up to 3 tries each; 409 on a retry counts as created).
    Returns (seconds, failed creates)."""
    urls = [m.api_url for m in cluster.masters]
    for n in range(plan.namespaces):
        name = f"bench-{n:02d}"
        obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status, data = await fetch(session, "POST", f"{urls[n % 3]}/api/v1/namespaces", body=dumps(obj))
        if status not in (201, 409):
            raise RuntimeError(f"create namespace {name}: HTTP {status} {data[:200]!r}")
    failed = 0
    next_index = 0
    started = time.perf_counter()
    deadline = started + 180.0

    async def worker() -> None:
        nonlocal next_index, failed
        while next_index < plan.pods and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            url = f"{urls[i % 3]}/api/v1/namespaces/{namespace_of(i, plan)}/pods"
            for attempt in range(3):
                try:
                    status, _ = await fetch(session, "POST", url, body=pod_body(i, plan), timeout_s=30.0)
                except (aiohttp.ClientError, TimeoutError, OSError):
                    status = 0
                if status == 201 or (status == 409 and attempt > 0):
                    break
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(CREATE_CLIENTS)))
    return time.perf_counter() - started, failed + max(0, plan.pods - next_index)


# -- background writes ------------------------------------------------------


@dataclass
class Background:
    """`BACKGROUND_WRITERS` clients updating one ConfigMap each, until stopped."""

    ok: int = 0
    failed: int = 0
    latencies_s: list[float] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0

    def mark(self) -> tuple[float, int]:
        return time.perf_counter(), self.ok

    def rate_since(self, mark: tuple[float, int]) -> float | None:
        t0, ok0 = mark
        elapsed = time.perf_counter() - t0
        return (self.ok - ok0) / elapsed if elapsed > 0 else None

    @property
    def per_s(self) -> float | None:
        elapsed = self.stopped - self.started
        return self.ok / elapsed if elapsed > 0 else None


async def background_writes(
    session: aiohttp.ClientSession, cluster: EdgeCluster, bg: Background, stop: asyncio.Event, cap_s: float
) -> None:
    urls = [m.api_url for m in cluster.masters]
    base = "/api/v1/namespaces/default/configmaps"
    for k in range(BACKGROUND_WRITERS):
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bg-{k}"}, "data": {"v": "0"}}
        status, data = await fetch(session, "POST", urls[k % 3] + base, body=dumps(obj))
        if status not in (201, 409):
            raise RuntimeError(f"create configmap bg-{k}: HTTP {status} {data[:200]!r}")
    pad = "x" * (BACKGROUND_VALUE_BYTES - 16)
    bg.started = time.perf_counter()
    deadline = bg.started + cap_s

    async def writer(k: int) -> None:
        seq = 0
        while not stop.is_set() and time.perf_counter() < deadline:
            seq += 1
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bg-{k}"},
                   "data": {"v": f"{seq:015d}{pad}"}}  # fmt: skip
            url = f"{urls[(k + seq) % 3]}{base}/bg-{k}"
            t0 = time.perf_counter()
            try:
                status, _ = await fetch(session, "PUT", url, body=dumps(obj), timeout_s=10.0)
            except (aiohttp.ClientError, TimeoutError, OSError):
                status = 0
            if status == 200:
                bg.ok += 1
                bg.latencies_s.append(time.perf_counter() - t0)
            else:
                bg.failed += 1
                await asyncio.sleep(0.01)

    try:
        await asyncio.gather(*(writer(k) for k in range(BACKGROUND_WRITERS)))
    finally:
        bg.stopped = time.perf_counter()


# -- timed loops ------------------------------------------------------------


@dataclass
class Timed:
    """Latencies of one measured operation (successful samples only)."""

    latencies_s: list[float] = field(default_factory=list)
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    hit_time_cap: bool = False

    def p(self, q: float) -> float | None:
        return ms(percentile(self.latencies_s, q))

    def line(self) -> str:
        extra = f"  failed {self.failed}" if self.failed else ""
        extra += "  [time cap hit]" if self.hit_time_cap else ""
        return (
            f"n={len(self.latencies_s)}  p50 {fmt(self.p(50), ' ms', 2)}  p99 {fmt(self.p(99), ' ms', 2)}"
            f"  max {fmt(ms(max(self.latencies_s, default=None)), ' ms', 2)}{extra}"
        )


async def closed_loop(clients: int, ops: int, cap_s: float, op: Callable[[int], Awaitable[float]]) -> Timed:
    """`clients` coroutines run `op(seq)` (returns its latency in seconds, raises on failure)
    until `ops` have started or `cap_s` has passed."""
    result = Timed()
    budget = ops
    deadline = time.perf_counter() + cap_s
    seq = 0

    async def client() -> None:
        nonlocal budget, seq
        while budget > 0:
            if time.perf_counter() >= deadline:
                result.hit_time_cap = True
                return
            budget -= 1
            seq += 1
            try:
                result.latencies_s.append(await op(seq))
            except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError, ValueError) as exc:
                result.failed += 1
                if len(result.errors) < 5:
                    result.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    await asyncio.gather(*(client() for _ in range(clients)))
    return result


Op = Callable[[int], Awaitable[float]]


def list_op(session: aiohttp.ClientSession, cluster: EdgeCluster, accept: str | None) -> Op:
    async def op(seq: int) -> float:
        url = f"{cluster.masters[seq % 3].api_url}/api/v1/pods"
        t0 = time.perf_counter()
        status, data = await fetch(session, "GET", url, accept=accept, timeout_s=60.0)
        latency = time.perf_counter() - t0
        if status != 200:
            raise RuntimeError(f"LIST HTTP {status} {data[:200]!r}")
        return latency

    return op


def paged_op(session: aiohttp.ClientSession, cluster: EdgeCluster, accept: str | None, expect: int) -> Op:
    """All pages of `limit=PAGE_LIMIT` from one master, sequentially (as kubectl does). The time is
    the sum of the page round trips; decoding each page for its continue token is not timed."""

    async def op(seq: int) -> float:
        base = f"{cluster.masters[seq % 3].api_url}/api/v1/pods?limit={PAGE_LIMIT}"
        url, total, count = base, 0.0, 0
        for _page in range(expect // PAGE_LIMIT + 3):
            t0 = time.perf_counter()
            status, data = await fetch(session, "GET", url, accept=accept, timeout_s=60.0)
            total += time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"paged LIST HTTP {status} {data[:200]!r}")
            body = json.loads(data)
            count += len(body["rows"] if accept else body["items"])
            cont = body.get("metadata", {}).get("continue")
            if not cont:
                break
            url = f"{base}&continue={cont}"
        if count != expect:
            raise RuntimeError(f"paged LIST returned {count} objects, expected {expect}")
        return total

    return op


async def check_lists(session: aiohttp.ClientSession, cluster: EdgeCluster, expect: int) -> dict[str, Any]:
    """One untimed LIST of each kind on each master: counts must match; sizes are reported."""
    sizes: dict[str, Any] = {}
    for node, m in enumerate(cluster.masters):
        for label, accept, key in (("json", None, "items"), ("table", TABLE_ACCEPT, "rows")):
            status, data = await fetch(session, "GET", f"{m.api_url}/api/v1/pods", accept=accept, timeout_s=60.0)
            if status != 200:
                raise RuntimeError(f"LIST ({label}) on {m.name}: HTTP {status} {data[:200]!r}")
            count = len(json.loads(data)[key])
            if count != expect:
                raise RuntimeError(f"LIST ({label}) on {m.name} returned {count} pods, expected {expect}")
            if node == 0:
                sizes[f"{label}_bytes"] = len(data)
    return sizes


# -- kubectl ----------------------------------------------------------------


@dataclass
class KubectlRuns:
    times_s: list[float] = field(default_factory=list)
    client_only_s: list[float] = field(default_factory=list)
    error: str | None = None
    version: str | None = None


def kubectl_env(home: Path, kubeconfig: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(home),
        KUBECONFIG=str(kubeconfig),
        KUBECACHEDIR=str(home / "kube-cache"),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


async def run_command(
    argv: list[str], env: dict[str, str], cwd: Path, timeout_s: float
) -> tuple[int, bytes, bytes, float]:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=cwd, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out, err, time.perf_counter() - t0


async def kubectl_runs(cluster: EdgeCluster, runs: int, expect: int, result: KubectlRuns) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        result.error = "kubectl not found on PATH"
        return
    home = procs.make_temp_dir("bench-api-kubectl-")
    try:
        kubeconfig = home / "kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "bench", "cluster": {"server": cluster.masters[0].api_url}}],
            "users": [{"name": "bench", "user": {}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            "current-context": "bench",
        }
        kubeconfig.write_text(json.dumps(config))
        env = kubectl_env(home, kubeconfig)
        for _ in range(3):
            code, out, err, took = await run_command([kubectl, "version", "--client"], env, home, 30.0)
            if code != 0:
                result.error = f"kubectl version --client: exit {code}: {err[-300:]!r}"
                return
            result.client_only_s.append(took)
            result.version = out.decode(errors="replace").splitlines()[0] if out else None
        for _ in range(runs):
            code, out, err, took = await run_command([kubectl, "get", "pods", "-A"], env, home, 120.0)
            lines = out.count(b"\n")
            if code != 0 or lines != expect + 1:
                result.error = f"kubectl get pods -A: exit {code}, {lines} lines (want {expect + 1}): {err[-300:]!r}"
                return
            result.times_s.append(took)
    finally:
        procs.remove_temp_dir(home)


# -- the run ----------------------------------------------------------------


@dataclass
class Run:
    plan: Plan
    populate_s: float | None = None
    populate_failed: int = 0
    sizes: dict[str, Any] = field(default_factory=dict)
    leader: int | None = None
    get: LoadResult | None = None
    get_bg_per_s: float | None = None
    lists: Timed | None = None
    tables: Timed | None = None
    list_bg_per_s: float | None = None
    paged: Timed | None = None
    paged_tables: Timed | None = None
    kubectl: KubectlRuns = field(default_factory=KubectlRuns)
    kubectl_bg_per_s: float | None = None
    background: Background = field(default_factory=Background)
    rss_mb: list[float | None] | None = None
    error: str | None = None


def rss_mb(cluster: EdgeCluster) -> list[float | None]:
    return [None if b is None else round(b / 2**20, 1) for b in cluster.rss_bytes()]


async def measure(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    await cluster.start(session)
    run.leader = await cluster.find_leader(session, 30.0)
    await hollow.create_nodes(session, cluster, NODE_NAMES)
    beats = asyncio.create_task(hollow.heartbeat(session, cluster, NODE_NAMES))
    try:
        await measure_with_nodes(session, cluster, run)
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats


async def measure_with_nodes(session: aiohttp.ClientSession, cluster: EdgeCluster, run: Run) -> None:
    plan = run.plan
    print(f"  3 masters ready (leader {cluster.masters[run.leader].name}), {NODE_NAMES} hollow nodes; "
          f"creating {plan.pods:,} pods", flush=True)
    run.populate_s, run.populate_failed = await populate(session, cluster, plan)
    print(
        f"  created {plan.pods - run.populate_failed:,} pods in {plan.namespaces} namespaces in {run.populate_s:.1f} s"
        f" ({plan.pods / run.populate_s:,.0f}/s), {run.populate_failed} failed",
        flush=True,
    )
    if run.populate_failed:
        raise RuntimeError(f"{run.populate_failed} pod creates failed")
    run.sizes = await check_lists(session, cluster, plan.pods)
    run.rss_mb = rss_mb(cluster)

    stop = asyncio.Event()
    bg_task = asyncio.create_task(background_writes(session, cluster, run.background, stop, cap_s=600.0))
    try:
        await asyncio.sleep(1.0)  # let the writers get going
        if bg_task.done():
            bg_task.result()  # raises the writers' setup error
        pods = [(namespace_of(i, plan), pod_name(i)) for i in range(plan.pods)]
        rng = random.Random(20240601)
        urls = [m.api_url for m in cluster.masters]

        def get_request(client: int, seq: int) -> Request:
            ns, name = pods[rng.randrange(len(pods))]
            return ("GET", f"{urls[(client + seq) % 3]}/api/v1/namespaces/{ns}/pods/{name}", None)

        warm = await run_load(
            session, clients=GET_CLIENTS, total_ops=plan.get_warmup_ops, time_cap_s=30.0, factory=get_request,
            ok_statuses=frozenset({200}),
        )  # fmt: skip
        if warm.failed:
            print(f"  GET warm-up: {warm.failed} failed {dict(warm.outcomes)}", flush=True)
        mark = run.background.mark()
        run.get = await run_load(
            session, clients=GET_CLIENTS, total_ops=plan.get_ops, time_cap_s=plan.get_time_cap_s,
            factory=get_request, ok_statuses=frozenset({200}),
        )  # fmt: skip
        run.get_bg_per_s = run.background.rate_since(mark)
        print(
            f"  GET: {run.get.throughput:,.0f}/s p99 {fmt(ms(run.get.latency(99)), ' ms', 2)}"
            f" (background {fmt(run.get_bg_per_s, ' writes/s', 0)})",
            flush=True,
        )

        mark = run.background.mark()
        lc = plan.list_clients
        run.lists = await closed_loop(lc, plan.list_ops, plan.list_time_cap_s, list_op(session, cluster, None))
        print(f"  LIST json: {run.lists.line()}", flush=True)
        run.tables = await closed_loop(lc, plan.list_ops, plan.list_time_cap_s, list_op(session, cluster, TABLE_ACCEPT))
        print(f"  LIST table: {run.tables.line()}", flush=True)
        run.list_bg_per_s = run.background.rate_since(mark)

        runs, cap = plan.paged_runs, plan.list_time_cap_s
        run.paged = await closed_loop(1, runs, cap, paged_op(session, cluster, None, plan.pods))
        print(f"  LIST limit={PAGE_LIMIT} json, all pages: {run.paged.line()}", flush=True)
        run.paged_tables = await closed_loop(1, runs, cap, paged_op(session, cluster, KUBECTL_ACCEPT, plan.pods))
        print(f"  LIST limit={PAGE_LIMIT} table, all pages: {run.paged_tables.line()}", flush=True)

        mark = run.background.mark()
        await kubectl_runs(cluster, plan.kubectl_runs, plan.pods, run.kubectl)
        run.kubectl_bg_per_s = run.background.rate_since(mark)
        if run.kubectl.error:
            print(f"  kubectl: {run.kubectl.error}", flush=True)
        else:
            print(f"  kubectl get pods -A: {[round(t * 1000) for t in run.kubectl.times_s]} ms", flush=True)
    finally:
        stop.set()
        await asyncio.wait_for(bg_task, 30.0)
    rss_end = rss_mb(cluster)
    if run.rss_mb is not None:
        run.rss_mb = [max(a or 0, b or 0) or None for a, b in zip(run.rss_mb, rss_end, strict=True)]


# -- report -----------------------------------------------------------------


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return "MET" if value <= limit else "MISSED"


def met(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def figures(run: Run) -> dict[str, Any]:
    plan, g, bg, k = run.plan, run.get, run.background, run.kubectl

    def tp(t: Timed | None, q: float) -> float | None:
        return None if t is None else t.p(q)

    get_p99 = None if g is None else ms(g.latency(99))
    list_p99, table_p99 = tp(run.lists, 99), tp(run.tables, 99)
    kubectl_p50, kubectl_p99 = ms(percentile(k.times_s, 50)), ms(percentile(k.times_s, 99))
    out: dict[str, Any] = {
        "benchmark": "api",
        "quick": plan.quick,
        "pods": plan.pods,
        "namespaces": plan.namespaces,
        "get_p50_ms": None if g is None else ms(g.latency(50)),
        "get_p99_ms": get_p99,
        "get_max_ms": None if g is None else ms(max(g.latencies_s, default=None)),
        "get_per_s": None if g is None else rounded(g.throughput, 1),
        "get_ok": None if g is None else g.ok,
        "get_failed": None if g is None else g.failed,
        "get_clients": GET_CLIENTS,
        "get_load_client_cpu_util": None if g is None or not g.elapsed_s else rounded(g.client_cpu_s / g.elapsed_s),
        "list_3000_pods_p50_ms": tp(run.lists, 50),
        "list_3000_pods_p99_ms": list_p99,
        "list_3000_pods_table_p50_ms": tp(run.tables, 50),
        "list_3000_pods_table_p99_ms": table_p99,
        "list_samples": None if run.lists is None else len(run.lists.latencies_s),
        "list_table_samples": None if run.tables is None else len(run.tables.latencies_s),
        "list_failed": None if run.lists is None or run.tables is None else run.lists.failed + run.tables.failed,
        "list_clients": plan.list_clients,
        "list_json_bytes": run.sizes.get("json_bytes"),
        "list_table_bytes": run.sizes.get("table_bytes"),
        "list_paged_500_p50_ms": tp(run.paged, 50),
        "list_paged_500_p99_ms": tp(run.paged, 99),
        "list_paged_500_table_p50_ms": tp(run.paged_tables, 50),
        "list_paged_500_table_p99_ms": tp(run.paged_tables, 99),
        "kubectl_get_pods_all_p50_ms": kubectl_p50,
        "kubectl_get_pods_all_p99_ms": kubectl_p99,
        "kubectl_get_pods_all_first_ms": ms(k.times_s[0]) if k.times_s else None,
        "kubectl_get_pods_all_runs_ms": [ms(t) for t in k.times_s] or None,
        "kubectl_client_only_p50_ms": ms(percentile(k.client_only_s, 50)),
        "kubectl_server_is_leader": None if run.leader is None else run.leader == 0,
        "kubectl_error": k.error,
        "background_writes_per_s": rounded(bg.per_s, 1),
        "background_writes_per_s_during_get": rounded(run.get_bg_per_s, 1),
        "background_writes_per_s_during_list": rounded(run.list_bg_per_s, 1),
        "background_writes_per_s_during_kubectl": rounded(run.kubectl_bg_per_s, 1),
        "background_write_p99_ms": ms(percentile(bg.latencies_s, 99)),
        "background_writes_failed": bg.failed,
        "background_writers": BACKGROUND_WRITERS,
        "get_p99_slo_ratio": rounded(ratio(get_p99, SLO_SINGLE_MS), 4),
        "get_p99_aim_ratio": rounded(ratio(get_p99, AIM_SINGLE_MS)),
        "list_3000_pods_p99_slo_ratio": rounded(ratio(list_p99, SLO_LIST_CLUSTER_MS), 4),
        "list_3000_pods_table_p99_slo_ratio": rounded(ratio(table_p99, SLO_LIST_CLUSTER_MS), 4),
        "kubectl_get_pods_all_p99_slo_ratio": rounded(ratio(kubectl_p99, SLO_LIST_CLUSTER_MS), 4),
        "populate_pods_per_s": None if not run.populate_s else rounded(plan.pods / run.populate_s, 1),
        "rss_mb_per_master": run.rss_mb,
        "error": run.error,
    }
    out["targets_met"] = {
        "get_p99_ms<=1000 (SLO)": met(get_p99, SLO_SINGLE_MS),
        "get_p99_ms<=20 (aim)": met(get_p99, AIM_SINGLE_MS),
        "list_3000_pods_p99_ms<=30000 (SLO)": met(list_p99, SLO_LIST_CLUSTER_MS),
        "list_3000_pods_table_p99_ms<=30000 (SLO)": met(table_p99, SLO_LIST_CLUSTER_MS),
    }
    return out


def print_report(run: Run, f: dict[str, Any]) -> None:
    def against(value: float | None, limit: float, label: str) -> str:
        return f"{label} {fmt(limit, ' ms', 0)}: {fmt(ratio(value, limit), 'x', 4)} {verdict(value, limit)}"

    n = run.plan.pods
    print()
    print(
        f"api benchmark{' (quick)' if run.plan.quick else ''}: 3 masters on loopback, {n:,} pods in"
        f" {run.plan.namespaces} namespaces, {BACKGROUND_WRITERS} background ConfigMap writers"
        f" ({fmt(f['background_writes_per_s'], ' writes/s')}, p99 {fmt(f['background_write_p99_ms'], ' ms', 1)},"
        f" {f['background_writes_failed']} failed)"
    )
    if run.error:
        print(f"  ERROR: {run.error}")
    g = run.get
    if g is not None:
        print(
            f"  GET pod, {GET_CLIENTS} clients: {g.throughput:,.0f}/s  ok {g.ok} failed {g.failed}"
            f"  p50 {fmt(f['get_p50_ms'], ' ms', 2)}  p99 {fmt(f['get_p99_ms'], ' ms', 2)}"
            f"  max {fmt(f['get_max_ms'], ' ms', 2)}  (load client CPU {fmt(f['get_load_client_cpu_util'], '', 2)})"
            + ("  [time cap hit]" if g.hit_time_cap else "")
        )
        print(
            f"    p99 vs {against(f['get_p99_ms'], SLO_SINGLE_MS, 'SLO')};"
            f"  vs {against(f['get_p99_ms'], AIM_SINGLE_MS, 'aim')}"
        )
    for title, t in ((f"LIST {n:,} pods, json ", run.lists), (f"LIST {n:,} pods, Table", run.tables)):
        if t is not None:
            print(f"  {title} ({run.plan.list_clients} clients): {t.line()}")
            print(f"    p99 vs {against(t.p(99), SLO_LIST_CLUSTER_MS, 'SLO')}")
            for e in t.errors:
                print(f"    error: {e}")
    print(f"    sizes: json {fmt(f['list_json_bytes'], ' B', 0)}, Table {fmt(f['list_table_bytes'], ' B', 0)}")
    for title, t in (("json ", run.paged), ("Table", run.paged_tables)):
        if t is not None:
            print(f"  LIST limit={PAGE_LIMIT}, all {n:,} pods in pages, {title} (1 client): {t.line()}")
            for e in t.errors:
                print(f"    error: {e}")
    k = run.kubectl
    if k.error:
        print(f"  kubectl get pods -A: ERROR {k.error}")
    if k.times_s:
        role = "leader" if f["kubectl_server_is_leader"] else "follower"
        print(
            f"  kubectl get pods -A ({len(k.times_s)} runs, against a {role}):"
            f" first (with discovery) {fmt(f['kubectl_get_pods_all_first_ms'], ' ms', 0)}"
            f"  p50 {fmt(f['kubectl_get_pods_all_p50_ms'], ' ms', 0)}"
            f"  p99 {fmt(f['kubectl_get_pods_all_p99_ms'], ' ms', 0)}"
            f"  (kubectl version --client alone: {fmt(f['kubectl_client_only_p50_ms'], ' ms', 0)})"
        )
        print(f"    p99 vs {against(f['kubectl_get_pods_all_p99_ms'], SLO_LIST_CLUSTER_MS, 'cluster-scoped LIST SLO')}")
    print(
        f"  background writes/s: during GET {fmt(f['background_writes_per_s_during_get'])},"
        f" during LIST {fmt(f['background_writes_per_s_during_list'])},"
        f" during kubectl {fmt(f['background_writes_per_s_during_kubectl'])}"
    )
    print(f"  RSS per master (max seen): {run.rss_mb} MB; pods created at {fmt(f['populate_pods_per_s'])}/s")
    host = f.get("host", {})
    print(
        f"host: {host.get('cpus')} CPUs shared by the load client, kubectl and all masters;"
        f" 1-min load average {host.get('loadavg_1m_at_start')} at start, {host.get('loadavg_1m_at_end')} at end"
    )


async def run_all(plan: Plan) -> dict[str, Any]:
    procs.cancel_on_sigterm()
    host = {"cpus": os.cpu_count(), "loadavg_1m_at_start": round(os.getloadavg()[0], 2)}
    spec = importlib.util.find_spec("edgek8s")
    print(f"api benchmark: code under test {CODE_ROOT} (edgek8s from {spec.origin if spec else '?'})", flush=True)
    run = Run(plan)
    async with make_session(MAX_CONNECTIONS) as session:
        cluster = ApiCluster()
        try:
            await measure(session, cluster, run)
        except Exception as exc:  # reported, not hidden; Ctrl-C still propagates
            run.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
            kept = cluster.stop(keep_logs=True)
            print(f"  master logs kept in {kept}", flush=True)
        finally:
            cluster.stop()
    f = figures(run)
    host["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    f["host"] = host
    print_report(run, f)
    return f


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench api", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 pods and fewer requests")
    parser.add_argument("--pods", type=int, default=None, help="pods to create (default 3,000, quick 1,000)")
    args = parser.parse_args(argv)
    plan = Plan.make(args.quick, args.pods)
    if plan.pods < 1:
        parser.error("--pods must be >= 1")
    figs = procs.run_benchmark(run_all(plan))
    return 1 if figs["error"] or figs["kubectl_error"] else 0
