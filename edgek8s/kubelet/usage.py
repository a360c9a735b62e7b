"""CPU and memory usage as rates, the way metrics-server reports them (nanocores over a window).

Runtimes and /proc give cumulative CPU time; a rate needs two samples. ``UsageMeter`` keeps the
previous sample of every container and of the node: a request at least ``min_window`` after the last
sample gets the rate over that interval; a first request (or one after a long pause), or one that finds a container
started since the last sample, samples twice, ``min_window`` apart. Concurrent requests share one measurement.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edgek8s.kubelet.streams import ContainerUsage, NodeUsage, PodRef, PodUsage

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSample:
    pod: PodRef
    container: str
    key: str  # the runtime's id: a restarted container is a new series
    cpu_ns: int  # cumulative
    memory_bytes: int


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float
    node_cpu_ns: int
    containers: dict[str, ContainerSample]


def node_cpu_ns() -> int:
    """Cumulative non-idle CPU time of the host, from /proc/stat."""
    with open("/proc/stat", "rb") as handle:
        fields = handle.readline().split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle and iowait
    return busy * 1_000_000_000 // _CLOCK_TICKS


def node_memory_bytes() -> int:
    """Working set of the host: MemTotal - MemAvailable."""
    values: dict[str, int] = {}
    with open("/proc/meminfo", "rb") as handle:
        for line in handle:
            name, _, rest = line.partition(b":")
            values[name.decode()] = int(rest.split()[0]) * 1024
    return values["MemTotal"] - values.get("MemAvailable", values.get("MemFree", 0))


class UsageMeter:
    def __init__(self, sample_containers: Callable[[], Awaitable[list[ContainerSample]]], *,
                 min_window: float = 0.5, max_age: float = 60.0) -> None:
        self._sample_containers = sample_containers
        self._min_window = min_window
        self._max_age = max_age
        self._last: _Snapshot | None = None
        self._lock = asyncio.Lock()

    async def _snapshot(self) -> _Snapshot:
        containers = await self._sample_containers()
        return _Snapshot(time.monotonic(), node_cpu_ns(), {c.key: c for c in containers})

    async def _later(self, previous: _Snapshot) -> _Snapshot:
        wait = self._min_window - (time.monotonic() - previous.at)
        if wait > 0:
            await asyncio.sleep(wait)
        return await self._snapshot()

    async def usage(self) -> NodeUsage:
        async with self._lock:
            previous = self._last
            fresh = previous is None or time.monotonic() - previous.at > self._max_age
            if previous is None or fresh:
                previous = await self._snapshot()
            current = await self._later(previous)
            if not fresh and current.containers.keys() - previous.containers.keys():
                previous, current = current, await self._later(current)  # a new container needs two samples
            self._last = current
        window = current.at - previous.at
        pods: dict[PodRef, list[ContainerUsage]] = {}
        for key, sample in current.containers.items():
            before = previous.containers.get(key)
            cpu = 0 if before is None else max(sample.cpu_ns - before.cpu_ns, 0)
            pods.setdefault(sample.pod, []).append(
                ContainerUsage(name=sample.container, cpu_nanocores=int(cpu / window),
                               memory_bytes=sample.memory_bytes))
        node_cpu = max(current.node_cpu_ns - previous.node_cpu_ns, 0)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return NodeUsage(
            cpu_nanocores=int(node_cpu / window), memory_bytes=node_memory_bytes(), timestamp=stamp,
            window_seconds=window,
            pods=tuple(PodUsage(pod=pod, containers=tuple(sorted(cs, key=lambda c: c.name)))
                       for pod, cs in sorted(pods.items(), key=lambda item: (item[0].namespace, item[0].name))),
        )
