"""The leader prunes the node revocation record through an ordinary replicated update: entries whose
certificates have all expired go on every replica; recent ones stay and keep refusing certificates."""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path

from edgek8s.client.rest import RestClient
from edgek8s.model.revocations import NAME, NAMESPACE, SKEW_MARGIN
from edgek8s.model.timestamps import format_time
from tests.support.cluster import LocalCluster

LIFETIME = 3.0  # seconds: the pruner then sweeps every second


async def test_expired_revocations_are_pruned_on_every_replica(tmp_path: Path) -> None:
    cluster = LocalCluster.build(tmp_path, size=3, api={"node_cert_lifetime": LIFETIME})
    await cluster.start()
    try:
        await cluster.wait_ready()
        now = datetime.datetime.now(datetime.UTC)
        old = format_time(now - datetime.timedelta(seconds=LIFETIME + SKEW_MARGIN + 120))
        recent = format_time(now)
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
        async with RestClient(cluster.urls[0]) as client:
            await client.create(path, {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": NAME, "namespace": NAMESPACE},
                                       "data": {"gone-long-ago": old, "just-deleted": recent}})
        deadline = asyncio.get_running_loop().time() + 20
        for url in cluster.urls:
            async with RestClient(url) as client:
                while True:
                    data = (await client.get(f"{path}/{NAME}"))["data"]
                    if "gone-long-ago" not in data or asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.2)
                assert data == {"just-deleted": recent}, url
    finally:
        await cluster.stop()
