"""Server-side apply and ``metadata.managedFields`` bookkeeping, as kube-apiserver 1.32 does them.

Role: the API server calls :func:`server_side_apply` for a PATCH with ``application/apply-patch+yaml``
(the body already decoded) and :func:`record_update` for every other create, update and patch, before
it validates and writes the result. This module only computes that result. It follows upstream's
``k8s.io/apimachinery/pkg/util/managedfields`` (the chain of managers ``NewDefaultFieldManager``
builds) over ``sigs.k8s.io/structured-merge-diff`` (``merge.Updater``, ``typed.Merge``/``Compare``/
``ToFieldSet``/``RemoveItems``), re-derived here from their documented behaviour, not transcribed.

Field sets. A manager owns a set of paths; a path is a tuple of fieldsV1 path elements: ``f:<field>``,
``k:<JSON of the key fields>`` (list items merged by key), ``v:<JSON>`` (items of a set) and ``i:<n>``
(only ever read from a stored entry). On the wire a set is a trie (``fieldsV1``): a key mapped to ``{}``
is a member, ``"."`` marks a node that is itself a member and also has members below it.

The schema is approximated from the strategic-merge table in :mod:`edgek8s.registry.patch`, since the
Go structs it was built from carry the same tags: a list with a ``patchMergeKey`` is a map keyed by it,
except where upstream declares more ``listMapKey``\\s (container ports and Service ports add
``protocol``, defaulting to ``TCP``; topology spread constraints add ``whenUnsatisfiable``); a merged
list of primitives is a set; every other list is atomic (one leaf). Objects merge per key, except the
``+structType=atomic`` ones listed in ``_ATOMIC_FIELDS`` & co. (label selectors of workloads, env
``valueFrom`` references, owner references, image pull secrets, node selectors, event object refs).
A kind missing from the table has only atomic lists, as upstream's deduced schema for unknown kinds.

Upstream behaviour reproduced (each names the upstream piece):
- which fields are never tracked (``stripMetaManager``): ``apiVersion``, ``kind``, ``metadata`` itself
  and its ``name``, ``namespace``, ``creationTimestamp``, ``selfLink``, ``uid``, ``clusterName``,
  ``generation``, ``managedFields`` and ``resourceVersion``. ``deletionTimestamp`` and
  ``deletionGracePeriodSeconds`` are *not* stripped upstream: graceful deletion writes them without the
  field manager, so callers must not route that write through :func:`record_update` either;
- reset fields (the strategies' ``GetResetFields``): on the main resource ``status`` is neither owned
  nor compared; on the ``status`` subresource ``spec`` is not. Other subresources reset nothing;
- Apply (``Updater.Apply``): the config is merged into the live object (maps per key, keyed lists per
  item in upstream's order, atomic values replaced whole); the applier's set becomes exactly the
  config's field set; fields it owned last time and no longer applies are pruned from the object unless
  some manager (itself included) still owns them (``prune``/``addBackOwnedItems``/
  ``addBackDanglingItems``); any other manager owning a field the apply adds or changes is a conflict
  (:class:`ApplyConflict`, 409), or, with ``force``, loses it. Applying a value equal to the live one
  is no change, so the ownership is shared;
- ``kubectl`` upgrading from client-side apply (``lastAppliedManager``): when the manager is exactly
  ``kubectl`` and every conflict is on a field whose value in the live
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation equals the live value, the apply is
  forced; and (``lastAppliedUpdater``) when the result carries that annotation, an apply by ``kubectl``
  rewrites it to the applied config;
- Update (``Updater.Update`` via ``managedFieldsUpdater``): fields added or changed are taken from
  every other entry and given to ``manager``; fields removed leave every entry; the entry is keyed by
  manager, operation, apiVersion and subresource (Apply entries ignore apiVersion: a manager applying at
  a new version keeps one entry) and merged with its previous fields;
- entry times: an Update entry's time is ``now`` only when the request gave it fields; an Apply
  entry's only when the apply changed the object (a manager newly sharing fields without changing
  anything has no time, as upstream); and when the object and every entry but times are unchanged the
  old times are kept (``IgnoreManagedFieldsTimestampsTransformer``), so a no-op write is a no-op;
- a manager owning nothing has no entry; more than 10 Update entries are folded, oldest first, into an
  ``ancient-changes`` entry per apiVersion (``capManagersManager``);
- entries are sorted by operation, time (seconds), manager, apiVersion, subresource
  (``sortEncodedManagedFields``); fieldsV1 keys are in structured-merge-diff's order.

Explicit managedFields in an ordinary write (``FieldManager.Update``/``decodeLiveOrNew``): on the main
resource, ``new``'s ``metadata.managedFields`` replaces the live entries when it decodes (every entry has
operation ``Apply`` or ``Update``, a non-empty apiVersion, fieldsType ``FieldsV1`` and a valid fieldsV1)
and is non-empty; ``[{}]`` resets them to none; an absent, empty or undecodable list keeps the live
entries; a subresource write always keeps the live entries. The write's own changes are then recorded
on top as for any update. (That is how kubectl's migration JSON patch of ``managedFields`` lands.)

Invariants: pure (standard library, no I/O, clock or randomness); inputs are never mutated and the
result shares nothing mutable with them; the same inputs give byte-identical output.

Known approximations: no per-version conversion (an entry recorded at another apiVersion is compared
as if at this one); ``null`` in an applied config removes the key from the result rather than storing
``null`` (Go decoding drops it the same way) but is still owned; in live or updated objects a keyed
list with an item lacking its key is treated as atomic instead of failing; "always present" Go structs
(``spec``, pod templates, strategies) are listed, not derived, so an Update entry shows ``.`` where
upstream's zero-valued struct would hide it only for paths missing from that list.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edgek8s.model import jsoncodec
from edgek8s.registry.patch import _merge_keys, clone_json

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "ApplyConflict",
    "ApplyError",
    "fields_of",
    "record_update",
    "server_side_apply",
]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
_KUBECTL_MANAGER = "kubectl"  # the only manager lastAppliedManager/lastAppliedUpdater act for
_MAX_UPDATE_MANAGERS = 10
_ANCIENT_CHANGES = "ancient-changes"
_APPLY = "Apply"
_UPDATE = "Update"

PathElement = str
Path = tuple[PathElement, ...]
FieldPath = tuple[str, ...]  # field names from the root; list items add no step

_MISSING: Any = object()


# --- Errors ------------------------------------------------------------------------------------


class ApplyError(ValueError):
    """An apply request that cannot be served; ``code`` is the HTTP status upstream answers with."""

    def __init__(self, message: str, *, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Conflict:
    manager: str
    operation: str
    api_version: str
    subresource: str
    path: Path

    def who(self) -> str:
        """Upstream's printManager: the manager, quoted, and for an Update entry its apiVersion."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource, ensure_ascii=False)}"
        if self.operation == _UPDATE:
            text += f" using {self.api_version}"
        return text


