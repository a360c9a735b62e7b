#!/usr/bin/env python3
"""Generate edgek8s/api/openapi_v3/: upstream's OpenAPI v3 documents, trimmed to the kinds edgek8s serves.

``kubectl explain`` (and client-side apply's patch computation) read the API's ``/openapi/v3`` root and the
per group-version documents it lists. This script takes upstream's documents for Kubernetes 1.32 and keeps,
for every group-version in the resource table (``edgek8s.model.resources``: the built-in kinds and the
reviews; the metrics API is aggregated upstream and has no document here), the paths of the served
resources (collection, item and the subresources edgek8s serves) and every component schema they reach
through ``$ref``. Schemas, descriptions and ``x-kubernetes-*`` extensions are kept verbatim.

Provenance and licence: the documents are upstream's ``api/openapi-spec/v3/*_openapi.json`` of
github.com/kubernetes/kubernetes (Apache License 2.0, Copyright The Kubernetes Authors), which allows
redistributing derived works such as this trimmed copy. kubernetes-sigs/kubectl-validate (Apache-2.0) vendors
the same files per release under ``pkg/openapiclient/builtins/<minor>/``, which is the default source since
the kubernetes repository is too large to mirror here. Only the trimmed, gzip-compressed output is committed.

Output: ``index.json`` (``{"<gv path>": "<ETag hash>"}``, e.g. ``"apis/apps/v1"``; the hash is upstream's,
the upper-case hex SHA-512 of the served JSON bytes) and one ``<gv path with / as __>.json.gz`` per
group-version (gzip with a zero mtime, so a regeneration is byte-identical).

Usage (development time only)::

    python scripts/gen_openapi.py GIT_DIR [--tree PATH] [--output DIR]

GIT_DIR is a git directory (bare or not) read at HEAD; ``--tree`` is the directory holding the documents,
``pkg/openapiclient/builtins/1.32`` (kubectl-validate's layout ``api/v1.json``) by default, or
``api/openapi-spec/v3`` (kubernetes' layout ``api__v1_openapi.json``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgek8s.api.openapi import document_file, served_group_versions

OUTPUT = Path(__file__).resolve().parents[1] / "edgek8s" / "api" / "openapi_v3"
_REF = "#/components/schemas/"


def _read(gitdir: str, tree: str, gv_path: str) -> dict[str, Any]:
    if tree.rstrip("/").endswith("openapi-spec/v3"):
        name = f"{tree}/{gv_path.replace('/', '__')}_openapi.json"
    else:
        name = f"{tree}/{gv_path}.json"
    out = subprocess.run(["git", "--git-dir", gitdir, "show", f"HEAD:{name}"], capture_output=True, check=True)
    document: dict[str, Any] = json.loads(out.stdout)
    return document


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.add(ref[len(_REF):])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def trim(document: dict[str, Any], gv_path: str, resources: dict[str, set[str]]) -> dict[str, Any]:
    """Keep the paths of ``resources`` (plural -> served subresources) and the schemas they reach."""
    namespaced = r"(?:namespaces/\{namespace\}/)?"
    pattern = re.compile(rf"^/{re.escape(gv_path)}/{namespaced}([a-z]+)(?:/\{{name\}}(?:/(\w+))?)?$")
    paths = {}
    for path, item in document["paths"].items():
        match = pattern.match(path)
        if match and match[1] in resources and (match[2] is None or match[2] in resources[match[1]]):
            paths[path] = item
    missing = set(resources) - {pattern.match(p)[1] for p in paths}  # type: ignore[index]
    if missing:
        raise SystemExit(f"{gv_path}: upstream has no paths for {sorted(missing)}")
    schemas = document["components"]["schemas"]
    keep: set[str] = set()
    todo: set[str] = set()
    _refs(paths, todo)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        _refs(schemas[name], todo)
    trimmed = {key: value for key, value in document.items() if key not in ("paths", "components")}
    trimmed["paths"] = paths
    trimmed["components"] = {**{k: v for k, v in document["components"].items() if k != "schemas"},
                             "schemas": {name: schemas[name] for name in sorted(keep)}}
    return trimmed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gitdir")
    parser.add_argument("--tree", default="pkg/openapiclient/builtins/1.32")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for stale in args.output.glob("*.json.gz"):
        stale.unlink()
    index = {}
    for gv_path, resources in served_group_versions().items():
        document = trim(_read(args.gitdir, args.tree, gv_path), gv_path, resources)
        # Upstream serves compact JSON (Go's json.Marshal); its ETag hashes exactly the bytes served.
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        index[gv_path] = hashlib.sha512(body).hexdigest().upper()
        (args.output / document_file(gv_path)).write_bytes(gzip.compress(body, 9, mtime=0))
        print(f"{gv_path}: {len(document['paths'])} paths, {len(document['components']['schemas'])} schemas, "
              f"{len(body)} bytes", file=sys.stderr)
    (args.output / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
