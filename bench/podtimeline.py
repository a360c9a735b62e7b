"""Per-pod startup timeline for `bench podstartup`: where create -> Ready goes.

Stages (wall clock, one machine): the POST is sent; the API answers 201; Podman logs the pod's creation
(the agent has seen the pod, saved it locally and asked for a sandbox), the infra container's start (the
pod network is set up), the app container's creation and start; the bench's watch sees the pod Ready
(the agent's status write went through Raft). Podman's side comes from its event log, which the agent
keeps on tmpfs (``PodmanHost.events_log``): it is tailed while the pods start, so a rotation loses at
most what was written since the last read.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from pathlib import Path
from typing import Any

from bench.stats import percentile, rounded

# (stage, previous stage): each reported figure is the time from the previous stage to this one.
STAGES = (("created", "sent"), ("pod_create", "created"), ("infra_start", "pod_create"),
          ("ctr_create", "infra_start"), ("ctr_start", "ctr_create"), ("ready", "ctr_start"))
_FRACTION = re.compile(r"(\.\d{6})\d+")
POD_NAME_LABEL = "io.edgek8s.pod.name"


def _when(value: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(_FRACTION.sub(r"\1", value)).timestamp()
    except ValueError:
        return None


class PodmanEventTail:
    """Reads Podman's JSON event log as it grows and records, per API pod name, when each stage happened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.stages: dict[str, dict[str, float]] = {}

    def read(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.offset:  # rotated
            self.offset = 0
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size - self.offset)
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        for line in data[:complete].splitlines():
            try:
                self._record(json.loads(line))
            except (ValueError, AttributeError):
                continue

    def _mark(self, name: str, stage: str, when: float | None) -> None:
        if name and when is not None:
            self.stages.setdefault(name, {}).setdefault(stage, when)

    def _record(self, event: dict[str, Any]) -> None:
        when = _when(str(event.get("Time", "")))
        kind, status = event.get("Type"), event.get("Status")
        if kind == "pod" and status == "create":
            parts = str(event.get("Name", "")).split("_")  # k8s_<name>_<namespace>_<uid8>
            if len(parts) >= 4:
                self._mark(parts[1], "pod_create", when)
        elif kind == "container":
            # The infra container carries the pod's labels too (Podman copies them): tell it by its name.
            name = (event.get("Attributes") or {}).get(POD_NAME_LABEL, "")
            if str(event.get("Name", "")).endswith("-infra"):
                stage = {"start": "infra_start"}.get(str(status))
            else:
                stage = {"create": "ctr_create", "start": "ctr_start"}.get(str(status))
            if stage:
                self._mark(name, stage, when)

    async def follow(self, period: float = 0.5) -> None:
        while True:
            await asyncio.to_thread(self.read)
            await asyncio.sleep(period)


def summarize(timelines: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """p50/p90/p99/max seconds of each stage over the pods that have both ends of it."""
    out: dict[str, dict[str, float | None]] = {}
    for stage, previous in STAGES:
        values = sorted(t[stage] - t[previous] for t in timelines.values() if stage in t and previous in t)
        out[f"{previous}->{stage}"] = {f"p{p}": rounded(percentile(values, p)) for p in (50, 90, 99)} | {
            "max": rounded(values[-1] if values else None), "n": len(values)}
    return out


def slowest(timelines: dict[str, dict[str, float]], count: int = 5) -> list[dict[str, Any]]:
    """The ``count`` slowest pods, each stage in seconds after the POST."""
    done = [(name, t) for name, t in timelines.items() if "ready" in t and "sent" in t]
    done.sort(key=lambda item: item[1]["ready"] - item[1]["sent"], reverse=True)
    return [{"pod": name, **{stage: round(t[stage] - t["sent"], 3) for stage, _ in STAGES if stage in t}}
            for name, t in done[:count]]
