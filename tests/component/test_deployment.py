"""The Deployment controller on a real 3-master cluster, with hollow nodes writing pod status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edgek8s.api.inprocess import InProcessClient
from edgek8s.model.resources import by_id, resource_id
from tests.support.cluster import eventually
from tests.support.hollow import UNREADY_IMAGE

PODS = by_id(resource_id("", "pods"))
REPLICASETS = by_id(resource_id("apps", "replicasets"))
DEPLOYMENTS = by_id(resource_id("apps", "deployments"))
EVENTS = by_id(resource_id("", "events"))
REVISION = "deployment.kubernetes.io/revision"

pytestmark = pytest.mark.timeout(120)


def deployment(name: str, replicas: int, image: str = "nginx:1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}}, **spec},
    }






async def owned_rss(client: InProcessClient, d: dict[str, Any]) -> list[dict[str, Any]]:
    uid = d["metadata"]["uid"]
    return [rs for rs in (await client.list(REPLICASETS, "default")).items
            if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or ())]


def condition(d: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (d.get("status") or {}).get("conditions") or () if c["type"] == kind), {})


def rolled_out(client: InProcessClient, name: str) -> Callable[[], Awaitable[Any]]:
    """kubectl rollout status's own test."""
    async def check() -> Any:
        d = await client.get(DEPLOYMENTS, "default", name)
        status = d.get("status") or {}
        want = d["spec"]["replicas"]
        done = (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
                and status.get("availableReplicas", 0) == want)
        return d if done else None
    return check


async def test_rolling_update_and_undo(hollow_client: InProcessClient) -> None:
    client = hollow_client
    d = await client.create(DEPLOYMENTS, deployment("web", 6, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "25%"}}))
    d = await eventually(rolled_out(client, "web"))
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert condition(d, "Available")["status"] == "True"
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    (first,) = await owned_rss(client, d)
    hash1 = first["metadata"]["labels"]["pod-template-hash"]
    assert first["metadata"]["name"] == f"web-{hash1}" and first["spec"]["selector"]["matchLabels"] == {
        "app": "web", "pod-template-hash": hash1}

    # Roll to a new image: one new ReplicaSet, the old one scaled to zero, never more than 6+2 pods.
    peak = [0]

    async def watch_peak() -> None:
        while True:
            pods = (await client.list(PODS, "default", label_selector="app=web")).items
            peak[0] = max(peak[0], len(pods))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch_peak())
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    await client.patch(DEPLOYMENTS, "default", "web", {"spec": {"template": d["spec"]["template"]}})
    d = await eventually(rolled_out(client, "web"))
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert peak[0] <= 8
    rss = {rs["metadata"]["name"]: rs for rs in await owned_rss(client, d)}
    assert len(rss) == 2 and rss[first["metadata"]["name"]]["spec"]["replicas"] == 0
    (second,) = [rs for name, rs in rss.items() if name != first["metadata"]["name"]]
    assert second["spec"]["replicas"] == 6 and second["metadata"]["annotations"][REVISION] == "2"
    assert d["metadata"]["annotations"][REVISION] == "2"
    pods = (await client.list(PODS, "default", label_selector="app=web")).items
    assert len(pods) == 6 and {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:2"}

    # Undo as kubectl does (apps/v1): copy revision 1's template back, without its hash label.
    template = first["spec"]["template"]
    del template["metadata"]["labels"]["pod-template-hash"]
    await client.patch(DEPLOYMENTS, "default", "web", {"spec": {"template": template}})
    d = await eventually(rolled_out(client, "web"))
    rss = {rs["metadata"]["name"]: rs for rs in await owned_rss(client, d)}
    assert len(rss) == 2  # the old ReplicaSet is reused, no third one
    assert rss[first["metadata"]["name"]]["metadata"]["annotations"][REVISION] == "3"
    assert rss[first["metadata"]["name"]]["spec"]["replicas"] == 6
    assert d["metadata"]["annotations"][REVISION] == "3"

    events = (await client.list(EVENTS, "default", field_selector="involvedObject.name=web")).items
    assert any(e["reason"] == "ScalingReplicaSet" and "Scaled up replica set web-" in e["message"] for e in events)


async def test_recreate_scale_and_history_limit(hollow_client: InProcessClient) -> None:
    client = hollow_client
    d = await client.create(DEPLOYMENTS, deployment("db", 3, strategy={"type": "Recreate"}, revisionHistoryLimit=1))
    d = await eventually(rolled_out(client, "db"))
    for image in ("db:2", "db:3"):
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        await client.patch(DEPLOYMENTS, "default", "db", {"spec": {"template": d["spec"]["template"]}})
        d = await eventually(rolled_out(client, "db"))
    pods = (await client.list(PODS, "default", label_selector="app=db")).items
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"db:3"} and len(pods) == 3

    async def history_trimmed() -> Any:
        return len(await owned_rss(client, d)) == 2  # the current one + revisionHistoryLimit=1

    await eventually(history_trimmed)
    # Scale through the spec: a scaling event, no new ReplicaSet.
    await client.patch(DEPLOYMENTS, "default", "db", {"spec": {"replicas": 5}})
    d = await eventually(rolled_out(client, "db"))
    assert len((await client.list(PODS, "default", label_selector="app=db")).items) == 5
    assert len(await owned_rss(client, d)) == 2


async def test_paused_deployments_do_not_roll_and_deadlines_are_reported(hollow_client: InProcessClient) -> None:
    client = hollow_client
    d = await client.create(DEPLOYMENTS, deployment("api", 2, progressDeadlineSeconds=2))
    d = await eventually(rolled_out(client, "api"))
    await client.patch(DEPLOYMENTS, "default", "api", {"spec": {"paused": True}})

    async def paused() -> Any:
        current = await client.get(DEPLOYMENTS, "default", "api")
        return condition(current, "Progressing").get("reason") == "DeploymentPaused" and current
    d = await eventually(paused)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = UNREADY_IMAGE
    d = await client.patch(DEPLOYMENTS, "default", "api", {"spec": {"template": d["spec"]["template"]}})
    await asyncio.sleep(1.0)
    assert len(await owned_rss(client, d)) == 1  # paused: no rollout
    await client.patch(DEPLOYMENTS, "default", "api", {"spec": {"paused": False}})

    async def timed_out() -> Any:
        current = await client.get(DEPLOYMENTS, "default", "api")
        cond = condition(current, "Progressing")
        return (cond.get("status"), cond.get("reason")) == ("False", "ProgressDeadlineExceeded") and current
    d = await eventually(timed_out, 20)
    # Never-ready pods: the old ReplicaSet keeps the minimum available.
    assert d["status"]["availableReplicas"] >= 1
