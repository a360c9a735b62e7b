"""CRUD, lists and bad input against a real 3-master cluster, through HTTP on every master.

The API alone: the masters run no leader loops here, so no controller writes the objects under test
(a Deployment is just an object whose generation the store tracks).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from tests.support.cluster import LocalCluster, started_cluster
from tests.support.objects import make_pod

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    async with started_cluster(tmp_path, loops=[]) as local:
        yield local


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


async def test_write_on_any_master_is_read_linearizably_on_every_other(clients: list[RestClient]) -> None:
    for i, writer in enumerate(clients):
        created = await writer.create(CM, configmap(f"from-{i}", v=str(i)))
        rv = int(created["metadata"]["resourceVersion"])
        for reader in clients:
            got = await reader.get(f"{CM}/from-{i}")  # resourceVersion unset: linearizable
            assert got["data"] == {"v": str(i)}
            assert int(got["metadata"]["resourceVersion"]) == rv


async def test_resource_versions_are_cluster_wide_and_increasing(clients: list[RestClient]) -> None:
    rvs = []
    for i in range(9):
        created = await clients[i % 3].create(CM, configmap(f"seq-{i}"))
        rvs.append(int(created["metadata"]["resourceVersion"]))
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    listed = await clients[1].get(CM)
    assert int(listed["metadata"]["resourceVersion"]) >= rvs[-1]


async def test_create_conflicts_and_preconditions(clients: list[RestClient]) -> None:
    a, b, c = clients
    created = await a.create(CM, configmap("x", v="1"))
    with pytest.raises(errors.AlreadyExists):
        await b.create(CM, configmap("x", v="2"))
    stale = dict(created, data={"v": "2"})
    updated = await b.replace(f"{CM}/x", stale)
    assert updated["data"] == {"v": "2"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(errors.Conflict) as conflict:
        await c.replace(f"{CM}/x", dict(created, data={"v": "3"}))
    assert "the object has been modified" in conflict.value.message
    with pytest.raises(errors.Conflict):
        await a.delete(f"{CM}/x", {"preconditions": {"uid": "not-the-uid"}})
    with pytest.raises(errors.Conflict):
        await a.delete(f"{CM}/x", {"preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}})
    deleted = await c.delete(f"{CM}/x", {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert (deleted["kind"], deleted["status"], deleted["details"]["name"]) == ("Status", "Success", "x")
    assert deleted["details"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(errors.NotFound):
        await a.get(f"{CM}/x")


async def test_a_write_naming_the_uid_of_a_deleted_object_leaves_its_namesake_alone(clients: list[RestClient]) -> None:
    """An update carries the uid of the object it was meant for (a kubelet's status write for a pod deleted
    while the write waited): an object created again under that name is another object, and the write
    gets 409 (upstream's uid precondition) instead of overwriting it."""
    a, b, c = clients
    pods = "/api/v1/namespaces/default/pods"
    old = await a.create(pods, make_pod("p", scheduler_name="nobody"))
    await a.delete(f"{pods}/p", {"gracePeriodSeconds": 0})
    new = await a.create(pods, make_pod("p", scheduler_name="nobody"))
    stale = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default",
             "uid": old["metadata"]["uid"]}, "spec": old["spec"], "status": {"phase": "Running", "podIP": "10.9.9.9"}}
    with pytest.raises(errors.Conflict) as conflict:
        await b.replace(f"{pods}/p/status", stale)
    assert "UID in precondition" in conflict.value.message
    with pytest.raises(errors.Conflict):
        await c.replace(f"{pods}/p", {**stale, "metadata": {**stale["metadata"], "labels": {"stale": "yes"}}})
    assert await a.get(f"{pods}/p") == new
    current = await c.replace(f"{pods}/p/status", {**stale, "metadata": {**stale["metadata"],
                                                                        "uid": new["metadata"]["uid"]}})
    assert current["status"]["podIP"] == "10.9.9.9"  # its own uid (or none) writes as before


async def test_finalizers_keep_an_object_until_removed(clients: list[RestClient]) -> None:
    obj = configmap("guarded")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await clients[0].create(CM, obj)
    deleting = await clients[1].delete(f"{CM}/guarded")
    assert deleting["metadata"]["deletionTimestamp"]
    still = await clients[2].get(f"{CM}/guarded")
    still["metadata"]["finalizers"] = []
    await clients[2].replace(f"{CM}/guarded", still)
    with pytest.raises(errors.NotFound):
        await clients[0].get(f"{CM}/guarded")