class ApplyConflict(Exception):
    """An apply that would change fields other managers own; answer 409 with :meth:`status`.

    ``conflicts`` holds ``(manager, api_version, field)`` triples, ``field`` in upstream's notation
    (``.spec.replicas``, ``.spec.containers[name="nginx"].image``), ordered by manager then field.
    """

    code = 409

    def __init__(self, conflicts: Iterable[_Conflict]) -> None:
        self._conflicts = sorted(conflicts, key=lambda c: (c.who(), _path_sort_key(c.path)))
        self.conflicts: list[tuple[str, str, str]] = [
            (c.manager, c.api_version, _path_string(c.path)) for c in self._conflicts
        ]
        super().__init__(self.message())

    def message(self) -> str:
        """Upstream's getConflictMessage, which kubectl prints after ``error: ``."""
        if len(self._conflicts) == 1:
            c = self._conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {c.who()}: {_path_string(c.path)}"
        lines: list[str] = []
        current = None
        for c in self._conflicts:
            if c.who() != current:
                current = c.who()
                lines.append(f"conflicts with {current}:")
            lines.append(f"- {_path_string(c.path)}")
        return f"Apply failed with {len(self._conflicts)} conflicts: " + "\n".join(lines)

    def paths(self) -> set[Path]:
        """The conflicting fields as paths of fieldsV1 elements."""
        return {c.path for c in self._conflicts}

    def causes(self) -> list[dict[str, str]]:
        """``details.causes``: one ``FieldManagerConflict`` per field."""
        return [
            {"reason": "FieldManagerConflict", "message": f"conflict with {c.who()}", "field": _path_string(c.path)}
            for c in self._conflicts
        ]

    def status(self) -> dict[str, Any]:
        """The whole ``Status`` body upstream's NewApplyConflict produces."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": "Conflict",
            "details": {"causes": self.causes()},
            "code": 409,
        }


class _Invalid(Exception):
    """A value that does not fit the schema (missing or duplicate list key); ``path`` is where."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


# --- JSON values -------------------------------------------------------------------------------


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, numbers compare by value, objects ignore member order."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _go_json(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON as Go's encoder writes it: HTML characters and line separators escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _value_sort_key(value: Any) -> tuple[Any, ...]:
    """structured-merge-diff's total order on values: numbers, strings, booleans, lists, maps, null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_sort_key(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_sort_key(value[k])) for k in sorted(value)))
    return (5,)


def _go_quote(value: Any) -> str:
    """structured-merge-diff's value.ToString, used in conflict field paths."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_quote(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_quote(v)}" for k, v in value.items())
    return json.dumps(value)


# --- Path elements -----------------------------------------------------------------------------


def _field(name: str) -> PathElement:
    return "f:" + name


def _parse_element(element: PathElement) -> tuple[str, Any]:
    """(type letter, payload); raises ValueError for a malformed element."""
    if len(element) < 2 or element[1] != ":" or element[0] not in "fkvi":
        raise ValueError(f"invalid path element {element!r}")
    kind, text = element[0], element[2:]
    if kind == "f":
        return kind, text
    if kind == "i":
        if not text.lstrip("-").isdigit():
            raise ValueError(f"invalid index in {element!r}")
        return kind, int(text)
    payload = json.loads(text)
    if kind == "k" and not isinstance(payload, dict):
        raise ValueError(f"invalid key in {element!r}")
    return kind, payload


def _canonical(element: PathElement) -> PathElement:
    """An element as structured-merge-diff would serialize it (key fields sorted, compact JSON)."""
    kind, payload = _parse_element(element)
    if kind == "k":
        return "k:" + _go_json(payload)
    if kind == "v":
        return "v:" + _go_json(payload)
    if kind == "i":
        return f"i:{payload}"
    return element


def _element_sort_key(element: PathElement) -> tuple[Any, ...]:
    """PathElement.Compare: fields, then keys, then values, then indexes."""
    if element[:2] == "f:":
        return (0, element[2:])  # the hot case, as _parse_element would give it
    kind, payload = _parse_element(element)
    if kind == "f":
        return (0, payload)
    if kind == "k":
        return (1, tuple((name, _value_sort_key(payload[name])) for name in sorted(payload)))
    if kind == "v":
        return (2, _value_sort_key(payload))
    return (3, payload)


def _path_sort_key(path: Path) -> tuple[Any, ...]:
    return tuple(_element_sort_key(e) for e in path)


def _path_string(path: Path) -> str:
    """fieldpath.Path.String: ``.spec.containers[name="nginx"].image``."""
    parts: list[str] = []
    for element in path:
        kind, payload = _parse_element(element)
        if kind == "f":
            parts.append("." + payload)
        elif kind == "k":
            parts.append("[" + ",".join(f"{k}={_go_quote(payload[k])}" for k in sorted(payload)) + "]")
        elif kind == "v":
            parts.append(f"[={_go_quote(payload)}]")
        else:
            parts.append(f"[{payload}]")
    return "".join(parts)


# --- fieldsV1 encoding -------------------------------------------------------------------------


def _encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """A set of paths as a fieldsV1 trie, keys in structured-merge-diff's order."""
    members: set[Path] = set()
    children: dict[Path, set[PathElement]] = {}
    for path in paths:
        members.add(path)
        for depth in range(len(path)):
            children.setdefault(path[:depth], set()).add(path[depth])

    def emit(prefix: Path) -> dict[str, Any]:
        node: dict[str, Any] = {}
        below = children.get(prefix)
        if below is None:
            return node  # a leaf
        if prefix and prefix in members:
            node["."] = {}
        for element in sorted(below, key=_element_sort_key) if len(below) > 1 else below:
            node[element] = emit((*prefix, element))
        return node

    return emit(())


