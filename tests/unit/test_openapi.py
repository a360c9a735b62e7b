"""The committed OpenAPI v3 documents match the resource table, and are served as kube-apiserver serves them.

A kind added to ``edgek8s/model/resources.py`` without rerunning ``scripts/gen_openapi.py`` fails here: its
group-version has no document, or its document has no schema or PATCH operation for it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edgek8s.api import openapi
from edgek8s.api.app import status_errors
from edgek8s.model.resources import BUILTIN_RESOURCES, REVIEW_RESOURCES

REGENERATE = "stale edgek8s/api/openapi_v3: rerun scripts/gen_openapi.py"


def _documents() -> Iterator[tuple[str, bytes]]:
    for gv_path in openapi.served_group_versions():
        path = openapi.DATA_DIR / openapi.document_file(gv_path)
        assert path.exists(), f"{gv_path}: no document; {REGENERATE}"
        yield gv_path, gzip.decompress(path.read_bytes())


def test_index_lists_exactly_the_served_group_versions_with_their_hashes() -> None:
    index = openapi.index()
    assert sorted(index) == sorted(openapi.served_group_versions()), REGENERATE
    files = {p.name for p in openapi.DATA_DIR.glob("*.json.gz")}
    assert files == {openapi.document_file(gv) for gv in index}, REGENERATE
    for gv_path, body in _documents():
        assert index[gv_path] == hashlib.sha512(body).hexdigest().upper(), gv_path


def test_every_served_kind_has_its_upstream_schema_and_patch_operation() -> None:
    documents = {gv: json.loads(body) for gv, body in _documents()}
    for rtype in BUILTIN_RESOURCES + REVIEW_RESOURCES:
        gv_path = f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"
        doc = documents[gv_path]
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        schemas = [schema for schema in doc["components"]["schemas"].values()
                   if gvk in schema.get("x-kubernetes-group-version-kind", [])]
        assert len(schemas) == 1, f"{rtype.kind}: no schema in {gv_path}; {REGENERATE}"
        assert schemas[0]["description"], rtype.kind
        assert {"apiVersion", "kind", "metadata"} <= set(schemas[0]["properties"]), rtype.kind
        if "patch" not in rtype.verbs:
            continue
        # kubectl create/apply leave validation to the server only if this operation takes fieldValidation.
        params = [{p["name"] for p in item["patch"].get("parameters", []) + item.get("parameters", [])}
                  for item in doc["paths"].values()
                  if "patch" in item and item["patch"].get("x-kubernetes-group-version-kind") == gvk]
        assert params, f"{rtype.kind}: no PATCH operation; {REGENERATE}"
        assert all("fieldValidation" in names for names in params), rtype.kind


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"].removeprefix("#/components/schemas/")
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves_and_every_schema_is_reachable() -> None:
    for gv_path, body in _documents():
        doc = json.loads(body)
        schemas = doc["components"]["schemas"]
        assert set(_refs(doc)) <= set(schemas), gv_path
        reachable = set(_refs(doc["paths"]))
        todo = list(reachable)
        while todo:
            for ref in _refs(schemas[todo.pop()]):
                if ref not in reachable:
                    reachable.add(ref)
                    todo.append(ref)
        assert reachable == set(schemas), f"{gv_path}: unreachable schemas kept"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[status_errors])
    openapi.add_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_root_lists_hash_urls_and_documents_are_immutable_under_their_hash(
        client: TestClient[web.Request, web.Application]) -> None:
    root = await (await client.get("/openapi/v3")).json()
    url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url == f"/openapi/v3/apis/apps/v1?hash={openapi.index()['apis/apps/v1']}"

    gzipped = await client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert gzipped.headers["Cache-Control"] == "public, immutable"
    assert "Expires" in gzipped.headers
    body = gzip.decompress(await gzipped.read())
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == body
    assert json.loads(body)["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentStrategy"]["description"]

    unhashed = await client.get("/openapi/v3/apis/apps/v1")
    assert unhashed.status == 200 and "Cache-Control" not in unhashed.headers
    cached = await client.get(url, headers={"If-None-Match": gzipped.headers["ETag"]})
    assert cached.status == 304 and not await cached.read()

    stale = await client.get("/openapi/v3/apis/apps/v1?hash=0BAD", allow_redirects=False)
    assert stale.status == 301 and stale.headers["Location"] == url
    missing = await client.get("/openapi/v3/apis/nosuch.example.com/v1")
    assert missing.status == 404 and (await missing.json())["reason"] == "NotFound"
