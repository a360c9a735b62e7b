"""Chaos fixtures: real master processes, always stopped (and thawed, if a test froze one) at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ProcessCluster


@pytest.fixture
def process_cluster(tmp_path: Path) -> Iterator[ProcessCluster]:
    local = ProcessCluster(tmp_path)
    try:
        yield local
    finally:
        local.thaw(range(len(local.masters)))
        local.stop_all()