def _decode_fields(tree: Any, prefix: Path = ()) -> set[Path]:
    """A fieldsV1 trie as a set of paths; raises ValueError if it is malformed."""
    if not isinstance(tree, dict):
        raise ValueError("fieldsV1 must be a JSON object")
    paths: set[Path] = set()
    for key, sub in tree.items():
        if key == ".":
            if sub != {} or not prefix:
                raise ValueError("'.' must map to {} below the root")
            paths.add(prefix)
            continue
        path = (*prefix, _canonical(key))
        if not isinstance(sub, dict):
            raise ValueError(f"the value of {key!r} must be a JSON object")
        if sub:
            paths |= _decode_fields(sub, path)
        else:
            paths.add(path)
    return paths


# --- The schema, approximated ------------------------------------------------------------------

# Fields whose struct is +structType=atomic (a leaf), by field name anywhere in the object.
_ATOMIC_FIELDS = frozenset(
    {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "labelSelector", "namespaceSelector"}
)
_KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}  # listMapKeys with an OpenAPI default
# What a zero-valued Go object of the kind always serializes (non-pointer structs, and PodSpec's
# ``containers``, which has no omitempty): an Update never "adds" these nodes. Paths from the root.
_POD_TEMPLATE = (("template",), ("template", "metadata"), ("template", "spec"))


def _always_present(group: str, kind: str) -> dict[FieldPath, Any]:
    """Each always-present node with its zero value ({} or [])."""
    structs: set[FieldPath] = {("metadata",), ("spec",), ("status",)}
    pod_specs: list[FieldPath] = []
    if (group, kind) == ("", "Pod"):
        pod_specs.append(("spec",))
    if (group, kind) == ("", "PodTemplate"):
        structs.update(_POD_TEMPLATE)
        pod_specs.append(("template", "spec"))
    if group in ("apps", "batch") and kind != "CronJob":
        structs.update(("spec", *p) for p in _POD_TEMPLATE)
        pod_specs.append(("spec", "template", "spec"))
    if (group, kind) == ("apps", "Deployment"):
        structs.add(("spec", "strategy"))
    if (group, kind) in (("apps", "DaemonSet"), ("apps", "StatefulSet")):
        structs.add(("spec", "updateStrategy"))
    if (group, kind) == ("batch", "CronJob"):
        job = ("spec", "jobTemplate")
        structs.update({job, (*job, "metadata"), (*job, "spec")})
        structs.update((*job, "spec", *p) for p in _POD_TEMPLATE)
        pod_specs.append((*job, "spec", "template", "spec"))
    if (group, kind) == ("", "Event"):
        structs.add(("source",))
    zero: dict[FieldPath, Any] = {path: {} for path in structs}
    zero.update(((*p, "containers"), []) for p in pod_specs)
    return zero


class _Schema:
    """What the walkers need to know of a kind: list keys, atomic structs, always-present structs.

    Read-only once built: ``_schema_of`` shares one per kind and apiVersion.
    """

    def __init__(self, kind: str, api_version: str) -> None:
        group = api_version.rpartition("/")[0]
        self.lists: dict[FieldPath, tuple[str, ...]] = {}
        for path, key in _merge_keys(kind, api_version).items():
            self.lists[path] = self._ssa_keys(path, key)
        self.atomic_items: set[FieldPath] = {("metadata", "ownerReferences")}
        self.atomic_items.update(p for p in self.lists if p[-1] == "imagePullSecrets")
        if (group, kind) == ("", "ServiceAccount"):
            self.atomic_items.add(("secrets",))
        self.atomic_fields: set[FieldPath] = set()
        if group in ("apps", "batch"):
            self.atomic_fields.update({("spec", "selector"), ("spec", "jobTemplate", "spec", "selector")})
        if (group, kind) == ("", "Event"):
            self.atomic_fields.update({("involvedObject",), ("related",)})
        if (group, kind) == ("events.k8s.io", "Event"):
            self.atomic_fields.update({("regarding",), ("related",)})
        self.always_present = _always_present(group, kind)

    @staticmethod
    def _ssa_keys(path: FieldPath, smp_key: str) -> tuple[str, ...]:
        """The listMapKeys of a list the strategic-merge table merges on ``smp_key`` ("" -> a set)."""
        if smp_key == "":
            return ()
        if smp_key == "containerPort":
            return ("containerPort", "protocol")
        if smp_key == "port" and path == ("spec", "ports"):
            return ("port", "protocol")
        if path[-1] == "topologySpreadConstraints":
            return ("topologyKey", "whenUnsatisfiable")
        return (smp_key,)

    def list_keys(self, fpath: FieldPath) -> tuple[str, ...] | None:
        """Key fields of the list at ``fpath``: () for a set, None for an atomic list."""
        return self.lists.get(fpath)

    def atomic_map(self, fpath: FieldPath, *, item: bool) -> bool:
        if item:
            return fpath in self.atomic_items
        if not fpath:
            return False
        if fpath[-1] in _ATOMIC_FIELDS or fpath in self.atomic_fields:
            return True
        return fpath[-2:] == ("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")

    def shape(self, fpath: FieldPath, *, item: bool, values: tuple[Any, ...]) -> str:
        """Whether the node holding ``values`` (some may be _MISSING) is a "map", a "list" or a "leaf"."""
        present = [v for v in values if v is not _MISSING]
        if not present:
            return "leaf"
        kind = type(present[0])
        if kind is not dict and kind is not list:
            return "leaf"  # the hot case: a scalar
        for value in present:
            if not isinstance(value, kind):
                return "leaf"
        if not any(present):
            return "leaf"
        if kind is dict:
            return "leaf" if self.atomic_map(fpath, item=item) else "map"
        return "leaf" if self.list_keys(fpath) is None else "list"

    def index(
        self, items: list[Any], fpath: FieldPath, path: Path, *, strict: bool
    ) -> list[tuple[PathElement, Any]] | None:
        """Each item with its path element. Strict (an applied config): a missing key or a repeated
        item raises _Invalid. Lenient (a stored object): a missing key gives None (treat the list as
        atomic) and repeats are kept."""
        keys = self.list_keys(fpath)
        assert keys is not None
        indexed: list[tuple[PathElement, Any]] = []
        seen: set[PathElement] = set()
        for number, item in enumerate(items):
            if not keys:
                element = "v:" + _go_json(item)
            elif not isinstance(item, dict):
                if strict:
                    raise _Invalid(path, f"element {number}: associative list with keys may not have non-map elements")
                return None
            else:
                fields: dict[str, Any] = {}
                for key in sorted(keys):
                    if key in item:
                        fields[key] = item[key]
                    elif key in _KEY_DEFAULTS:
                        fields[key] = _KEY_DEFAULTS[key]
                    elif strict:
                        raise _Invalid(
                            path,
                            f"element {number}: associative list with keys has an element that omits key field "
                            f"{json.dumps(key)} (and doesn't have default value)",
                        )
                    else:
                        return None
                element = "k:" + _go_json(fields)
            if strict and element in seen:
                raise _Invalid(path, f"duplicate entries for key {_path_string((element,))}")
            seen.add(element)
            indexed.append((element, item))
        return indexed


