"""Admission on create: upstream's ServiceAccount plugin for pods (the part that does not mint tokens).

A pod without ``spec.serviceAccountName`` gets ``default`` (the deprecated ``spec.serviceAccount``
is kept equal, as upstream's conversion does), and a pod naming an account that does not exist in its
namespace is refused with upstream's 403: ``pods "p" is forbidden: error looking up service account
ns/x: serviceaccount "x" not found``. A pod without ``imagePullSecrets`` gets its account's, as
upstream's plugin gives them (``kubectl patch serviceaccount default`` with a registry secret is the
documented way to pull private images). An account this replica has not seen yet is looked up
linearizably before a pod is refused, so one created just before the pod is always found.

Deviation: ``default`` is admitted even in the moment before the serviceaccount controller has created it
in a new namespace (upstream refuses then and its controllers retry): ``kubectl create ns x && kubectl
run -n x`` must not fail on a race. No token volume is added (edgek8s issues no service account tokens;
``automountServiceAccountToken`` is accepted and has no effect, docs/kinds.md).
"""

from __future__ import annotations

from typing import Any

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType, by_id, resource_id
from edgek8s.store.raftstore import RaftStore

DEFAULT_SERVICE_ACCOUNT = "default"
PODS = resource_id("", "pods")
SERVICE_ACCOUNTS = by_id(resource_id("", "serviceaccounts"))


async def admit_create(store: RaftStore, rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Mutate and check ``obj`` (already validated) before it is proposed; raises Forbidden."""
    spec = obj.get("spec")
    if rtype.id != PODS or not isinstance(spec, dict):
        return
    account = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT)
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    meta = obj["metadata"]
    namespace = str(meta.get("namespace", ""))
    stored, _rv = store.state.get(SERVICE_ACCOUNTS.id, namespace, account)  # this replica: the common case
    if stored is None and account != DEFAULT_SERVICE_ACCOUNT:
        try:
            stored = await store.get(SERVICE_ACCOUNTS, namespace, account, consistent=True)
        except errors.NotFound:
            raise errors.Forbidden(
                f'pods "{meta.get("name", "")}" is forbidden: error looking up service account '
                f'{namespace}/{account}: serviceaccount "{account}" not found',
                kind="pods", name=str(meta.get("name", "")),
            ) from None
    if stored is not None and not spec.get("imagePullSecrets") and b'"imagePullSecrets"' in stored.raw:
        pull = stored.decode().get("imagePullSecrets")
        names = [s["name"] for s in pull if isinstance(s, dict) and s.get("name")] if isinstance(pull, list) else []
        if names:
            spec["imagePullSecrets"] = [{"name": name} for name in names]
