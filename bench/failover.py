"""Leader-kill failover measurement shared by the etcd and edgek8s benchmarks.

One sample: find the leader, `kill -9` it, then probe the surviving members
with writes until the first one is acknowledged. Failover time is from just
before the kill to that first acknowledgement. Probes go round-robin over the
survivors; a new probe starts every `probe_interval_s` while earlier ones are
still waiting (at most `max_in_flight`), so a probe stuck on a follower that
still forwards to the dead leader does not delay the measurement by its own
timeout: resolution is about one probe interval. When `max_in_flight`
probes are pending the oldest is abandoned (a write sent to a follower before
the new leader exists can hang until its own timeout). The killed member is then
restarted with the same flags and the next kill waits until it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bench.load import Request, send_once
from bench.stats import percentile, rounded


class FailoverTarget(Protocol):
    """What a cluster must offer to have its leader killed and timed."""

    node_count: int

    async def find_leader(self, session: aiohttp.ClientSession, timeout_s: float) -> int:
        """Index of the current leader (waits up to `timeout_s` for one)."""
        ...

    def kill(self, node: int) -> None:
        """SIGKILL the node's process group, without waiting."""
        ...

    async def restart(self, session: aiohttp.ClientSession, node: int, timeout_s: float) -> None:
        """Restart a killed node with its original flags and wait until it is ready."""
        ...

    def write_request(self, node: int, tag: str) -> Request:
        """A write of a fresh key/object, sent to `node`."""
        ...

    def write_ok(self, status: int, body: bytes) -> bool:
        """Whether a response acknowledges the write."""
        ...


def agreed_leader(views: dict[int, int | None], node_count: int) -> int | None:
    """The leader a majority of members name, provided it names itself too.

    `views` maps each member that answered to the member it calls leader. One
    member's word is not enough: a stale view would make us kill a follower.
    """
    for candidate in set(views.values()):
        if candidate is None or views.get(candidate) != candidate:
            continue
        if sum(1 for v in views.values() if v == candidate) > node_count // 2:
            return candidate
    return None


@dataclass
class FailoverResult:
    samples_s: list[float] = field(default_factory=list)
    no_ack: int = 0  # kills after which no write was acknowledged within the cap
    leaders: list[int] = field(default_factory=list)
    stopped_early: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "kills": len(self.samples_s) + self.no_ack,
            "no_ack_within_cap": self.no_ack,
            "p50_s": rounded(percentile(self.samples_s, 50)),
            "p99_s": rounded(percentile(self.samples_s, 99)),
            "max_s": rounded(max(self.samples_s, default=None)),
            "min_s": rounded(min(self.samples_s, default=None)),
            "samples_s": [round(s, 3) for s in self.samples_s],
            "killed_leaders": self.leaders,
            "stopped_early": self.stopped_early,
        }


async def time_one_kill(
    session: aiohttp.ClientSession,
    target: FailoverTarget,
    leader: int,
    tag: str,
    *,
    probe_interval_s: float,
    attempt_timeout_s: float,
    cap_s: float,
    max_in_flight: int,
) -> float | None:
    """Kill `leader` and return seconds until the first acknowledged write on
    a survivor, or None if none came within `cap_s`."""
    survivors = [i for i in range(target.node_count) if i != leader]
    acked = asyncio.Event()
    ack_time: list[float] = []

    async def probe(seq: int) -> None:
        node = survivors[seq % len(survivors)]
        request = target.write_request(node, f"{tag}-{seq}")
        try:
            status, body, sends = await send_once(session, request, attempt_timeout_s)
        except (aiohttp.ClientError, TimeoutError, OSError):
            return
        if sends == 1 and target.write_ok(status, body) and not acked.is_set():
            ack_time.append(time.perf_counter())
            acked.set()

    # A write proposed before the new leader exists may hang until its timeout
    # (the follower forwarded it to the dead leader), so probes must not wait
    # for earlier ones: when max_in_flight are pending, the oldest is abandoned.
    in_flight: deque[asyncio.Task[None]] = deque()
    t_kill = time.perf_counter()
    target.kill(leader)
    deadline = t_kill + cap_s
    try:
        seq = 0
        while not acked.is_set() and time.perf_counter() < deadline:
            while in_flight and in_flight[0].done():
                in_flight.popleft()
            if len(in_flight) >= max_in_flight:
                in_flight.popleft().cancel()
            in_flight.append(asyncio.create_task(probe(seq)))
            seq += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acked.wait(), timeout=probe_interval_s)
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
    return ack_time[0] - t_kill if ack_time else None


async def measure_failover(
    session: aiohttp.ClientSession,
    target: FailoverTarget,
    kills: int,
    *,
    label: str,
    result: FailoverResult | None = None,
    budget_s: float = 300.0,
    probe_interval_s: float = 0.02,
    attempt_timeout_s: float = 5.0,
    cap_s: float = 30.0,
    max_in_flight: int = 100,
    ready_timeout_s: float = 90.0,
    progress: bool = True,
) -> FailoverResult:
    """Up to `kills` samples; no new kill starts after `budget_s`. Samples go
    into `result` as they are taken, so a caller keeps them if a restart fails."""
    result = FailoverResult() if result is None else result
    started = time.monotonic()
    for k in range(kills):
        if time.monotonic() - started > budget_s:
            result.stopped_early = f"time budget of {budget_s:.0f} s used after {k} kills"
            print(f"  [{label}] {result.stopped_early}", flush=True)
            break
        leader = await target.find_leader(session, timeout_s=ready_timeout_s)
        result.leaders.append(leader)
        sample = await time_one_kill(
            session,
            target,
            leader,
            f"fo{k}",
            probe_interval_s=probe_interval_s,
            attempt_timeout_s=attempt_timeout_s,
            cap_s=cap_s,
            max_in_flight=max_in_flight,
        )
        if sample is None:
            result.no_ack += 1
        else:
            result.samples_s.append(sample)
        if progress:
            shown = "no ack" if sample is None else f"{sample:.3f} s"
            print(f"  [{label}] kill {k + 1}/{kills}: leader node {leader} -> {shown}", flush=True)
        await target.restart(session, leader, timeout_s=ready_timeout_s)
    return result