# --- ToFieldSet ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _schema_of(kind: str, api_version: str) -> _Schema:
    return _Schema(kind, api_version)


def _field_set(obj: Mapping[str, Any], schema: _Schema, *, strict: bool) -> set[Path]:
    """typed.ToFieldSet: every leaf, every list item, and every empty or null map value."""
    out: set[Path] = set()

    def walk(value: Any, path: Path, fpath: FieldPath, item: bool) -> None:
        shape = schema.shape(fpath, item=item, values=(value,))
        if shape == "map":
            for key, child in value.items():
                child_path = (*path, _field(key))
                walk(child, child_path, (*fpath, key), False)
                if child is None or child == {}:
                    out.add(child_path)
        elif shape == "list":
            indexed = schema.index(value, fpath, path, strict=strict)
            if indexed is None:
                out.add(path)
                return
            counts: dict[PathElement, int] = {}
            for element, _ in indexed:
                counts[element] = counts.get(element, 0) + 1
            for element, child in indexed:
                child_path = (*path, element)
                if counts[element] == 1:
                    walk(child, child_path, fpath, True)
                out.add(child_path)
        elif isinstance(value, list | dict) and not value and not path:
            return
        else:
            out.add(path)

    walk(dict(obj), (), (), False)
    return out


_STRIPPED: frozenset[Path] = frozenset(
    {(_field("apiVersion"),), (_field("kind"),), (_field("metadata"),)}
    | {
        (_field("metadata"), _field(name))
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    }
)


def _strip(paths: set[Path]) -> set[Path]:
    """stripMetaManager: drop identity and server-owned metadata (and anything under managedFields)."""
    managed = (_field("metadata"), _field("managedFields"))
    return {p for p in paths if p not in _STRIPPED and p[:2] != managed}


_RESET_MAIN: tuple[Path, ...] = ((_field("status"),),)
_RESET_STATUS: tuple[Path, ...] = ((_field("spec"),),)


def _reset_prefixes(subresource: str) -> tuple[Path, ...]:
    """The strategies' reset fields: status on the main resource, spec on the status subresource."""
    if subresource == "":
        return _RESET_MAIN
    if subresource == "status":
        return _RESET_STATUS
    return ()


def _filter(paths: set[Path], prefixes: tuple[Path, ...]) -> set[Path]:
    if not paths:
        return set()
    if len(prefixes) == 1:  # the hot case (reset fields are one prefix): no generator per path
        prefix = prefixes[0]
        depth = len(prefix)
        return {p for p in paths if p[:depth] != prefix}
    return {p for p in paths if not any(p[: len(r)] == r for r in prefixes)}


def fields_of(obj: Mapping[str, Any], kind: str, api_version: str, *, subresource: str = "") -> dict[str, Any]:
    """The fieldsV1 set an apply of ``obj`` would own: its fields less the untracked metadata and the
    fields reset for ``subresource`` (``status`` on the main resource)."""
    schema = _schema_of(kind, api_version)
    paths = _filter(
        _strip(_field_set(_without_managed_fields(obj), schema, strict=False)), _reset_prefixes(subresource)
    )
    return _encode_fields(paths)


# --- Compare ------------------------------------------------------------------------------------


@dataclass
class _Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def filtered(self, prefixes: tuple[Path, ...]) -> _Comparison:
        return _Comparison(
            _filter(self.added, prefixes), _filter(self.modified, prefixes), _filter(self.removed, prefixes)
        )


