"""Hollow nodes for benchmarks: Node objects that look like Raspberry Pis, and their Lease heartbeats.

A hollow node is Ready, has a Pi 4's allocatable (4 CPUs, 4 or 8 GiB, 110 pods; arm64 and amd64 half each)
and renews its Lease in kube-node-lease every ``HEARTBEAT_S`` through a live master, as kubemark's hollow
kubelets do, so the node lifecycle controller keeps it Ready and leaves the pods bound to it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from bench.edgek8s_cluster import EdgeCluster
from bench.load import dumps, fetch

HEARTBEAT_S = 10.0


def node_name(i: int) -> str:
    return f"hollow-{i:03d}"


def node_arch(i: int) -> str:
    return "arm64" if i % 2 == 0 else "amd64"


def node_body(i: int) -> bytes:
    amounts = {"cpu": "4", "memory": "8Gi" if i % 4 < 2 else "4Gi", "pods": "110", "ephemeral-storage": "28Gi"}
    arch, name = node_arch(i), node_name(i)
    return dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/arch": arch, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {"capacity": amounts, "allocatable": amounts,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                   "nodeInfo": {"architecture": arch, "operatingSystem": "linux"}},
    })


def lease_body(name: str) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                  "metadata": {"name": name, "namespace": "kube-node-lease"},
                  "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}})


async def create_nodes(session: aiohttp.ClientSession, cluster: EdgeCluster, count: int) -> None:
    base = cluster.masters[0].api_url
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            status, _ = await fetch(session, "POST", f"{base}/api/v1/nodes", body=node_body(i))
            if status != 201:
                raise RuntimeError(f"creating node {node_name(i)}: HTTP {status}")
            await fetch(session, "POST", f"{base}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                        body=lease_body(node_name(i)))

    await asyncio.gather(*(one(i) for i in range(count)))


async def heartbeat(session: aiohttp.ClientSession, cluster: EdgeCluster, count: int) -> None:
    """Renew every hollow node's Lease every 10 s through a live master (what a kubelet does)."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        live = [m for m, pid in zip(cluster.masters, cluster.pids(), strict=True) if pid is not None]
        for i in range(count):
            url = f"{live[i % len(live)].api_url}/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" \
                  f"{node_name(i)}"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                await fetch(session, "PUT", url, body=lease_body(node_name(i)), timeout_s=5.0)
