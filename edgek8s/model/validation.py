"""Upstream-compatible validation of names, label keys/values and ObjectMeta.

Role: the single place where edgek8s decides whether a name, label,
annotation or object's metadata is acceptable, producing the same error texts
a real kube-apiserver would, so kubectl and client libraries see familiar
messages.  Reference: k8s.io/apimachinery v0.36 (Kubernetes 1.36):
pkg/util/validation, pkg/api/validate/content, pkg/api/validation/objectmeta.go
and pkg/util/validation/field.

Invariants:
- Pure: stdlib only, no I/O, no mutation of inputs.
- The ``is_*`` checks return a list of human-readable problems; an empty list
  means valid.  They never raise.
- Lengths are counted in UTF-8 bytes, as Go's ``len`` does.
- Message texts are upstream's verbatim, including upstream's split between
  "characters" (DNS names) and "bytes" (label keys and values).
- ``validate_*`` functions return ``FieldError`` values whose ``message`` is
  what ``field.Error.Error()`` prints, and whose ``type`` is the StatusCause
  reason a Status would carry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DNS1035_LABEL_MAX_LENGTH",
    "DNS1123_LABEL_MAX_LENGTH",
    "DNS1123_SUBDOMAIN_MAX_LENGTH",
    "LABEL_VALUE_MAX_LENGTH",
    "QUALIFIED_NAME_MAX_LENGTH",
    "TOTAL_ANNOTATION_SIZE_LIMIT_BYTES",
    "FieldError",
    "FieldErrorType",
    "NameValidator",
    "go_quote",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_qualified_name",
    "is_valid_label_value",
    "name_is_dns1035_label",
    "name_is_dns1123_label",
    "name_is_dns1123_subdomain",
    "validate_annotations",
    "validate_finalizers",
    "validate_labels",
    "validate_object_meta",
]

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"

# re.fullmatch gives RE2's "^...$" semantics; Python's "$" would also accept a trailing newline.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)

_FINALIZER_ORPHAN_DEPENDENTS = "orphan"
_FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"


# --- message helpers (upstream's wording) -------------------------------------------------------


def _max_len_characters(length: int) -> str:
    return f"must be no more than {length} characters"


def _max_len_bytes(length: int) -> str:
    return f"must be no more than {length} bytes"


def _regex_error(message: str, regex: str, *examples: str) -> str:
    if not examples:
        return f"{message} (regex used for validation is '{regex}')"
    quoted_examples = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {quoted_examples}regex used for validation is '{regex}')"


_LABEL_KEY_REGEX_ERROR = _regex_error(_LABEL_KEY_ERR, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")


def _byte_length(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


_GO_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(value: str) -> str:
    """Quote ``value`` the way Go's ``%q`` / ``strconv.Quote`` does (used in upstream messages)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return '"' + "".join(_go_escape_char(char) for char in value) + '"'