def _compare(old: Any, new: Any, schema: _Schema) -> _Comparison:
    """typed.Compare: leaves added, changed or removed, and every map or list added or removed whole."""
    result = _Comparison()
    always_present = schema.always_present
    added_paths = result.added

    def walk(left: Any, right: Any, path: Path, fpath: FieldPath, item: bool) -> None:
        zero = always_present.get(fpath, _MISSING) if len(path) == len(fpath) else _MISSING
        if left is _MISSING and zero is _MISSING and path and right is not _MISSING:
            added(right, path, fpath, item)
            return
        if zero is not _MISSING:
            left = zero.copy() if left is _MISSING else left  # zero values are empty: a copy is a clone
            right = zero.copy() if right is _MISSING else right
        shape = schema.shape(fpath, item=item, values=(left, right))
        if shape == "leaf":
            if left is _MISSING:
                result.added.add(path)
            elif right is _MISSING:
                result.removed.add(path)
            elif not _equal(left, right):
                result.modified.add(path)
            return
        if shape == "map":
            lmap = left if isinstance(left, dict) else {}
            rmap = right if isinstance(right, dict) else {}
            if not lmap:  # everything on the right is added (a create): no lookups on the left
                added_map(rmap, path, fpath)
            else:
                for key in [*lmap, *(k for k in rmap if k not in lmap)]:
                    walk(lmap.get(key, _MISSING), rmap.get(key, _MISSING), (*path, "f:" + key), (*fpath, key),
                         False)
        elif not walk_list(left, right, path, fpath):
            leaf_changed(left, right, path)
            return
        if path and left is _MISSING:
            result.added.add(path)
        elif path and right is _MISSING:
            result.removed.add(path)

    def added(value: Any, path: Path, fpath: FieldPath, item: bool) -> None:
        """``walk(_MISSING, value, ...)`` with no zero value here: the node and all below it are added.
        The hot path of a create, without the shape and equality tests that cannot matter."""
        if isinstance(value, dict):
            if value and not schema.atomic_map(fpath, item=item):
                added_map(value, path, fpath)
        elif isinstance(value, list) and value and schema.list_keys(fpath) is not None:
            grouped = group(value, path, fpath)
            if grouped is not None:
                for element, items in grouped.items():
                    if len(items) == 1:
                        walk(_MISSING, items[0], (*path, element), fpath, True)
                    else:
                        result.added.add((*path, element))
        added_paths.add(path)

    def added_map(value: dict[str, Any], path: Path, fpath: FieldPath) -> None:
        """``walk(_MISSING, child, ...)`` for each member; a scalar member with no zero value is
        simply added (what ``walk`` and ``added`` would do for it, without the two calls)."""
        depth_matches = len(path) == len(fpath)
        for key, child in value.items():
            child_path, child_fpath = (*path, "f:" + key), (*fpath, key)
            if isinstance(child, (dict, list)) or (depth_matches and child_fpath in always_present):
                walk(_MISSING, child, child_path, child_fpath, False)
            else:
                added_paths.add(child_path)

    def leaf_changed(left: Any, right: Any, path: Path) -> None:
        if left is _MISSING:
            result.added.add(path)
        elif right is _MISSING:
            result.removed.add(path)
        elif not _equal(left, right):
            result.modified.add(path)

    def group(items: list[Any] | None, path: Path, fpath: FieldPath) -> dict[PathElement, list[Any]] | None:
        indexed = schema.index(items or [], fpath, path, strict=False)
        if indexed is None:
            return None
        grouped: dict[PathElement, list[Any]] = {}
        for element, child in indexed:
            grouped.setdefault(element, []).append(child)
        return grouped

    def walk_list(left: Any, right: Any, path: Path, fpath: FieldPath) -> bool:
        lgroups = group(None if left is _MISSING else left, path, fpath)
        rgroups = group(None if right is _MISSING else right, path, fpath)
        if lgroups is None or rgroups is None:
            return False
        for element in [*lgroups, *(e for e in rgroups if e not in lgroups)]:
            litems, ritems = lgroups.get(element, []), rgroups.get(element, [])
            child = (*path, element)
            if len(litems) <= 1 and len(ritems) <= 1:
                walk(litems[0] if litems else _MISSING, ritems[0] if ritems else _MISSING, child, fpath, True)
            elif len(litems) >= 2 and len(ritems) >= 2:
                if not _equal(litems, ritems):
                    result.modified.add(child)
            elif len(litems) >= 2:
                if ritems:
                    walk(_MISSING, ritems[0], child, fpath, True)
                result.removed.add(child)
            else:
                if litems:
                    walk(litems[0], _MISSING, child, fpath, True)
                result.added.add(child)
        return True

    walk(old, new, (), (), False)
    return result


# --- Merge (the applied config into the live object) -------------------------------------------


