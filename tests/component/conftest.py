"""A running 3-master cluster per test (real Raft and HTTP on loopback, one process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgek8s.client.rest import RestClient
from tests.support.agent import busybox_archive, kubelet_client, kubelet_master  # noqa: F401  (kubelet tests' fixtures)
from tests.support.cluster import LocalCluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    local = LocalCluster.build(tmp_path)
    await local.start()
    try:
        await local.wait_ready()
        yield local
    finally:
        await local.stop()


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
