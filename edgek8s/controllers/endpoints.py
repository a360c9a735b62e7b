"""Endpoints and EndpointSlices of a Service from the pods it selects. Pure.

``endpoints_plan`` and ``endpoint_slices_plan`` take a Service (None once deleted), the pods of its
namespace and the objects that exist, and return the writes that make them match. Upstream's
``pkg/controller/endpoint`` and ``pkg/controller/endpointslice``:

- A selectorless Service is left alone: its Endpoints/EndpointSlices are the user's.
- A pod counts once it has ``status.podIP`` and is neither Succeeded nor Failed. In Endpoints, ready
  pods go to ``addresses``, others to ``notReadyAddresses`` and terminating pods are left out; in
  EndpointSlices every such pod is listed with ``conditions`` ready/serving/terminating.
  ``publishNotReadyAddresses`` makes every listed pod ready.
- A named ``targetPort`` is looked up in each pod's container ports (name and protocol); a pod
  without it is left out of that port, so pods numbering a port differently land in different
  subsets/slices, grouped by their resolved port set.
- EndpointSlices (``kubernetes.io/service-name``, managed by ``endpointslice-controller.k8s.io``,
  owned by the Service) hold at most ``max_per_slice`` endpoints (upstream's 100), sorted by address;
  existing slices are updated in place before any is created or deleted. A Service without pods
  keeps one empty slice, as upstream's placeholder.

Invariants: output is deterministic (sorted) so an unchanged input writes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from edgek8s.client.informer import Handlers, Informer, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import ENDPOINT_SLICES, ENDPOINTS, PODS, SERVICES, Create, Delete, Plan, Update
from edgek8s.controllers.base import enqueue_handlers
from edgek8s.controllers.runner import PlanLoop
from edgek8s.model.resources import by_id
from edgek8s.model.selectors import LabelSelector

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"

Port = tuple[str, int, str, str]  # name, port, protocol, appProtocol ("" when unset)


def selects(service: Mapping[str, Any] | None) -> bool:
    """Whether the controller manages this Service's endpoints (it has a selector)."""
    return service is not None and bool(p.spec(service).get("selector"))


