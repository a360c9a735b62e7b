"""``metrics.k8s.io/v1beta1`` (what ``kubectl top`` reads), served from the kubelets' usage endpoints.

Like metrics-server, but on demand: each request asks the kubelets concerned (every node for node
metrics, the nodes of the selected pods for pod metrics; concurrently, with a short timeout) for their
current usage; an unreachable kubelet leaves its node and pods out rather than failing
the request. Pod metrics are joined with the stored pods, so label selectors work and pods that no
longer exist are not reported. CPU is in nanocores, memory in KiB, as metrics-server writes them.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiohttp import web

from edgek8s.api.context import STORE, json_response
from edgek8s.api.kubelets import KUBELETS, NODES, PODS, kubelet_url
from edgek8s.api.listing import parse_selection
from edgek8s.model import errors

GROUP_VERSION = "metrics.k8s.io/v1beta1"
_PREFIX = f"/apis/{GROUP_VERSION}"
_KUBELET_TIMEOUT = 5.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage(cpu_nanocores: int, memory_bytes: int) -> dict[str, str]:
    return {"cpu": f"{cpu_nanocores}n", "memory": f"{memory_bytes // 1024}Ki"}


async def _node_usages(request: web.Request, names: set[str] | None = None) -> list[tuple[dict[str, Any], Any]]:
    """(node, usage report) for every reachable node (or the named ones)."""
    assert NODES is not None
    nodes, _rv = await request.app[STORE].list(NODES, None, consistent=False)
    wanted = [n.decode() for n in nodes if names is None or n.name in names]
    kubelets = request.app[KUBELETS]

    async def one(node: dict[str, Any]) -> Any:
        try:
            return await asyncio.wait_for(kubelets.get_json(f"{kubelet_url(node)}/stats/usage"), _KUBELET_TIMEOUT)
        except (errors.StatusError, TimeoutError):
            return None

    reports = await asyncio.gather(*(one(n) for n in wanted))
    return [(node, report) for node, report in zip(wanted, reports, strict=True) if report is not None]


def _node_metrics(node: dict[str, Any], report: dict[str, Any], stamp: str) -> dict[str, Any]:
    meta = node["metadata"]
    return {"metadata": {"name": meta["name"], "creationTimestamp": stamp, "labels": meta.get("labels") or {}},
            "timestamp": report["timestamp"], "window": f"{report['window_seconds']:.3f}s",
            "usage": _usage(report["cpu_nanocores"], report["memory_bytes"])}


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}


def _item(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": GROUP_VERSION, **item}


async def node_metrics(request: web.Request) -> web.Response:
    name = request.match_info.get("name")
    stamp = _now()
    reports = await _node_usages(request, {name} if name else None)
    items = [_node_metrics(node, report, stamp) for node, report in reports]
    if name is None:
        assert NODES is not None
        selection = parse_selection(NODES, request.query.get("labelSelector", ""), "")
        items = [i for i in items if selection.labels.matches(i["metadata"]["labels"])]
        return json_response(_list("NodeMetrics", items))
    if not items:
        raise errors.NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found', kind="nodes",
                              group="metrics.k8s.io", name=name)
    return json_response(_item("NodeMetrics", items[0]))


async def pod_metrics(request: web.Request) -> web.Response:
    assert PODS is not None
    namespace = request.match_info.get("namespace")
    name = request.match_info.get("name")
    selection = parse_selection(PODS, request.query.get("labelSelector", ""), request.query.get("fieldSelector", ""))
    pods, _rv = await request.app[STORE].list(PODS, namespace, consistent=False)
    stored = {(p.namespace, p.name): p for p in pods if (name is None or p.name == name) and selection.matches(p)}
    stamp = _now()
    items = []
    nodes = {p.fields.get("spec.nodeName", "") for p in stored.values()} - {""}  # ask only where they run
    for _node, report in await _node_usages(request, nodes) if nodes else []:
        for pod in report["pods"]:
            ref = pod["pod"]
            obj = stored.get((ref["namespace"], ref["name"]))
            if obj is None or obj.uid != ref["uid"]:
                continue
            items.append({
                "metadata": {"name": ref["name"], "namespace": ref["namespace"], "creationTimestamp": stamp,
                             "labels": dict(obj.labels)},
                "timestamp": report["timestamp"], "window": f"{report['window_seconds']:.3f}s",
                "containers": [{"name": c["name"], "usage": _usage(c["cpu_nanocores"], c["memory_bytes"])}
                               for c in pod["containers"]],
            })
    items.sort(key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))
    if name is None:
        return json_response(_list("PodMetrics", items))
    if not items:
        raise errors.NotFound(f'podmetrics.metrics.k8s.io "{name}" not found', kind="pods",
                              group="metrics.k8s.io", name=name)
    return json_response(_item("PodMetrics", items[0]))


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{_PREFIX}/nodes", node_metrics)
    app.router.add_get(f"{_PREFIX}/nodes/{{name}}", node_metrics)
    app.router.add_get(f"{_PREFIX}/pods", pod_metrics)
    app.router.add_get(f"{_PREFIX}/namespaces/{{namespace}}/pods", pod_metrics)
    app.router.add_get(f"{_PREFIX}/namespaces/{{namespace}}/pods/{{name}}", pod_metrics)
