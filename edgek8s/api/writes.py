"""The write path shared by the HTTP handlers and the in-process client.

Both go through the same steps, so a controller in the server writes exactly what the same request
over HTTP would: the registry strategy (identity checks, defaulting, validation), the field manager
(managedFields), then one store command. Nothing here knows about HTTP; request parsing (query
parameters, fieldValidation, bodies) stays in ``resources``/``patching``.

``fence`` is the leader epoch of a leader-only writer (controllers, scheduler); ``apply`` rejects the
write with ``Fenced`` when a newer leader has claimed. HTTP requests carry none.
"""

from __future__ import annotations

import copy
import ipaddress
import secrets
from collections.abc import Callable
from typing import Any

from edgek8s.api import priority
from edgek8s.api.admission import admit_create
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.registry import fieldmanager
from edgek8s.registry.deletion import deletion_grace
from edgek8s.registry.patch import PatchError, apply_patch
from edgek8s.registry.strategy import prepare_create, prepare_update
from edgek8s.store.raftstore import RaftStore, now_rfc3339
from edgek8s.store.state import StoredObject

PATCH_RETRIES = 5
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")  # upstream's default service range


def patch_error(exc: PatchError) -> errors.StatusError:
    code = getattr(exc, "code", 400)
    if code == 415:
        return errors.UnsupportedMediaType(str(exc))
    if code == 422:
        return errors.Invalid(str(exc))
    return errors.BadRequest(str(exc))


def prepare_created(rtype: ResourceType, body: Any, *, namespace: str, manager: str) -> dict[str, Any]:
    """A create body as it will be proposed: validated, defaulted, with managedFields."""
    obj = prepare_create(rtype, body, namespace=namespace)
    return fieldmanager.record_update(None, obj, manager=manager, kind=rtype.kind, api_version=rtype.api_version,
                                      now=now_rfc3339())


async def store_created(
    store: RaftStore, rtype: ResourceType, obj: dict[str, Any], *, fence: int | None = None
) -> StoredObject:
    """Admit and store a prepared create (a Service gets its cluster IP here)."""
    await admit_create(store, rtype, obj)
    priority.admit(store, rtype.id, obj, create=True)
    if rtype.plural == "services":
        return await _create_service(store, rtype, obj, fence)
    return await store.create(rtype, obj, fence=fence)


def body_uid(body: Any) -> str | None:
    """The uid an update body names (``metadata.uid``): the object the writer meant, a precondition."""
    uid = ((body.get("metadata") if isinstance(body, dict) else None) or {}).get("uid")
    return uid if isinstance(uid, str) and uid else None


def prepare_updated(
    store: RaftStore, rtype: ResourceType, body: Any, *, namespace: str, name: str, subresource: str | None,
    manager: str,
) -> tuple[dict[str, Any], int | None]:
    """An update body as it will be proposed, and its resourceVersion precondition."""
    current, _rv = store.state.get(rtype.id, namespace, name)
    obj, expect_rv = prepare_update(rtype, body, namespace=namespace, name=name, subresource=subresource,
                                    old=None if current is None else current.decode)
    priority.admit(store, rtype.id, obj, create=False)
    obj = fieldmanager.record_update(
        None if current is None else current.decode(), obj, manager=manager, kind=rtype.kind,
        api_version=rtype.api_version, now=now_rfc3339(), subresource=subresource or "",
    )
    return obj, expect_rv


async def patch_object(
    store: RaftStore,
    rtype: ResourceType,
    namespace: str,
    name: str,
    raw: bytes,
    content_type: str,
    *,
    manager: str,
    subresource: str | None,
    pinned: bool,
    check: Callable[[StoredObject, dict[str, Any]], None] | None = None,
    fence: int | None = None,
) -> StoredObject:
    """Apply a patch to the object read linearizably and write it back with its resourceVersion; on a
    Conflict re-apply to the new version (GuaranteedUpdate), unless the patch ``pinned`` a version."""
    for _attempt in range(PATCH_RETRIES):
        current = await store.get(rtype, namespace, name, consistent=True)
        try:
            patched = apply_patch(current.decode(), raw, content_type, kind=rtype.kind, api_version=rtype.api_version)
        except PatchError as exc:
            raise patch_error(exc) from None
        if check is not None:
            check(current, patched)
        if not pinned:
            patched.setdefault("metadata", {})["resourceVersion"] = str(current.rv)
        patched = fieldmanager.record_update(
            current.decode(), patched, manager=manager, kind=rtype.kind, api_version=rtype.api_version,
            now=now_rfc3339(), subresource=subresource or "",
        )
        obj, expect_rv = prepare_update(rtype, patched, namespace=namespace, name=name, subresource=subresource,
                                        old=current.decode)
        priority.admit(store, rtype.id, obj, create=False)
        try:
            return await store.update(rtype, obj, expect_rv=expect_rv, subresource=subresource, fence=fence)
        except errors.Fenced:
            raise
        except errors.Conflict:
            if pinned:
                raise
            continue
    raise errors.Conflict(f'Operation cannot be fulfilled on {rtype.plural} "{name}": '
                          "the object kept changing while the patch was applied; try again")


async def delete_object(
    store: RaftStore,
    rtype: ResourceType,
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    resource_version: int | None = None,
    propagation: str | None = None,
    grace_period: int | None = None,
    fence: int | None = None,
) -> StoredObject | None:
    """One delete command; a pod's grace (its spec's unless ``grace_period`` is given) is decided here,
    on this replica's copy, and ``apply`` checks it against the pod as it is then (``store.graceful``)."""
    current, _rv = store.state.get(rtype.id, namespace, name)
    grace = deletion_grace(rtype, None if current is None else current.decode(), grace_period)
    return await store.delete(rtype, namespace, name, expect_uid=uid, expect_rv=resource_version,
                              propagation=propagation, grace=grace, fence=fence)


def check_propagation_policy(policy: Any) -> str | None:
    if policy in (None, ""):
        return None
    if policy not in PROPAGATION_POLICIES:
        raise errors.BadRequest(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
        )
    return str(policy)


async def _create_service(
    store: RaftStore, rtype: ResourceType, obj: dict[str, Any], fence: int | None
) -> StoredObject:
    """Allocate a cluster IP unless one is given (or the Service is headless / ExternalName)."""
    spec = obj.setdefault("spec", {})
    if spec.get("type") == "ExternalName" or spec.get("clusterIP"):
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        return await store.create(rtype, obj, fence=fence)
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    for _attempt in range(8):
        candidate = allocate_cluster_ip()
        spec["clusterIP"], spec["clusterIPs"] = candidate, [candidate]
        try:
            return await store.create(rtype, copy.deepcopy(obj), fence=fence)
        except errors.Invalid as exc:
            if "already allocated" not in exc.message:
                raise
    raise errors.ServiceUnavailable("could not allocate a cluster IP; try again", retry_after=1)


def allocate_cluster_ip() -> str:
    # .0 is the network, .1 the API server's own `kubernetes` Service (upstream reserves both).
    offset = secrets.randbelow(SERVICE_CIDR.num_addresses - 3) + 2
    return str(SERVICE_CIDR.network_address + offset)