async def test_generation_bumps_on_spec_change_only(clients: list[RestClient]) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }
    created = await clients[0].create(path, deployment)
    assert created["metadata"]["generation"] == 1
    relabelled = dict(created)
    relabelled["metadata"] = dict(created["metadata"], labels={"tier": "front"})
    after_labels = await clients[1].replace(f"{path}/web", relabelled)
    assert after_labels["metadata"]["generation"] == 1
    scaled = dict(after_labels, spec=dict(after_labels["spec"], replicas=3))
    after_scale = await clients[2].replace(f"{path}/web", scaled)
    assert after_scale["metadata"]["generation"] == 2
    status = dict(after_scale, status={"replicas": 3})
    after_status = await clients[0].replace(f"{path}/web/status", status)
    assert after_status["status"] == {"replicas": 3}
    assert after_status["metadata"]["generation"] == 2
    # A main-resource update cannot change status.
    sneaky = dict(after_status, status={"replicas": 99})
    kept = await clients[1].replace(f"{path}/web", sneaky)
    assert kept["status"] == {"replicas": 3}


async def test_list_selectors_and_pagination(clients: list[RestClient]) -> None:
    for i in range(25):
        await clients[i % 3].create(CM, configmap(f"item-{i:02d}", {"parity": "even" if i % 2 == 0 else "odd"}))
    even = await clients[0].get(CM, labelSelector="parity=even")
    assert [o["metadata"]["name"] for o in even["items"]] == [f"item-{i:02d}" for i in range(0, 25, 2)]
    one = await clients[1].get(CM, fieldSelector="metadata.name=item-07")
    assert [o["metadata"]["name"] for o in one["items"]] == ["item-07"]
    not_odd = await clients[2].get(CM, labelSelector="parity!=odd,parity")
    assert len(not_odd["items"]) == 13

    names: list[str] = []
    page = await clients[0].get(CM, limit="10", labelSelector="parity in (even,odd)")
    first_rv = page["metadata"]["resourceVersion"]
    assert page["metadata"]["remainingItemCount"] == 15
    while True:
        names += [o["metadata"]["name"] for o in page["items"]]
        assert page["metadata"]["resourceVersion"] == first_rv
        token = page["metadata"].get("continue")
        if not token:
            break
        page = await clients[1].get(CM, limit="10", labelSelector="parity in (even,odd)", **{"continue": token})
    assert names == [f"item-{i:02d}" for i in range(25)]


