"""How long the kubelet lets a deleted pod's containers stop (SIGTERM, then SIGKILL when it runs out).

Graceful deletion (``store.graceful``): the API marks the pod with ``deletionTimestamp`` (the deadline)
and ``deletionGracePeriodSeconds``; the kubelet stops the containers within what is left of that grace,
then issues the final delete (grace 0, uid precondition), which removes the pod from the API.

A pod that vanished from the API without that (``kubectl delete --force --grace-period=0``, the
controllers' force delete of a lost node's pods, a delete while this agent was away) gets a short
grace, as upstream's kubelet gives force-deleted pods its minimum.
"""

from __future__ import annotations

import datetime
from typing import Any

from edgek8s.model.timestamps import parse_time

FORCED_GRACE_S = 2.0
MIN_GRACE_S = 1.0  # clocks of master and worker differ a little: never SIGKILL at once for that


def is_terminating(pod: dict[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def remaining_grace(pod: dict[str, Any], now: datetime.datetime | None = None) -> float:
    """Seconds the containers of terminating ``pod`` may still take to stop."""
    meta = pod.get("metadata") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if not isinstance(grace, int) or grace <= 0:
        return FORCED_GRACE_S
    deadline = parse_time(meta.get("deletionTimestamp"))
    if deadline is None:
        return float(grace)
    left = (deadline - (now or datetime.datetime.now(datetime.UTC))).total_seconds()
    return max(min(float(grace), left), min(float(grace), MIN_GRACE_S))


def forced_grace(pod: dict[str, Any] | None) -> float:
    """The grace for a pod gone from the API while it still runs here."""
    if pod is not None and is_terminating(pod):
        return min(remaining_grace(pod), FORCED_GRACE_S)
    return FORCED_GRACE_S