class _Merger:
    """typed.Merge with the config on the right: the config wins at every leaf."""

    def __init__(self, schema: _Schema) -> None:
        self.schema = schema

    def merge(self, left: Any, right: Any, path: Path, fpath: FieldPath, item: bool) -> Any:
        if right is _MISSING:
            return clone_json(left)
        if (
            right is None
            and isinstance(left, dict | list)
            and left
            and self.schema.shape(fpath, item=item, values=(left,)) != "leaf"
        ):
            return clone_json(left)  # a null map or list: structured-merge-diff walks the live items against nothing
        shape = self.schema.shape(fpath, item=item, values=(left, right))
        if shape == "map":
            return self.merge_map(left if isinstance(left, dict) else {}, right, path, fpath)
        if shape == "list":
            return self.merge_list([] if left is _MISSING else left, right, path, fpath)
        return _clean(right)

    def merge_map(self, left: dict[str, Any], right: dict[str, Any], path: Path, fpath: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in [*left, *(k for k in right if k not in left)]:
            value = self.merge(
                left.get(key, _MISSING), right.get(key, _MISSING), (*path, _field(key)), (*fpath, key), False
            )
            if value is None and key in right:
                continue  # an applied null: the field is owned but absent
            out[key] = value
        return out

    def merge_list(self, left: list[Any], right: list[Any], path: Path, fpath: FieldPath) -> list[Any]:
        """Keyed items merge; the result keeps the live order for items the config does not name,
        the config's order for those it names, and puts new items where the config has them."""
        rhs = self.schema.index(right, fpath, path, strict=True)
        lhs = self.schema.index(left, fpath, path, strict=False)
        assert rhs is not None
        if lhs is None:
            return [_clean(v) for v in right]
        rmap = dict(rhs)
        lfirst: dict[PathElement, Any] = {}
        repeated: set[PathElement] = set()
        for element, child in lhs:
            if element in lfirst:
                repeated.add(element)
            else:
                lfirst[element] = child

        def live(element: PathElement) -> Any:
            if element not in lfirst:
                return _MISSING
            return None if element in repeated else lfirst[element]

        shared = iter([e for e, _ in rhs if e in lfirst])
        next_shared = next(shared, None)
        done: set[PathElement] = set()
        out: list[Any] = []

        def emit(element: PathElement, left_item: Any, right_item: Any) -> None:
            out.append(self.merge(left_item, right_item, (*path, element), fpath, True))

        i = j = 0
        while i < len(lhs) or j < len(rhs):
            if i < len(lhs) and j < len(rhs):
                element = lhs[i][0]
                if element == rhs[j][0]:
                    done.add(element)
                    emit(element, live(element), rmap[element])
                    i, j = i + 1, j + 1
                    next_shared = next(shared, None)
                    continue
                if element in rmap and next_shared is not None and next_shared != element:
                    i += 1  # a shared item, placed when the config reaches it
                    continue
            if i < len(lhs):
                element = lhs[i][0]
                if element not in rmap:
                    emit(element, lhs[i][1], _MISSING)
                    i += 1
                    continue
                if element in done:
                    i += 1
            if j < len(rhs):
                element = rhs[j][0]
                done.add(element)
                emit(element, live(element), rmap[element])
                j += 1
                if next_shared is not None and next_shared == element:
                    next_shared = next(shared, None)
        return out


def _clean(value: Any) -> Any:
    """A copy of an applied value without its null members."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


# --- RemoveItems and prune ---------------------------------------------------------------------


def _trie(paths: Iterable[Path]) -> dict[PathElement, Any]:
    """Paths as nested dicts; the key None in a node marks a member."""
    root: dict[Any, Any] = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node[None] = True
    return root


def _remove_items(obj: dict[str, Any], paths: set[Path], schema: _Schema) -> dict[str, Any]:
    """typed.RemoveItems: drop each field and list item named; a map or list left empty goes too."""
    trie = _trie(paths)

    def walk(value: Any, node: dict[Any, Any], fpath: FieldPath, item: bool) -> Any:
        shape = schema.shape(fpath, item=item, values=(value,))
        if shape == "map":
            out: dict[str, Any] = {}
            for key, child in value.items():
                sub = node.get(_field(key))
                if sub is None:
                    out[key] = child
                elif None in sub:
                    continue
                else:
                    kept = walk(child, sub, (*fpath, key), False)
                    if kept is not _MISSING:
                        out[key] = kept
            return out if out else _MISSING
        if shape == "list":
            indexed = schema.index(value, fpath, (), strict=False)
            if indexed is None:
                return value
            items: list[Any] = []
            for element, child in indexed:
                sub = node.get(element)
                if sub is None:
                    items.append(child)
                elif None not in sub:
                    kept = walk(child, sub, fpath, True)
                    if kept is not _MISSING:
                        items.append(kept)
            return items if items else _MISSING
        return value

    result = walk(obj, trie, (), False)
    return {} if result is _MISSING else dict(result)


def _named(paths: set[Path]) -> set[Path]:
    """EnsureNamedFieldsAreMembers: also every field that has members below it."""
    out = set(paths)
    for path in paths:
        for depth in range(1, len(path)):
            if path[depth - 1].startswith("f:"):
                out.add(path[:depth])
    return out


def _prune(merged: dict[str, Any], last: set[Path], owned: set[Path], schema: _Schema) -> dict[str, Any]:
    """Updater.prune: remove what the applier owned last time and nobody (itself included) owns now."""
    if not last:
        return merged
    last_named, owned_named = _named(last), _named(owned)
    merged_named = _named(_field_set(merged, schema, strict=False))
    pruned = _remove_items(merged, last_named, schema)
    pruned_named = _named(_field_set(pruned, schema, strict=False))
    pruned = _remove_items(merged, merged_named - (pruned_named | owned_named), schema)
    pruned_named = _named(_field_set(pruned, schema, strict=False))
    return _remove_items(merged, (merged_named - pruned_named) & last_named, schema)


# --- Managed field entries ----------------------------------------------------------------------


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: set[Path]

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """BuildManagerIdentifier: Apply entries are one per manager whatever the apiVersion."""
        version = "" if self.operation == _APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = _encode_fields(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


_Managed = dict[tuple[str, str, str, str], _Entry]


def _decode_entries(raw: Any) -> _Managed:
    """DecodeManagedFields; raises ValueError for anything upstream would refuse."""
    if not isinstance(raw, list):
        raise ValueError("managedFields must be a list")
    managed: _Managed = {}
    for number, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"managed fields entry {number} must be an object")
        operation = item.get("operation")
        if operation not in (_APPLY, _UPDATE):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = item.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            raise ValueError("apiVersion must not be empty")
        if item.get("fieldsType") != "FieldsV1":
            raise ValueError(f"invalid fieldsType in managed fields entry {number}")
        manager, subresource, time = item.get("manager", ""), item.get("subresource", ""), item.get("time")
        if not isinstance(manager, str) or not isinstance(subresource, str) or not isinstance(time, str | None):
            raise ValueError(f"managed fields entry {number} has a field of the wrong type")
        entry = _Entry(manager, operation, api_version, subresource, time, _decode_fields(item.get("fieldsV1", {})))
        managed[entry.ident] = entry
    return managed


def _decode_lenient(obj: Mapping[str, Any] | None) -> _Managed:
    """The entries of a stored object; none if they do not decode (upstream's emptyManagedFieldsOnErr)."""
    raw = _managed_fields_of(obj)
    if raw is None:
        return {}
    try:
        return _decode_entries(raw)
    except (ValueError, TypeError):
        return {}


def _managed_fields_of(obj: Mapping[str, Any] | None) -> Any:
    meta = obj.get("metadata") if obj is not None else None
    return meta.get("managedFields") if isinstance(meta, dict) else None


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = clone_json(dict(obj))
    meta = result.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return result


@functools.lru_cache(maxsize=64)
def _seconds(time: str | None) -> int:
    # Pure, and the same few entry times (whole seconds) come back write after write: cached, bounded.
    if not time:
        return 0
    try:
        return int(datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _cap_updaters(managed: _Managed) -> None:
    """capManagersManager: fold the oldest Update entries into ``ancient-changes`` per apiVersion."""
    if len(managed) <= _MAX_UPDATE_MANAGERS:
        return  # the usual case, without counting
    if sum(1 for e in managed.values() if e.operation == _UPDATE) <= _MAX_UPDATE_MANAGERS:
        return
    updaters = sorted(
        (e for e in managed.values() if e.operation == _UPDATE and e.manager != _ANCIENT_CHANGES),
        key=lambda e: (_seconds(e.time), json.dumps(e.ident)),
    )
    count = sum(1 for e in managed.values() if e.operation == _UPDATE)
    for entry in updaters:
        if count <= _MAX_UPDATE_MANAGERS:
            break
        bucket_ident = (_ANCIENT_CHANGES, _UPDATE, entry.api_version, "")
        bucket = managed.get(bucket_ident)
        if bucket is None:
            managed[bucket_ident] = _Entry(
                _ANCIENT_CHANGES, _UPDATE, entry.api_version, "", entry.time, set(entry.fields)
            )
            count += 1
        else:
            bucket.fields |= entry.fields
            bucket.time = entry.time
        del managed[entry.ident]
        count -= 1


def _encode_entries(managed: _Managed) -> list[dict[str, Any]]:
    """sortEncodedManagedFields: by operation, time, manager, apiVersion, subresource."""
    entries = [e for e in managed.values() if e.fields]
    if len(entries) > 1:
        entries.sort(key=lambda e: (e.operation, _seconds(e.time), e.manager, e.api_version, e.subresource))
    return [e.encode() for e in entries]


def _with_managed_fields(obj: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        if not entries:
            return obj
        meta = obj["metadata"] = {}
    meta.pop("managedFields", None)
    if entries:
        meta["managedFields"] = entries
    return obj


def _keep_old_times(old: Mapping[str, Any] | None, new: dict[str, Any]) -> None:
    """IgnoreManagedFieldsTimestampsTransformer: a write whose only change is entry times keeps the old."""
    old_entries, new_entries = _managed_fields_of(old), _managed_fields_of(new)
    if old is None or not isinstance(old_entries, list) or not isinstance(new_entries, list):
        return
    if not new_entries or len(old_entries) != len(new_entries):
        return
    if not all(isinstance(e, dict) for e in old_entries):
        return
    if all(o.get("time") == n.get("time") for o, n in zip(old_entries, new_entries, strict=True)):
        return

    def timeless(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k != "time"}

    if not all(_equal(timeless(o), timeless(n)) for o, n in zip(old_entries, new_entries, strict=True)):
        return
    if not _equal(_without_managed_fields(old), _without_managed_fields(new)):
        return
    for old_entry, new_entry in zip(old_entries, new_entries, strict=True):
        rebuilt = {k: new_entry[k] for k in ("manager", "operation", "apiVersion") if k in new_entry}
        if "time" in old_entry:
            rebuilt["time"] = old_entry["time"]
        rebuilt.update({k: v for k, v in new_entry.items() if k not in rebuilt and k != "time"})
        new_entry.clear()
        new_entry.update(rebuilt)


# --- The two operations -----------------------------------------------------------------------


def _take_changes(
    managed: _Managed, changes: _Comparison, *, exempt: tuple[str, str, str, str] | None
) -> list[_Conflict]:
    """Updater.update with force: every entry but ``exempt`` loses what changed or was added under it
    (returned as conflicts) and what was removed; entries left empty go."""
    conflicts: list[_Conflict] = []
    taken = changes.modified | changes.added
    for ident, entry in list(managed.items()):
        if ident == exempt:
            continue
        lost = entry.fields & taken
        conflicts.extend(
            _Conflict(entry.manager, entry.operation, entry.api_version, entry.subresource, p) for p in lost
        )
        entry.fields -= lost | changes.removed
        if not entry.fields:
            del managed[ident]
    return conflicts


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    kind: str,
    api_version: str,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """``new`` with ``metadata.managedFields`` updated for a create (``old`` None) or an update or
    non-apply patch by ``manager``: the fields it added or changed become its own (operation
    ``Update``, one entry per manager, apiVersion and subresource), removed fields leave every entry.
    An explicit managedFields in ``new`` is honoured as the module docstring says."""
    if not manager:
        raise ValueError("record_update needs a manager name (upstream falls back to the user agent)")
    explicit = _managed_fields_of(new)
    after = _without_managed_fields(new)
    if old is None and subresource == "" and not explicit:
        shape = _shape_of(after)
        if shape is not None:  # a create of a list-free object: its fields depend on its shape alone
            encoded = _created_fields(kind, api_version, shape)
            entries = [] if encoded is None else [{
                "manager": manager, "operation": _UPDATE, "apiVersion": api_version, "time": now,
                "fieldsType": "FieldsV1", "fieldsV1": jsoncodec.loads(encoded),
            }]
            return _with_managed_fields(after, entries)
    return _recorded(old, after, explicit, manager=manager, kind=kind, api_version=api_version, now=now,
                     subresource=subresource)


def _recorded(
    old: dict[str, Any] | None, after: dict[str, Any], explicit: Any, *, manager: str, kind: str,
    api_version: str, now: str, subresource: str,
) -> dict[str, Any]:
    """record_update the general way: ``after`` is ``new`` without managedFields, ``explicit`` its
    managedFields."""
    schema = _schema_of(kind, api_version)
    managed = _decode_lenient(old)
    if subresource == "" and isinstance(explicit, list) and explicit:
        if explicit == [{}]:
            managed = {}
        else:
            try:
                decoded = _decode_entries(explicit)
            except (ValueError, TypeError):
                decoded = {}
            if decoded:
                managed = decoded
    before = _without_managed_fields(old) if old is not None else {}
    prefixes = _reset_prefixes(subresource)
    changes = _compare(before, after, schema).filtered(prefixes)
    _take_changes(managed, changes, exempt=None)
    gained = _strip(changes.modified | changes.added)
    if gained:
        ident = (manager, _UPDATE, api_version, subresource)
        previous = managed.get(ident)
        fields = gained | (previous.fields if previous is not None else set())
        managed[ident] = _Entry(manager, _UPDATE, api_version, subresource, now, fields)
    _cap_updaters(managed)
    result = _with_managed_fields(after, _encode_entries(managed))
    _keep_old_times(old, result)
    return result


Shape = tuple[Any, ...]


# A shape is cached only while its keys fit this budget (each key costs its length + 16): the cache
# then holds under 2 MB however large the objects written (a small ConfigMap's shape: ~100 bytes).
_SHAPE_BUDGET = 2048


def _shape_of(obj: Mapping[str, Any]) -> Shape | None:
    """What a create's fields depend on when ``obj`` holds no list: its keys, nested as its objects are
    (a scalar member is its key, an object member is (key, shape)); None if a list (or any value that
    is not a plain JSON object or scalar) is anywhere in it, or if its keys exceed ``_SHAPE_BUDGET``.

    Scalars' values do not matter to the fields of a create (every scalar is a leaf, added) and list
    items would (their keys), hence the refusal. Exact class tests, no isinstance calls: this runs
    for every create, also those (with lists) it gives up on."""
    shape, budget = _walk_shape(obj, _SHAPE_BUDGET)
    return shape if budget >= 0 else None


def _walk_shape(node: Mapping[str, Any], budget: int) -> tuple[Shape | None, int]:
    """``node``'s shape (None: it holds a list or another value that is no JSON object or scalar) and
    the budget left. A module function, not a closure over ``budget``: a recursive closure is a
    reference cycle (function -> cell -> function), garbage only the cyclic collector frees, made per
    create (it was all of a master's cyclic garbage under write load)."""
    parts: list[Any] = []
    for key, value in node.items():
        budget -= len(key) + 16
        cls = value.__class__
        if cls is dict:
            inner, budget = _walk_shape(value, budget)
            if inner is None:
                return None, budget
            parts.append((key, inner))
        elif cls is str or value is None or cls is int or cls is bool or cls is float:
            parts.append(key)
        else:
            return None, budget
    return (tuple(parts) if budget >= 0 else None), budget


def _from_shape(shape: Shape) -> dict[str, Any]:
    """An object of ``shape`` whose scalars are all null."""
    obj: dict[str, Any] = {}
    for part in shape:
        if isinstance(part, str):
            obj[part] = None
        else:
            obj[part[0]] = _from_shape(part[1])
    return obj


@functools.lru_cache(maxsize=128)
def _created_fields(kind: str, api_version: str, shape: Shape) -> bytes | None:
    """The fieldsV1 (JSON) a create of an object of this shape gives its manager; None if empty.

    Pure: computed the general way from an object of that shape whose scalars are all null. Bounded
    (128 kinds and shapes seen lately, each within ``_SHAPE_BUDGET``; not per object); callers get a
    fresh decoded copy."""
    schema = _schema_of(kind, api_version)
    changes = _compare({}, _from_shape(shape), schema).filtered(_reset_prefixes(""))
    gained = _strip(changes.modified | changes.added)
    return jsoncodec.dumps(_encode_fields(gained)) if gained else None


def _check_config(config: Any, *, manager: str, kind: str, api_version: str) -> dict[str, Any]:
    if not manager:
        raise ApplyError(
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            code=422,
        )
    if not isinstance(config, dict):
        raise ApplyError("the applied configuration must be a JSON object")
    given = (str(config.get("apiVersion", "")), str(config.get("kind", "")))
    if given != (api_version, kind):
        group, _, version = given[0].rpartition("/")
        raise ApplyError(f"invalid object type: {group}/{version}, Kind={given[1]}")
    meta = config.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise ApplyError("metadata.managedFields must be nil")
    return config


def _describe(config: dict[str, Any], kind: str, api_version: str) -> str:
    """objectGVKNN: ``namespace/name; group/version, Kind=kind``."""
    meta = config.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    group, _, version = api_version.rpartition("/")
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}; {group}/{version}, Kind={kind}"


def _allowed_by_last_applied(live: dict[str, Any], schema: _Schema) -> set[Path]:
    """lastAppliedManager: the fields of the last-applied annotation whose values the live object still has."""
    meta = live.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    text = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(text, str) or not text:
        return set()
    try:
        last_applied = json.loads(text)
        if not isinstance(last_applied, dict):
            return set()
        fields = _field_set(last_applied, schema, strict=True)
    except (ValueError, _Invalid):
        return set()
    differences = _compare(last_applied, live, schema)
    return fields - differences.modified - differences.added - differences.removed


def _last_applied_text(config: dict[str, Any]) -> str:
    """buildLastApplied: the config without the annotation, as Go's JSON encoder writes it."""
    value = clone_json(config)
    meta = value.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED_ANNOTATION, None)
    return _go_json(value) + "\n"


def server_side_apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    kind: str,
    api_version: str,
    now: str,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live`` (None: the object does not exist
    yet and is created from ``config``), with managedFields updated. Raises :class:`ApplyConflict`
    (409) when other managers own fields it would change and ``force`` is false, and
    :class:`ApplyError` for a config upstream refuses (``code`` 400, 422, or 500 for a list item
    without its key or a repeated key, as upstream's "failed to create typed patch object")."""
    config = _check_config(config, manager=manager, kind=kind, api_version=api_version)
    schema = _schema_of(kind, api_version)
    try:
        applied = _filter(_field_set(config, schema, strict=True), _reset_prefixes(""))
    except _Invalid as e:
        where = _path_string(e.path)
        raise ApplyError(
            f"failed to create typed patch object ({_describe(config, kind, api_version)}): "
            f"{where + ': ' if where else ''}{e.detail}",
            code=500,
        ) from None
    base = _without_managed_fields(live) if live is not None else {}
    try:
        result, managed, changed = _apply(
            base, config, applied, _decode_lenient(live), schema, manager, api_version, force
        )
    except ApplyConflict as conflict:
        if manager != _KUBECTL_MANAGER or force:
            raise
        allowed = _allowed_by_last_applied(base, schema)
        if not conflict.paths() <= allowed:
            raise
        result, managed, changed = _apply(
            base, config, applied, _decode_lenient(live), schema, manager, api_version, True
        )
    ident = (manager, _APPLY, "", "")
    if changed and ident in managed:
        managed[ident].time = now
    _cap_updaters(managed)
    if manager == _KUBECTL_MANAGER:
        annotations = result.get("metadata", {}).get("annotations")
        if isinstance(annotations, dict) and annotations.get(LAST_APPLIED_ANNOTATION):
            annotations[LAST_APPLIED_ANNOTATION] = _last_applied_text(config)
    result = _with_managed_fields(result, _encode_entries(managed))
    _keep_old_times(live, result)
    return result


def _apply(
    live: dict[str, Any],
    config: dict[str, Any],
    applied: set[Path],
    managed: _Managed,
    schema: _Schema,
    manager: str,
    api_version: str,
    force: bool,
) -> tuple[dict[str, Any], _Managed, bool]:
    """Updater.Apply: merge, set the applier's fields, prune, then take changed fields from others."""
    ident = (manager, _APPLY, "", "")
    previous = managed.get(ident)
    last = previous.fields if previous is not None else set()
    managed[ident] = _Entry(manager, _APPLY, api_version, "", previous.time if previous else None, set(applied))
    merged = _Merger(schema).merge_map(live, config, (), ())
    owned: set[Path] = set().union(*(e.fields for e in managed.values()))
    merged = _prune(merged, last, owned, schema)
    changes = _compare(live, merged, schema).filtered(_reset_prefixes(""))
    trial = {
        k: _Entry(e.manager, e.operation, e.api_version, e.subresource, e.time, set(e.fields))
        for k, e in managed.items()
    }
    conflicts = _take_changes(trial, changes, exempt=ident)
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    managed = trial
    entry = managed[ident]
    entry.fields = _strip(entry.fields)
    if not entry.fields:
        del managed[ident]
    return merged, managed, not _equal(live, merged)
