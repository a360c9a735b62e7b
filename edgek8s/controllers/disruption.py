"""Disruption controller: the status of each PodDisruptionBudget (upstream ``pkg/controller/disruption``).

``budget_status`` is pure. For a budget it takes the pods its selector covers in its namespace and:

- ``expectedPods``: with an integer ``minAvailable``, the number of those pods; otherwise (a percentage,
  or ``maxUnavailable``) the scale of the controllers owning them (a Deployment's replicas for pods of
  its ReplicaSets, else the ReplicaSet's); pods with no such controller make the status
  ``SyncFailed`` with nothing allowed, as upstream (it cannot tell how many there should be);
- ``desiredHealthy``: ``minAvailable`` (scaled, rounded up) or ``expectedPods - maxUnavailable``;
- ``currentHealthy``: covered pods that are Ready, not terminating (``deletionTimestamp``), and not
  just evicted (in ``status.disruptedPods`` for less than ``DISRUPTION_TIMEOUT`` while the eviction's
  deletion has not shown yet);
- ``disruptionsAllowed`` = max(0, currentHealthy - desiredHealthy), the ``DisruptionAllowed``
  condition, and ``observedGeneration`` (evictions wait for it to match ``generation``).

A pod whose deletion shows (terminating or gone) leaves ``disruptedPods``; so does an entry older than
the timeout (the eviction's delete never came). Keys are budgets; a pod, ReplicaSet or Deployment
change re-syncs the budgets of its namespace (there are few; a selector index would not pay).
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.informer import Handlers, Informer, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers import pods as p
from edgek8s.controllers.actions import PODS, Plan, Update
from edgek8s.controllers.base import controller_ref
from edgek8s.controllers.runner import PlanLoop
from edgek8s.model.resources import by_id, resource_id
from edgek8s.model.timestamps import format_time, parse_time
from edgek8s.registry.disruption import budget_selector, parse_int_or_percent, scaled, set_allowed_condition

BUDGETS = resource_id("policy", "poddisruptionbudgets")
REPLICA_SETS = resource_id("apps", "replicasets")
DEPLOYMENTS = resource_id("apps", "deployments")
DISRUPTION_TIMEOUT = 120.0  # upstream's DeletionTimeout: an eviction's delete shows well within this

ScaleOf = Callable[[Mapping[str, Any]], tuple[str, int] | None]


def _expected_from_controllers(pods: Sequence[Mapping[str, Any]], scale_of: ScaleOf) -> int | None:
    scales: dict[str, int] = {}
    for pod in pods:
        found = scale_of(pod)
        if found is None:
            return None
        scales[found[0]] = found[1]
    return sum(scales.values())


def budget_status(
    budget: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], scale_of: ScaleOf, now: datetime.datetime
) -> tuple[dict[str, Any], float | None]:
    """The budget's new status, and when to look again (an entry of ``disruptedPods`` expires)."""
    spec, old = budget.get("spec") or {}, budget.get("status") or {}
    covered = [pod for pod in pods if budget_selector(budget).matches(p.meta(pod).get("labels") or {})]
    now_text = format_time(now)
    status: dict[str, Any] = {"observedGeneration": int(p.meta(budget).get("generation") or 1)}
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    parsed_min = parse_int_or_percent(min_available) if min_available is not None else None
    failure = ""
    if parsed_min is not None and not parsed_min[1]:
        expected: int | None = len(covered)
        desired = parsed_min[0]
    else:
        expected = _expected_from_controllers(covered, scale_of)
        if expected is None:
            expected, desired = len(covered), len(covered)
            failure = "found no controllers with a scale for pods selected by this budget"
        elif max_unavailable is not None:
            desired = max(0, expected - scaled(max_unavailable, expected, round_up=True))
        else:
            desired = scaled(min_available if min_available is not None else 1, expected, round_up=True)

    live = {p.name(pod): pod for pod in covered}
    disrupted: dict[str, str] = {}
    requeue: float | None = None
    for name, when in (old.get("disruptedPods") or {}).items():
        pod, at = live.get(name), parse_time(when)
        if pod is None or p.is_deleting(pod) or at is None:
            continue
        left = (at - now).total_seconds() + DISRUPTION_TIMEOUT
        if left <= 0:
            continue
        disrupted[name] = str(when)
        requeue = left if requeue is None else min(requeue, left)
    healthy = sum(1 for pod in covered if p.is_ready(pod) and not p.is_deleting(pod) and p.name(pod) not in disrupted)
    status.update(expectedPods=expected, desiredHealthy=desired, currentHealthy=healthy,
                  disruptionsAllowed=0 if failure else max(0, healthy - desired))
    if disrupted:
        status["disruptedPods"] = disrupted
    set_allowed_condition(status, now_text, reason="SyncFailed" if failure else None, message=failure)
    return status, requeue


class DisruptionController(PlanLoop):
    """Informers: PodDisruptionBudgets (keys), Pods, ReplicaSets and Deployments (for scales)."""

    name = "disruption-controller"
    track_expectations = False  # it writes budget statuses only

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__()
        self._clock = clock or SystemClock()
        self._budgets: Informer | None = None
        self._pods: Informer | None = None
        self._replica_sets: Informer | None = None
        self._deployments: Informer | None = None

    async def setup(self, client: ClusterClient, informers: InformerFactory) -> list[Callable[[], Awaitable[None]]]:
        self._budgets = self.primary = informers.informer(by_id(BUDGETS))
        self._pods = informers.informer(by_id(PODS))
        self._replica_sets = informers.informer(by_id(REPLICA_SETS))
        self._deployments = informers.informer(by_id(DEPLOYMENTS))
        queue, budgets = self.queue, self._budgets

        def namespace_changed(obj: Obj) -> None:
            for budget in budgets.list(p.namespace(obj)):
                queue.add(key_of(budget))

        budgets.add_handlers(Handlers(on_add=lambda b: queue.add(key_of(b)),
                                      on_update=lambda _o, b: queue.add(key_of(b))))
        for informer in (self._pods, self._replica_sets, self._deployments):
            informer.add_handlers(Handlers(on_add=namespace_changed, on_update=lambda _o, n: namespace_changed(n),
                                           on_delete=namespace_changed))
        return []

    def _scale_of(self, pod: Mapping[str, Any]) -> tuple[str, int] | None:
        assert self._replica_sets is not None and self._deployments is not None
        ref = controller_ref(dict(pod))
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self._replica_sets.get(p.namespace(pod), str(ref.get("name")))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        owner = controller_ref(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            deployment = self._deployments.get(p.namespace(rs), str(owner.get("name")))
            if deployment is not None and deployment["metadata"].get("uid") == owner.get("uid"):
                return f"Deployment/{p.name(deployment)}", int(p.spec(deployment).get("replicas", 1))
        return f"ReplicaSet/{p.name(rs)}", int(p.spec(rs).get("replicas", 1))

    def plan_for(self, key: str) -> tuple[Plan, Obj | None] | None:
        assert self._budgets is not None and self._pods is not None
        budget = self._budgets.get_by_key(key)
        if budget is None:
            return None
        status, requeue = budget_status(budget, self._pods.list(p.namespace(budget)), self._scale_of,
                                        self._clock.now())
        plan = Plan()
        if requeue is not None:
            plan.requeue(requeue)
        if status != (budget.get("status") or {}):
            plan.actions.append(Update(resource=BUDGETS, body={**budget, "status": status}, status=True))
        return plan, budget
