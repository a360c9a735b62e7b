"""Informer: list + watch + cache + indexes + handlers, as client-go's shared informer.

``Informer.run`` lists, then watches from the list's resourceVersion; on a watch that ends it watches
again from the last resourceVersion seen; on Gone (410) or a failure it lists again (after a backoff
with jitter) and turns the difference with its cache into add/update/delete calls, so handlers never
miss a change of state. Every ``resync`` seconds each cached object is handed to ``on_update(obj, obj)``
(level-triggered controllers re-check everything periodically).

Handlers run on the event loop inside the informer's task and must be cheap: enqueue keys, nothing else.

NEVER MUTATE CACHED OBJECTS: ``get``/``list``/``by_index`` and handlers hand out the cached dicts
themselves (copying every object on every read would cost more than the rest of a controller). They
are read-only by convention: copy (``registry.patch.clone_json``) before changing, or build a new
object.

``InformerFactory`` shares one informer per resource among all loops of a master, so each resource is
listed and watched once.

Memory: a metadata informer (``InformerFactory.metadata_informer``, the garbage collector's view of
every resource) keeps each object as its compact JSON (``compact=True``) and decodes it on read: a
leader with 10,000 ConfigMaps held ~20 MB of small dicts in these caches, ~3.5 MB as bytes. Reads then
hand out a fresh dict each time (still read-only by convention); a resync hands the same decoded object
as both ``old`` and ``new``, as the plain cache does.

A ``keep`` filter narrows the cache further: only objects it accepts are cached, listed and handed to
``on_add``/``on_update``; an object that stops being accepted is dropped with ``on_update(old, new)``;
``on_delete`` is called for every deleted object the watch reports, cached or not. A deletion of a
never-cached object that happens while the watch is down (relist) is not reported: consumers that
care re-check from the objects they do cache (the garbage collector's dependents check their owners
at every resync). The garbage collector keeps only objects with owners, finalizers or a deletion
timestamp: with 10,000 unowned ConfigMaps its caches hold nothing (they held ~3 MB as compact JSON).

A ``prefilter`` goes with ``keep``: a test on an object's compact JSON whose False means ``keep`` rejects
the object (exact; True means maybe). It is handed to the client's watch, which may leave out the
events of objects that fail it before decoding them (the in-process client does: on a leader taking
thousands of creates per second, the garbage collector decoded every created object only to drop
it). Only events the informer would have ignored are left out: an ADDED or MODIFIED whose object and
previous state both fail the test, so neither is or was cached; DELETED events always come. The
informer's ``resource_version`` then stays at the last event it got: a watch again from there replays
the left-out events (ignored again), or is Gone and lists again, as after any other watch end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from edgek8s._util.workqueue import ExponentialBackoff
from edgek8s.client.interface import ClusterClient, Obj
from edgek8s.model import errors, jsoncodec
from edgek8s.model.resources import ResourceType

logger = logging.getLogger(__name__)

IndexFunc = Callable[[Obj], Iterable[str]]
Objs = list[Obj]  # aliases: Informer.list shadows the builtin inside the class
Keys = list[str]
NAMESPACE_INDEX = "namespace"


def key_of(obj: Obj) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), as client-go's MetaNamespaceKeyFunc."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else str(name)


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name


def resource_version(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("resourceVersion") or 0)


METADATA_VIEW = ("name", "namespace", "uid", "resourceVersion", "ownerReferences", "finalizers",
                 "deletionTimestamp", "deletionGracePeriodSeconds")


def metadata_only(obj: Obj) -> Obj:
    """What a metadata informer keeps: apiVersion, kind, and of the metadata only the identity and
    ownership fields in ``METADATA_VIEW`` (upstream's PartialObjectMetadata has all of it; managedFields,
    annotations, labels and timestamps were most of it, and the ownership graph needs none)."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {k: meta[k] for k in METADATA_VIEW if k in meta}}


def without_managed_fields(obj: Obj) -> Obj:
    """``obj`` without ``metadata.managedFields`` (for a consumer that never writes the whole object back,
    as client-go's informer transforms that strip them): about half of a pod's decoded size is there.
    Changes ``obj`` itself, which the informer has just decoded and nobody else holds."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def index_by_namespace(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def index_by_owner_uid(obj: Obj) -> list[str]:
    """Uids of every owner in ``metadata.ownerReferences``."""
    return [str(ref.get("uid")) for ref in (obj.get("metadata") or {}).get("ownerReferences") or () if ref.get("uid")]


def index_by_controller_uid(obj: Obj) -> list[str]:
    """The uid of the controlling owner (``controller: true``), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("uid"):
            return [str(ref["uid"])]
    return []


def index_orphans_by_namespace(obj: Obj) -> list[str]:
    """Objects without a controlling owner, by namespace (what a controller may adopt)."""
    return [] if index_by_controller_uid(obj) else index_by_namespace(obj)


def index_by_node_name(obj: Obj) -> list[str]:
    """Pods by ``spec.nodeName`` (unscheduled pods under "")."""
    return [str((obj.get("spec") or {}).get("nodeName") or "")]


@dataclass(frozen=True, slots=True)
class Handlers:
    """Callbacks of one consumer; each receives cached objects (read-only)."""

    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj], None] | None = None


class Informer:
    def __init__(
        self,
        client: ClusterClient,
        rtype: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        resync: float = 300.0,
        backoff: ExponentialBackoff[str] | None = None,
        transform: Callable[[Obj], Obj] | None = None,
        compact: bool = False,
        keep: Callable[[Obj], bool] | None = None,
        prefilter: Callable[[bytes], bool] | None = None,
    ) -> None:
        if prefilter is not None and keep is None:
            raise ValueError("a prefilter narrows a keep filter: it needs one")
        self.rtype = rtype
        self._transform = transform
        self._compact = compact
        self._keep = keep
        self._prefilter = prefilter
        self._client = client
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._resync = resync
        self._backoff = backoff or ExponentialBackoff(base=0.1, cap=10.0, jitter=0.2)
        self._cache: dict[str, Obj | bytes] = {}  # bytes (compact JSON) when ``compact``
        # A compact informer is the garbage collector's: it never lists by namespace, and the index
        # would cost a set entry per object.
        self._indexers: dict[str, IndexFunc] = {} if compact else {NAMESPACE_INDEX: index_by_namespace}
        self._indexes: dict[str, dict[str, set[str]]] = {} if compact else {NAMESPACE_INDEX: {}}
        self._handlers: list[Handlers] = []
        self._synced = asyncio.Event()
        self.resource_version = 0

    # --- consumers -----------------------------------------------------------------------------------

    @staticmethod
    def _load(value: Obj | bytes) -> Obj:
        if isinstance(value, bytes):
            obj: Obj = jsoncodec.loads(value)
            return obj
        return value

    def _cached(self) -> Objs:
        return [self._load(value) for value in self._cache.values()]

    def add_handlers(self, handlers: Handlers) -> None:
        """Register callbacks; objects already cached are replayed to ``on_add`` at once."""
        self._handlers.append(handlers)
        if handlers.on_add is not None:
            for obj in self._cached():
                handlers.on_add(obj)

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        if name in self._indexers:
            return
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, cached in self._cache.items():
            for value in func(self._load(cached)):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.get_by_key(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        cached = self._cache.get(key)
        return None if cached is None else self._load(cached)

    def list(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return self._cached()
        if NAMESPACE_INDEX not in self._indexes:
            return [obj for obj in self._cached() if index_by_namespace(obj) == [namespace]]
        return self.by_index(NAMESPACE_INDEX, namespace)

    def keys(self) -> Keys:
        return list(self._cache)

    def by_index(self, name: str, value: str) -> Objs:
        keys = self._indexes[name].get(value, ())
        return [self._load(self._cache[key]) for key in keys]

    def __len__(self) -> int:
        return len(self._cache)

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch (and resync) until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._resync_periodically(), name=f"resync-{self.rtype.plural}")
            await self._list_and_watch()

    async def _list_and_watch(self) -> None:
        while True:
            try:
                await self._list()
                self._backoff.forget("list")
                await self._watch()
            except errors.Gone as exc:
                logger.info("%s watch expired (%s); listing again", self.rtype.plural, exc.message)
            except Exception as exc:  # transport, unavailable leader, a handler bug: list again later
                delay = self._backoff.when("list")
                logger.warning("%s informer failed: %s: %s; listing again in %.2fs", self.rtype.plural,
                               type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    async def _resync_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._resync)
            if self.has_synced:
                try:
                    self._resync_all()
                except Exception:  # a handler's bug: logged, and the next resync tries again
                    logger.exception("%s informer: a handler failed during resync", self.rtype.plural)

    async def _list(self) -> None:
        listed = await self._client.list(self.rtype, self._namespace, label_selector=self._label_selector,
                                         field_selector=self._field_selector)
        items = listed.items if self._transform is None else [self._transform(obj) for obj in listed.items]
        fresh = {key_of(obj): obj for obj in items}
        for key in [k for k in self._cache if k not in fresh]:
            self._remove(key)
        for key, obj in fresh.items():
            self._upsert(key, obj)
        self.resource_version = listed.resource_version
        self._synced.set()

    async def _watch(self) -> None:
        """Watch from the last resourceVersion seen, again and again while streams end cleanly."""
        while True:
            stream = self._client.watch(self.rtype, self._namespace, resource_version=self.resource_version,
                                        label_selector=self._label_selector, field_selector=self._field_selector,
                                        prefilter=self._prefilter)
            try:
                async for event in stream:
                    self._apply(event.type, event.obj)
            finally:
                await _close(stream)

    def _apply(self, kind: str, obj: Obj) -> None:
        rv = resource_version(obj)
        if kind == "BOOKMARK":
            self.resource_version = max(self.resource_version, rv)
            return
        if self._transform is not None:
            obj = self._transform(obj)
        key = key_of(obj)
        if kind == "DELETED":
            self._remove(key, obj)
        else:
            self._upsert(key, obj)
        self.resource_version = max(self.resource_version, rv)

    def _resync_all(self) -> None:
        for obj in self._cached():
            for handlers in self._handlers:
                if handlers.on_update is not None:
                    handlers.on_update(obj, obj)

    # --- cache ---------------------------------------------------------------------------------------

    def _upsert(self, key: str, obj: Obj) -> None:
        cached = self._cache.get(key)
        old = None if cached is None else self._load(cached)
        if old is not None and resource_version(old) == resource_version(obj):
            return  # a relist showing what we have
        kept = self._keep is None or self._keep(obj)
        if not kept and old is None:
            return  # neither cached before nor now: nothing for the handlers
        if kept:
            self._cache[key] = jsoncodec.dumps(obj) if self._compact else obj
        else:
            del self._cache[key]
        for name, func in self._indexers.items():
            index = self._indexes[name]
            if old is not None:
                for value in func(old):
                    _discard(index, value, key)
            if kept:
                for value in func(obj):
                    index.setdefault(value, set()).add(key)
        for handlers in self._handlers:
            if old is None:
                if handlers.on_add is not None:
                    handlers.on_add(obj)
            elif handlers.on_update is not None:
                handlers.on_update(old, obj)

    def _remove(self, key: str, final: Obj | None = None) -> None:
        cached = self._cache.pop(key, None)
        if cached is None:
            if final is not None and self._keep is not None:  # a deleted object the filter never kept
                for handlers in self._handlers:
                    if handlers.on_delete is not None:
                        handlers.on_delete(final)
            return
        old = self._load(cached)
        for name, func in self._indexers.items():
            for value in func(old):
                _discard(self._indexes[name], value, key)
        for handlers in self._handlers:
            if handlers.on_delete is not None:
                handlers.on_delete(final if final is not None else old)


def _discard(index: dict[str, set[str]], value: str, key: str) -> None:
    keys = index.get(value)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[value]


async def _close(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class InformerFactory:
    """One informer per resource type (all namespaces) for every loop of a master; started on request.

    ``run`` owns the informers' tasks: request informers before or while it runs; cancelling it stops
    them all."""

    def __init__(self, client: ClusterClient, *, resync: float = 300.0) -> None:
        self._client = client
        self._resync = resync
        self._informers: dict[str, Informer] = {}
        self._group: asyncio.TaskGroup | None = None
        self._pending: list[Informer] = []

    def informer(self, rtype: ResourceType, *, indexers: dict[str, IndexFunc] | None = None) -> Informer:
        return self._get(rtype.id, rtype, None, indexers)

    def _get(self, key: str, rtype: ResourceType, transform: Callable[[Obj], Obj] | None,
             indexers: dict[str, IndexFunc] | None, keep: Callable[[Obj], bool] | None = None,
             prefilter: Callable[[bytes], bool] | None = None) -> Informer:
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self._client, rtype, resync=self._resync, transform=transform,
                                compact=transform is not None, keep=keep, prefilter=prefilter)
            self._informers[key] = informer
            if self._group is not None:
                self._group.create_task(informer.run(), name=f"informer-{rtype.plural}")
            else:
                self._pending.append(informer)
        for name, func in (indexers or {}).items():
            informer.add_indexer(name, func)
        return informer

    def metadata_informer(self, rtype: ResourceType, *, indexers: dict[str, IndexFunc] | None = None,
                          keep: Callable[[Obj], bool] | None = None,
                          prefilter: Callable[[bytes], bool] | None = None) -> Informer:
        """An informer keeping only metadata, as compact JSON, of the objects ``keep`` accepts (all without
        it; ``prefilter``: see the module docstring): for the garbage collector, every resource in little
        memory. Shared per resource and filter (a filter has one prefilter)."""
        name = "" if keep is None else f"#{keep.__module__}.{keep.__qualname__}"
        return self._get(f"{rtype.id}#metadata{name}", rtype, metadata_only, indexers, keep, prefilter)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(informer.wait_synced() for informer in self._informers.values()))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                for informer in self._pending:
                    group.create_task(informer.run(), name=f"informer-{informer.rtype.plural}")
                self._pending.clear()
                await asyncio.Event().wait()
            finally:
                self._group = None
