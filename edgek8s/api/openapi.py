"""OpenAPI v3: upstream's documents for the served kinds, for ``kubectl explain``, apply and validation.

``/openapi/v3`` lists one document per served group-version with a ``?hash=`` URL; the documents are
upstream's (Kubernetes 1.32, Apache-2.0), trimmed to the served kinds by ``scripts/gen_openapi.py`` and committed
gzip-compressed in ``openapi_v3/`` with their hashes in ``openapi_v3/index.json``.

As kube-apiserver does: a request whose ``hash`` matches gets ``Cache-Control: public, immutable`` (kubectl's
disk cache then never asks again), a stale hash is redirected (301) to the current URL, and ``ETag`` /
``If-None-Match`` give 304s. kubectl's ``create``/``apply`` find each kind's PATCH operation with its
``fieldValidation`` parameter there and leave validation to the server (strict, ``registry/schema``).

Memory invariant: documents are never held decoded. Only their compressed bytes are kept (read once, off
the event loop); a client that accepts gzip (kubectl, client-go) gets those bytes as they are, any other
gets them decompressed piece by piece as they are sent.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import time
import zlib
from pathlib import Path

from aiohttp import web

from edgek8s.api.context import json_response
from edgek8s.api.discovery import subresources
from edgek8s.model import errors
from edgek8s.model.resources import BUILTIN_RESOURCES, REVIEW_RESOURCES

DATA_DIR = Path(__file__).with_name("openapi_v3")
_JSON = "application/json"
_YEAR = 365 * 24 * 3600
_CHUNK = 8192
_compressed: dict[str, bytes] = {}


def served_group_versions() -> dict[str, dict[str, set[str]]]:
    """``"api/v1"``-style group-version path -> served plural -> served subresources (``status``, ...)."""
    served: dict[str, dict[str, set[str]]] = {}
    for rtype in BUILTIN_RESOURCES + REVIEW_RESOURCES:
        path = f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"
        served.setdefault(path, {})[rtype.plural] = set(subresources(rtype))
    return dict(sorted(served.items()))


def document_file(gv_path: str) -> str:
    return gv_path.replace("/", "__") + ".json.gz"


@functools.cache
def index() -> dict[str, str]:
    """Group-version path -> hash (upper-case hex SHA-512 of the document's JSON bytes)."""
    loaded: dict[str, str] = json.loads((DATA_DIR / "index.json").read_text())
    return loaded


def _url(gv_path: str, digest: str) -> str:
    return f"/openapi/v3/{gv_path}?hash={digest}"


async def _document(gv_path: str) -> bytes:
    blob = _compressed.get(gv_path)
    if blob is None:
        blob = await asyncio.to_thread((DATA_DIR / document_file(gv_path)).read_bytes)
        _compressed[gv_path] = blob
    return blob


def _not_modified(request: web.Request, etag: str) -> bool:
    return etag in (tag.strip() for tag in request.headers.get("If-None-Match", "").split(","))


async def openapi_v3_root(request: web.Request) -> web.Response:
    return json_response({"paths": {path: {"serverRelativeURL": _url(path, digest)}
                                    for path, digest in index().items()}})


async def openapi_v3_group_version(request: web.Request) -> web.StreamResponse:
    gv_path = request.match_info["tail"].strip("/")
    digest = index().get(gv_path)
    if digest is None:
        raise errors.NotFound(f"no OpenAPI document for {gv_path}")
    wanted = request.query.get("hash")
    if wanted is not None and wanted != digest:
        raise web.HTTPMovedPermanently(_url(gv_path, digest))
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Vary": "Accept"}
    if wanted is not None:
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = email.utils.formatdate(time.time() + _YEAR, usegmt=True)
    if _not_modified(request, etag):
        return web.Response(status=304, headers=headers)
    blob = await _document(gv_path)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=blob, content_type=_JSON, headers=headers)
    # Decompressed in small pieces as they are sent: a whole document (up to 0.7 MB) would be one
    # large short-lived allocation per request, which fragments the heap of a loaded master.
    response = web.StreamResponse(headers={**headers, "Content-Type": _JSON})
    await response.prepare(request)
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    for start in range(0, len(blob), _CHUNK):
        piece = inflate.decompress(blob[start:start + _CHUNK], _CHUNK * 8)
        while piece:
            await response.write(piece)
            piece = inflate.decompress(inflate.unconsumed_tail, _CHUNK * 8)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v3", openapi_v3_root)
    app.router.add_get("/openapi/v3/{tail:.*}", openapi_v3_group_version)
