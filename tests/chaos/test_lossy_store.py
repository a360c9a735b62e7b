"""Writes over a lossy network between masters: nothing acknowledged is lost, reads stay linearizable.

Three masters, each in a simulated host of its own (tests/support/simhosts.py); a bridge rule in the
switch drops 10 % (and 20 %) of the packets between every two masters, at random, both ways (the
test's clients, in the controller namespace, are not affected: only Raft suffers). Writers keep creating
ConfigMaps (unique names) through every master; after each acknowledged create the writer reads it back
through *another* master: a linearizable read must see it (a 404 is a stale read). Each writer's creates
are sequential, so their resourceVersions must increase. After healing: every acknowledged create is on
every master with the uid and resourceVersion its client was told, nothing else exists, and the
replicas are identical (tests/support/processes.py checkers).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest

from tests.support.processes import (
    CONFIGMAPS,
    ProcessCluster,
    WriteHistory,
    check_acknowledged_creates,
    create_configmap,
    replicas_identical,
)
from tests.support.simhosts import Host, SimNetwork, needs_simhosts

pytestmark = [pytest.mark.timeout(300), needs_simhosts()]

DURATION = 12.0
WRITERS = 6


@pytest.mark.parametrize("percent", [10, 20])
async def test_writes_under_packet_loss_between_masters(
    sim_cluster: tuple[SimNetwork, list[Host], ProcessCluster], percent: int
) -> None:
    network, hosts, cluster = sim_cluster
    history = WriteHistory()
    stale_reads: list[str] = []
    out_of_order: list[str] = []
    reads = 0
    with network.entered(network.controller):
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
            cluster.start_all()
            await cluster.wait_ready(session, timeout=60.0)
            terms_before = {(await cluster.status(session, i))["term"] for i in range(3)}
            for a, b in itertools.combinations(hosts, 2):
                network.lose(a, b, percent)
            stop = asyncio.Event()

            async def read_back(url: str, name: str, uid: str) -> None:
                nonlocal reads
                try:
                    async with session.get(f"{url}{CONFIGMAPS}/{name}",
                                           timeout=aiohttp.ClientTimeout(total=5)) as response:
                        body = await response.json() if response.status in (200, 404) else None
                        code = response.status
                except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                    return  # no answer: says nothing
                if code == 404 or (code == 200 and body is not None and body["metadata"]["uid"] != uid):
                    stale_reads.append(f"{name} via {url}: HTTP {code}")
                reads += code == 200

            async def writer(k: int) -> None:
                last_rv = 0
                for n in itertools.count():
                    if stop.is_set():
                        return
                    writes, reads_from = cluster.masters[n % 3], cluster.masters[(n + 1 + k) % 3]
                    if writes is reads_from:
                        reads_from = cluster.masters[(n + 2) % 3]
                    name = f"ls-w{k}-{n:05d}"
                    if not await create_configmap(session, writes.url, name, history):
                        await asyncio.sleep(0.02)
                        continue
                    uid, rv = history.acked[name]
                    if rv <= last_rv:
                        out_of_order.append(f"{name}: rv {rv} after {last_rv}")
                    last_rv = rv
                    await read_back(reads_from.url, name, uid)

            started = time.monotonic()
            tasks = [asyncio.create_task(writer(k), name=f"writer-{k}") for k in range(WRITERS)]
            await asyncio.sleep(DURATION)
            stop.set()
            await asyncio.gather(*tasks)
            elapsed = time.monotonic() - started
            network.heal()
            await cluster.wait_ready(session, timeout=30.0)
            terms_after = {(await cluster.status(session, i))["term"] for i in range(3)}
            await check_acknowledged_creates(cluster, session, history)
            index, common = await replicas_identical(cluster, session)
    step_downs = sum(m.log_path.read_text(errors="replace").count("stepping down as leader") for m in cluster.masters)
    print(f"{percent}% loss between masters for {elapsed:.1f} s: {len(history.acked)} creates acknowledged "
          f"({len(history.acked) / elapsed:.0f}/s), {len(history.unknown)} unknown, {reads} read back through "
          f"another master; terms {sorted(terms_before)} -> {sorted(terms_after)} ({step_downs} check-quorum "
          f"step-downs); replicas identical at {index}")
    assert len(history.acked) > 20, "too few writes got through to show anything"
    assert reads > 20
    assert not stale_reads, f"stale reads after an acknowledged create: {stale_reads[:10]}"
    assert not out_of_order, f"a client's sequential creates went back in resourceVersion: {out_of_order[:10]}"
    assert set(history.acked) <= set(common)
    errors = cluster.log_errors()
    assert not errors, f"internal errors in the masters' logs: {errors[:10]}"
