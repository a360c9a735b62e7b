"""Factories for Node and Pod objects as the API stores them (plain JSON dicts), for every test layer.

``make_node`` builds a hollow node: Ready, with allocatable like a Raspberry Pi 4 (4 CPUs, 4 GiB,
110 pods) and the well-known labels a kubelet sets. ``make_pod`` builds a pending pod; keyword
arguments add requests, selectors, tolerations, owners, ports and affinity. Both return fresh dicts.
"""

from __future__ import annotations

import uuid
from typing import Any

PI4_ALLOCATABLE = {"cpu": "4", "memory": "4Gi", "pods": "110", "ephemeral-storage": "28Gi"}


def make_node(
    name: str,
    *,
    arch: str = "arm64",
    labels: dict[str, str] | None = None,
    allocatable: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: str = "True",
    unschedulable: bool = False,
    conditions: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_labels = {
        "kubernetes.io/hostname": name, "kubernetes.io/arch": arch, "kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
    }
    all_labels.update(labels or {})
    status_conditions = [{"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else
                          "KubeletNotReady", "message": "hollow node"}]
    status_conditions += [{"type": t, "status": s} for t, s in (conditions or {}).items()]
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    amounts = dict(allocatable or PI4_ALLOCATABLE)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {
            "capacity": amounts,
            "allocatable": amounts,
            "conditions": status_conditions,
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux", "kubeletVersion": "v1.32.0-edgek8s"},
        },
    }


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    uid: str | None = None,
    node_name: str = "",
    image: str = "registry.local/pause:3.9",
    requests: dict[str, str] | None = None,
    init_requests: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
    affinity: dict[str, Any] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    host_ports: list[int] | None = None,
    owner_uid: str | None = None,
    priority: int | None = None,
    scheduler_name: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "resources": {}}
    if requests:
        container["resources"] = {"requests": dict(requests)}
    if host_ports:
        container["ports"] = [{"containerPort": p, "hostPort": p, "protocol": "TCP"} for p in host_ports]
    spec: dict[str, Any] = {"containers": [container]}
    if init_requests:
        spec["initContainers"] = [
            {"name": f"init{i}", "image": image, "resources": {"requests": dict(r)}}
            for i, r in enumerate(init_requests)
        ]
    for key, value in (("nodeName", node_name), ("nodeSelector", node_selector), ("affinity", affinity),
                       ("tolerations", tolerations), ("priority", priority), ("schedulerName", scheduler_name)):
        if value:
            spec[key] = value
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4())}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner_uid:
        # An owner of a kind the cluster does not serve: the garbage collector leaves such pods alone
        # (a ReplicaSet that does not exist would have them collected).
        meta["ownerReferences"] = [{"apiVersion": "test.edgek8s.io/v1", "kind": "PodGroup", "name": owner_uid,
                                    "uid": owner_uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": "Pending"}}


def node_taint(key: str, effect: str = "NoSchedule", value: str = "") -> dict[str, str]:
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint
