"""ClusterClient: how the scheduler, the controllers and the kubelet talk to the cluster.

Two implementations: ``edgek8s.client.rest.RestClient`` (HTTP, for the kubelet and out-of-process use)
and ``edgek8s.api.inprocess.InProcessClient`` (masters: the same registry code path as the HTTP
handlers, without HTTP, carrying the leader's fencing epoch). Code written against this Protocol runs
unchanged on either.

Objects are plain JSON dicts (``Obj``). What a client returns belongs to the caller; what an informer's
cache holds does not (see ``informer``). Errors are ``edgek8s.model.errors.StatusError``s: NotFound,
Conflict (``Fenced`` when a newer leader has claimed), AlreadyExists, Gone (410 on a watch from a
resourceVersion older than history), ``ServiceUnavailable``/``Timeout`` when a write's outcome is
unknown: writes are never retried by a client, the caller decides (level-triggered loops simply
resync).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ObjectList:
    items: list[Obj]
    resource_version: int


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One watch event: ADDED, MODIFIED, DELETED (the object as last stored) or BOOKMARK."""

    type: str
    obj: Obj

    @property
    def resource_version(self) -> int:
        return int((self.obj.get("metadata") or {}).get("resourceVersion") or 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteOptions:
    uid: str | None = None  # precondition: delete only this incarnation of the name
    resource_version: int | None = None  # precondition
    propagation_policy: str | None = None  # Background (default) | Foreground | Orphan
    grace_period_seconds: int | None = None  # pods: None = the pod's own; 0 = at once (force)


@dataclass(frozen=True, slots=True)
class Binding:
    namespace: str
    name: str
    node: str
    uid: str | None = None  # precondition: bind only this incarnation of the name


@runtime_checkable
class BatchBinder(Protocol):
    """Optional capability (the in-process client has it): many bindings in one write."""

    async def bind_many(self, bindings: Sequence[Binding]) -> list[errors.StatusError | None]:
        """Per binding: None (the pod is on that node now) or the error ``bind`` would have raised
        (Conflict, NotFound). Raises for the whole batch (Fenced, Unavailable, Timeout)."""
        ...


class ClusterClient(Protocol):
    async def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        """Linearizable read of one object; NotFound if absent."""
        ...

    async def list(
        self, rtype: ResourceType, namespace: str | None = None, *, label_selector: str = "",
        field_selector: str = "", consistent: bool = True,
    ) -> ObjectList:
        """Linearizable list (``namespace`` None: all namespaces) and its resourceVersion; with
        ``consistent=False``, the serving replica's state as it is (resourceVersion "0": no Raft barrier,
        so no journal write, for periodic sweeps that tolerate a slightly stale view)."""
        ...

    def watch(
        self, rtype: ResourceType, namespace: str | None = None, *, resource_version: int,
        label_selector: str = "", field_selector: str = "", prefilter: Callable[[bytes], bool] | None = None,
    ) -> AsyncIterator[ObjectEvent]:
        """Every change after ``resource_version``, in order; raises Gone when it is older than history.

        The iterator ends (or raises) when the stream ends; the caller watches again from the last
        resourceVersion it saw, or lists again after Gone.

        ``prefilter``, a hint: a test on an object's compact JSON whose False is exact (the caller
        ignores such an object). A client may then leave out ADDED and MODIFIED events whose object and
        previous state both fail it (never a DELETED); the caller's last resourceVersion seen may then
        be older than the stream's, and a watch again from it replays them (ignored again). The
        in-process client does, before decoding; the HTTP client ignores it."""
        ...

    async def create(self, rtype: ResourceType, obj: Obj) -> Obj: ...

    async def update(self, rtype: ResourceType, obj: Obj) -> Obj:
        """Replace; ``metadata.resourceVersion`` (if set) is a precondition (Conflict when stale)."""
        ...

    async def update_status(self, rtype: ResourceType, obj: Obj) -> Obj:
        """Replace only ``status``; ``metadata.resourceVersion`` (if set) is a precondition."""
        ...

    async def patch(self, rtype: ResourceType, namespace: str, name: str, patch: Obj, *,
                    subresource: str | None = None) -> Obj:
        """JSON merge patch (RFC 7386), re-applied on conflicts unless it names a resourceVersion."""
        ...

    async def delete(
        self, rtype: ResourceType, namespace: str, name: str, *, options: DeleteOptions | None = None
    ) -> Obj | None:
        """The object if it still exists (finalizers pending), else None."""
        ...

    async def bind(self, namespace: str, name: str, *, node: str, uid: str | None = None) -> None:
        """pods/binding: Conflict when the pod is already bound (someone else won)."""
        ...
