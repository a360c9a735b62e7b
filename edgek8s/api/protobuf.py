"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), decoded to the JSON dict.

kubectl 1.32's typed clients (``create namespace|deployment|job|cronjob|configmap|secret|service``,
``expose``, ``create job --from``...) send writes as protobuf. The wire form is the 4-byte magic
``k8s\\x00`` then a ``runtime.Unknown`` envelope {typeMeta{apiVersion, kind}, raw, contentEncoding,
contentType} whose ``raw`` is the object's own message. The decoder walks the generated field table
(``model/protobuf_fields.py``) and yields exactly the dict the JSON path would have parsed, so the rest
of the API (field validation, strategies, the store) never knows the body was protobuf.

JSON semantics upstream's Go structs give and proto2 alone does not:
- gogo-protobuf writes every non-pointer field, even empty; a zero value of an ``omitempty`` field is
  left out, as ``encoding/json`` would. A pointer field on the wire was set: it stays, even at zero
  (``replicas: 0``, ``suspend: false``). A non-pointer struct stays even when empty (``resources: {}``).
- Embedded structs tagged ``json:",inline"`` (``Volume.volumeSource``) are merged into their parent.
- Types with their own JSON form: Time (RFC 3339, seconds; zero means absent), MicroTime (microseconds),
  Quantity (its string), IntOrString (int or string), FieldsV1/RawExtension (embedded JSON), bytes (base64).
