"""The replicated state machine: Kubernetes object semantics as a pure function of the Raft log.

``ClusterState.apply(payload, index)`` is the only code that runs on every replica. It is
deterministic: no clock, no randomness, no I/O; the proposer fills in uid, timestamps and the request
id. It checks every precondition itself (existence, resourceVersion, uid, namespace state), stamps
``metadata.resourceVersion`` with the Raft log index, and returns business failures (NotFound,
AlreadyExists, Conflict, ...) as ``StatusError`` values. It never raises: an exception inside
PySyncObj's apply halts the replica.

Objects are kept as their compact JSON bytes plus the few fields reads filter on, so a GET or a watch
event is served without re-encoding and 10,000 objects cost little memory.

Threads: ``apply``/``snapshot``/``restore`` run on the Raft thread; reads run on the event loop. Both
take ``lock``; readers only copy references under it (``StoredObject`` is immutable) and do their
filtering and encoding after releasing it.

Commands are small versioned JSON dicts (see ``encode_command``):
``{"v": 1, "op": "create"|"update"|"delete"|"bind"|"claim-leadership"|"master", "rid": <request id>, ...}``.
A request id seen within the last ``dedup_window`` commands is not applied again: the proposer may
retry a write whose outcome it could not learn.

Fencing: ``claim-leadership`` records ``leader_epoch`` (the Raft term of the master that claims to run
the controllers; a claim not greater than the current epoch changes nothing) and its holder. Any command
may carry ``"fence": <epoch>``; one whose epoch is below ``leader_epoch`` is rejected with ``Fenced``
and changes nothing, so a deposed leader that still believes it leads cannot write once its successor
has claimed. Snapshots carry the epoch.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from edgek8s.model import errors, jsoncodec
from edgek8s.model.resources import ResourceId, ResourceType, by_id, extra_selectable_fields, resource_id
from edgek8s.store import graceful

logger = logging.getLogger(__name__)

COMMAND_VERSION = 1
EXPORT_FORMAT = "edgek8s-snapshot/1"  # `edgek8s snapshot save` files: a header line, then one object a line
NAMESPACES = resource_id("", "namespaces")
PODS = resource_id("", "pods")
SERVICES = resource_id("", "services")
_GENERATION_TRACKED = frozenset(
    {resource_id("apps", "deployments"), resource_id("apps", "replicasets"), resource_id("apps", "daemonsets"),
     resource_id("policy", "poddisruptionbudgets")}
)
# deleteOptions.propagationPolicy -> the finalizer that makes the garbage collector finish the deletion
_POLICY_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}
_CONFLICT_DETAIL = "the object has been modified; please apply your changes to the latest version and try again"


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class StoredObject(NamedTuple):
    """One object as stored: immutable, shared between the state, watch history and readers.

    Kept small (10,000 objects must fit a Pi): the JSON bytes, the key, and only what reads filter on.
    A NamedTuple rather than a frozen dataclass: every replica builds one per write on the Raft
    thread, and a frozen dataclass's __init__ (one object.__setattr__ per field) costs ~3x as much.
    """

    raw: bytes
    rv: int
    uid: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    extra_fields: Mapping[str, str] | None  # field-selector values beyond metadata.name/namespace
    finalizers: tuple[str, ...]
    deleting: bool

    @property
    def fields(self) -> dict[str, str]:
        """Every field-selector value of the object (built on demand: field selectors are rare)."""
        fields = {"metadata.name": self.name, "metadata.namespace": self.namespace}
        if self.extra_fields:
            fields.update(self.extra_fields)
        return fields

    def decode(self) -> dict[str, Any]:
        result: dict[str, Any] = jsoncodec.loads(self.raw)
        return result


class WatchEvent(NamedTuple):
    """What one write did to one object (a NamedTuple, as StoredObject: built per write per replica)."""

    type: EventType
    rid: ResourceId
    namespace: str
    name: str
    obj: StoredObject
    prev: StoredObject | None = None  # the object before a MODIFIED, for selector transitions

    @property
    def rv(self) -> int:
        return self.obj.rv


@dataclass(frozen=True, slots=True)
class Committed:
    """A write that applied (or was a no-op): the object as it now is (None for barriers)."""

    index: int
    obj: StoredObject | None = None
    changed: bool = True


ApplyResult = Committed | errors.StatusError


def encode_command(command: dict[str, Any]) -> bytes:
    return jsoncodec.dumps({"v": COMMAND_VERSION, **command})


def encode_object(obj: Mapping[str, Any]) -> bytes:
    return jsoncodec.dumps(obj)


def make_stored(rid: ResourceId, obj: dict[str, Any], raw: bytes | None = None) -> StoredObject:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels")
    if labels is not None and not isinstance(labels, dict):
        raise TypeError("metadata.labels must be an object")
    return StoredObject(
        raw=raw if raw is not None else encode_object(obj),
        rv=int(meta.get("resourceVersion") or 0),
        uid=str(meta.get("uid", "")),
        namespace=sys.intern(str(meta.get("namespace", ""))),
        name=str(meta.get("name", "")),
        labels=dict(labels) if labels else _NO_LABELS,
        extra_fields=extra_selectable_fields(rid, obj),
        finalizers=tuple(meta.get("finalizers") or ()),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    trimmed = dict(obj)
    meta = dict(trimmed.get("metadata") or {})
    meta.pop("resourceVersion", None)
    trimmed["metadata"] = meta
    return trimmed


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ClusterState:
    """All objects of the cluster, as of Raft index ``rv``."""

    def __init__(
        self,
        *,
        dedup_window: int = 4096,
        on_applied: Callable[[list[WatchEvent], int], None] | None = None,
        on_reset: Callable[[int], None] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.rv = 0
        self._objects: dict[ResourceId, dict[str, dict[str, StoredObject]]] = {}
        self._dedup: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._dedup_window = dedup_window
        self.masters: dict[str, dict[str, str]] = {}
        self.leader_epoch = 0
        self.leader_holder = ""
        self.leader_claim_index = 0  # the index of the claim: every write fenced at an older epoch is before it
        self._on_applied = on_applied
        self._on_reset = on_reset
        self._events: list[WatchEvent] = []

    # --- apply (Raft thread) -------------------------------------------------------------------------

    def apply(self, payload: bytes, index: int) -> ApplyResult:
        with self.lock:
            self.rv = index
            result = self._apply_command(payload, index) if payload else Committed(index)
            events, self._events = self._events, []
        if self._on_applied is not None:
            self._on_applied(events, index)
        return result

    def _apply_command(self, payload: bytes, index: int) -> ApplyResult:
        try:
            command = jsoncodec.loads(payload)
            if not isinstance(command, dict) or command.get("v") != COMMAND_VERSION:
                return errors.BadRequest(f"unsupported command version in {payload[:80]!r}")
        except ValueError as exc:
            return errors.BadRequest(f"undecodable command: {exc}")
        request_id = command.get("rid")
        if request_id is not None and not isinstance(request_id, str):
            return errors.BadRequest("the request id must be a string")
        if request_id and request_id in self._dedup:
            return self._replay(self._dedup[request_id], index)
        try:
            fence = command.get("fence")
            if fence is not None and int(fence) < self.leader_epoch:
                result: ApplyResult = errors.Fenced(
                    f"fenced: stale leader epoch {int(fence)} (the controllers' leader epoch is now "
                    f"{self.leader_epoch}, held by {self.leader_holder})"
                )
            else:
                result = self._dispatch(command, index)
        except Exception as exc:  # a bug here must not halt the replica; every replica fails alike
            logger.exception("apply of %s at index %d failed", command.get("op"), index)
            self._events.clear()
            result = errors.InternalError(f"apply failed: {type(exc).__name__}: {exc}")
        if request_id:
            self._remember(request_id, command, result)
        return result

    def _remember(self, request_id: str, command: dict[str, Any], result: ApplyResult) -> None:
        if isinstance(result, errors.StatusError):
            entry: tuple[str, ...] = ("err", type(result).__name__, result.message, result.kind, result.group,
                                      result.name)
        else:
            entry = ("ok", sys.intern(str(command.get("res", ""))), sys.intern(str(command.get("ns", ""))),
                     command.get("name", ""))
        self._dedup[request_id] = entry
        while len(self._dedup) > self._dedup_window:
            self._dedup.popitem(last=False)

    def _replay(self, entry: tuple[str, ...], index: int) -> ApplyResult:
        if entry[0] == "err":
            cls = getattr(errors, entry[1], errors.InternalError)
            _, _, message, kind, group, name = entry
            return cls(message, kind=kind, group=group, name=name)
        _, rid, ns, name = entry
        current = self._objects.get(ResourceId(rid), {}).get(ns, {}).get(name)
        return Committed(index, current, changed=False)

    def _dispatch(self, command: dict[str, Any], index: int) -> ApplyResult:
        op = command.get("op")
        if op == "create":
            return self._create(command, index)
        if op == "update":
            return self._update(command, index)
        if op == "delete":
            return self._delete(command, index)
        if op == "bind":
            return self._bind(command, index)
        if op == "claim-leadership":
            return self._claim_leadership(command, index)
        if op == "master":
            self.masters[str(command["name"])] = {"raft": str(command["raft"]), "api": str(command["api"])}
            return Committed(index)
        if op == "forget-master":
            self.masters.pop(str(command["name"]), None)
            return Committed(index)
        return errors.BadRequest(f"unknown command {op!r}")

    def _claim_leadership(self, command: dict[str, Any], index: int) -> ApplyResult:
        epoch, holder = int(command["epoch"]), str(command["holder"])
        if epoch > self.leader_epoch:
            self.leader_epoch, self.leader_holder, self.leader_claim_index = epoch, holder, index
            return Committed(index)
        if epoch == self.leader_epoch and holder == self.leader_holder:
            return Committed(index, changed=False)  # a repeated claim of the epoch it already holds
        return errors.Fenced(
            f"fenced: leadership claim for epoch {epoch} by {holder} is stale (epoch {self.leader_epoch} is "
            f"held by {self.leader_holder})"
        )

    def _bind(self, command: dict[str, Any], index: int) -> ApplyResult:
        """pods/binding: set spec.nodeName of a pod that has none, atomically (a pod is bound at most once).

        With ``items`` (the scheduler's batches: one Raft entry for many bindings), each item applies or
        fails on its own exactly as a single bind would; the proposer reads the outcome of each from the
        state. A malformed batch is rejected whole before anything changes."""
        items = command.get("items")
        if items is None:
            return self._bind_one(command, index)
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and all(isinstance(item.get(f), str) for f in ("ns", "name", "node"))
            for item in items
        ):
            return errors.BadRequest("a binding batch needs items with ns, name and node")
        for item in items:
            self._bind_one({"op": "bind", "res": command["res"], "now": command["now"], "ns": item["ns"],
                            "name": item["name"], "node": item["node"], "expect_uid": item.get("expect_uid")}, index)
        return Committed(index)

    def _bind_one(self, command: dict[str, Any], index: int) -> ApplyResult:
        found = self._existing(command)
        if isinstance(found, errors.StatusError):
            return found
        rid, namespace, name, rtype, existing = found
        obj = existing.decode()
        spec = obj.setdefault("spec", {})
        node = str(command["node"])
        if spec.get("nodeName"):
            return errors.conflict(rtype.plural, rtype.group, name,
                                   f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        if existing.deleting:
            return errors.conflict(rtype.plural, rtype.group, name, f"pod {name} is being deleted, cannot be assigned")
        spec["nodeName"] = node
        status = obj.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or () if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": command["now"]})
        status["conditions"] = conditions
        obj["metadata"]["resourceVersion"] = str(index)
        return Committed(index, self._put(rid, namespace, name, obj, EventType.MODIFIED))

    def _bucket(self, rid: ResourceId, namespace: str) -> dict[str, StoredObject]:
        return self._objects.setdefault(rid, {}).setdefault(namespace, {})

    def _put(
        self, rid: ResourceId, namespace: str, name: str, obj: dict[str, Any], kind: EventType
    ) -> StoredObject:
        # One string object per value, kept by the bucket, the object and its watch event alike (each
        # decoded command brings its own copies: ~1.7 MB per 10,000 objects). Same values, same result.
        rid, namespace = ResourceId(sys.intern(rid)), sys.intern(namespace)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and meta.get("name") == name:
            meta["name"] = name
        stored = make_stored(rid, obj)
        bucket = self._bucket(rid, namespace)
        prev = bucket.get(name)
        bucket[name] = stored
        self._events.append(WatchEvent(kind, rid, namespace, name, stored, prev))
        return stored

    def _remove(self, rid: ResourceId, namespace: str, name: str, obj: dict[str, Any]) -> StoredObject:
        stored = make_stored(rid, obj)  # first: if this fails, the state is untouched
        bucket = self._bucket(rid, namespace)
        prev = bucket.pop(name)
        if not bucket:
            del self._objects[rid][namespace]
        self._events.append(WatchEvent(EventType.DELETED, rid, namespace, name, stored, prev))
        if namespace and rid != NAMESPACES:
            self._finish_namespace_if_empty(namespace, obj, stored.rv)
        return stored

    def _namespace_error(self, rid: ResourceId, namespace: str, name: str) -> errors.StatusError | None:
        ns = self._objects.get(NAMESPACES, {}).get("", {}).get(namespace)
        if ns is None:
            return errors.not_found("namespaces", "", namespace)
        if ns.deleting:
            rtype = by_id(rid)
            return errors.Forbidden(
                f'{rtype.plural}{"." + rtype.group if rtype.group else ""} "{name}" is forbidden: unable to '
                f"create new content in namespace {namespace} because it is being terminated",
                kind=rtype.plural,
                group=rtype.group,
                name=name,
            )
        return None

    def _create(self, command: dict[str, Any], index: int) -> ApplyResult:
        rid, namespace, name = ResourceId(command["res"]), str(command["ns"]), str(command["name"])
        rtype = by_id(rid)
        obj: dict[str, Any] = command["obj"]
        if rtype.namespaced:
            failure = self._namespace_error(rid, namespace, name)
            if failure is not None:
                return failure
        existing = self._objects.get(rid, {}).get(namespace, {}).get(name)
        meta = obj["metadata"]
        if existing is not None:
            if existing.uid == meta.get("uid"):
                return Committed(index, existing, changed=False)
            return errors.already_exists(rtype.plural, rtype.group, name)
        if rid == SERVICES:
            taken = self._cluster_ip_taken(obj)
            if taken is not None:
                return taken
        meta["resourceVersion"] = str(index)
        if rid in _GENERATION_TRACKED:
            meta["generation"] = 1
        return Committed(index, self._put(rid, namespace, name, obj, EventType.ADDED))

    def _cluster_ip_taken(self, obj: dict[str, Any]) -> errors.StatusError | None:
        """A Service's cluster IP must be unique (the proposer allocates; apply is the arbiter)."""
        wanted = (obj.get("spec") or {}).get("clusterIP")
        if not wanted or wanted == "None":
            return None
        needle = f'"clusterIP":"{wanted}"'.encode()
        for by_name in self._objects.get(SERVICES, {}).values():
            for other in by_name.values():
                if needle in other.raw:
                    name = (obj.get("metadata") or {}).get("name", "")
                    return errors.invalid("Service", "", name, [errors.StatusCause(
                        field="spec.clusterIPs", reason="FieldValueInvalid",
                        message=f'Invalid value: ["{wanted}"]: failed to allocate IP {wanted}: '
                                "provided IP is already allocated")])
        return None

    def _check_preconditions(
        self, command: dict[str, Any], existing: StoredObject, rid: ResourceId, name: str
    ) -> errors.StatusError | None:
        rtype = by_id(rid)
        expect_uid = command.get("expect_uid")
        if expect_uid and expect_uid != existing.uid:
            return errors.conflict(
                rtype.plural, rtype.group, name,
                f"Precondition failed: UID in precondition: {expect_uid}, UID in object meta: {existing.uid}",
            )
        expect_rv = command.get("expect_rv")
        if expect_rv is not None and int(expect_rv) != existing.rv:
            if command["op"] == "delete":
                return errors.conflict(
                    rtype.plural, rtype.group, name,
                    f"Precondition failed: ResourceVersion in precondition: {expect_rv}, "
                    f"ResourceVersion in object meta: {existing.rv}",
                )
            return errors.conflict(rtype.plural, rtype.group, name, _CONFLICT_DETAIL)
        return None

    def _existing(
        self, command: dict[str, Any]
    ) -> tuple[ResourceId, str, str, ResourceType, StoredObject] | errors.StatusError:
        """The object an update or delete targets, once its preconditions hold."""
        rid, namespace, name = ResourceId(command["res"]), str(command["ns"]), str(command["name"])
        rtype = by_id(rid)
        existing = self._objects.get(rid, {}).get(namespace, {}).get(name)
        if existing is None:
            return errors.not_found(rtype.plural, rtype.group, name)
        failure = self._check_preconditions(command, existing, rid, name)
        if failure is not None:
            return failure
        return rid, namespace, name, rtype, existing

    def _update(self, command: dict[str, Any], index: int) -> ApplyResult:
        found = self._existing(command)
        if isinstance(found, errors.StatusError):
            return found
        rid, namespace, name, rtype, existing = found
        current = existing.decode()
        incoming: dict[str, Any] = command["obj"]
        if command.get("sub") == "status":
            merged = copy.copy(current)
            if "status" in incoming:
                merged["status"] = incoming["status"]
            else:
                merged.pop("status", None)
        else:
            merged = dict(incoming)
            meta = dict(merged.get("metadata") or {})
            current_meta = current["metadata"]
            for kept in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "generation", "namespace", "name"):
                if kept in current_meta:
                    meta[kept] = current_meta[kept]
                else:
                    meta.pop(kept, None)
            merged["metadata"] = meta
            if rtype.has_status:
                if "status" in current:
                    merged["status"] = current["status"]
                else:
                    merged.pop("status", None)
            if rid in _GENERATION_TRACKED and _spec_of(merged) != _spec_of(current):
                meta["generation"] = int(current_meta.get("generation", 1)) + 1
        if _without_rv(merged) == _without_rv(current):
            return Committed(index, existing, changed=False)
        merged["metadata"]["resourceVersion"] = str(index)
        # A pod the kubelet is still stopping (grace > 0) stays until the kubelet's final delete.
        if (existing.deleting and not merged["metadata"].get("finalizers") and rid != NAMESPACES
                and not merged["metadata"].get("deletionGracePeriodSeconds")):
            return Committed(index, self._remove(rid, namespace, name, merged))
        return Committed(index, self._put(rid, namespace, name, merged, EventType.MODIFIED))

    def _delete(self, command: dict[str, Any], index: int) -> ApplyResult:
        found = self._existing(command)
        if isinstance(found, errors.StatusError):
            return found
        rid, namespace, name, _rtype, existing = found
        current = existing.decode()
        meta = current["metadata"]
        if rid == NAMESPACES and self._namespace_has_content(name):
            if existing.deleting:
                return Committed(index, existing, changed=False)
            meta["deletionTimestamp"] = command["now"]
            meta["resourceVersion"] = str(index)
            current.setdefault("status", {})["phase"] = "Terminating"
            return Committed(index, self._put(rid, namespace, name, current, EventType.MODIFIED))
        finalizers = list(existing.finalizers)
        policy_finalizer = _POLICY_FINALIZERS.get(command.get("propagation") or "")
        if policy_finalizer and not existing.deleting and policy_finalizer not in finalizers:
            finalizers.append(policy_finalizer)
            meta["finalizers"] = finalizers
        if rid == PODS and command.get("grace") is not None:
            decision = graceful.pod_deletion(current, int(command["grace"]), str(command["deadline"]))
            if decision == graceful.UNCHANGED:
                return Committed(index, existing, changed=False)
            if isinstance(decision, graceful.Graceful):
                meta["deletionTimestamp"] = decision.deletion_timestamp
                meta["deletionGracePeriodSeconds"] = decision.grace
                meta["resourceVersion"] = str(index)
                return Committed(index, self._put(rid, namespace, name, current, EventType.MODIFIED))
            if finalizers and existing.deleting and meta.get("deletionGracePeriodSeconds"):
                # the kubelet is done (or a force delete): the finalizers alone hold it now
                meta["deletionGracePeriodSeconds"] = 0
                meta["resourceVersion"] = str(index)
                return Committed(index, self._put(rid, namespace, name, current, EventType.MODIFIED))
        if finalizers:
            if existing.deleting:
                return Committed(index, existing, changed=False)
            meta["deletionTimestamp"] = command["now"]
            meta["deletionGracePeriodSeconds"] = 0
            meta["resourceVersion"] = str(index)
            if rid in _GENERATION_TRACKED:
                meta["generation"] = int(meta.get("generation", 1)) + 1
            return Committed(index, self._put(rid, namespace, name, current, EventType.MODIFIED))
        meta["resourceVersion"] = str(index)
        return Committed(index, self._remove(rid, namespace, name, current))

    def _namespace_has_content(self, namespace: str) -> bool:
        return any(namespace in by_ns and by_ns[namespace] for by_ns in self._objects.values())

    def _finish_namespace_if_empty(self, namespace: str, last_obj: dict[str, Any], rv: int) -> None:
        ns = self._objects.get(NAMESPACES, {}).get("", {}).get(namespace)
        if ns is None or not ns.deleting or self._namespace_has_content(namespace):
            return
        ns_obj = ns.decode()
        ns_obj["metadata"]["resourceVersion"] = str(rv)
        self._remove(NAMESPACES, "", namespace, ns_obj)

    # --- snapshots (Raft thread) ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A picklable view of the state (references to immutable bytes); PySyncObj pickles and
        writes it in a forked child, so the Raft thread only builds these dicts."""
        return {
            "format": 1,
            "rv": self.rv,
            "objects": {
                rid: {ns: {name: obj.raw for name, obj in by_name.items()} for ns, by_name in by_ns.items()}
                for rid, by_ns in self._objects.items()
            },
            "dedup": list(self._dedup.items()),
            "masters": dict(self.masters),
            "leader": [self.leader_epoch, self.leader_holder, self.leader_claim_index],
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        with self.lock:
            self._restore(data)
            rv = self.rv
        if self._on_reset is not None:
            self._on_reset(rv)

    def _restore(self, data: Mapping[str, Any]) -> None:
        if data.get("format") != 1:
            raise ValueError(f"unsupported snapshot format {data.get('format')!r}")
        objects: dict[ResourceId, dict[str, dict[str, StoredObject]]] = {}
        for rid, by_ns in data["objects"].items():
            for ns, by_name in by_ns.items():
                bucket = objects.setdefault(ResourceId(rid), {}).setdefault(ns, {})
                for name, raw in by_name.items():
                    bucket[name] = make_stored(ResourceId(rid), jsoncodec.loads(raw), raw)
        self._objects = objects
        self.rv = int(data["rv"])
        self._dedup = OrderedDict((k, tuple(v)) for k, v in data["dedup"])
        self.masters = dict(data["masters"])
        epoch, holder, claimed = data.get("leader") or (0, "", 0)  # snapshots from before fencing have none
        self.leader_epoch, self.leader_holder, self.leader_claim_index = int(epoch), str(holder), int(claimed)

    # --- reads (event loop) --------------------------------------------------------------------------

    def get(self, rid: ResourceId, namespace: str, name: str) -> tuple[StoredObject | None, int]:
        with self.lock:
            return self._objects.get(rid, {}).get(namespace, {}).get(name), self.rv

    def list(self, rid: ResourceId, namespace: str | None) -> tuple[list[StoredObject], int]:
        """Objects of ``rid`` (in ``namespace``, or all), sorted by namespace then name, and the rv."""
        with self.lock:
            by_ns = self._objects.get(rid, {})
            if namespace is None:
                chunks = [(ns, list(by_name.items())) for ns, by_name in by_ns.items()]
            else:
                chunks = [(namespace, list(by_ns.get(namespace, {}).items()))]
            rv = self.rv
        chunks.sort(key=lambda chunk: chunk[0])
        result: list[StoredObject] = []
        for _ns, items in chunks:
            items.sort(key=lambda item: item[0])
            result.extend(obj for _name, obj in items)
        return result, rv

    def count(self) -> int:
        with self.lock:
            return sum(len(by_name) for by_ns in self._objects.values() for by_name in by_ns.values())

    def iter_all(self) -> Iterator[tuple[ResourceId, str, str, StoredObject]]:
        """Every object, for snapshot export; takes the lock only to copy references."""
        with self.lock:
            items = [
                (rid, ns, name, obj)
                for rid, by_ns in self._objects.items()
                for ns, by_name in by_ns.items()
                for name, obj in by_name.items()
            ]
        return iter(items)
