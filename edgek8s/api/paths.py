"""Parse Kubernetes REST paths into (resource type, namespace, name, subresource).

``/api/v1/...`` is the core group; ``/apis/<group>/<version>/...`` the others. The rest is one of:
``<plural>``, ``<plural>/<name>[/<sub>]`` (cluster-scoped, or a namespaced resource listed across
all namespaces), ``namespaces/<ns>/<plural>[/<name>[/<sub>]]``. ``namespaces/<x>/status`` and
``namespaces/<x>/finalize`` are the Namespace's own subresources, as upstream routes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType, lookup

SUBRESOURCES = frozenset(
    {"status", "finalize", "scale", "log", "exec", "attach", "portforward", "binding", "eviction", "proxy"}
)


@dataclass(frozen=True, slots=True)
class Target:
    rtype: ResourceType
    namespace: str | None  # None: all namespaces (collections) or cluster-scoped
    name: str | None
    subresource: str | None


def _resource(group: str, version: str, plural: str) -> ResourceType:
    rtype = lookup(group, version, plural)
    if rtype is None:
        api = f"{group}/{version}" if group else version
        raise errors.NotFound(f"the server could not find the requested resource ({plural} in {api})")
    return rtype


def parse_target(group: str, version: str, segments: list[str]) -> Target:
    if not segments or any(not s for s in segments):
        raise errors.NotFound("the server could not find the requested resource")
    if segments[0] == "namespaces" and len(segments) >= 3 and segments[2] not in SUBRESOURCES:
        rtype = _resource(group, version, segments[2])
        if not rtype.namespaced:
            raise errors.NotFound("the server could not find the requested resource")
        namespace = segments[1]
        rest = segments[3:]
    else:
        rtype = _resource(group, version, segments[0])
        namespace = None
        rest = segments[1:]
        if rest and rtype.namespaced:
            raise errors.NotFound("the server could not find the requested resource")
    if len(rest) > 2:
        raise errors.NotFound("the server could not find the requested resource")
    name = rest[0] if rest else None
    subresource = rest[1] if len(rest) > 1 else None
    return Target(rtype=rtype, namespace=namespace if rtype.namespaced else None, name=name, subresource=subresource)
