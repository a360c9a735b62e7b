"""Generate edgek8s/model/protobuf_fields.py: the field table the API's protobuf decoder walks.

Provenance: the message definitions come from the upstream Kubernetes ``generated.proto`` files of
github.com/kubernetes/api and github.com/kubernetes/apimachinery (Apache License 2.0, Copyright The
Kubernetes Authors); the JSON facts proto does not carry (pointer or value field, ``omitempty``, inlined
embedded structs) come from the Go struct tags in the ``types.go`` files beside them. Only the derived
table is committed, never the .proto or .go files. Usage (development time only):

    python scripts/gen_protobuf_table.py API_GIT_DIR APIMACHINERY_GIT_DIR > edgek8s/model/protobuf_fields.py

where each argument is a git directory (bare or not) of those repositories; files are read from HEAD.
Only the messages reachable from the kinds edgek8s serves (plus the write bodies of subresources) are kept.
"""

from __future__ import annotations

import re
import subprocess
import sys

# proto package -> (repository index, directory)
PACKAGES = {
    "k8s.io.api.core.v1": (0, "core/v1"),
    "k8s.io.api.apps.v1": (0, "apps/v1"),
    "k8s.io.api.batch.v1": (0, "batch/v1"),
    "k8s.io.api.coordination.v1": (0, "coordination/v1"),
    "k8s.io.api.scheduling.v1": (0, "scheduling/v1"),
    "k8s.io.api.discovery.v1": (0, "discovery/v1"),
    "k8s.io.api.policy.v1": (0, "policy/v1"),
    "k8s.io.api.autoscaling.v1": (0, "autoscaling/v1"),
    "k8s.io.api.rbac.v1": (0, "rbac/v1"),
    "k8s.io.api.networking.v1": (0, "networking/v1"),
    "k8s.io.api.authorization.v1": (0, "authorization/v1"),
    "k8s.io.api.authentication.v1": (0, "authentication/v1"),
    "k8s.io.apimachinery.pkg.apis.meta.v1": (1, "pkg/apis/meta/v1"),
    "k8s.io.apimachinery.pkg.runtime": (1, "pkg/runtime"),
    "k8s.io.apimachinery.pkg.runtime.schema": (1, "pkg/runtime/schema"),
    "k8s.io.apimachinery.pkg.util.intstr": (1, "pkg/util/intstr"),
    "k8s.io.apimachinery.pkg.api.resource": (1, "pkg/api/resource"),
}
ROOTS = [f"k8s.io.api.core.v1.{k}" for k in (
    "Namespace", "Node", "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "Event", "Binding")] + [
    "k8s.io.api.apps.v1.Deployment", "k8s.io.api.apps.v1.ReplicaSet", "k8s.io.api.apps.v1.DaemonSet",
    "k8s.io.api.coordination.v1.Lease", "k8s.io.api.batch.v1.Job", "k8s.io.api.batch.v1.CronJob",
    "k8s.io.api.discovery.v1.EndpointSlice", "k8s.io.api.policy.v1.Eviction", "k8s.io.api.autoscaling.v1.Scale",
    "k8s.io.api.scheduling.v1.PriorityClass",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions", "k8s.io.apimachinery.pkg.runtime.Unknown",
    "k8s.io.api.core.v1.ServiceAccount", "k8s.io.api.authentication.v1.TokenRequest",
    *(f"k8s.io.api.rbac.v1.{k}" for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")),
    *(f"k8s.io.api.networking.v1.{k}" for k in ("Ingress", "IngressClass", "NetworkPolicy")),
    "k8s.io.api.authorization.v1.SelfSubjectAccessReview", "k8s.io.api.authorization.v1.SelfSubjectRulesReview",
    "k8s.io.api.authentication.v1.SelfSubjectReview",
]
# Messages whose JSON form is not their fields: the decoder converts them itself, so their fields are kept
# only as numbers (see edgek8s/api/protobuf.py).
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time", "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration", "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString", "k8s.io.apimachinery.pkg.runtime.RawExtension",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1",
}
REPEATED, POINTER, OMITEMPTY, INLINE = 1, 2, 4, 8

_FIELD = re.compile(r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
_MAP = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")
_GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([*\[\]\w.]+)\s+`([^`]*)`")


def _git(gitdir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", gitdir, *args], capture_output=True, text=True, check=True).stdout


def _resolve(name: str, package: str, known: set[str]) -> str:
    if name.startswith("."):
        return name[1:]
    return f"{package}.{name}" if f"{package}.{name}" in known else name


def parse_protos(repos: list[str]) -> dict[str, list[tuple[str, str, int, bool, str | None]]]:
    """message -> [(proto name, type, number, repeated, map value type)] from every package's .proto."""
    raw: dict[str, list[tuple[str, str, int, bool, str | None]]] = {}
    for package, (repo, directory) in PACKAGES.items():
        current = None
        for line in _git(repos[repo], "show", f"HEAD:{directory}/generated.proto").splitlines():
            if m := re.match(r"^message (\w+) \{", line):
                current = f"{package}.{m.group(1)}"
                raw[current] = []
            elif current and (m := _MAP.match(line)):
                raw[current].append((m.group(3), "map:" + m.group(1), int(m.group(4)), False, m.group(2)))
            elif current and (m := _FIELD.match(line)):
                raw[current].append((m.group(3), m.group(2), int(m.group(4)), m.group(1) == "repeated", None))
            elif line.startswith("}"):
                current = None
    return raw


def parse_go_tags(repos: list[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """(message, number) -> (json name, flags) from the Go struct tags of every package."""
    tags: dict[tuple[str, int], tuple[str, int]] = {}
    for package, (repo, directory) in PACKAGES.items():
        files = [f for f in _git(repos[repo], "ls-tree", "--name-only", f"HEAD:{directory}").split()
                 if f.endswith(".go") and not f.endswith("_test.go")]
        for name in files:
            struct = None
            for line in _git(repos[repo], "show", f"HEAD:{directory}/{name}").splitlines():
                if m := re.match(r"^type (\w+) struct \{", line):
                    struct = f"{package}.{m.group(1)}"
                elif line.startswith("}"):
                    struct = None
                elif struct and (m := _GO_FIELD.match(line)) and 'protobuf:"' in m.group(3):
                    proto = re.search(r'protobuf:"([^"]*)"', m.group(3))
                    json_tag = re.search(r'json:"([^"]*)"', m.group(3))
                    assert proto is not None
                    if proto.group(1).count(",") < 2:
                        continue  # protobuf:"-": not on the wire
                    number = int(proto.group(1).split(",")[1])
                    json_name, *options = (json_tag.group(1) if json_tag else "").split(",")
                    flags = (POINTER if m.group(2).startswith("*") else 0) | (
                        OMITEMPTY if "omitempty" in options else 0) | (INLINE if not json_name else 0)
                    tags[(struct, number)] = (json_name, flags)
    return tags


def build(repos: list[str]) -> dict[str, dict[int, tuple[str, str, int, str]]]:
    raw = parse_protos(repos)
    tags = parse_go_tags(repos)
    known = set(raw)
    table: dict[str, dict[int, tuple[str, str, int, str]]] = {}
    todo = list(ROOTS)
    while todo:
        message = todo.pop()
        if message in table:
            continue
        package = message.rsplit(".", 1)[0]
        fields: dict[int, tuple[str, str, int, str]] = {}
        for proto_name, ptype, number, repeated, map_value in raw[message]:
            json_name, flags = tags.get((message, number), (proto_name, OMITEMPTY))
            flags |= REPEATED if repeated else 0
            ref = ""
            if map_value is not None:
                value = map_value if map_value in _SCALARS else _resolve(map_value, package, known)
                ref, ptype = value, ptype
                if value not in _SCALARS:
                    todo.append(value)
            elif ptype not in _SCALARS:
                ref, ptype = _resolve(ptype, package, known), "message"
                if ref not in known:
                    continue  # a type of a group edgek8s does not serve (alpha fields): skipped on the wire
                todo.append(ref)
            fields[number] = (json_name, ptype, flags, ref)
        table[message] = fields if message not in SPECIAL else {}
    return dict(sorted(table.items()))


_SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "sint32",
            "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"}

HEADER = '''"""Kubernetes protobuf field table: message -> field number -> (JSON name, type, flags, message type).

GENERATED by scripts/gen_protobuf_table.py from the upstream Kubernetes generated.proto files and Go struct
tags (Apache License 2.0, Copyright The Kubernetes Authors) at
  github.com/kubernetes/api           {api}
  github.com/kubernetes/apimachinery  {machinery}
Do not edit by hand: regenerate.

type: a proto scalar, "message" (the fourth item names it) or "map:<key type>" (the fourth item is the value
type). flags: REPEATED 1, POINTER 2 (a Go pointer: present means set, even to zero), OMITEMPTY 4 (a zero
value is left out of JSON), INLINE 8 (an embedded struct whose fields JSON puts in its parent).
Messages with an empty field table are converted by the decoder itself (Time, Quantity, IntOrString...).
"""

from typing import Final

REPEATED: Final = 1
POINTER: Final = 2
OMITEMPTY: Final = 4
INLINE: Final = 8

MESSAGES: Final[dict[str, dict[int, tuple[str, str, int, str]]]] = '''


def main() -> None:
    repos = sys.argv[1:3]
    heads = [_git(r, "rev-parse", "HEAD").strip() for r in repos]
    table = build(repos)
    sys.stdout.write(HEADER.format(api=heads[0], machinery=heads[1]))
    sys.stdout.write(render(table))


def render(table: dict[str, dict[int, tuple[str, str, int, str]]]) -> str:
    """One line per field, short enough for the linter."""
    lines = ["{"]
    for message, fields in table.items():
        lines.append(f"    {message!r}: {{" + ("}," if not fields else ""))
        for number, spec in fields.items():
            line = f"        {number}: {spec!r},"
            if len(line) > 120:
                line = f"        {number}: (\n" + "".join(f"            {item!r},\n" for item in spec) + "        ),"
            lines.append(line)
        if fields:
            lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
