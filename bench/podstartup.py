"""Pod startup through the API on one real Podman node, agent RSS with 30 pods, and idle disk writes.

Setup: the production configuration, formed exactly as ``edgek8s up`` forms it (``local_cluster.form_cluster``):
master-1 with ``--cluster-init`` (cluster CA, TLS, mTLS), master-2 and master-3 joined by token, and one worker
joined with ``edgek8s join --token --foreground``: its agent talks mTLS to the masters with its node
certificate, serves its kubelet HTTPS endpoint (only the API servers' client certificate may call it) and
renews its certificates, with its own Podman (storage and pod network under a temp dir). The busybox test
image is built locally and loaded into the agent's storage beforehand (so no pull is timed). The bench talks
to the API with the admin kubeconfig.

1. Startup: ``--pods`` (100) pods with ``spec.nodeName`` set are created at ``--rate`` pods/s; each pod's
   time from the POST to the first watch event that shows it Ready is recorded. Anchors: the Kubernetes
   pod startup SLO (p99 <= 5 s, image present), KubeEdge's reported p99 of 4.1 s; target p99 <= 1.5 s.
2. Footprint: the pods are deleted, 30 are created and Ready; then the agent's VmRSS (and, reported
   apart, the Podman service's, and the agent's once joined, before any pod: the difference is what the
   pods and the burst's fragmentation cost). Anchor: the k3s agent uses 268 MB on a Pi 4; target <= 50 MB.
3. Idle disk writes: with the 30 pods running and nothing changing, ``/proc/<pid>/io`` write_bytes of the
   agent and of each master over ``--idle-seconds`` (60). Anchor: an idle k3s server writes 6-10 kB/s;
   target <= 1 kB/s per process.

The last stdout line is JSON with ``p99_s``, ``agent_rss_mb_30_pods``, ``idle_disk_write_bytes_per_s``
(the largest of the agent and the masters) and the details.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.podtimeline import PodmanEventTail, slowest, summarize
from bench.stats import percentile, rounded

LOG_LEVEL = "WARNING"  # the agent's and masters' log level (INFO would add log writes to the idle figure)
PODS = "/api/v1/namespaces/default/pods"


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (CPU time is what to compare on a machine shared with other work)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pod(name: str, image: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "podstartup"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"]}]}}


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _create_and_time(session: aiohttp.ClientSession, api: str, names: list[str], rate: float,
                           image: str, node: str,
                           timeline: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    """Create pods at ``rate``/s; seconds from each POST to the watch event showing it Ready. With
    ``timeline``, also the wall-clock times of the POST, its answer and the Ready event per pod."""
    marks: dict[str, dict[str, float]] = timeline if timeline is not None else {}
    async with session.get(f"{api}{PODS}", params={"labelSelector": "bench=podstartup"}) as response:
        rv = (await response.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    ready: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        params = {"watch": "1", "resourceVersion": rv, "labelSelector": "bench=podstartup"}
        async with session.get(f"{api}{PODS}", params=params, timeout=aiohttp.ClientTimeout(total=None)) as stream:
            async for line in stream.content:
                event = json.loads(line)
                pod = event.get("object") or {}
                name = (pod.get("metadata") or {}).get("name")
                if name in sent and name not in ready and _ready(pod):
                    ready[name] = time.monotonic() - sent[name]
                    marks.setdefault(name, {})["ready"] = time.time()
                    if len(ready) == len(names):
                        done.set()
                        return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)

    async def create(name: str) -> None:
        sent[name] = time.monotonic()
        marks.setdefault(name, {})["sent"] = time.time()
        async with session.post(f"{api}{PODS}", json=_pod(name, image, node)) as response:
            if response.status != 201:
                raise RuntimeError(f"create {name}: HTTP {response.status} {await response.text()}")
        marks[name]["created"] = time.time()

    creates = []
    for name in names:
        creates.append(asyncio.create_task(create(name)))
        await asyncio.sleep(1.0 / rate)
    await asyncio.gather(*creates)
    try:
        await asyncio.wait_for(done.wait(), timeout=300)
    finally:
        watcher.cancel()
    return ready


async def _kubelet_endpoint_answers(session: aiohttp.ClientSession, api: str, pod: str) -> None:
    """``kubectl logs`` through the API server: proves the agent's kubelet HTTPS endpoint (mTLS) serves."""
    async with session.get(f"{api}{PODS}/{pod}/log") as response:
        if response.status != 200:
            raise RuntimeError(f"logs of {pod} through the kubelet endpoint: HTTP {response.status} "
                               f"{(await response.text())[:300]}")