- Maps are repeated entry messages {1: key, 2: value}.
Unknown field numbers are skipped, as upstream's decoder does. Malformed input raises ProtobufError
(the caller answers 400) and never yields a partial object.
"""

from __future__ import annotations

import base64
import datetime
import struct
from collections.abc import Callable, Iterator
from typing import Any

from edgek8s.model import jsoncodec
from edgek8s.model.protobuf_fields import INLINE, MESSAGES, OMITEMPTY, POINTER, REPEATED
from edgek8s.model.timestamps import format_time

MAGIC = b"k8s\x00"
_MAX_DEPTH = 64
_MASK64 = (1 << 64) - 1
_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# API group -> the proto package segment of k8s.io.api.<segment>.<version>
_GROUP_PACKAGES = {
    "": "core", "apps": "apps", "batch": "batch", "coordination.k8s.io": "coordination",
    "discovery.k8s.io": "discovery", "policy": "policy", "autoscaling": "autoscaling",
    "rbac.authorization.k8s.io": "rbac", "networking.k8s.io": "networking",
    "authorization.k8s.io": "authorization", "authentication.k8s.io": "authentication",
    "scheduling.k8s.io": "scheduling",
}

Field = tuple[int, int, "int | bytes"]


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf object."""


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object of a ``k8s\\x00``-prefixed body; ProtobufError when it is not one."""
    if not body.startswith(MAGIC):
        raise ProtobufError('the body does not start with the "k8s\\x00" protobuf prefix')
    type_meta: dict[str, Any] = {}
    raw = b""
    for number, _wire, value in _fields(body[len(MAGIC):]):
        if number == 1 and isinstance(value, bytes):
            type_meta = _message(value, "k8s.io.apimachinery.pkg.runtime.TypeMeta", 1)
        elif number == 2 and isinstance(value, bytes):
            raw = value
        elif number == 3 and value:
            raise ProtobufError(f"unsupported contentEncoding {_string(value)!r}")
    api_version, kind = str(type_meta.get("apiVersion", "")), str(type_meta.get("kind", ""))
    message = _message_for(api_version, kind)
    return {"apiVersion": api_version, "kind": kind, **_message(raw, message, 1)}


def decode_to_json(body: bytes) -> bytes:
    return jsoncodec.dumps(decode_object(body))


def _message_for(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    if kind == "DeleteOptions":
        return _META + "DeleteOptions"
    package = _GROUP_PACKAGES.get(group)
    name = f"k8s.io.api.{package}.{version}.{kind}"
    if package is None or not kind or name not in MESSAGES:
        raise ProtobufError(f"no protobuf message is known for kind {kind!r} in version {api_version!r}")
    return name


# --- the wire -----------------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[Field]:
    """(field number, wire type, value) per field: an int for varint/fixed, bytes for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > end:
                raise ProtobufError(f"truncated fixed{size * 8} field {number}")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ProtobufError(f"field {number} is longer than its message")
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ProtobufError(f"unsupported wire type {wire} in field {number}")
        yield number, wire, value


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _string(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise ProtobufError("a string field is not valid UTF-8") from None


def _int(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise ProtobufError("expected a number, found a length-delimited field")
    return value


_SCALARS: dict[str, Callable[[int | bytes], Any]] = {
    "string": _string,
    "bytes": lambda v: base64.b64encode(v).decode() if isinstance(v, bytes) else _string(v),
    "bool": lambda v: _int(v) != 0,
    # Negative int32/int64 are 10-byte two's-complement varints; bits past 64 are dropped, as Go does.
    "int32": lambda v: _signed(_int(v) & _MASK64, 64),
    "int64": lambda v: _signed(_int(v) & _MASK64, 64),
    "uint32": _int,
    "uint64": _int,
    "sint32": lambda v: (_int(v) >> 1) ^ -(_int(v) & 1),
    "sint64": lambda v: (_int(v) >> 1) ^ -(_int(v) & 1),
    "fixed32": _int,
    "fixed64": _int,
    "sfixed32": lambda v: _signed(_int(v), 32),
    "sfixed64": lambda v: _signed(_int(v), 64),
    "double": lambda v: struct.unpack("<d", _int(v).to_bytes(8, "little"))[0],
    "float": lambda v: struct.unpack("<f", _int(v).to_bytes(4, "little"))[0],
}
_PACKED_WIRE = {"double": 1, "fixed64": 1, "sfixed64": 1, "float": 5, "fixed32": 5, "sfixed32": 5}


def _unpacked(ptype: str, value: bytes) -> list[Any]:
    """A packed repeated scalar (proto3 style; gogo's proto2 output never packs, but a decoder accepts it)."""
    wire = _PACKED_WIRE.get(ptype, 0)
    items: list[Any] = []
    pos = 0
    while pos < len(value):
        if wire == 0:
            raw, pos = _varint(value, pos)
        else:
            size = 8 if wire == 1 else 4
            if pos + size > len(value):
                raise ProtobufError("truncated packed field")
            raw, pos = int.from_bytes(value[pos:pos + size], "little"), pos + size
        items.append(_SCALARS[ptype](raw))
    return items


# --- messages -----------------------------------------------------------------------------------------


def _special_fields(buf: bytes) -> dict[int, int | bytes]:
    return {number: value for number, _wire, value in _fields(buf)}


def _time(buf: bytes, *, micro: bool) -> str | None:
    fields = _special_fields(buf)
    seconds, nanos = _signed(_int(fields.get(1, 0)), 64), _signed(_int(fields.get(2, 0)), 64)
    if not seconds and not nanos:
        return None  # Go's zero time: JSON null, i.e. absent
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise ProtobufError(f"time out of range: {seconds} s") from None
    if not micro:
        return format_time(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


def _embedded_json(buf: bytes) -> Any:
    raw = _special_fields(buf).get(1, b"")
    if not isinstance(raw, bytes) or not raw:
        return None
    try:
        return jsoncodec.loads(raw)
    except ValueError:
        raise ProtobufError("an embedded FieldsV1/RawExtension is not JSON") from None


def _int_or_string(buf: bytes) -> int | str:
    fields = _special_fields(buf)
    if _int(fields.get(1, 0)) == 1:
        return _string(fields.get(3, b""))
    return int(_SCALARS["int32"](fields.get(2, 0)))


_SPECIAL: dict[str, Callable[[bytes], Any]] = {
    _META + "Time": lambda b: _time(b, micro=False),
    _META + "MicroTime": lambda b: _time(b, micro=True),
    _META + "FieldsV1": _embedded_json,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda b: _string(_special_fields(b).get(1, b"")),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
}


def _value(ptype: str, ref: str, value: int | bytes, depth: int) -> Any:
    if ptype == "message":
        if not isinstance(value, bytes):
            raise ProtobufError(f"expected an embedded {ref.rsplit('.', 1)[-1]} message")
        return _message(value, ref, depth + 1)
    return _SCALARS[ptype](value)


def _map_entry(buf: bytes, key_type: str, value_type: str, depth: int) -> tuple[Any, Any]:
    key: Any = "" if key_type == "string" else 0
    value: Any = None
    for number, _wire, raw in _fields(buf):
        if number == 1:
            key = _SCALARS[key_type](raw)
        elif number == 2:
            value = (_value("message", value_type, raw, depth) if value_type in MESSAGES
                     else _SCALARS[value_type](raw))
    if value is None:
        value = {} if value_type in MESSAGES else _SCALARS[value_type](b"" if value_type in ("string", "bytes") else 0)
    return key, value


def _message(buf: bytes, name: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ProtobufError(f"messages nested deeper than {_MAX_DEPTH}")
    special = _SPECIAL.get(name)
    if special is not None:
        return special(buf)
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        spec = table.get(number)
        if spec is None:
            continue
        json_name, ptype, flags, ref = spec
        if ptype.startswith("map:"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"{json_name}: a map entry must be length-delimited")
            key, item = _map_entry(value, ptype[4:], ref, depth + 1)
            out.setdefault(json_name, {})[key] = item
        elif flags & REPEATED:
            items = out.setdefault(json_name, [])
            if wire == 2 and ptype in _SCALARS and ptype not in ("string", "bytes") and isinstance(value, bytes):
                items.extend(_unpacked(ptype, value))
            else:
                items.append(_value(ptype, ref, value, depth))
        elif flags & INLINE:
            out.update(_value(ptype, ref, value, depth))
        else:
            out[json_name] = _value(ptype, ref, value, depth)
    for json_name, ptype, flags, _ref in table.values():
        if json_name in out and _omitted(out[json_name], ptype, flags):
            del out[json_name]
    return out


def _omitted(value: Any, ptype: str, flags: int) -> bool:
    """What encoding/json leaves out: null (zero Time), and zero values of non-pointer omitempty fields."""
    if value is None:
        return True
    if flags & POINTER or not flags & OMITEMPTY or ptype == "message":
        return False
    return value in ("", 0, False, [], {})  # 0 == False, so every zero scalar and empty collection
