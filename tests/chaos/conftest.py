"""Chaos fixtures: real master processes, always stopped (and thawed, if a test froze one) at the end;
``sim_cluster`` puts each master in a simulated host of its own (tests/support/simhosts.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ProcessCluster
from tests.support.simhosts import Host, SimNetwork


@pytest.fixture
def process_cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    local = ProcessCluster(tmp_path)
    try:
        yield local
    finally:
        local.thaw(range(len(local.masters)))
        local.stop_all()


@pytest.fixture
def sim_cluster(tmp_path: Path) -> Iterator[tuple[SimNetwork, list[Host], ProcessCluster]]:
    """Three masters, each in its own simulated host; the test's clients must enter ``network.controller``."""
    with SimNetwork(f"10.242.{os.getpid() % 250}.0/24") as network:  # per process: parallel runs never share
        hosts = [network.add_host(f"m{i + 1}") for i in range(3)]
        cluster = ProcessCluster(tmp_path, hosts=hosts)
        try:
            yield network, hosts, cluster
        finally:
            cluster.stop_all()