def _go_escape_char(char: str) -> str:
    short = _GO_SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _go_render_value(value: object) -> str:
    """Render a bad value as ``field.Error.ErrorBody`` does: %q for strings, %v for scalars, else JSON."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_format_float(value)
    try:
        rendered = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
    # encoding/json escapes these for safe embedding in HTML; reproduce so texts match.
    return (
        rendered.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _go_format_float(value: float) -> str:
    # Go's %v prints whole floats without a fractional part and switches to exponents only at 1e21.
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


# --- field errors ------------------------------------------------------------------------------


class FieldErrorType(StrEnum):
    """Machine-readable error kinds; the values are Kubernetes StatusCause reasons."""

    INVALID = "FieldValueInvalid"
    REQUIRED = "FieldValueRequired"
    TOO_LONG = "FieldValueTooLong"
    NOT_SUPPORTED = "FieldValueNotSupported"
    FORBIDDEN = "FieldValueForbidden"
    DUPLICATE = "FieldValueDuplicate"
    TYPE_INVALID = "FieldValueTypeInvalid"


_TYPE_TITLES: dict[str, str] = {
    FieldErrorType.INVALID: "Invalid value",
    FieldErrorType.REQUIRED: "Required value",
    FieldErrorType.TOO_LONG: "Too long",
    FieldErrorType.NOT_SUPPORTED: "Unsupported value",
    FieldErrorType.FORBIDDEN: "Forbidden",
    FieldErrorType.DUPLICATE: "Duplicate value",
    FieldErrorType.TYPE_INVALID: "Invalid value",
}
_TYPES_WITHOUT_VALUE = frozenset({FieldErrorType.REQUIRED, FieldErrorType.FORBIDDEN, FieldErrorType.TOO_LONG})


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure of one field, like upstream's ``field.Error``.

    ``field`` is the JSON path (``metadata.name``, ``metadata.labels``), ``type``
    a ``FieldErrorType`` value, ``value`` the offending value (ignored in the
    message for Required/Forbidden/TooLong), ``detail`` the explanation.
    """

    field: str
    type: str
    value: object
    detail: str

    @property
    def body(self) -> str:
        """The message without the leading ``<field>: `` (upstream's ``ErrorBody``)."""
        title = _TYPE_TITLES.get(self.type)
        if title is None:
            text = f"<unknown error {go_quote(self.type)}>"
        elif self.type in _TYPES_WITHOUT_VALUE:
            text = title
        else:
            text = f"{title}: {_go_render_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    @property
    def message(self) -> str:
        """The full text upstream's ``field.Error.Error()`` produces."""
        return f"{self.field}: {self.body}"

    def __str__(self) -> str:
        return self.message

    @classmethod
    def invalid(cls, field: str, value: object, detail: str) -> FieldError:
        return cls(field, FieldErrorType.INVALID, value, detail)

    @classmethod
    def type_invalid(cls, field: str, value: object, detail: str) -> FieldError:
        return cls(field, FieldErrorType.TYPE_INVALID, value, detail)

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls(field, FieldErrorType.REQUIRED, "", detail)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls(field, FieldErrorType.FORBIDDEN, "", detail)

    @classmethod
    def duplicate(cls, field: str, value: object) -> FieldError:
        return cls(field, FieldErrorType.DUPLICATE, value, "")

    @classmethod
    def not_supported(cls, field: str, value: object, supported: Sequence[str] = ()) -> FieldError:
        detail = ""
        if supported:
            detail = "supported values: " + ", ".join(go_quote(choice) for choice in supported)
        return cls(field, FieldErrorType.NOT_SUPPORTED, value, detail)

    @classmethod
    def too_long(cls, field: str, max_length: int) -> FieldError:
        """The value itself is never echoed, as upstream keeps huge values out of messages."""
        if max_length < 0:
            detail = "value is too long"
        else:
            detail = f"may not be more than {max_length} {'byte' if max_length == 1 else 'bytes'}"
        return cls(field, FieldErrorType.TOO_LONG, "<value omitted>", detail)


# --- string format checks ----------------------------------------------------------------------


