"""Resource amounts the scheduler counts: CPU (millicores), memory and ephemeral storage (bytes), pods.

A pod's request is upstream's ``computePodResourceRequest``: the sum over its containers, raised to
the largest init container (an init container runs alone, before the others; a sidecar, an init
container with ``restartPolicy: Always``, keeps running and adds to everything after it), plus
``spec.overhead``. ``nonzero`` is what scoring uses: a container without a CPU or memory request
counts as 100m / 200Mi (upstream's ``GetNonzeroRequests``), so best-effort pods still spread.

Pure. Malformed quantities raise ``QuantityError``; the caller turns that into an unschedulable pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgek8s.model.quantity import QuantityError, milli_value, value

DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
CPU, MEMORY, STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"


@dataclass(frozen=True, slots=True)
class Resources:
    cpu: int = 0  # millicores
    memory: int = 0  # bytes
    storage: int = 0  # bytes of ephemeral storage
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.storage + other.storage,
                         self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.storage - other.storage,
                         self.pods - other.pods)

    def max(self, other: Resources) -> Resources:
        return Resources(max(self.cpu, other.cpu), max(self.memory, other.memory),
                         max(self.storage, other.storage), max(self.pods, other.pods))


ZERO = Resources()


def parse_resource_list(amounts: Any) -> Resources:
    """A ``ResourceList`` (``{"cpu": "500m", "memory": "1Gi"}``); other resource names are ignored."""
    if not amounts:
        return ZERO
    if not isinstance(amounts, Mapping):
        raise QuantityError("a resource list must be an object")
    return Resources(
        cpu=milli_value(amounts[CPU]) if CPU in amounts else 0,
        memory=value(amounts[MEMORY]) if MEMORY in amounts else 0,
        storage=value(amounts[STORAGE]) if STORAGE in amounts else 0,
        pods=value(amounts[PODS]) if PODS in amounts else 0,
    )


def _container_requests(container: Any) -> Resources:
    if not isinstance(container, Mapping):
        return ZERO
    resources = container.get("resources") or {}
    return parse_resource_list(resources.get("requests") if isinstance(resources, Mapping) else None)


def _nonzero(requests: Resources) -> Resources:
    return Resources(cpu=requests.cpu or DEFAULT_MILLI_CPU, memory=requests.memory or DEFAULT_MEMORY)


def pod_requests(spec: Mapping[str, Any]) -> tuple[Resources, Resources]:
    """(requests, nonzero requests) of a pod spec; ``pods`` is always 1 in the first."""
    total = nonzero = ZERO
    for container in spec.get("containers") or ():
        requests = _container_requests(container)
        total += requests
        nonzero += _nonzero(requests)
    sidecars = sidecars_nonzero = init_max = init_max_nonzero = ZERO
    for container in spec.get("initContainers") or ():
        requests = _container_requests(container)
        if isinstance(container, Mapping) and container.get("restartPolicy") == "Always":
            total += requests
            nonzero += _nonzero(requests)
            sidecars += requests
            sidecars_nonzero += _nonzero(requests)
            running, running_nonzero = sidecars, sidecars_nonzero
        else:
            running, running_nonzero = requests + sidecars, _nonzero(requests) + sidecars_nonzero
        init_max = init_max.max(running)
        init_max_nonzero = init_max_nonzero.max(running_nonzero)
    overhead = parse_resource_list(spec.get("overhead"))
    total = total.max(init_max) + overhead
    nonzero = nonzero.max(init_max_nonzero) + overhead
    return Resources(total.cpu, total.memory, total.storage, 1), Resources(nonzero.cpu, nonzero.memory)
