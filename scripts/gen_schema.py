#!/usr/bin/env python3
"""Generate edgek8s/registry/schema.json: the field tables of the kinds edgek8s serves.

The API server needs to know every field upstream's Go types accept, to answer
``?fieldValidation=Strict|Warn`` the way kube-apiserver does (``unknown field "spec.x"``). The
official ``kubernetes`` Python client carries those types, generated from upstream's OpenAPI, as
``openapi_types`` (attribute -> type) and ``attribute_map`` (attribute -> JSON name). This script
walks them from each top-level kind and writes one compact table. The client is a development
dependency only: edgek8s reads the generated JSON at run time and never imports ``kubernetes``.

Output format (stable, sorted, one type per line so a regeneration diffs well)::

    {"generator": ..., "kinds": {"<apiVersion>/<Kind>": "<type>"},
     "types": {"<type>": {"<json field>": <ref>}}}

where a ``<ref>`` is a type name, a primitive marker (``string``, ``integer``, ``number``,
``boolean``, ``bytes`` (base64), ``time``, ``micro-time``, ``quantity``, ``int-or-string``), the
marker ``free-form`` (arbitrary JSON: nothing inside is checked), ``[<ref>]`` for a list, or
``{"str": <ref>}`` for a map with string keys.

Usage: ``.venv/bin/python scripts/gen_schema.py [--output PATH]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

# (apiVersion, kind) -> client model class name.
ROOTS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "Node"): "V1Node",
    ("v1", "Pod"): "V1Pod",
    ("v1", "Service"): "V1Service",
    ("v1", "Endpoints"): "V1Endpoints",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Event"): "CoreV1Event",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "ReplicaSet"): "V1ReplicaSet",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("coordination.k8s.io/v1", "Lease"): "V1Lease",
    ("batch/v1", "Job"): "V1Job",
    ("batch/v1", "CronJob"): "V1CronJob",
    ("discovery.k8s.io/v1", "EndpointSlice"): "V1EndpointSlice",
    ("autoscaling/v1", "Scale"): "V1Scale",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    **{("rbac.authorization.k8s.io/v1", k): f"V1{k}" for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    **{("networking.k8s.io/v1", k): f"V1{k}" for k in ("Ingress", "IngressClass", "NetworkPolicy")},
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "V1SelfSubjectAccessReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "V1SelfSubjectReview",
    ("apps/v1", "ControllerRevision"): "V1ControllerRevision",
    ("scheduling.k8s.io/v1", "PriorityClass"): "V1PriorityClass",
}

# The client spells every Quantity as a plain string and every MicroTime as a datetime; upstream's
# Go types say which is which. Informational only: unknown-field checks treat all of them as leaves.
QUANTITY_FIELDS = {("V1EmptyDirVolumeSource", "size_limit")}
RESOURCE_LIST_FIELDS = {"limits", "requests", "capacity", "allocatable", "overhead", "allocated_resources"}
MICRO_TIME_FIELDS = {("CoreV1Event", "event_time"), ("V1LeaseSpec", "acquire_time"), ("V1LeaseSpec", "renew_time")}
# For a client without pydantic annotations: upstream's IntOrString fields among the types above.
INT_OR_STRING_FIELDS = {
    ("V1ServicePort", "target_port"),
    ("V1HTTPGetAction", "port"),
    ("V1TCPSocketAction", "port"),
    ("V1RollingUpdateDeployment", "max_surge"),
    ("V1RollingUpdateDeployment", "max_unavailable"),
    ("V1RollingUpdateDaemonSet", "max_surge"),
    ("V1RollingUpdateDaemonSet", "max_unavailable"),
}

PRIMITIVES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "bytes": "bytes",
              "datetime": "time", "date": "time", "object": "free-form"}
_LIST = re.compile(r"^(?:List|list)\[(.*)\]$")
_MAP = re.compile(r"^(?:Dict|dict)[\[(]str, (.*)[\])]$")


def _is_int_or_string(cls: Any, attr: str) -> bool:
    fields = getattr(cls, "model_fields", None)
    if fields is None or attr not in fields:  # an older, non-pydantic client
        return (cls.__name__, attr) in INT_OR_STRING_FIELDS
    leaves: set[type] = set()

    def collect(annotation: Any) -> None:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            collect(typing.get_args(annotation)[0])
        elif origin is typing.Union or type(annotation).__name__ == "UnionType":
            for arg in typing.get_args(annotation):
                collect(arg)
        elif isinstance(annotation, type):
            leaves.add(annotation)

    collect(fields[attr].annotation)
    return int in leaves and str in leaves


class Walker:
    def __init__(self, models: Any) -> None:
        self.models = models
        self.types: dict[str, dict[str, Any]] = {}

    def ref(self, spec: str, owner: Any, attr: str) -> Any:
        spec = spec.strip()
        if m := _LIST.match(spec):
            return [self.ref(m.group(1), owner, attr)]
        if m := _MAP.match(spec):
            inner = self.ref(m.group(1), owner, attr)
            if inner == "string" and attr in RESOURCE_LIST_FIELDS:
                inner = "quantity"
            return {"str": inner}
        if spec in PRIMITIVES:
            key = (owner.__name__, attr)
            if spec == "object":
                return "int-or-string" if _is_int_or_string(owner, attr) else "free-form"
            if spec == "str" and key in QUANTITY_FIELDS:
                return "quantity"
            if spec == "datetime" and key in MICRO_TIME_FIELDS:
                return "micro-time"
            return PRIMITIVES[spec]
        cls = getattr(self.models, spec, None)
        if cls is None or not hasattr(cls, "openapi_types"):
            raise SystemExit(f"gen_schema: {owner.__name__}.{attr}: unknown type {spec!r}")
        self.visit(spec)
        return spec

    def visit(self, name: str) -> None:
        if name in self.types:
            return
        cls = getattr(self.models, name)
        table: dict[str, Any] = {}
        self.types[name] = table  # registered before recursing: recursive types terminate
        for attr, spec in cls.openapi_types.items():
            table[cls.attribute_map[attr]] = self.ref(spec, cls, attr)


def generate() -> dict[str, Any]:
    import kubernetes
    import kubernetes.client.models as models

    walker = Walker(models)
    kinds = {}
    for (api_version, kind), name in sorted(ROOTS.items()):
        walker.visit(name)
        kinds[f"{api_version}/{kind}"] = name
    types = {name: dict(sorted(table.items())) for name, table in sorted(walker.types.items())}
    return {"generator": f"scripts/gen_schema.py from kubernetes=={kubernetes.__version__}", "kinds": kinds,
            "types": types}


def render(schema: dict[str, Any]) -> str:
    def dump(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True)

    lines = ["{", f'"generator":{dump(schema["generator"])},', f'"kinds":{dump(schema["kinds"])},', '"types":{']
    names = list(schema["types"])
    for i, name in enumerate(names):
        lines.append(f"{dump(name)}:{dump(schema['types'][name])}{',' if i < len(names) - 1 else ''}")
    lines += ["}", "}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "edgek8s" / "registry" / "schema.json"
    parser.add_argument("--output", type=Path, default=default)
    args = parser.parse_args(argv)
    schema = generate()
    text = render(schema)
    json.loads(text)  # the hand-rolled layout must still be valid JSON
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode())} bytes, {len(schema['types'])} types, "
          f"{len(schema['kinds'])} kinds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
