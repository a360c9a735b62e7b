"""The three Kubernetes PATCH formats, applied to a decoded object: JSON Patch, JSON merge patch, strategic merge patch.

Role: the API server reads the current object, calls :func:`apply_patch` with the request body and its
content type, and writes the result back with a resourceVersion precondition, so a patch is always
applied to the exact revision it will replace. This module only computes that result.

- ``application/json-patch+json`` -> :func:`json_patch` (RFC 6902, JSON Pointer per RFC 6901);
- ``application/merge-patch+json`` -> :func:`json_merge_patch` (RFC 7386);
- ``application/strategic-merge-patch+json`` -> :func:`strategic_merge_patch`, following upstream's
  ``k8s.io/apimachinery/pkg/util/strategicpatch`` (``StrategicMergeMapPatch``, as the API server calls it):
  maps merge recursively and ``null`` deletes a key; a list is replaced whole unless the field has
  ``patchStrategy: merge``, in which case lists of primitives are unioned and lists of objects are merged
  item by item on their ``patchMergeKey``; the directives ``$patch`` (replace/delete), ``$retainKeys``,
  ``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>`` are honoured. Which fields merge,
  and on which key, comes from ``_KIND_LISTS``: a table per (group, kind) of paths from the object root,
  transcribed from the ``patchStrategy``/``patchMergeKey`` tags of k8s.io/api. A kind missing from the
  table has no merging lists: every list is replaced, as in a merge patch, and directives still apply.

Invariants:
- pure: standard library only, no I/O, no clock, no randomness; the same inputs give the same output;
- inputs are never mutated, and the result shares no mutable value with them;
- the result is always a JSON object (a ``dict``), and a strategic merge result holds no directive keys;
- every failure is a :class:`PatchError` (a ``ValueError``) whose message starts "the patch is invalid: "
  and whose ``code`` is the HTTP status to answer with: 400 for a malformed patch, 415 for an unknown
  content type, 422 for a well-formed patch that cannot apply (upstream's choices).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = ["PATCH_TYPES", "PatchError", "apply_patch", "json_merge_patch", "json_patch", "strategic_merge_patch"]

PATCH_TYPES: dict[str, str] = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}


class PatchError(ValueError):
    """A patch that cannot be applied; ``str()`` is a message for a ``Status``, ``code`` its HTTP status."""

    def __init__(self, detail: str, *, code: int = 400) -> None:
        super().__init__(f"the patch is invalid: {detail}")
        self.detail = detail
        self.code = code


Path = tuple[str, ...]
_ABSENT: Any = object()


@contextmanager
def _nesting_guard() -> Iterator[None]:
    try:
        yield
    except RecursionError:
        raise PatchError("the patch or the object is nested too deeply") from None


# --- JSON values -------------------------------------------------------------------------------


def clone_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars): faster than copy.deepcopy."""
    # Scalars are returned as they are: recursing only into containers saves a call per leaf. (A tuple,
    # not `dict | list`: isinstance with a union type is several times slower on Python 3.11.)
    if isinstance(value, dict):
        return {k: clone_json(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [clone_json(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, ``true`` is not ``1``, objects ignore member order."""
    kind = _json_kind(a)
    if kind != _json_kind(b):
        return False
    if kind == "object":
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if kind == "array":
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- JSON merge patch (RFC 7386) --------------------------------------------------------------


def json_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 7386: members of ``patch`` replace those of ``target``, objects merge, ``null`` deletes."""
    if not isinstance(patch, dict):
        raise PatchError(f"a merge patch must be a JSON object, not {_json_kind(patch)}")
    with _nesting_guard():
        result: dict[str, Any] = _merge_patch_into(clone_json(target), patch)
    return result


def _merge_patch_into(target: Any, patch: Any) -> Any:
    """Merge ``patch`` into ``target``, which the caller owns and may be reused."""
    if not isinstance(patch, dict):
        return clone_json(patch)
    result = target if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge_patch_into(result.get(name), value)
    return result


# --- JSON Patch (RFC 6902) ---------------------------------------------------------------------


class _OperationError(Exception):
    """One operation failed; :func:`json_patch` adds which one."""


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902: apply ``operations`` in order, all or nothing; a failed ``test`` fails the whole patch."""
    if not isinstance(operations, list):
        raise PatchError(f"a JSON patch must be a JSON array of operations, not {_json_kind(operations)}")
    with _nesting_guard():
        document: Any = clone_json(target)
        for number, operation in enumerate(operations):
            document = _apply_operation(document, operation, number)
    if not isinstance(document, dict):
        raise PatchError(f"the patched document must be a JSON object, not {_json_kind(document)}", code=422)
    return document


def _apply_operation(document: Any, operation: Any, number: int) -> Any:
    if not isinstance(operation, dict):
        raise PatchError(f"operation {number} must be a JSON object, not {_json_kind(operation)}")
    op = operation.get("op")
    handler = _OPERATIONS.get(op) if isinstance(op, str) else None
    if handler is None:
        raise PatchError(f"operation {number} has an unknown op {op!r}", code=422)
    try:
        return handler(document, operation)
    except _OperationError as e:
        raise PatchError(f"operation {number} ({op} {operation.get('path')!r}): {e}", code=422) from None


def _pointer(operation: dict[str, Any], member: str) -> list[str]:
    """Parse the JSON Pointer (RFC 6901) in ``operation[member]`` into reference tokens."""
    text = operation.get(member)
    if not isinstance(text, str):
        raise _OperationError(f"{member!r} must be a JSON Pointer string")
    if text == "":
        return []
    if not text.startswith("/"):
        raise _OperationError(f"{member!r} {text!r} is not a JSON Pointer: it must be empty or start with '/'")
    return [_unescape(token, text) for token in text[1:].split("/")]


def _unescape(token: str, pointer: str) -> str:
    stripped = token.replace("~0", "").replace("~1", "")
    if "~" in stripped:
        raise _OperationError(f"{pointer!r} has a '~' not followed by '0' or '1'")
    return token.replace("~1", "/").replace("~0", "~")


def _value(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise _OperationError("the operation has no 'value'")
    return operation["value"]


def _array_index(token: str, bound: int) -> int:
    """The array index ``token`` names, which must be below ``bound``."""
    if token == "-":
        raise _OperationError("'-' names the element after the last, which does not exist")
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise _OperationError(f"{token!r} is not an array index")
    index = int(token)
    if index >= bound:
        raise _OperationError(f"array index {index} is out of range")
    return index


def _get(document: Any, tokens: list[str]) -> Any:
    current = document
    for token in tokens:
        if isinstance(current, dict):
            if token not in current:
                raise _OperationError(f"the member {token!r} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(token, len(current))]
        else:
            raise _OperationError(f"cannot look up {token!r} in a {_json_kind(current)}")
    return current


def _container(document: Any, tokens: list[str]) -> dict[str, Any] | list[Any]:
    parent = _get(document, tokens[:-1])
    if not isinstance(parent, dict | list):
        raise _OperationError(f"the parent of the target is a {_json_kind(parent)}, not an object or array")
    return parent


def _add(document: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, token = _container(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value
    else:
        parent.insert(len(parent) if token == "-" else _array_index(token, len(parent) + 1), value)
    return document


def _remove(document: Any, tokens: list[str]) -> Any:
    """Remove and return the value at ``tokens``."""
    if not tokens:
        raise _OperationError("cannot remove the whole document")
    parent, token = _container(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _OperationError(f"the member {token!r} does not exist")
        return parent.pop(token)
    return parent.pop(_array_index(token, len(parent)))


def _op_add(document: Any, operation: dict[str, Any]) -> Any:
    return _add(document, _pointer(operation, "path"), clone_json(_value(operation)))


def _op_remove(document: Any, operation: dict[str, Any]) -> Any:
    _remove(document, _pointer(operation, "path"))
    return document


def _op_replace(document: Any, operation: dict[str, Any]) -> Any:
    tokens, value = _pointer(operation, "path"), clone_json(_value(operation))
    if not tokens:
        return value
    parent, token = _container(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _OperationError(f"the member {token!r} does not exist")
        parent[token] = value
    else:
        parent[_array_index(token, len(parent))] = value
    return document


def _op_move(document: Any, operation: dict[str, Any]) -> Any:
    source, tokens = _pointer(operation, "from"), _pointer(operation, "path")
    if source == tokens:
        _get(document, source)  # the source must still exist
        return document
    if tokens[: len(source)] == source:
        raise _OperationError("cannot move a value into one of its own children")
    return _add(document, tokens, _remove(document, source))


def _op_copy(document: Any, operation: dict[str, Any]) -> Any:
    value = clone_json(_get(document, _pointer(operation, "from")))
    return _add(document, _pointer(operation, "path"), value)


def _op_test(document: Any, operation: dict[str, Any]) -> Any:
    expected = _value(operation)
    actual = _get(document, _pointer(operation, "path"))
    if not _json_equal(actual, expected):
        raise _OperationError(f"test failed: the value is {json.dumps(actual)}, not {json.dumps(expected)}")
    return document


_OPERATIONS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}


# --- Strategic merge patch: which lists merge, per kind ----------------------------------------
#
# Path (dotted, from the object root; list items add no step) -> patchMergeKey; "" marks a list of
# primitives with patchStrategy merge. A path not listed is a map (merged) or an atomic list (replaced).
# patchStrategy retainKeys (Deployment spec.strategy, PodSpec volumes) needs no entry: it only tells
# clients when to send $retainKeys, and the server honours $retainKeys wherever it appears.

_CONTAINER_LISTS = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath"}
_POD_SPEC_LISTS = {
    "volumes": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "schedulingGates": "name",
    "resourceClaims": "name",
}
_POD_STATUS_LISTS = {"conditions": "type", "podIPs": "ip", "hostIPs": "ip", "resourceClaimStatuses": "name"}
_OBJECT_META_LISTS = {"metadata.finalizers": "", "metadata.ownerReferences": "uid"}
_STATUS_CONDITIONS = {"status.conditions": "type"}


def _under(prefix: str, lists: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}.{field}": key for field, key in lists.items()}


def _pod_spec(prefix: str) -> dict[str, str]:
    table = _under(prefix, _POD_SPEC_LISTS)
    for field in ("containers", "initContainers", "ephemeralContainers"):
        table[f"{prefix}.{field}"] = "name"
        table.update(_under(f"{prefix}.{field}", _CONTAINER_LISTS))
    return table


def _workload(template_spec: str) -> dict[str, str]:
    return {**_pod_spec(template_spec), **_STATUS_CONDITIONS}


_KIND_LISTS: dict[tuple[str, str], dict[str, str]] = {
    ("", "Pod"): {**_pod_spec("spec"), **_under("status", _POD_STATUS_LISTS)},
    ("", "PodTemplate"): _pod_spec("template.spec"),
    ("", "ReplicationController"): _workload("spec.template.spec"),
    ("apps", "Deployment"): _workload("spec.template.spec"),
    ("apps", "ReplicaSet"): _workload("spec.template.spec"),
    ("apps", "DaemonSet"): _workload("spec.template.spec"),
    ("apps", "StatefulSet"): _workload("spec.template.spec"),
    ("batch", "Job"): _workload("spec.template.spec"),
    ("batch", "CronJob"): _pod_spec("spec.jobTemplate.spec.template.spec"),
    ("", "Service"): {"spec.ports": "port", **_STATUS_CONDITIONS},
    ("", "Endpoints"): {},  # subsets and their addresses/ports are atomic
    ("", "ConfigMap"): {},
    ("", "Secret"): {},
    ("", "ServiceAccount"): {"secrets": "name"},
    ("", "Namespace"): dict(_STATUS_CONDITIONS),
    ("", "Node"): {"spec.podCIDRs": "", "status.conditions": "type", "status.addresses": "type"},
    ("", "Event"): {},
    ("events.k8s.io", "Event"): {},
    ("coordination.k8s.io", "Lease"): {},
    # Rules, subjects, Ingress rules and TLS, NetworkPolicy peers and ports: all atomic upstream.
    **{("rbac.authorization.k8s.io", k): {} for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    **{("networking.k8s.io", k): {} for k in ("Ingress", "IngressClass", "NetworkPolicy")},
}

_MERGE_KEYS: dict[tuple[str, str], dict[Path, str]] = {
    group_kind: {tuple(path.split(".")): key for path, key in {**_OBJECT_META_LISTS, **lists}.items()}
    for group_kind, lists in _KIND_LISTS.items()
}


def _merge_keys(kind: str, api_version: str) -> Mapping[Path, str]:
    group = api_version.rpartition("/")[0]
    return _MERGE_KEYS.get((group, kind), {})


# --- Strategic merge patch: the merge ----------------------------------------------------------

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: dict[str, Any], patch: Any, kind: str, api_version: str) -> dict[str, Any]:
    """Upstream's strategic merge patch of ``patch`` into ``target``, an object of ``kind`` in ``api_version``."""
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, not {_json_kind(patch)}")
    with _nesting_guard():
        return _StrategicMerge(_merge_keys(kind, api_version)).merge_map(clone_json(target), patch, ())


def _is_directive(key: str) -> bool:
    return key in (_DIRECTIVE, _RETAIN_KEYS) or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES))


def _directive_field(key: str, prefix: str) -> str:
    field = key[len(prefix) :]
    if not field:
        raise PatchError(f"{key!r} names no field")
    return field


def _dotted(path: Path) -> str:
    return ".".join(path) or "<root>"


def _key_of(item: Any, merge_key: str) -> Any:
    """What identifies a list item: its merge key's value for objects, the item itself for primitives."""
    if not merge_key:
        return item
    if not isinstance(item, dict) or merge_key not in item:
        raise PatchError(f"a list item {json.dumps(item)} has no merge key {merge_key!r}")
    return item[merge_key]


def _position(order: list[Any], item: Any, merge_key: str) -> int:
    """Index of the first element of ``order`` identified like ``item``, or -1."""
    wanted = _key_of(item, merge_key)
    for index, candidate in enumerate(order):
        if _json_equal(_key_of(candidate, merge_key), wanted):
            return index
    return -1


def _partition(items: list[Any], order: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into those ``order`` names and the rest, keeping relative order."""
    named: list[Any] = []
    rest: list[Any] = []
    for item in items:
        (named if _position(order, item, merge_key) >= 0 else rest).append(item)
    return named, rest


def _sorted_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    """Stable sort by position in ``order``; items ``order`` does not name go last."""

    def rank(item: Any) -> int:
        position = _position(order, item, merge_key)
        return position if position >= 0 else len(order)

    return sorted(items, key=rank)


def _interleave(server_only: list[Any], patched: list[Any], server_order: list[Any], merge_key: str) -> list[Any]:
    """Upstream's mergeSortedSlice: keep both lists' relative order; a server-only item goes first only
    when both it and the next patched item are in ``server_order`` and it is earlier there (so items new
    to the list are placed before the server-only items that follow them)."""
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(patched):
        left = _position(server_order, server_only[i], merge_key)
        right = _position(server_order, patched[j], merge_key)
        if 0 <= left < right:
            result.append(server_only[i])
            i += 1
        else:
            result.append(patched[j])
            j += 1
    return result + server_only[i:] + patched[j:]


def _ordered(items: list[Any], order: list[Any], server_order: list[Any], merge_key: str) -> list[Any]:
    """Upstream's normalizeElementOrder: items named by ``order`` in that order, the others in
    ``server_order``, interleaved."""
    named, rest = _partition(items, order, merge_key)
    return _interleave(
        _sorted_by(rest, server_order, merge_key), _sorted_by(named, order, merge_key), server_order, merge_key
    )


def _element_kind(*lists: list[Any]) -> str:
    kinds = {_json_kind(item) for items in lists for item in items}
    if "array" in kinds:
        raise PatchError("lists of lists cannot be merged")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {sorted(kinds)}")
    return kinds.pop() if kinds else "empty"


def _dedupe(items: list[Any]) -> list[Any]:
    unique: list[Any] = []
    for item in items:
        if not any(_json_equal(item, seen) for seen in unique):
            unique.append(item)
    return unique


def _validate_order(patch_list: list[Any], order: list[Any], merge_key: str, field: str) -> None:
    """Upstream's validatePatchWithSetOrderList: the patch's items (deletions and directive items aside)
    must appear in ``$setElementOrder`` in the same relative order."""
    items = [item for item in patch_list if not (isinstance(item, dict) and _DIRECTIVE in item)]
    position = 0
    for item in items:
        wanted = _key_of(item, merge_key)
        while position < len(order) and not _json_equal(_key_of(order[position], merge_key), wanted):
            position += 1
        if position == len(order):
            raise PatchError(f"the order of the items of {field!r} does not match its $setElementOrder list")
        position += 1


class _StrategicMerge:
    """One strategic merge: ``merge_map`` mutates the original it is given (a private copy), and copies
    whatever it takes from the patch, so the patch is never mutated nor shared."""

    def __init__(self, merge_keys: Mapping[Path, str]) -> None:
        self._merge_keys = merge_keys

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], path: Path) -> dict[str, Any]:
        if _DIRECTIVE in patch:
            return self._map_directive(patch, path)
        self._retain_keys(original, patch, path)
        ordered = self._set_element_orders(original, patch, path)
        for key, value in patch.items():
            if key not in ordered and not _is_directive(key):
                self._merge_field(original, key, value, (*path, key))
        for key, value in patch.items():
            if key.startswith(_DELETE_PRIMITIVES):
                self._delete_primitives(original, _directive_field(key, _DELETE_PRIMITIVES), value, path)
        return original

    def _list_key(self, path: Path) -> str | None:
        """The merge key of the list at ``path``: "" for merged primitives, None for an atomic list."""
        return self._merge_keys.get(path)

    def _map_directive(self, patch: dict[str, Any], path: Path) -> dict[str, Any]:
        directive = patch[_DIRECTIVE]
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != _DIRECTIVE}
            return self.merge_map({}, rest, path)
        if directive == "delete":
            return {}  # upstream: the map becomes empty; its key stays
        raise PatchError(f"unknown $patch directive {directive!r} for the map at {_dotted(path)}")

    def _retain_keys(self, original: dict[str, Any], patch: dict[str, Any], path: Path) -> None:
        if _RETAIN_KEYS not in patch:
            return
        retained = patch[_RETAIN_KEYS]
        if not isinstance(retained, list) or not all(isinstance(k, str) for k in retained):
            raise PatchError(f"$retainKeys at {_dotted(path)} must be a list of field names")
        for key, value in patch.items():
            if value is not None and not _is_directive(key) and key not in retained:
                raise PatchError(f"the patch sets {key!r} at {_dotted(path)}, which its $retainKeys does not keep")
        for key in [k for k in original if k not in retained]:
            del original[key]

    def _set_element_orders(self, original: dict[str, Any], patch: dict[str, Any], path: Path) -> set[str]:
        """Merge and order each list a ``$setElementOrder`` names; returns those fields, now done."""
        done: set[str] = set()
        for key, order in patch.items():
            if not key.startswith(_SET_ORDER):
                continue
            field = _directive_field(key, _SET_ORDER)
            if not isinstance(order, list):
                raise PatchError(f"{key!r} at {_dotted(path)} must be a list")
            merge_key = self._list_key((*path, field))
            if merge_key is None or patch.get(field, []) is None:
                continue  # atomic list, or deleted: the order means nothing
            self._merge_ordered(original, field, patch.get(field, _ABSENT), order, merge_key, (*path, field))
            done.add(field)
        return done

    def _merge_ordered(
        self, original: dict[str, Any], field: str, patch_list: Any, order: list[Any], merge_key: str, path: Path
    ) -> None:
        current = original.get(field, _ABSENT)
        current = current if isinstance(current, list) else _ABSENT
        if patch_list is not _ABSENT and not isinstance(patch_list, list):
            raise PatchError(f"{_dotted(path)} must be a list")
        if patch_list is not _ABSENT:
            _validate_order(patch_list, order, merge_key, field)
        if patch_list is _ABSENT and current is _ABSENT:
            return
        if patch_list is _ABSENT:
            merged, live_order = current, current
        elif current is _ABSENT:
            merged, live_order = self._materialize_list(patch_list, path), []
        else:
            merged, live_order = self._merge_list(current, patch_list, merge_key, path)
        original[field] = _ordered(merged, order, live_order, merge_key)

    def _merge_field(self, original: dict[str, Any], key: str, value: Any, path: Path) -> None:
        if value is None:
            original.pop(key, None)
            return
        current, merge_key = original.get(key), self._list_key(path)
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = self.merge_map(current, value, path)
        elif isinstance(current, list) and isinstance(value, list) and merge_key is not None:
            original[key] = self._merge_list(current, value, merge_key, path)[0]
        else:
            original[key] = self._materialize(value, path)

    def _merge_list(
        self, current: list[Any], patch_list: list[Any], merge_key: str, path: Path
    ) -> tuple[list[Any], list[Any]]:
        """Upstream's mergeSlice for a field with patchStrategy merge. Returns the merged list and the live
        order a ``$setElementOrder`` on the field is then resolved against.

        That live order is not always ``current``: upstream deletes items in place in the live slice, and
        the items it then appends land in the freed slots, so its later ``$setElementOrder`` pass sees the
        kept items followed by as many new items as were deleted. That decides where server-only items
        (say, an injected sidecar) go when an apply both removes and adds items; upstream's own tests
        ("add map and delete map from merging list") expect it, so it is reproduced here.
        """
        if not current and not patch_list:
            return current, current
        if _element_kind(current, patch_list) != "object":
            if merge_key:
                raise PatchError(f"{_dotted(path)} must be a list of objects with the merge key {merge_key!r}")
            return _ordered(_dedupe(current + patch_list), patch_list, current, ""), current
        if not merge_key:
            raise PatchError(f"{_dotted(path)} is a list of primitives and cannot hold objects")
        kept, plain, replacement = self._apply_item_directives(current, patch_list, merge_key, path)
        if replacement is not None:
            return replacement, kept
        merged = list(kept)
        for item in plain:
            position = _position(merged, item, merge_key)
            if position < 0:
                merged.append(self.merge_map({}, item, path))
            else:
                merged[position] = self.merge_map(merged[position], item, path)
        return _ordered(merged, plain, kept, merge_key), merged[: len(current)]

    def _apply_item_directives(
        self, current: list[Any], patch_list: list[Any], merge_key: str, path: Path
    ) -> tuple[list[Any], list[Any], list[Any] | None]:
        """Upstream's mergeSliceWithSpecialElements: apply the ``$patch`` items. Returns the live items
        kept, the patch items to merge into them, and, after ``$patch: replace``, the replacement list."""
        plain: list[Any] = []
        replace = False
        for item in patch_list:
            directive = item.get(_DIRECTIVE, _ABSENT)
            if directive is _ABSENT:
                plain.append(item)
            elif directive == "delete":
                doomed = _key_of(item, merge_key)
                current = [x for x in current if not _json_equal(_key_of(x, merge_key), doomed)]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise PatchError(f"$patch: merge cannot be given for the list {_dotted(path)}")
            else:
                raise PatchError(f"unknown $patch directive {directive!r} in the list {_dotted(path)}")
        if replace:
            return current, [], [self.merge_map({}, item, path) for item in plain]
        return current, plain, None

    def _delete_primitives(self, original: dict[str, Any], field: str, doomed: Any, path: Path) -> None:
        if not isinstance(doomed, list):
            raise PatchError(f"$deleteFromPrimitiveList/{field} at {_dotted(path)} must be a list")
        current = original.get(field)
        if current is None:
            return  # nothing to delete from
        if not isinstance(current, list):
            raise PatchError(f"$deleteFromPrimitiveList/{field} at {_dotted(path)} names a field that is not a list")
        original[field] = [item for item in current if not any(_json_equal(item, d) for d in doomed)]

    def _materialize(self, value: Any, path: Path) -> Any:
        """A patch value that replaces or adds a field, as a fresh copy with directives applied."""
        if isinstance(value, dict):
            return self.merge_map({}, value, path)
        if isinstance(value, list):
            return self._materialize_list(value, path)
        return value

    def _materialize_list(self, items: list[Any], path: Path) -> list[Any]:
        kept = []
        for item in items:
            if isinstance(item, dict) and _DIRECTIVE in item:
                if item[_DIRECTIVE] not in ("delete", "replace"):
                    raise PatchError(f"unknown $patch directive {item[_DIRECTIVE]!r} in the list {_dotted(path)}")
                continue  # nothing to delete from, and a new list is its own replacement
            kept.append(self._materialize(item, path))
        return kept


# --- Dispatch ----------------------------------------------------------------------------------


def apply_patch(
    target: dict[str, Any], patch_bytes: bytes, content_type: str, *, kind: str, api_version: str
) -> dict[str, Any]:
    """Parse a PATCH request body and apply it to ``target`` by the format its content type names."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    patch_type = PATCH_TYPES.get(media_type)
    if patch_type is None:
        supported = ", ".join(PATCH_TYPES)
        raise PatchError(f"unsupported patch content type {media_type!r}; supported: {supported}", code=415)
    patch = _parse(patch_bytes, reject_duplicates=patch_type == "json")
    if patch_type == "json":
        return json_patch(target, patch)
    if patch_type == "merge":
        return json_merge_patch(target, patch)
    return strategic_merge_patch(target, patch, kind, api_version)


def _parse(body: bytes, *, reject_duplicates: bool) -> Any:
    """Decode a JSON body. RFC 6902 A.13 makes a JSON Patch with a repeated member invalid."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if reject_duplicates and len(result) != len(pairs):
            raise ValueError("an object has a repeated member name")
        return result

    try:
        return json.loads(bytes(body).decode("utf-8"), parse_constant=no_constants, object_pairs_hook=members)
    except RecursionError:
        raise PatchError("the patch is nested too deeply") from None
    except ValueError as e:  # includes UnicodeDecodeError and json.JSONDecodeError
        raise PatchError(f"the body is not valid JSON: {e}") from None
