"""Builders of wire objects for controller tests (nomad's ``mock`` package role).

Each returns a fresh dict shaped as the API stores it (uid, resourceVersion, creationTimestamp set),
with keyword arguments for what a test varies. Times are RFC 3339 strings relative to ``NOW``.
"""

from __future__ import annotations

import datetime
from typing import Any

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def ts(seconds_before_now: float = 0.0) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_before_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, namespace: str = "default", *, age: float = 600.0, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "7",
                                "creationTimestamp": ts(age)}
    if namespace:
        metadata["namespace"] = namespace
    metadata.update(extra)
    return metadata


def owner(kind: str, name: str, api_version: str) -> list[dict[str, Any]]:
    return [{"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": True,
             "blockOwnerDeletion": True}]


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         ready: str = "True", heartbeat: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Node", "metadata": meta(name, "", labels={"kubernetes.io/hostname": name,
                                                                              **(labels or {})}),
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady",
                                   "lastHeartbeatTime": heartbeat or ts(5), "lastTransitionTime": ts(500)}]},
    }
    if taints:
        obj["spec"]["taints"] = taints
    return obj


def template(labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def pod(name: str, *, owners: list[dict[str, Any]] | None = None, node_name: str = "", phase: str = "Running",
        ready: bool = True, labels: dict[str, str] | None = None, ip: str = "", age: float = 300.0,
        ready_for: float = 200.0, **extra_meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": meta(name, age=age, labels=labels or {"app": "web"}, **extra_meta),
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": phase, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(ready_for)}]},
    }
    if owners:
        obj["metadata"]["ownerReferences"] = owners
    if node_name:
        obj["spec"]["nodeName"] = node_name
    if ip:
        obj["status"]["podIP"] = ip
    return obj