async def _delete_all(session: aiohttp.ClientSession, api: str, podman_env: dict[str, str]) -> None:
    async with session.delete(f"{api}{PODS}", params={"labelSelector": "bench=podstartup"}) as response:
        await response.read()

    async def none_left() -> bool:
        out = (await asyncio.to_thread(
            subprocess.run, ["podman", "ps", "-q", "--filter", "label=io.edgek8s.pod.uid"], env=podman_env,
            capture_output=True, text=True, check=False)).stdout
        return not out.strip()

    await _wait(none_left, 300, "the pods' containers to be removed")


def _form(state_dir: Path) -> dict[str, Any]:
    """3 masters and one worker, formed as ``edgek8s up`` forms them (without its sample app)."""
    from edgek8s.server.local_cluster import form_cluster

    os.environ["EDGEK8S_LOG_LEVEL"] = LOG_LEVEL  # inherited by every node process
    return form_cluster(state_dir, masters=3, workers=1, sample_app=False)


def configuration(manifest: dict[str, Any]) -> str:
    worker = manifest["workers"][0]
    return (f"production: {len(manifest['masters'])} masters formed as `edgek8s up` does (cluster-init, TLS API, "
            f"mTLS), worker {worker['name']} joined with `edgek8s join --token --foreground` (node certificate, "
            f"kubelet HTTPS endpoint, certificate renewal), log level {LOG_LEVEL}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgek8s.client.kubeconfig import load_kubeconfig
    from edgek8s.config import PodmanConfig
    from edgek8s.kubelet.podman_host import resolve
    from edgek8s.server.images import TEST_IMAGE, build_archive
    from edgek8s.server.local_cluster import down, kubeconfig_path

    procs.install_cleanup()
    base = procs.make_temp_dir("bench-podstartup-")
    state_dir = base / "cluster"
    try:
        print("building the test image...", flush=True)
        archive = await asyncio.to_thread(build_archive, TEST_IMAGE, base / "busybox.tar")
        manifest = await asyncio.to_thread(_form, state_dir)
        worker = manifest["workers"][0]
        node, agent_pid = worker["name"], int(worker["pid"])  # `join --foreground` execs the agent in place
        host = resolve(PodmanConfig(), Path(worker["data_dir"]))
        endpoint = load_kubeconfig(kubeconfig_path(state_dir))
        connector = aiohttp.TCPConnector(ssl=endpoint.ssl_context if endpoint.ssl_context is not None else False)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = endpoint.server

            async def socket_ready() -> bool:
                return host.socket.exists() and host.containers_conf.exists()

            await _wait(socket_ready, 60, "the agent's Podman service")
            await asyncio.to_thread(subprocess.run, ["podman", "load", "--quiet", "--input", str(archive)],
                                    env=host.env(), check=True, capture_output=True)
            joined_rss = procs.rss_bytes(agent_pid) or 0  # the same process before any pod: what the burst adds
            # Warm-up: the first pod builds Podman's pause image and the pod network.
            await _create_and_time(session, api, ["warmup"], 1.0, TEST_IMAGE, node)
            await _delete_all(session, api, host.env())

            print(f"creating {args.pods} pods at {args.rate}/s...", flush=True)
            cpu_before = time.process_time()
            service_pid = int((host.run_dir / "service.pid").read_text())
            agent_cpu, service_cpu = _cpu_seconds(agent_pid), _cpu_seconds(service_pid)
            events = PodmanEventTail(host.events_log)
            follower = asyncio.create_task(events.follow())
            timeline: dict[str, dict[str, float]] = {}
            try:
                times = await _create_and_time(session, api, [f"p{i}" for i in range(args.pods)], args.rate,
                                               TEST_IMAGE, node, timeline)
            finally:
                follower.cancel()
            agent_cpu = _cpu_seconds(agent_pid) - agent_cpu
            service_cpu = _cpu_seconds(service_pid) - service_cpu
            await asyncio.to_thread(events.read)
            for name, stages in events.stages.items():
                timeline.setdefault(name, {}).update(stages)
            startup = sorted(times.values())
            await _delete_all(session, api, host.env())

            if args.skip_footprint:
                await _delete_all(session, api, host.env())
                return _startup_result(args, manifest, startup, timeline, agent_cpu, service_cpu)
            print("30 pods for the footprint and idle figures...", flush=True)
            await _create_and_time(session, api, [f"r{i}" for i in range(30)], args.rate, TEST_IMAGE, node)
            await asyncio.sleep(5)  # let status writes and events settle
            await _kubelet_endpoint_answers(session, api, "r0")
            agent_rss = procs.rss_bytes(agent_pid) or 0
            service_rss = procs.rss_bytes(service_pid) or 0
            master_pids = [int(m["pid"]) for m in manifest["masters"]]
            watched = {"agent": agent_pid, **{f"master-{i + 1}": p for i, p in enumerate(master_pids)},
                       "podman-service": service_pid}
            from bench.idlewrites import journal_entries  # (it imports this module)

            data_dir = state_dir / manifest["masters"][0]["name"] / "data"
            first_entry = len(await asyncio.to_thread(journal_entries, data_dir, base / "scratch"))
            before = {k: procs.write_bytes(p) or 0 for k, p in watched.items()}
            print(f"idle for {args.idle_seconds:.0f}s...", flush=True)
            await asyncio.sleep(args.idle_seconds)
            after = {k: procs.write_bytes(p) or 0 for k, p in watched.items()}
            idle_entries = len(await asyncio.to_thread(journal_entries, data_dir, base / "scratch")) - first_entry
            idle = {k: round((after[k] - before[k]) / args.idle_seconds, 1) for k in watched}
            idle_pages = {k: (after[k] - before[k]) // 4096 for k in watched}  # one page = 4096/window B/s
            await _delete_all(session, api, host.env())
            bench_cpu = time.process_time() - cpu_before
    finally:
        await asyncio.to_thread(down, state_dir, quiet=True)  # every node process, pod, container and image
        procs.remove_temp_dir(base)
    return _startup_result(args, manifest, startup, timeline, agent_cpu, service_cpu) | {
        "agent_rss_mb_30_pods": round(agent_rss / 2**20, 1), "agent_rss_mb_joined": round(joined_rss / 2**20, 1),
        "podman_service_rss_mb_30_pods": round(service_rss / 2**20, 1),
        "idle_disk_write_bytes_per_s": max(v for k, v in idle.items() if k != "podman-service"),
        "idle_disk_write_bytes_per_s_by_process": idle, "idle_write_bytes_pages_by_process": idle_pages,
        "idle_seconds": args.idle_seconds, "idle_raft_entries": idle_entries, "bench_driver_cpu_s": round(bench_cpu, 2),
    }


def _startup_result(args: argparse.Namespace, manifest: dict[str, Any], startup: list[float],
                    timeline: dict[str, dict[str, float]], agent_cpu: float, service_cpu: float) -> dict[str, Any]:
    p50, p90, p99 = (percentile(startup, p) for p in (50, 90, 99))
    return {
        "configuration": configuration(manifest), "pods": args.pods, "rate_per_s": args.rate,
        "p50_s": rounded(p50), "p90_s": rounded(p90),
        "p99_s": rounded(p99), "max_s": rounded(startup[-1]),
        "agent_cpu_ms_per_pod_start": round(1000 * agent_cpu / args.pods, 1),
        "podman_cpu_ms_per_pod_start": round(1000 * service_cpu / args.pods, 1),
        "stages_s": summarize(timeline), "slowest_pods_s": slowest(timeline),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench podstartup", description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--rate", type=float, default=5.0, help="pods created per second")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--skip-footprint", action="store_true",
                        help="only the startup figures and timeline (no 30-pod RSS and idle phase)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench podstartup: run as root (Podman rootful, as the agent runs)", file=sys.stderr)
        return 2
    result = asyncio.run(run(args))
    print(f"configuration measured: {result['configuration']}")
    print(f"pod startup, create -> Ready, {result['pods']} pods at {result['rate_per_s']}/s: "
          f"p50 {result['p50_s']} s  p90 {result['p90_s']} s  p99 {result['p99_s']} s  "
          f"(target <= 1.5 s; Kubernetes SLO p99 <= 5 s; KubeEdge reported 4.1 s)")
    print(f"CPU per pod start: agent {result['agent_cpu_ms_per_pod_start']} ms, Podman service "
          f"{result['podman_cpu_ms_per_pod_start']} ms (conmon and runc not counted)")
    print("stages (s, from the previous stage):")
    for stage, figures in result["stages_s"].items():
        print(f"  {stage:<24} " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    if "agent_rss_mb_30_pods" not in result:
        print(json.dumps(result))
        return 0
    print(f"agent RSS with 30 pods: {result['agent_rss_mb_30_pods']} MB (target <= 50 MB; k3s agent 268 MB on a "
          f"Pi 4; {result['agent_rss_mb_joined']} MB once joined, before any pod); podman service "
          f"{result['podman_service_rss_mb_30_pods']} MB")
    print(f"idle disk writes (B/s): {result['idle_disk_write_bytes_per_s_by_process']} "
          "(target <= 1 kB/s per process; idle k3s server 6-10 kB/s)")
    print(f"  = write_bytes pages over {result['idle_seconds']:.0f} s: {result['idle_write_bytes_pages_by_process']} "
          f"for {result['idle_raft_entries']} Raft entries (one page = {4096 / result['idle_seconds']:.0f} B/s)")
    print(json.dumps(result))
    return 0
