"""The agent's local state: the last save or delete called for an object is what stays on disk."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgek8s.kubelet import local_state
from edgek8s.kubelet.local_state import LocalState


def _pod(phase: str, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": "p", "uid": "u1"}
    if terminating:
        meta["deletionTimestamp"] = "2026-11-29T08:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


@pytest.fixture
def slow_first_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the first file write stalls, as an fsync on a busy SD card does."""
    real = local_state._write_atomically
    first = threading.Event()

    def write(path: Path, data: bytes) -> None:
        if not first.is_set():
            first.set()
            time.sleep(0.3)
        real(path, data)
    monkeypatch.setattr(local_state, "_write_atomically", write)


async def test_a_later_save_wins_over_a_slow_earlier_one(tmp_path: Path, slow_first_write: None) -> None:
    state = LocalState(tmp_path)
    running = asyncio.create_task(state.save("pods", _pod("Running")))
    await asyncio.sleep(0.05)  # the worker's save is in its thread, stalled
    await state.save("pods", _pod("Running", terminating=True))
    await running
    [saved] = await LocalState(tmp_path).load_all("pods")
    assert "deletionTimestamp" in saved["metadata"]


async def test_a_delete_wins_over_a_slow_earlier_save(tmp_path: Path, slow_first_write: None) -> None:
    state = LocalState(tmp_path)
    running = asyncio.create_task(state.save("pods", _pod("Running")))
    await asyncio.sleep(0.05)
    await state.delete("pods", "ns", "p")
    await running
    assert await LocalState(tmp_path).load_all("pods") == []


async def test_saves_called_together_keep_the_last(tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    await asyncio.gather(*(state.save("pods", _pod(f"phase-{i}")) for i in range(20)))
    [saved] = await LocalState(tmp_path).load_all("pods")
    assert saved["status"]["phase"] == "phase-19"
    assert json.loads((tmp_path / "pods" / "ns_p.json").read_bytes()) == saved
    assert state._latest == {} and state._locks == {}  # nothing kept per object once idle
