"""A running 3-master cluster per test (real Raft and HTTP on loopback, one process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.rest import RestClient
from tests.support.agent import busybox_archive, kubelet_client, kubelet_master  # noqa: F401  (kubelet tests' fixtures)
from tests.support.cluster import LocalCluster, started_cluster
from tests.support.hollow import HollowNodes


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with started_cluster(tmp_path) as local:
        yield local


@pytest.fixture
async def hollow_client(cluster: LocalCluster) -> AsyncIterator[InProcessClient]:
    """An in-process client on one master, with three hollow nodes running the pods the scheduler binds."""
    client = InProcessClient(cluster.running()[0].store, manager="test")
    task = asyncio.create_task(HollowNodes(client, ["n1", "n2", "n3"], heartbeat=2.0).run())
    try:
        yield client
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
async def clients(cluster: LocalCluster) -> AsyncIterator[list[RestClient]]:
    opened = [RestClient(url, timeout=20.0) for url in cluster.urls]
    for client in opened:
        await client.__aenter__()
    try:
        yield opened
    finally:
        for client in opened:
            await client.__aexit__(None, None, None)
