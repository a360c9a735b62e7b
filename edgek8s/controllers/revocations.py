"""Pruning of the node revocation record: entries whose revoked certificates have all expired go.

A leader-only periodic sweep: read ``kube-system/edgek8s-node-revocations``, compute the expired entries
(``model.revocations.expired_revocations``, from the leader's clock), and write the record back without
them, with the resourceVersion read as precondition: a revocation recorded meanwhile makes the write a
Conflict and the next sweep starts over from the new record. The decision is the leader's; what every
replica applies is the resulting update, so apply stays free of wall-clock time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from edgek8s._util.clock import Clock, SystemClock
from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import ClusterClient
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.model.revocations import NAME, NAMESPACE, expired_revocations

logger = logging.getLogger(__name__)
CONFIGMAPS = by_id(resource_id("", "configmaps"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationPruneSettings:
    lifetime: float = 365 * 86400.0  # the cluster's certificate lifetime (--cert-lifetime)
    interval: float = 600.0  # between sweeps


class RevocationPruner:
    name = "revocation-pruner"

    def __init__(self, *, settings: RevocationPruneSettings | None = None, clock: Clock | None = None) -> None:
        self.settings = settings or RevocationPruneSettings()
        self._clock = clock or SystemClock()
        self.pruned = 0

    async def sweep(self, client: ClusterClient) -> list[str]:
        """One pass; returns the entries removed (none if the record changed meanwhile)."""
        try:
            record = await client.get(CONFIGMAPS, NAMESPACE, NAME)
        except errors.NotFound:
            return []
        data = dict(record.get("data") or {})
        expired = expired_revocations(data, now=self._clock.now(), lifetime=self.settings.lifetime)
        if not expired:
            return []
        record["data"] = {node: when for node, when in data.items() if node not in expired}
        try:
            await client.update(CONFIGMAPS, record)  # carries the resourceVersion read: a precondition
        except errors.Conflict as exc:
            if isinstance(exc, errors.Fenced):
                raise
            return []
        self.pruned += len(expired)
        logger.info("pruned the revocations of %s: their certificates have all expired", ", ".join(expired))
        return expired

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        while True:
            await self.sweep(client)
            await asyncio.sleep(self.settings.interval)
