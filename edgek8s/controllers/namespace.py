"""Namespace controller: empty a terminating namespace, as upstream's namespace deleter.

Deleting a Namespace that has content only marks it Terminating (the store refuses new content in it);
this loop deletes everything in it, resource by resource (pods and ReplicaSets first would not matter:
the garbage collector is not needed for content, every object is deleted directly). The store removes
the Namespace itself when its last object goes. Objects held by finalizers (foreground deletion, other
controllers') are left to whoever owns the finalizer; the loop retries until the namespace is empty.
"""

from __future__ import annotations

import logging

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.informer import Handlers, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, DeleteOptions, Obj
from edgek8s.controllers.base import run_workers
from edgek8s.model import errors
from edgek8s.model.resources import BUILTIN_RESOURCES, by_id, resource_id

logger = logging.getLogger(__name__)

NAMESPACES = by_id(resource_id("", "namespaces"))
RETRY_INTERVAL = 1.0


class NamespaceController:
    name = "namespace-controller"

    def __init__(self, *, workers: int = 2, retry_interval: float = RETRY_INTERVAL) -> None:
        self._workers = workers
        self._retry = retry_interval

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        queue: WorkQueue[str] = WorkQueue(name="namespace")
        namespaces = informers.informer(NAMESPACES)

        def enqueue(ns: Obj) -> None:
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                queue.add(key_of(ns))

        namespaces.add_handlers(Handlers(on_add=enqueue, on_update=lambda _o, ns: enqueue(ns)))
        await namespaces.wait_synced()

        async def sync(name: str) -> None:
            ns = namespaces.get("", name)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                return
            if await self._delete_content(client, name):
                queue.add_after(name, self._retry)  # something is still there (finalizers, new writes)

        await run_workers(queue, sync, workers=self._workers, name=self.name)

    async def _delete_content(self, client: ClusterClient, namespace: str) -> int:
        """Delete every object in ``namespace``; returns how many are still there."""
        remaining = 0
        for rtype in BUILTIN_RESOURCES:
            if not rtype.namespaced:
                continue
            for obj in (await client.list(rtype, namespace)).items:
                remaining += 1
                meta = obj["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                try:
                    await client.delete(rtype, namespace, meta["name"],
                                        options=DeleteOptions(uid=meta["uid"], propagation_policy="Background"))
                except errors.Fenced:
                    raise
                except (errors.NotFound, errors.Conflict):
                    continue
        if remaining:
            logger.info("namespace %s: deleting %d objects", namespace, remaining)
        return remaining
