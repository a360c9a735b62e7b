"""The ReplicaSet controller on a real 3-master cluster, with hollow nodes writing pod status."""

from __future__ import annotations

from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import eventually

PODS = by_id(resource_id("", "pods"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
EVENTS = by_id(resource_id("", "events"))

pytestmark = pytest.mark.timeout(90)


def replicaset(name: str, replicas: int, app: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }






async def owned_pods(client: InProcessClient, uid: str) -> list[dict[str, Any]]:
    pods = (await client.list(PODS, "default")).items
    return [p for p in pods if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or ())]


async def test_replicas_are_created_scaled_and_reported(hollow_client: InProcessClient) -> None:
    client = hollow_client
    rs = await client.create(REPLICASETS, replicaset("web", 5))
    uid = rs["metadata"]["uid"]

    async def ready(n: int) -> Any:
        current = await client.get(REPLICASETS, "default", "web")
        status = current.get("status") or {}
        generation = current["metadata"]["generation"]
        return (status.get("readyReplicas") == n and status.get("availableReplicas") == n
                and status.get("replicas") == n and status.get("observedGeneration") == generation)

    await eventually(lambda: ready(5))
    pods = await owned_pods(client, uid)
    assert len(pods) == 5
    for pod in pods:
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid, "controller": True,
                       "blockOwnerDeletion": True}
        assert pod["metadata"]["name"].startswith("web-") and pod["metadata"]["labels"] == {"app": "web"}

    current = await client.get(REPLICASETS, "default", "web")
    current["spec"]["replicas"] = 2
    await client.update(REPLICASETS, current)
    await eventually(lambda: ready(2))
    assert len(await owned_pods(client, uid)) == 2

    events = (await client.list(EVENTS, "default", field_selector="involvedObject.name=web")).items
    reasons = {(e["reason"], e["source"]["component"]) for e in events}
    assert ("SuccessfulCreate", "replicaset-controller") in reasons
    assert ("SuccessfulDelete", "replicaset-controller") in reasons


async def test_orphans_are_adopted_and_mislabeled_pods_released(hollow_client: InProcessClient) -> None:
    client = hollow_client
    orphan = await client.create(PODS, {"apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": "stray", "namespace": "default",
                                                     "labels": {"app": "api"}},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    rs = await client.create(REPLICASETS, replicaset("api", 2, app="api"))
    uid = rs["metadata"]["uid"]

    async def adopted() -> bool:
        pods = await owned_pods(client, uid)
        return len(pods) == 2 and "stray" in {p["metadata"]["name"] for p in pods}

    await eventually(adopted)
    # Relabel one pod: it is released (ownerReference removed) and replaced.
    stray = await client.patch(PODS, "default", "stray", {"metadata": {"labels": {"app": "other"}}})
    assert stray["metadata"]["uid"] == orphan["metadata"]["uid"]

    async def released() -> bool:
        freed = await client.get(PODS, "default", "stray")
        return not freed["metadata"].get("ownerReferences") and len(await owned_pods(client, uid)) == 2

    await eventually(released)