async def test_field_selectors_on_pods(clients: list[RestClient]) -> None:
    path = "/api/v1/namespaces/default/pods"
    for i, node in enumerate(["pi-1", "pi-2", "pi-1"]):
        pod = {"metadata": {"name": f"p{i}"},
               "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}
        await clients[i].create(path, pod)
    on_pi1 = await clients[0].get("/api/v1/pods", fieldSelector="spec.nodeName=pi-1")
    assert sorted(o["metadata"]["name"] for o in on_pi1["items"]) == ["p0", "p2"]
    pending = await clients[1].get(path, fieldSelector="status.phase=Pending,spec.nodeName!=pi-1")
    assert [o["metadata"]["name"] for o in pending["items"]] == ["p1"]
    with pytest.raises(errors.BadRequest) as bad:
        await clients[2].get(path, fieldSelector="spec.unknownField=x")
    assert "field label not supported" in bad.value.message


async def test_objects_over_64_kib_replicate(clients: list[RestClient]) -> None:
    big = "x" * (2 * 1024 * 1024 + 512 * 1024)  # 2.5 MiB: PySyncObj's chunked path breaks past 64 KiB
    await clients[1].create(CM, configmap("big", blob=big))
    for client in clients:
        got = await client.get(f"{CM}/big")
        assert len(got["data"]["blob"]) == len(big)


async def _raw(
    url: str, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.request(
        method, url + path, data=body, headers={"Content-Type": content_type}
    ) as response:
        return response.status, json.loads(await response.read())


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "reason", "needle"),
    [
        ("POST", CM, b"{not json", 400, "BadRequest", "not valid JSON"),
        ("POST", CM, b"[1, 2]", 400, "BadRequest", "JSON object"),
        ("POST", CM, b'{"metadata": {"name": "Bad_Name"}}', 422, "Invalid", "metadata.name"),
        ("POST", CM, b'{"metadata": {"name": "ok", "labels": {"bad key!": "v"}}}', 422, "Invalid", "metadata.labels"),
        ("POST", CM, b'{"metadata": {"name": "ok"}, "data": {"k": 1}}', 422, "Invalid", "data[k]"),
        ("POST", CM, b'{"kind": "Secret", "metadata": {"name": "ok"}}', 400, "BadRequest", "kind"),
        ("POST", CM, b'{"metadata": {"name": "ok", "namespace": "other"}}', 400, "BadRequest", "namespace"),
        ("POST", CM, b'{"metadata": {"name": "ok", "resourceVersion": "5"}}', 400, "BadRequest", "resourceVersion"),
        ("POST", "/api/v1/namespaces/nope/configmaps", b'{"metadata": {"name": "ok"}}', 404, "NotFound", "nope"),
        ("POST", "/api/v1/namespaces/default/widgets", b'{"metadata": {"name": "ok"}}', 404, "NotFound", "widgets"),
        ("GET", "/apis/apps/v9/deployments", None, 404, "NotFound", "deployments"),
        ("PUT", f"{CM}/absent", b'{"metadata": {"name": "absent"}}', 404, "NotFound", "absent"),
        ("PUT", f"{CM}/a", b'{"metadata": {"name": "b"}}', 400, "BadRequest", "does not match"),
        ("GET", CM + "?labelSelector=a%20in%20(", None, 400, "BadRequest", ""),
        ("GET", CM + "?limit=-1", None, 400, "BadRequest", "limit"),
        ("GET", CM + "?continue=garbage!", None, 400, "BadRequest", "continue"),
        ("POST", "/api/v1/configmaps", b'{"metadata": {"name": "ok"}}', 405, "MethodNotAllowed", ""),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    cluster: LocalCluster, clients: list[RestClient], method: str, path: str, body: bytes | None,
    code: int, reason: str, needle: str,
) -> None:
    before = await clients[0].get("/api/v1/configmaps")
    status, answer = await _raw(cluster.urls[1], method, path, body)
    assert (status, answer["kind"], answer["reason"], answer["code"]) == (code, "Status", reason, code)
    assert needle in answer["message"]
    after = await clients[2].get("/api/v1/configmaps")
    assert after["items"] == before["items"]


async def test_body_over_limit_gets_413(cluster: LocalCluster, clients: list[RestClient]) -> None:
    huge = json.dumps(configmap("huge", blob="y" * (3 * 1024 * 1024 + 10))).encode()
    status, answer = await _raw(cluster.urls[0], "POST", CM, huge)
    assert status == 413 and answer["reason"] == "RequestEntityTooLarge"
    with pytest.raises(errors.NotFound):
        await clients[1].get(f"{CM}/huge")


async def test_body_labelled_protobuf_is_decoded_as_protobuf(cluster: LocalCluster, clients: list[RestClient]) -> None:
    # The media type is matched case-insensitively and with parameters; JSON bytes are not Kubernetes protobuf.
    body = json.dumps(configmap("proto")).encode()
    status, answer = await _raw(cluster.urls[0], "POST", CM, body, "Application/Vnd.Kubernetes.Protobuf; x=1")
    assert status == 400 and answer["reason"] == "BadRequest"
    assert answer["message"].startswith("the protobuf request body is invalid"), answer
    with pytest.raises(errors.NotFound):
        await clients[1].get(f"{CM}/proto")


async def test_stale_update_conflicts_with_409(cluster: LocalCluster, clients: list[RestClient]) -> None:
    created = await clients[0].create(CM, configmap("s", v="1"))
    await clients[1].replace(f"{CM}/s", dict(created, data={"v": "2"}))
    status, answer = await _raw(cluster.urls[2], "PUT", f"{CM}/s", json.dumps(created).encode())
    assert status == 409 and answer["reason"] == "Conflict"
    assert (await clients[0].get(f"{CM}/s"))["data"] == {"v": "2"}


async def test_namespace_lifecycle(clients: list[RestClient]) -> None:
    await clients[0].create("/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    await clients[1].create("/api/v1/namespaces/team-a/configmaps", configmap("c"))
    terminating = await clients[2].delete("/api/v1/namespaces/team-a")
    assert terminating["status"]["phase"] == "Terminating"
    with pytest.raises(errors.Forbidden):
        await clients[0].create("/api/v1/namespaces/team-a/configmaps", configmap("d"))
    await clients[1].delete("/api/v1/namespaces/team-a/configmaps/c")
    with pytest.raises(errors.NotFound):
        await clients[2].get("/api/v1/namespaces/team-a")


async def test_version_and_discovery(clients: list[RestClient]) -> None:
    version = await clients[0].get("/version")
    assert (version["major"], version["minor"]) == ("1", "32")
    core = await clients[1].get("/api/v1")
    assert {"pods", "configmaps", "namespaces", "pods/status"} <= {r["name"] for r in core["resources"]}
    groups = await clients[2].get("/apis")
    assert {"apps", "coordination.k8s.io"} <= {g["name"] for g in groups["groups"]}
