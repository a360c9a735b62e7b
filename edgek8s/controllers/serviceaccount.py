"""ServiceAccounts controller: a ``default`` ServiceAccount in every active namespace, as upstream's.

Namespaces added or updated, and ``default`` accounts deleted, enqueue their namespace; a sync creates
the account when the cache has none. AlreadyExists means a stale cache and is success; a terminating
namespace is left alone (the store refuses new content there, and the namespace controller is emptying
it). Pods need not wait for it: admission accepts ``default`` before it exists (api/admission.py).
No token Secret is made (upstream stopped in 1.24, and edgek8s issues no tokens).
"""

from __future__ import annotations

import contextlib

from edgek8s._util.workqueue import WorkQueue
from edgek8s.client.informer import Handlers, InformerFactory, key_of
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.controllers.base import run_workers
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id

NAMESPACES = by_id(resource_id("", "namespaces"))
SERVICE_ACCOUNTS = by_id(resource_id("", "serviceaccounts"))
DEFAULT = "default"


class ServiceAccountsController:
    name = "serviceaccounts-controller"

    def __init__(self, *, workers: int = 1) -> None:
        self._workers = workers

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None:
        queue: WorkQueue[str] = WorkQueue(name="serviceaccounts")
        namespaces = informers.informer(NAMESPACES)
        accounts = informers.informer(SERVICE_ACCOUNTS)

        def account_gone(account: Obj) -> None:
            meta = account.get("metadata") or {}
            if meta.get("name") == DEFAULT:
                queue.add(str(meta.get("namespace", "")))

        namespaces.add_handlers(Handlers(on_add=lambda ns: queue.add(key_of(ns)),
                                         on_update=lambda _old, ns: queue.add(key_of(ns))))
        accounts.add_handlers(Handlers(on_delete=account_gone))
        await namespaces.wait_synced()
        await accounts.wait_synced()

        async def sync(namespace: str) -> None:
            ns = namespaces.get("", namespace)
            if ns is None or ns["metadata"].get("deletionTimestamp") or accounts.get(namespace, DEFAULT) is not None:
                return
            with contextlib.suppress(errors.AlreadyExists):
                await client.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                       "metadata": {"name": DEFAULT, "namespace": namespace}})

        await run_workers(queue, sync, workers=self._workers, name=self.name)
