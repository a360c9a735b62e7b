"""ConfigMaps and Secrets for pods, from the API when it answers and from local state when it does not.

Every object read from the API is saved locally (``LocalState``), so a pod that needs it can still be
(re)started by an agent restarted while every master is unreachable. Reads are cached for ``ttl``
seconds: a pod's sync reads each object it uses once, not once per container.
"""

from __future__ import annotations

import time
from typing import Any

from edgek8s.client.interface import ClusterClient
from edgek8s.kubelet.local_state import LocalState
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

TYPES = {kind: by_id(resource_id("", kind)) for kind in ("configmaps", "secrets")}


class ObjectSource:
    def __init__(self, api: ClusterClient, state: LocalState, *, ttl: float = 5.0) -> None:
        self._api = api
        self._state = state
        self._ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None if the API says it does not exist (or it is unknown while offline)."""
        key = (kind, namespace, name)
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        obj: dict[str, Any] | None
        try:
            obj = await self._api.get(TYPES[kind], namespace, name)
        except errors.NotFound:
            obj = None
            await self._state.delete(kind, namespace, name)
        except (errors.ServiceUnavailable, errors.Timeout):
            return await self._state.load(kind, namespace, name)  # masters unreachable: the last known copy
        else:
            if obj is not None:
                await self._state.save(kind, obj)
        self._cache[key] = (time.monotonic(), obj)
        return obj

    def invalidate(self, kind: str, namespace: str, name: str) -> None:
        self._cache.pop((kind, namespace, name), None)
