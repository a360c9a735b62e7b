"""The ReplicaSet controller's pure parts: which pods go first, status, pods from the template."""

from __future__ import annotations

from typing import Any

from edgek8s.controllers.replicaset import deletion_order, pod_from_template, replica_status


def pod(name: str, *, node: str = "", phase: str = "Running", ready_since: str | None = None, restarts: int = 0,
        created: str = "2024-01-01T00:00:00Z", labels: dict[str, str] | None = None) -> dict[str, Any]:
    conditions = []
    if ready_since is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready_since})
    return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels or {"app": "web"}},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_the_least_useful_pods_are_deleted_first() -> None:
    pods = [
        pod("ready-old", node="n1", ready_since="2024-01-01T00:00:00Z"),
        pod("ready-new", node="n1", ready_since="2024-01-01T01:00:00Z"),
        pod("unscheduled", phase="Pending"),
        pod("pending", node="n1", phase="Pending"),
        pod("not-ready", node="n1"),
        pod("crashing", node="n1", restarts=5),
        pod("newer", node="n1", created="2024-01-02T00:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods, now=1.8e9)]
    assert order == ["unscheduled", "pending", "crashing", "newer", "not-ready", "ready-new", "ready-old"]


def test_status_counts_fully_labeled_ready_and_available() -> None:
    rs = {"metadata": {"generation": 3},
          "spec": {"minReadySeconds": 10, "template": {"metadata": {"labels": {"app": "web", "tier": "a"}}}}}
    since = "2024-01-01T00:00:00Z"  # 1704067200
    pods = [pod("a", node="n", ready_since=since, labels={"app": "web", "tier": "a"}),
            pod("b", node="n", ready_since="2024-01-01T00:00:08Z", labels={"app": "web", "tier": "a"}),
            pod("c", node="n", labels={"app": "web"})]
    assert replica_status(rs, pods, now=1704067212.0) == {
        "replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1, "observedGeneration": 3}


def test_pods_are_built_from_a_copy_of_the_template() -> None:
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "namespace": "ns",
                                                                         "uid": "u1"}}
    made = pod_from_template(owner, template)
    assert made["metadata"] == {"generateName": "web-abc-", "namespace": "ns", "labels": {"app": "web"},
                                "annotations": {"a": "1"},
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                                     "uid": "u1", "controller": True, "blockOwnerDeletion": True}]}
    made["spec"]["containers"][0]["image"] = "changed"
    made["metadata"]["labels"]["x"] = "y"
    assert template["spec"]["containers"][0]["image"] == "i" and template["metadata"]["labels"] == {"app": "web"}
