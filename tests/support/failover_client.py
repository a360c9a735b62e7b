"""FailoverClient: a ClusterClient over every master, moving to the next one when a master is unreachable.

For test drivers (hollow nodes) that must keep working while masters are killed or frozen: a transport
failure (connection refused, timeout) makes the next call go to the next master. Writes are not
retried here (their outcome is unknown); the level-triggered callers simply try again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from edgek8s.client.interface import DeleteOptions, Obj, ObjectEvent, ObjectList
from edgek8s.client.rest import RestClusterClient, TransportError
from edgek8s.model.resources import ResourceType

T = TypeVar("T")


class FailoverClient:
    def __init__(self, clients: list[RestClusterClient]) -> None:
        self._clients = clients
        self._current = 0

    def _rotate(self) -> None:
        self._current = (self._current + 1) % len(self._clients)

    async def _call(self, call: Callable[[RestClusterClient], Awaitable[T]], *, retry: bool) -> T:
        for _attempt in range(len(self._clients) if retry else 1):
            client = self._clients[self._current]
            try:
                return await call(client)
            except TransportError:
                self._rotate()
                if not retry:
                    raise
        return await call(self._clients[self._current])

    async def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        return await self._call(lambda c: c.get(rtype, namespace, name), retry=True)

    async def list(self, rtype: ResourceType, namespace: str | None = None, *, label_selector: str = "",
                   field_selector: str = "", consistent: bool = True) -> ObjectList:
        return await self._call(lambda c: c.list(rtype, namespace, label_selector=label_selector,
                                                 field_selector=field_selector, consistent=consistent), retry=True)

    async def watch(self, rtype: ResourceType, namespace: str | None = None, *, resource_version: int,
                    label_selector: str = "", field_selector: str = "",
                    prefilter: Callable[[bytes], bool] | None = None) -> AsyncIterator[ObjectEvent]:
        client = self._clients[self._current]
        try:
            async for event in client.watch(rtype, namespace, resource_version=resource_version,
                                            label_selector=label_selector, field_selector=field_selector,
                                            prefilter=prefilter):
                yield event
        except TransportError:
            self._rotate()
            raise

    async def create(self, rtype: ResourceType, obj: Obj) -> Obj:
        return await self._call(lambda c: c.create(rtype, obj), retry=False)

    async def update(self, rtype: ResourceType, obj: Obj) -> Obj:
        return await self._call(lambda c: c.update(rtype, obj), retry=False)

    async def update_status(self, rtype: ResourceType, obj: Obj) -> Obj:
        return await self._call(lambda c: c.update_status(rtype, obj), retry=False)

    async def patch(self, rtype: ResourceType, namespace: str, name: str, patch: Obj, *,
                    subresource: str | None = None) -> Obj:
        return await self._call(lambda c: c.patch(rtype, namespace, name, patch, subresource=subresource),
                                retry=False)

    async def delete(self, rtype: ResourceType, namespace: str, name: str, *,
                     options: DeleteOptions | None = None) -> Obj | None:
        return await self._call(lambda c: c.delete(rtype, namespace, name, options=options), retry=False)

    async def bind(self, namespace: str, name: str, *, node: str, uid: str | None = None) -> None:
        await self._call(lambda c: c.bind(namespace, name, node=node, uid=uid), retry=False)


