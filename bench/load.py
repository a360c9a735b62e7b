"""Closed-loop HTTP load generator on aiohttp, shared by the benchmarks.

N client coroutines each send one request, wait for its response, record the
latency and send the next, until a total op budget or a time cap runs out.
A request factory `(client_index, seq) -> (method, url, body)` builds each
request; `seq` counts from 0 per client, so `(client_index, seq)` is unique.

No retries. aiohttp (3.9+; `ClientSession.request`) silently resends a request
once when a kept-alive connection turns out to be closed (ClientOSError or
ServerDisconnectedError) if its method is idempotent (GET, HEAD, OPTIONS,
TRACE, PUT, DELETE; not POST). `make_session` switches that off, and a trace
hook counts request sends per op so that any resend that still happens is
reported and the op counted as failed rather than silently retried (the hook
is on by default only if the switch is missing, as it costs client CPU).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp

from bench.stats import ms, percentile, rounded

# A Mapping body is sent as JSON; a bytes body is sent as-is, labelled as JSON
# (lets a factory pre-encode its payload once and keep the client's CPU free).
RequestBody = Mapping[str, Any] | bytes | None
Request = tuple[str, str, RequestBody]
RequestFactory = Callable[[int, int], Request]
# Decides from (status, body) whether an op succeeded; default: status in ok_statuses.
Validator = Callable[[int, bytes], bool]

JSON_HEADERS = {"Content-Type": "application/json"}


class _SendCount(SimpleNamespace):
    sends: int = 0


async def _on_headers_sent(
    session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    counter = ctx.trace_request_ctx
    if isinstance(counter, _SendCount):
        counter.sends += 1


def make_session(max_connections: int, count_sends: bool | None = None) -> aiohttp.ClientSession:
    """One session per benchmark; its connector allows `max_connections`
    concurrent connections (pass at least the largest client count).

    Retries are switched off. `count_sends` adds a trace hook that counts the
    sends of each request (about 5% more client CPU); by default it is on only
    when this aiohttp offers no way to switch retries off.
    """
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=None)
    can_disable = "_retry_connection" in getattr(aiohttp.ClientSession, "ATTRS", ())
    traces: list[aiohttp.TraceConfig] = []
    if count_sends or (count_sends is None and not can_disable):
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_on_headers_sent)
        traces.append(trace)
    session = aiohttp.ClientSession(connector=connector, trace_configs=traces)
    if can_disable:
        # Private switch (aiohttp >= 3.9); there is no public one. Without it a
        # dropped keep-alive connection makes aiohttp resend idempotent requests.
        session._retry_connection = False
    return session


@dataclass
class LoadResult:
    clients: int
    ops_budget: int
    ok: int = 0
    failed: int = 0
    resent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    hit_time_cap: bool = False

    @property
    def attempted(self) -> int:
        return self.ok + self.failed

    @property
    def throughput(self) -> float:
        """Successful ops per second of wall time."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency(self, p: float) -> float | None:
        """Latency percentile of the successful ops, in seconds."""
        return percentile(self.latencies_s, p)

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "ok": self.ok,
            "failed": self.failed,
            "resent": self.resent,
            "outcomes": dict(self.outcomes),
            "elapsed_s": rounded(self.elapsed_s),
            "ops_per_s": rounded(self.throughput, 1),
            "p50_ms": ms(self.latency(50)),
            "p90_ms": ms(self.latency(90)),
            "p99_ms": ms(self.latency(99)),
            "max_ms": ms(max(self.latencies_s, default=None)),
            "client_cpu_util": rounded(self.client_cpu_s / self.elapsed_s if self.elapsed_s else None),
            "hit_time_cap": self.hit_time_cap,
        }


def _default_validator(ok_statuses: frozenset[int]) -> Validator:
    def validate(status: int, body: bytes) -> bool:
        return status in ok_statuses

    return validate


async def send_once(session: aiohttp.ClientSession, request: Request, timeout_s: float) -> tuple[int, bytes, int]:
    """Send one request without retries: (status, body, number of sends)."""
    method, url, body = request
    counter = _SendCount()
    kwargs: dict[str, Any] = {
        "timeout": aiohttp.ClientTimeout(total=timeout_s),
        "trace_request_ctx": counter,
        "allow_redirects": False,
    }
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"] = JSON_HEADERS
    elif body is not None:
        kwargs["json"] = body
    async with session.request(method, url, **kwargs) as resp:
        data = await resp.read()
        # Without the trace hook nothing counts: a send is known to have happened.
        return resp.status, data, max(1, counter.sends)


async def run_load(
    session: aiohttp.ClientSession,
    *,
    clients: int,
    total_ops: int,
    time_cap_s: float,
    factory: RequestFactory,
    ok_statuses: frozenset[int] = frozenset({200, 201}),
    validate: Validator | None = None,
    request_timeout_s: float = 10.0,
) -> LoadResult:
    """Run `clients` closed-loop clients until `total_ops` ops have been sent
    or `time_cap_s` has passed (no new op starts after it; ops in flight get at
    most `request_timeout_s` more). Every op is counted exactly once."""
    if clients < 1 or total_ops < 1:
        raise ValueError("clients and total_ops must be >= 1")
    connector = session.connector
    if connector is not None and 0 < connector.limit < clients:
        raise ValueError(f"connector limit {connector.limit} < {clients} clients")
    check = validate or _default_validator(ok_statuses)
    result = LoadResult(clients=clients, ops_budget=total_ops)
    budget = total_ops
    start = time.perf_counter()
    deadline = start + time_cap_s

    async def client(index: int) -> None:
        nonlocal budget
        seq = 0
        while budget > 0:
            if time.perf_counter() >= deadline:
                result.hit_time_cap = True
                return
            budget -= 1  # single-threaded event loop: no lock needed
            request = factory(index, seq)
            seq += 1
            t0 = time.perf_counter()
            try:
                status, body, sends = await send_once(session, request, request_timeout_s)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                result.failed += 1
                result.outcomes[f"error:{type(exc).__name__}"] += 1
                continue
            latency = time.perf_counter() - t0
            if sends > 1:
                result.resent += 1
                result.failed += 1
                result.outcomes["resent"] += 1
            elif check(status, body):
                result.ok += 1
                result.latencies_s.append(latency)
                result.outcomes[str(status)] += 1
            else:
                result.failed += 1
                result.outcomes[str(status)] += 1

    cpu0 = time.process_time()
    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    result.elapsed_s = time.perf_counter() - start
    result.client_cpu_s = time.process_time() - cpu0
    return result


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    accept: str | None = None,
    timeout_s: float = 30.0,
) -> tuple[int, bytes]:
    headers = dict(JSON_HEADERS) if body is not None else {}
    if accept:
        headers["Accept"] = accept
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.request(method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as r:
        return r.status, await r.read()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