def is_dns1123_label(value: str) -> list[str]:
    """RFC 1123 label: lowercase alphanumerics and '-', at most 63 bytes (namespace names)."""
    errors: list[str] = []
    if _byte_length(value) > DNS1123_LABEL_MAX_LENGTH:
        errors.append(_max_len_characters(DNS1123_LABEL_MAX_LENGTH))
    if _DNS1123_LABEL_RE.fullmatch(value) is None:
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value) is not None:
            # A valid subdomain that is not a valid label can only be failing on its dots.
            errors.append("must not contain dots")
        else:
            errors.append(_regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    """RFC 1123 subdomain: dot-separated labels, at most 253 bytes (most object names)."""
    return _check_dns1123_subdomain(value, _max_len_characters)


def _check_dns1123_subdomain(value: str, max_len_error: Callable[[int], str]) -> list[str]:
    errors: list[str] = []
    if _byte_length(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if _DNS1123_SUBDOMAIN_RE.fullmatch(value) is None:
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_dns1035_label(value: str) -> list[str]:
    """RFC 1035 label: like RFC 1123 but must start with a letter (Service names)."""
    errors: list[str] = []
    if _byte_length(value) > DNS1035_LABEL_MAX_LENGTH:
        errors.append(_max_len_characters(DNS1035_LABEL_MAX_LENGTH))
    if _DNS1035_LABEL_RE.fullmatch(value) is None:
        errors.append(_regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


def is_qualified_name(value: str) -> list[str]:
    """Label/annotation key: optional DNS-subdomain prefix and '/', then a name of at most 63 bytes."""
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a valid label key "
            + _LABEL_KEY_REGEX_ERROR
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {msg}" for msg in _check_dns1123_subdomain(prefix, _max_len_bytes))
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_length(name) > QUALIFIED_NAME_MAX_LENGTH:
        errors.append("name part " + _max_len_bytes(QUALIFIED_NAME_MAX_LENGTH))
    if _LABEL_KEY_RE.fullmatch(name) is None:
        errors.append("name part " + _LABEL_KEY_REGEX_ERROR)
    return errors


def is_valid_label_value(value: str) -> list[str]:
    """Label value: empty, or alphanumerics with '-', '_', '.' inside, at most 63 bytes."""
    errors: list[str] = []
    if _byte_length(value) > LABEL_VALUE_MAX_LENGTH:
        errors.append(_max_len_bytes(LABEL_VALUE_MAX_LENGTH))
    if _LABEL_VALUE_RE.fullmatch(value) is None:
        errors.append(_regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


# --- object names ------------------------------------------------------------------------------

NameValidator = Callable[[str, bool], list[str]]
"""``(name, is_prefix) -> problems``; ``is_prefix`` is true for ``generateName``."""


def _mask_trailing_dash(name: str) -> str:
    # Upstream drops the last *two* characters before appending "a"; reproduced for identical verdicts.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns1123_subdomain(name: str, prefix: bool) -> list[str]:
    """Name rule of most resources (ConfigMaps, Pods, Deployments, ...)."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1123_label(name: str, prefix: bool) -> list[str]:
    """Name rule of Namespaces."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    """Name rule of Services."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


# --- ObjectMeta --------------------------------------------------------------------------------


def validate_labels(labels: object, field: str = "metadata.labels") -> list[FieldError]:
    """Every key must be a qualified name and every value a valid label value."""
    entries, errors = _string_map_entries(labels, field)
    for key, value in entries:
        errors.extend(FieldError.invalid(field, key, msg) for msg in is_qualified_name(key))
        errors.extend(FieldError.invalid(field, value, msg) for msg in is_valid_label_value(value))
    return errors


def validate_annotations(annotations: object, field: str = "metadata.annotations") -> list[FieldError]:
    """Keys are qualified names compared case-insensitively; keys plus values total at most 256 KiB."""
    entries, errors = _string_map_entries(annotations, field)
    total_size = 0
    for key, value in entries:
        errors.extend(FieldError.invalid(field, key, msg) for msg in is_qualified_name(key.lower()))
        total_size += _byte_length(key) + _byte_length(value)
    if total_size > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES:
        errors.append(FieldError.too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT_BYTES))
    return errors


def validate_finalizers(finalizers: object, field: str = "metadata.finalizers") -> list[FieldError]:
    """Finalizers are qualified names; "orphan" and "foregroundDeletion" exclude each other."""
    if finalizers is None:
        return []
    if not isinstance(finalizers, list | tuple):
        return [FieldError.type_invalid(field, finalizers, "must be of type array")]
    errors: list[FieldError] = []
    for index, finalizer in enumerate(finalizers):
        if not isinstance(finalizer, str):
            errors.append(FieldError.type_invalid(f"{field}[{index}]", finalizer, "must be of type string"))
            continue
        errors.extend(FieldError.invalid(field, finalizer, msg) for msg in is_qualified_name(finalizer))
    if _FINALIZER_ORPHAN_DEPENDENTS in finalizers and _FINALIZER_DELETE_DEPENDENTS in finalizers:
        detail = f"finalizer {_FINALIZER_ORPHAN_DEPENDENTS} and {_FINALIZER_DELETE_DEPENDENTS} cannot be both set"
        errors.append(FieldError.invalid(field, list(finalizers), detail))
    return errors


def validate_object_meta(
    meta: Mapping[str, object],
    *,
    namespaced: bool,
    name_validator: NameValidator = name_is_dns1123_subdomain,
    field: str = "metadata",
) -> list[FieldError]:
    """Validate an object's metadata on create, in upstream's order of checks.

    ``name`` is required unless ``generateName`` is set (the caller may
    validate before or after generating the name).  Also checked: namespace
    (required and a DNS-1123 label when ``namespaced``, forbidden otherwise),
    ``generation`` (non-negative), labels, annotations and finalizers.
    ``field`` is the path prefix, e.g. ``spec.template.metadata``.
    """
    errors: list[FieldError] = []
    name, name_errors = _optional_string(meta, "name", field)
    generate_name, generate_name_errors = _optional_string(meta, "generateName", field)
    errors += generate_name_errors + name_errors
    errors += _validate_name(name, generate_name, name_validator, field)
    errors += _validate_namespace(meta, namespaced, field)
    errors += _validate_generation(meta.get("generation"), f"{field}.generation")
    errors += validate_labels(meta.get("labels"), f"{field}.labels")
    errors += validate_annotations(meta.get("annotations"), f"{field}.annotations")
    errors += validate_finalizers(meta.get("finalizers"), f"{field}.finalizers")
    return errors


def _validate_name(name: str, generate_name: str, name_validator: NameValidator, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if generate_name:
        errors += [
            FieldError.invalid(f"{field}.generateName", generate_name, msg)
            for msg in name_validator(generate_name, True)
        ]
    if name:
        errors += [FieldError.invalid(f"{field}.name", name, msg) for msg in name_validator(name, False)]
    elif not generate_name:
        errors.append(FieldError.required(f"{field}.name", "name or generateName is required"))
    return errors


def _validate_namespace(meta: Mapping[str, object], namespaced: bool, field: str) -> list[FieldError]:
    namespace, errors = _optional_string(meta, "namespace", field)
    if errors:
        return errors
    namespace_field = f"{field}.namespace"
    if not namespaced:
        return [FieldError.forbidden(namespace_field, "not allowed on this type")] if namespace else []
    if not namespace:
        return [FieldError.required(namespace_field)]
    problems = name_is_dns1123_label(namespace, False)
    return [FieldError.invalid(namespace_field, namespace, msg) for msg in problems]


def _validate_generation(generation: object, field: str) -> list[FieldError]:
    if generation is None:
        return []
    if isinstance(generation, bool) or not isinstance(generation, int):
        return [FieldError.type_invalid(field, generation, "must be of type integer")]
    if generation < 0:
        return [FieldError.invalid(field, generation, "must be greater than or equal to 0")]
    return []


def _optional_string(meta: Mapping[str, object], key: str, field: str) -> tuple[str, list[FieldError]]:
    """Read an optional string field; absent or null reads as "" (Go's zero value)."""
    value = meta.get(key)
    if value is None:
        return "", []
    if not isinstance(value, str):
        return "", [FieldError.type_invalid(f"{field}.{key}", value, "must be of type string")]
    return value, []


def _string_map_entries(value: object, field: str) -> tuple[list[tuple[str, str]], list[FieldError]]:
    """Split a JSON object into its string entries and type errors for everything else."""
    if value is None:
        return [], []
    if not isinstance(value, Mapping):
        return [], [FieldError.type_invalid(field, value, "must be of type object")]
    entries: list[tuple[str, str]] = []
    errors: list[FieldError] = []
    for key, item in value.items():
        if not isinstance(key, str):
            errors.append(FieldError.type_invalid(field, key, "keys must be of type string"))
        elif not isinstance(item, str):
            errors.append(FieldError.type_invalid(f"{field}[{key}]", item, "must be of type string"))
        else:
            entries.append((key, item))
    return entries, errors
