"""Graceful deletion of pods, decided inside ``apply`` (upstream's ``BeforeDelete`` + pod ``CheckGracefulDelete``).

The proposer reads the pod and fills the command's ``grace`` (seconds it grants the kubelet: the
request's ``gracePeriodSeconds``, else ``spec.terminationGracePeriodSeconds``, else 30) and
``deadline`` (its clock + grace). ``apply`` then decides on the state it holds, so every replica
decides the same (pure, no clock):

- a pod that is not bound to a node, or already Succeeded/Failed, goes at once (nobody runs it);
- grace 0 goes at once (``kubectl delete --grace-period=0 --force``, the kubelet's final delete);
- a running pod gets ``deletionTimestamp = deadline`` and ``deletionGracePeriodSeconds = grace``;
- a pod already terminating: a later delete may only shorten the grace (its deadline moves to the
  first request's time + the new grace), never lengthen it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from edgek8s.model.timestamps import format_time, parse_time


@dataclass(frozen=True, slots=True)
class Graceful:
    """Mark the pod terminating with this deadline and grace (nothing else changes)."""

    deletion_timestamp: str
    grace: int


UNCHANGED = "unchanged"  # already terminating with a grace no longer than asked: nothing to write
IMMEDIATE = "immediate"  # delete now (finalizers still hold it, as for any object)


def pod_deletion(pod: dict[str, Any], grace: int, deadline: str) -> Graceful | str:
    """What a delete with ``grace`` (>= 0) and ``deadline`` does to ``pod`` (as stored)."""
    meta = pod.get("metadata") or {}
    phase = (pod.get("status") or {}).get("phase")
    if not (pod.get("spec") or {}).get("nodeName") or phase in ("Succeeded", "Failed"):
        return IMMEDIATE
    current = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and isinstance(current, int):
        if current == 0:
            return UNCHANGED  # finalizers hold an already-deleted pod; nothing left to shorten
        if grace >= current:
            return UNCHANGED
        if grace == 0:
            return IMMEDIATE
        started = parse_time(meta["deletionTimestamp"])
        if started is None:
            return Graceful(deadline, grace)
        try:  # apply never raises: a date out of range falls back to the proposer's deadline
            return Graceful(format_time(started - datetime.timedelta(seconds=current - grace)), grace)
        except (OverflowError, ValueError):
            return Graceful(deadline, grace)
    if meta.get("deletionTimestamp"):
        return UNCHANGED  # marked by a finalizer-held delete: already on its way out
    if grace <= 0:
        return IMMEDIATE
    return Graceful(deadline, grace)