def _resolve(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in p.spec(pod).get("containers") or ():
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                value = port.get("containerPort")
                return value if isinstance(value, int) else None
    return None


def _pod_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> tuple[Port, ...]:
    resolved: list[Port] = []
    for service_port in p.spec(service).get("ports") or ():
        number = _resolve(service_port, pod)
        if number is not None:
            resolved.append((str(service_port.get("name") or ""), number, str(service_port.get("protocol") or "TCP"),
                             str(service_port.get("appProtocol") or "")))
    return tuple(sorted(resolved))


def _selected(service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    selector = LabelSelector.from_set(p.spec(service).get("selector") or {})
    return [
        pod for pod in pods
        if p.namespace(pod) == p.namespace(service)
        and p.status(pod).get("podIP")
        and not p.is_terminal(pod)
        and selector.matches(p.meta(pod).get("labels") or {})
    ]


def _headless(service: Mapping[str, Any]) -> bool:
    return p.spec(service).get("clusterIP") == "None"


def _labels(service: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(p.meta(service).get("labels") or {})
    if _headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def _target_ref(pod: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "Pod", "namespace": p.namespace(pod), "name": p.name(pod), "uid": p.uid(pod)}


def _hostname(service: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    spec = p.spec(pod)
    if spec.get("hostname") and spec.get("subdomain") == p.name(service):
        return str(spec["hostname"])
    return ""


def _port_dicts(ports: tuple[Port, ...], *, always_named: bool = False) -> list[dict[str, Any]]:
    """Ports as stored: a slice's port always has a name (defaulted to ""), an Endpoints' only if set."""
    result = []
    for name, number, protocol, app_protocol in ports:
        entry: dict[str, Any] = {"port": number, "protocol": protocol}
        if name or always_named:
            entry["name"] = name
        if app_protocol:
            entry["appProtocol"] = app_protocol
        result.append(entry)
    return result


def desired_subsets(service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    publish_all = bool(p.spec(service).get("publishNotReadyAddresses"))
    has_ports = bool(p.spec(service).get("ports"))
    groups: dict[tuple[Port, ...], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for pod in _selected(service, pods):
        if p.is_deleting(pod) and not publish_all:
            continue
        ports = _pod_ports(service, pod)
        if has_ports and not ports:
            continue
        address: dict[str, Any] = {"ip": str(p.status(pod)["podIP"]), "targetRef": _target_ref(pod)}
        if p.spec(pod).get("nodeName"):
            address["nodeName"] = p.spec(pod)["nodeName"]
        if hostname := _hostname(service, pod):
            address["hostname"] = hostname
        ready, not_ready = groups.setdefault(ports, ([], []))
        (ready if publish_all or p.is_ready(pod) else not_ready).append(address)
    subsets = []
    for ports, (ready, not_ready) in sorted(groups.items()):
        subset: dict[str, Any] = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: (a["ip"], a["targetRef"]["name"]))
        if ports:
            subset["ports"] = _port_dicts(ports)
        subsets.append(subset)
    return subsets


def endpoints_plan(
    service: Mapping[str, Any] | None,
    service_name: tuple[str, str],
    pods: Sequence[Mapping[str, Any]],
    existing: Mapping[str, Any] | None,
) -> Plan:
    """Writes making ``<namespace>/<name>`` Endpoints match the Service (deleted with it, as upstream)."""
    plan = Plan()
    namespace, name = service_name
    if service is None:
        if existing is not None:
            plan.actions.append(Delete(resource=ENDPOINTS, namespace=namespace, name=name, uid=p.uid(existing)))
        return plan
    if not selects(service) or p.is_deleting(service):
        return plan
    subsets = desired_subsets(service, pods)
    labels = _labels(service)
    if existing is None:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints",
                                "metadata": {"name": name, "namespace": namespace, "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        plan.actions.append(Create(resource=ENDPOINTS, namespace=namespace, body=body, exists_ok=True))
    elif (existing.get("subsets") or []) != subsets or (p.meta(existing).get("labels") or {}) != labels:
        body = {**existing, "metadata": {**p.meta(existing), "labels": labels}}
        body.pop("subsets", None)
        if subsets:
            body["subsets"] = subsets
        plan.actions.append(Update(resource=ENDPOINTS, body=body))
    return plan


def _address_type(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def desired_slices(
    service: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], max_per_slice: int
) -> list[tuple[str, tuple[Port, ...], list[dict[str, Any]]]]:
    """(addressType, ports, endpoints) of each slice the Service should have, in a stable order."""
    publish_all = bool(p.spec(service).get("publishNotReadyAddresses"))
    has_ports = bool(p.spec(service).get("ports"))
    groups: dict[tuple[str, tuple[Port, ...]], list[dict[str, Any]]] = {}
    for pod in _selected(service, pods):
        ports = _pod_ports(service, pod)
        if has_ports and not ports:
            continue
        ip = str(p.status(pod)["podIP"])
        terminating = p.is_deleting(pod)
        serving = publish_all or p.is_ready(pod)
        endpoint: dict[str, Any] = {
            "addresses": [ip],
            "conditions": {"ready": serving and (publish_all or not terminating), "serving": serving,
                           "terminating": terminating},
            "targetRef": _target_ref(pod),
        }
        if p.spec(pod).get("nodeName"):
            endpoint["nodeName"] = p.spec(pod)["nodeName"]
        if hostname := _hostname(service, pod):
            endpoint["hostname"] = hostname
        groups.setdefault((_address_type(ip), ports), []).append(endpoint)
    result = []
    for (address_type, ports), endpoints in sorted(groups.items()):
        endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"]["name"]))
        for start in range(0, len(endpoints), max_per_slice):
            result.append((address_type, ports, endpoints[start : start + max_per_slice]))
    if not result:
        result.append(("IPv4", (), []))  # upstream's placeholder slice
    return result


def _slice_body(
    service: Mapping[str, Any], address_type: str, ports: tuple[Port, ...], endpoints: list[dict[str, Any]]
) -> dict[str, Any]:
    labels = {**_labels(service), SERVICE_NAME_LABEL: p.name(service), MANAGED_BY_LABEL: MANAGED_BY}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{p.name(service)}-",
            "namespace": p.namespace(service),
            "labels": labels,
            "ownerReferences": [p.controller_reference(service, api_version="v1", kind="Service")],
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": _port_dicts(ports, always_named=True),
    }


def managed_slices(service_name: str, slices: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        s for s in slices
        if (p.meta(s).get("labels") or {}).get(SERVICE_NAME_LABEL) == service_name
        and (p.meta(s).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
    ]


def endpoint_slices_plan(
    service: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    existing: Sequence[Mapping[str, Any]],
    *,
    max_per_slice: int = 100,
) -> Plan:
    """Writes making the Service's managed EndpointSlices (``existing``) match its pods."""
    plan = Plan()
    if service is None or not selects(service) or p.is_deleting(service):
        # A deleted Service's slices go with it through their ownerReference (the garbage collector);
        # a Service that lost its selector keeps none of ours.
        if service is not None and not selects(service):
            plan.actions.extend(Delete(resource=ENDPOINT_SLICES, namespace=p.namespace(s), name=p.name(s),
                                       uid=p.uid(s)) for s in existing)
        return plan
    pool = sorted((s for s in existing if not p.is_deleting(s)), key=p.name)
    leftovers: list[tuple[str, tuple[Port, ...], list[dict[str, Any]]]] = []
    for address_type, ports, endpoints in desired_slices(service, pods, max_per_slice):
        body = _slice_body(service, address_type, ports, endpoints)
        match = next((s for s in pool if s.get("addressType") == address_type
                      and s.get("ports", []) == body["ports"]), None)
        if match is None:
            leftovers.append((address_type, ports, endpoints))
            continue
        pool.remove(match)
        _update_slice(match, body, plan)
    for address_type, ports, endpoints in leftovers:
        body = _slice_body(service, address_type, ports, endpoints)
        reuse = next((s for s in pool if s.get("addressType") == address_type), None)
        if reuse is not None:
            pool.remove(reuse)
            _update_slice(reuse, body, plan)
        else:
            plan.actions.append(Create(resource=ENDPOINT_SLICES, namespace=p.namespace(service), body=body))
    plan.actions.extend(Delete(resource=ENDPOINT_SLICES, namespace=p.namespace(s), name=p.name(s), uid=p.uid(s))
                        for s in pool)
    return plan


def _update_slice(current: Mapping[str, Any], body: dict[str, Any], plan: Plan) -> None:
    labels = body["metadata"]["labels"]
    if (current.get("endpoints") or []) == body["endpoints"] and (current.get("ports") or []) == body["ports"] \
            and (p.meta(current).get("labels") or {}) == labels:
        return
    updated = copy.copy(dict(current))
    updated["metadata"] = {**p.meta(current), "labels": labels}
    updated["endpoints"] = body["endpoints"]
    updated["ports"] = body["ports"]
    plan.actions.append(Update(resource=ENDPOINT_SLICES, body=updated))


# --- the loop -----------------------------------------------------------------------------------------

SERVICE_NAME_INDEX = "service-name"


def _index_slice_by_service(obj: Obj) -> list[str]:
    service_name = (p.meta(obj).get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{p.namespace(obj)}/{service_name}"] if service_name else []


class EndpointsController(PlanLoop):
    """Keys are Services (``namespace/name``); Pods, Endpoints and EndpointSlices map back to them."""

    name = "endpoints-controller"
    workers = 2
    track_expectations = False

    def __init__(self, *, max_per_slice: int = 100) -> None:
        super().__init__()
        self._max_per_slice = max_per_slice
        self._services: Informer | None = None
        self._pods: Informer | None = None
        self._endpoints: Informer | None = None
        self._slices: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._services = informers.informer(by_id(SERVICES))
        self._pods = informers.informer(by_id(PODS))
        self._endpoints = informers.informer(by_id(ENDPOINTS))
        self._slices = informers.informer(by_id(ENDPOINT_SLICES),
                                          indexers={SERVICE_NAME_INDEX: _index_slice_by_service})
        queue, services = self.queue, self._services
        self._services.add_handlers(enqueue_handlers(queue))
        endpoints = self._endpoints

        def leftover(obj: Obj) -> None:
            # Upstream's checkLeftoverEndpoints: Endpoints listed at start whose Service is gone are
            # deleted; later a user's standalone Endpoints is left alone (only its deletion is watched,
            # so a managed one removed by hand comes back).
            if not endpoints.has_synced:
                queue.add(key_of(obj))

        self._endpoints.add_handlers(Handlers(on_add=leftover, on_delete=lambda e: queue.add(key_of(e))))
        self._slices.add_handlers(enqueue_handlers(queue, lambda s: next(iter(_index_slice_by_service(s)), None)))

        def pod_services(pod: Obj) -> set[str]:
            labels = p.meta(pod).get("labels") or {}
            return {
                key_of(svc) for svc in services.list(p.namespace(pod))
                if selects(svc) and LabelSelector.from_set(p.spec(svc)["selector"]).matches(labels)
            }

        def pod_added(pod: Obj) -> None:
            for key in pod_services(pod):
                queue.add(key)

        def pod_updated(old: Obj, new: Obj) -> None:
            if old is not new and _endpoint_view(old) == _endpoint_view(new):
                return  # a change endpoints do not show (most kubelet status writes)
            for key in pod_services(old) | pod_services(new):
                queue.add(key)

        self._pods.add_handlers(Handlers(on_add=pod_added, on_update=pod_updated, on_delete=pod_added))
        return []

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._services is not None and self._pods is not None
        assert self._endpoints is not None and self._slices is not None
        namespace, _, name = key.rpartition("/")
        service = self._services.get(namespace, name)
        pods = self._pods.list(namespace) if selects(service) else []
        plan = endpoints_plan(service, (namespace, name), pods, self._endpoints.get(namespace, name))
        existing = managed_slices(name, self._slices.by_index(SERVICE_NAME_INDEX, key))
        plan.merge(endpoint_slices_plan(service, pods, existing, max_per_slice=self._max_per_slice))
        return plan, None


def _endpoint_view(pod: Obj) -> tuple[Any, ...]:
    """What of a pod the endpoints depend on."""
    return (p.meta(pod).get("labels"), p.status(pod).get("podIP"), p.is_ready(pod), p.phase(pod),
            p.is_deleting(pod), p.spec(pod).get("nodeName"))
