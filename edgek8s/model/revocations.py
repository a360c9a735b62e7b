"""The node revocation record: which entries still matter. Pure.

``kube-system/edgek8s-node-revocations`` (a ConfigMap) maps a node name to the RFC 3339 time its Node
was deleted; every certificate of that node issued until then is refused (api/credentials.py). Such a
certificate expires at the latest ``lifetime`` after that time, and authentication refuses expired
certificates anyway, so once ``lifetime`` plus a margin for clock skew has passed the entry protects
nothing and may go. Pruning is an ordinary replicated update of the record (with its resourceVersion as
precondition) proposed by the leader, never a wall-clock decision inside Raft's apply.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from edgek8s.model.timestamps import parse_time

NAMESPACE, NAME = "kube-system", "edgek8s-node-revocations"
SKEW_MARGIN = 600.0  # seconds: twice the signers' backdate, for masters whose clocks differ


def revocation_times(data: Mapping[str, object]) -> dict[str, float]:
    """Node name -> unix time of its revocation (unparsable entries are skipped: they revoke nothing)."""
    times = {}
    for node, when in data.items():
        moment = parse_time(when)
        if moment is not None:
            times[str(node)] = moment.timestamp()
    return times


def expired_revocations(data: Mapping[str, object], *, now: datetime.datetime, lifetime: float) -> list[str]:
    """Entries every certificate they revoke has expired by ``now`` (certificates live ``lifetime`` s)."""
    horizon = now.timestamp() - lifetime - SKEW_MARGIN
    return sorted(node for node, revoked_at in revocation_times(data).items() if revoked_at < horizon)
