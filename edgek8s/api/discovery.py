"""Discovery: aggregated v2 / v2beta1 and legacy (OpenAPI v3 is ``openapi.py``).

kubectl 1.32 asks ``/api`` and ``/apis`` for aggregated discovery and uses it only if the response
Content-Type is exactly ``application/json;g=apidiscovery.k8s.io;v=<v2|v2beta1>;as=APIGroupDiscoveryList``;
the version is negotiated from ``Accept`` (kubectl 1.28 only knows v2beta1). Anything else gets the
legacy ``APIVersions`` / ``APIGroupList`` documents, and ``/api/v1``, ``/apis/<g>/<v>`` list resources.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgek8s.api.context import json_response
from edgek8s.model.resources import BUILTIN_RESOURCES, METRICS_RESOURCES, REVIEW_RESOURCES, ResourceType

_DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
_SUBRESOURCE_KINDS = {"status": None, "scale": ("autoscaling", "v1", "Scale"), "eviction": ("policy", "v1", "Eviction")}
_SUBRESOURCE_VERBS = {"eviction": ["create"]}
_SUBRESOURCES: dict[str, tuple[str, ...]] = {"deployments": ("status", "scale"), "replicasets": ("status", "scale"),
                                             "pods": ("status", "eviction")}


def _groups(*, served: bool = True) -> dict[str, list[ResourceType]]:
    """Group -> resource types; ``served`` adds the metrics API and the reviews (discovery lists them,
    OpenAPI does not)."""
    groups: dict[str, list[ResourceType]] = {}
    for rtype in BUILTIN_RESOURCES + (METRICS_RESOURCES + REVIEW_RESOURCES if served else ()):
        groups.setdefault(rtype.group, []).append(rtype)
    return groups


def _subresources(rtype: ResourceType) -> list[str]:
    return list(_SUBRESOURCES.get(rtype.plural, ("status",) if rtype.has_status else ()))


def _aggregated_resource(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rtype.plural,
        "responseKind": {"group": rtype.group, "version": rtype.version, "kind": rtype.kind},
        "scope": "Namespaced" if rtype.namespaced else "Cluster",
        "singularResource": rtype.singular,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    subresources = []
    for sub in _subresources(rtype):
        kind = _SUBRESOURCE_KINDS[sub] or (rtype.group, rtype.version, rtype.kind)
        subresources.append(
            {"subresource": sub, "responseKind": {"group": kind[0], "version": kind[1], "kind": kind[2]},
             "verbs": _SUBRESOURCE_VERBS.get(sub, ["get", "patch", "update"])}
        )
    if subresources:
        entry["subresources"] = subresources
    return entry


def _aggregated(core: bool, version: str) -> dict[str, Any]:
    items = []
    for group, rtypes in _groups().items():
        if (group == "") != core:
            continue
        versions = sorted({r.version for r in rtypes}, reverse=True)
        item: dict[str, Any] = {
            "metadata": {} if core else {"name": group},
            "versions": [
                {"version": v, "freshness": "Current",
                 "resources": [_aggregated_resource(r) for r in rtypes if r.version == v]}
                for v in versions
            ],
        }
        items.append(item)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def _negotiated_discovery_version(accept: str) -> str | None:
    for part in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])}
        aggregated = params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList"
        if aggregated and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None


def _aggregated_response(request: web.Request, core: bool) -> web.Response | None:
    version = _negotiated_discovery_version(request.headers.get("Accept", ""))
    if version is None:
        return None
    response = json_response(_aggregated(core, version))
    response.headers["Content-Type"] = _DISCOVERY_TYPE.format(version=version)
    return response


async def api_versions(request: web.Request) -> web.Response:
    aggregated = _aggregated_response(request, core=True)
    if aggregated is not None:
        return aggregated
    return json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})


async def api_groups(request: web.Request) -> web.Response:
    aggregated = _aggregated_response(request, core=False)
    if aggregated is not None:
        return aggregated
    groups = []
    for name, rtypes in _groups().items():
        if not name:
            continue
        versions = sorted({r.version for r in rtypes}, reverse=True)
        preferred = {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]}
        groups.append({"name": name, "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
                       "preferredVersion": preferred})
    return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """Legacy ``APIResourceList`` of one group-version, or None if it is not served."""
    resources: list[dict[str, Any]] = []
    for rtype in BUILTIN_RESOURCES + METRICS_RESOURCES + REVIEW_RESOURCES:
        if rtype.group != group or rtype.version != version:
            continue
        entry: dict[str, Any] = {"name": rtype.plural, "singularName": rtype.singular, "namespaced": rtype.namespaced,
                                 "kind": rtype.kind, "verbs": list(rtype.verbs)}
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        resources.append(entry)
        for sub in _subresources(rtype):
            sub_group, sub_version, kind = _SUBRESOURCE_KINDS[sub] or ("", "", rtype.kind)
            sub_entry: dict[str, Any] = {"name": f"{rtype.plural}/{sub}", "singularName": "",
                                         "namespaced": rtype.namespaced, "kind": kind,
                                         "verbs": _SUBRESOURCE_VERBS.get(sub, ["get", "patch", "update"])}
            if sub_group != rtype.group or sub_version not in ("", rtype.version):
                sub_entry.update(group=sub_group, version=sub_version)  # kubectl drain looks for these
            resources.append(sub_entry)
    if not resources:
        return None
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def subresources(rtype: ResourceType) -> list[str]:
    """The subresources served for ``rtype`` (``status``, ``scale``, ...)."""
    return _subresources(rtype)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api", api_versions)
    app.router.add_get("/apis", api_groups)
