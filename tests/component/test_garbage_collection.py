"""Garbage collection through ownerReferences and namespace deletion, on a real 3-master cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.client.interface import DeleteOptions
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import absent, eventually

PODS = by_id(resource_id("", "pods"))
CONFIGMAPS = by_id(resource_id("", "configmaps"))
NAMESPACES = by_id(resource_id("", "namespaces"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
DEPLOYMENTS = by_id(resource_id("apps", "deployments"))

pytestmark = pytest.mark.timeout(120)


def deployment(name: str, replicas: int, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }






async def count(client: InProcessClient, rtype: Any, selector: str, namespace: str = "default") -> int:
    return len((await client.list(rtype, namespace, label_selector=selector)).items)


async def running(client: InProcessClient, name: str, replicas: int, namespace: str = "default") -> None:
    async def ready() -> bool:
        d = await client.get(DEPLOYMENTS, namespace, name)
        return int((d.get("status") or {}).get("availableReplicas") or 0) == replicas
    await eventually(ready)


async def test_background_deletion_collects_replicasets_and_pods(hollow_client: InProcessClient) -> None:
    client = hollow_client
    await client.create(DEPLOYMENTS, deployment("bg", 3))
    await running(client, "bg", 3)
    await client.delete(DEPLOYMENTS, "default", "bg", options=DeleteOptions(propagation_policy="Background"))

    async def collected() -> bool:
        return await count(client, REPLICASETS, "app=bg") == 0 and await count(client, PODS, "app=bg") == 0
    await eventually(collected)


async def test_foreground_deletion_waits_for_dependents(hollow_client: InProcessClient) -> None:
    client = hollow_client
    await client.create(DEPLOYMENTS, deployment("fg", 2))
    await running(client, "fg", 2)
    deleting = await client.delete(DEPLOYMENTS, "default", "fg", options=DeleteOptions(propagation_policy="Foreground"))
    assert deleting is not None and deleting["metadata"]["finalizers"] == ["foregroundDeletion"]

    async def gone() -> bool:
        return await absent(client, DEPLOYMENTS, "default", "fg")
    await eventually(gone)
    # The owner went last: nothing of it is left.
    assert await count(client, REPLICASETS, "app=fg") == 0 and await count(client, PODS, "app=fg") == 0


async def test_orphan_deletion_keeps_dependents(hollow_client: InProcessClient) -> None:
    client = hollow_client
    await client.create(DEPLOYMENTS, deployment("or", 2))
    await running(client, "or", 2)
    (rs,) = (await client.list(REPLICASETS, "default", label_selector="app=or")).items
    await client.delete(DEPLOYMENTS, "default", "or", options=DeleteOptions(propagation_policy="Orphan"))

    async def orphaned() -> bool:
        if not await absent(client, DEPLOYMENTS, "default", "or"):
            return False
        current = await client.get(REPLICASETS, "default", rs["metadata"]["name"])
        return not current["metadata"].get("ownerReferences")
    await eventually(orphaned)
    await asyncio.sleep(0.5)
    assert await count(client, PODS, "app=or") == 2  # the ReplicaSet still runs its pods


async def test_dependents_of_a_missing_owner_are_collected(hollow_client: InProcessClient) -> None:
    client = hollow_client
    owner = await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "owner", "namespace": "default"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "kept", "namespace": "default", "ownerReferences": [ref]}})
    ghost = {**ref, "name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "stray", "namespace": "default", "ownerReferences": [ghost]}})
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "half", "namespace": "default",
                                                  "ownerReferences": [ref, ghost]}})

    async def settled() -> bool:
        if not await absent(client, CONFIGMAPS, "default", "stray"):
            return False
        half = await client.get(CONFIGMAPS, "default", "half")
        return half["metadata"]["ownerReferences"] == [ref]
    await eventually(settled)
    assert not await absent(client, CONFIGMAPS, "default", "kept")


async def test_namespace_deletion_removes_its_content_then_itself(hollow_client: InProcessClient) -> None:
    client = hollow_client
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await client.create(DEPLOYMENTS, deployment("app", 2, namespace="team"))
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "cfg", "namespace": "team"}})
    await running(client, "app", 2, namespace="team")
    terminating = await client.delete(NAMESPACES, "", "team")
    assert terminating is not None and terminating["status"]["phase"] == "Terminating"
    with pytest.raises(errors.Forbidden):
        await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "late", "namespace": "team"}})

    async def gone() -> bool:
        return await absent(client, NAMESPACES, "", "team")
    await eventually(gone)
    for rtype in (PODS, REPLICASETS, DEPLOYMENTS, CONFIGMAPS):
        assert (await client.list(rtype, "team")).items == []
