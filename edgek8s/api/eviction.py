"""pods/eviction (policy/v1 Eviction): a pod deletion that respects PodDisruptionBudgets.

``POST .../pods/NAME/eviction`` with an Eviction body, as ``kubectl drain`` sends it (upstream's
``pkg/registry/core/pod/storage/eviction.go``):

1. a pod that is Pending, Succeeded, Failed or already terminating disrupts nothing more: it is
   deleted without looking at budgets;
2. otherwise the budgets covering it are found: more than one is a 500 (unsupported, as upstream);
   none means a plain (graceful) delete;
3. with one budget: a pod that is not Ready while the budget is met is deleted without taking a
   disruption (with a resourceVersion precondition, so a pod that became Ready meanwhile is not);
   else one disruption is taken from the budget's status (a status write with a resourceVersion
   precondition, retried on conflict) before the pod is deleted, or the eviction is refused with
   429 TooManyRequests, which ``kubectl drain`` retries.

The pod's deletion is the ordinary graceful one (``DeleteOptions`` of the Eviction apply). A dry run
(``?dryRun=All`` or ``deleteOptions.dryRun``, ``kubectl drain --dry-run=server``) makes every check and
writes nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgek8s.api.context import json_response, read_json
from edgek8s.api.paths import Target
from edgek8s.api.writes import delete_object, prepare_updated
from edgek8s.model import errors
from edgek8s.model.resources import lookup
from edgek8s.registry.deletion import parse_grace_period
from edgek8s.registry.disruption import VIOLATION, covering_budgets, take_disruption
from edgek8s.registry.strategy import parse_resource_version
from edgek8s.store.raftstore import RaftStore, now_rfc3339

_BUDGETS = lookup("policy", "v1", "poddisruptionbudgets")
_RETRIES = 5
_MANAGER = "kube-apiserver"


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or () if isinstance(c, dict))


def _can_ignore_budgets(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))


async def _read_eviction(request: web.Request, name: str) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise errors.BadRequest("not a Eviction object")
    if (body.get("metadata") or {}).get("name") != name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise errors.BadRequest("deleteOptions must be a JSON object")
    return options


async def evict(request: web.Request, store: RaftStore, target: Target) -> web.Response:
    assert target.name is not None and _BUDGETS is not None
    namespace, name = target.namespace or "", target.name
    options = await _read_eviction(request, name)
    preconditions = options.get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise errors.BadRequest("preconditions must be a JSON object")
    grace = parse_grace_period(options.get("gracePeriodSeconds"))
    dry_run = _dry_run(request, options)
    expect_uid = preconditions.get("uid")
    expect_rv = parse_resource_version(preconditions.get("resourceVersion"), field="preconditions.resourceVersion")

    pod = (await store.get(target.rtype, namespace, name, consistent=True)).decode()
    if not _can_ignore_budgets(pod):
        budgets = [b.decode() for b in (await store.list(_BUDGETS, namespace, consistent=True))[0]]
        covering = covering_budgets(budgets, pod)
        if len(covering) > 1:
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                                             "subresource does not support.", "code": 500}, status=500)
        if covering:
            budget = covering[0]
            status = budget.get("status") or {}
            unready_but_met = (not _is_ready(pod) and int(status.get("desiredHealthy") or 0) > 0
                               and int(status.get("currentHealthy") or 0) >= int(status.get("desiredHealthy") or 0))
            if unready_but_met:
                pinned = expect_rv if expect_rv is not None else int(pod["metadata"]["resourceVersion"])
                if dry_run:
                    return _success()
                try:
                    await _delete(store, target, expect_uid, pinned, grace)
                except errors.Conflict:
                    if expect_rv is not None:
                        raise
                    raise errors.TooManyRequests(VIOLATION, retry_after=10) from None  # it changed: retry
                return _success()
            elif dry_run:
                take_disruption(budget, name, now_rfc3339())  # raises as the real eviction would
            else:
                await _take_disruption(store, namespace, str(budget["metadata"]["name"]), name)
    if not dry_run:
        await _delete(store, target, expect_uid, expect_rv, grace)
    return _success()


def _dry_run(request: web.Request, options: dict[str, Any]) -> bool:
    values = [*request.query.getall("dryRun", []), *(options.get("dryRun") or [])]
    for value in values:
        if value != "All":
            raise errors.BadRequest(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


async def _take_disruption(store: RaftStore, namespace: str, budget_name: str, pod_name: str) -> None:
    """Verify and decrement the budget; a conflicting write (the controller, another eviction) re-reads."""
    assert _BUDGETS is not None
    for _attempt in range(_RETRIES):
        current = await store.get(_BUDGETS, namespace, budget_name, consistent=True)
        updated = take_disruption(current.decode(), pod_name, now_rfc3339())
        obj, expect_rv = prepare_updated(store, _BUDGETS, updated, namespace=namespace, name=budget_name,
                                         subresource="status", manager=_MANAGER)
        try:
            await store.update(_BUDGETS, obj, expect_rv=expect_rv if expect_rv is not None else current.rv,
                               subresource="status")
            return
        except errors.Conflict:
            continue
    raise errors.Timeout(f'couldn\'t update PodDisruptionBudget "{budget_name}" due to conflicts', retry_after=10)


async def _delete(store: RaftStore, target: Target, uid: Any, rv: int | None, grace: int | None) -> None:
    assert target.name is not None
    await delete_object(store, target.rtype, target.namespace or "", target.name,
                        uid=str(uid) if uid else None, resource_version=rv, grace_period=grace)


def _success() -> web.Response:
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         status=201)
