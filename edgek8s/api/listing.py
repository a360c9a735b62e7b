"""List queries: selectors, limit/continue, and the List body assembled from stored bytes.

Objects are stored as JSON bytes, so a list body is concatenated rather than re-encoded. Pages are
ordered by (namespace, name); a continue token carries the first page's resourceVersion and the last
key served. Later pages are read from the current state (edgek8s keeps no MVCC history), but carry the
first page's resourceVersion, so a watch started from it replays every change since the first page:
an informer may see an event for something a later page already showed, never miss one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType, supported_fields
from edgek8s.model.selectors import FieldSelector, LabelSelector, SelectorError
from edgek8s.store.state import StoredObject


@dataclass(frozen=True, slots=True)
class Selection:
    labels: LabelSelector
    fields: FieldSelector

    def matches(self, obj: StoredObject) -> bool:
        if not self.labels.matches(obj.labels):
            return False
        return self.fields.empty or self.fields.matches(obj.fields)

    def predicate(self) -> Callable[[StoredObject], bool]:
        if self.labels.empty and self.fields.empty:
            return lambda _obj: True
        return self.matches


def parse_selection(rtype: ResourceType, label_selector: str, field_selector: str) -> Selection:
    try:
        labels = LabelSelector.parse(label_selector)
        fields = FieldSelector.parse(field_selector)
    except SelectorError as exc:
        raise errors.BadRequest(str(exc)) from exc
    unknown = fields.fields() - supported_fields(rtype.id)
    if unknown:
        field = sorted(unknown)[0]
        raise errors.BadRequest(f"field label not supported: {field}")
    return Selection(labels, fields)


@dataclass(frozen=True, slots=True)
class Continue:
    rv: int
    after: tuple[str, str]  # (namespace, name) of the last object served


def encode_continue(token: Continue) -> str:
    raw = json.dumps({"v": 1, "rv": token.rv, "ns": token.after[0], "name": token.after[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(value: str) -> Continue:
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode()))
        return Continue(rv=int(data["rv"]), after=(str(data["ns"]), str(data["name"])))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.BadRequest("invalid continue token") from None


def _key(obj: StoredObject) -> tuple[str, str]:
    return obj.namespace, obj.name


def paginate(
    objects: list[StoredObject], selection: Selection, *, limit: int, token: Continue | None, rv: int
) -> tuple[list[StoredObject], str, int | None, int]:
    """Select one page. Returns (items, continue, remainingItemCount, list resourceVersion)."""
    list_rv = token.rv if token is not None else rv
    start = 0
    if token is not None:
        # objects are sorted by key: binary search for the first key after the token's
        lo, hi = 0, len(objects)
        while lo < hi:
            mid = (lo + hi) // 2
            if _key(objects[mid]) <= token.after:
                lo = mid + 1
            else:
                hi = mid
        start = lo
    match = selection.predicate()
    items: list[StoredObject] = []
    position = start
    for position in range(start, len(objects)):
        obj = objects[position]
        if match(obj):
            if limit and len(items) == limit:
                remaining = sum(1 for o in objects[position:] if match(o))
                next_token = encode_continue(Continue(rv=list_rv, after=_key(items[-1])))
                return items, next_token, remaining, list_rv
            items.append(obj)
    return items, "", None, list_rv


def list_body(rtype: ResourceType, items: list[StoredObject], *, rv: int, cont: str, remaining: int | None) -> bytes:
    meta: dict[str, object] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    head = json.dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": meta})
    return head[:-1].encode() + b',"items":[' + b",".join(obj.raw for obj in items) + b"]}"
