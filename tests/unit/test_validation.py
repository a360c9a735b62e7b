"""Upstream-compatible name/label/ObjectMeta validation: verdicts and exact message texts."""

from __future__ import annotations

import dataclasses

import pytest

from edgek8s.model.validation import (
    FieldError,
    FieldErrorType,
    NameValidator,
    go_quote,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns1035_label,
    name_is_dns1123_label,
    name_is_dns1123_subdomain,
    validate_annotations,
    validate_finalizers,
    validate_labels,
    validate_object_meta,
)

# Upstream's texts, written out literally so a wording drift in the module is caught.
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
KEY_NAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
KEY_TOO_MANY_SLASHES = (
    "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
    "and '/' (e.g. 'example.com/MyName')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --- string format checks ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", []),
        ("0", []),
        ("example.com", []),
        ("a-b.c-d.e", []),
        ("my--name", []),
        ("a" * 253, []),
        ("a" * 63 + "." + "b" * 63, []),
        ("", [SUBDOMAIN]),
        ("Foo", [SUBDOMAIN]),
        ("a_b", [SUBDOMAIN]),
        ("-a", [SUBDOMAIN]),
        ("a-", [SUBDOMAIN]),
        ("a..b", [SUBDOMAIN]),
        (".a", [SUBDOMAIN]),
        ("a.", [SUBDOMAIN]),
        ("a b", [SUBDOMAIN]),
        ("a\n", [SUBDOMAIN]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN]),
        # Length is counted in UTF-8 bytes, like Go's len().
        ("é" * 127, ["must be no more than 253 characters", SUBDOMAIN]),
    ],
)
def test_is_dns1123_subdomain(value: str, expected: list[str]) -> None:
    assert is_dns1123_subdomain(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("my-name", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a.b", ["must not contain dots"]),
        ("", [LABEL]),
        ("My-Name", [LABEL]),
        ("a_b", [LABEL]),
        ("name-", [LABEL]),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("a" * 64 + ".b", ["must be no more than 63 characters", "must not contain dots"]),
    ],
)
def test_is_dns1123_label(value: str, expected: list[str]) -> None:
    assert is_dns1123_label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc-123", []),
        ("a", []),
        ("1abc", [DNS1035]),
        ("a.b", [DNS1035]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_is_dns1035_label(value: str, expected: list[str]) -> None:
    assert is_dns1035_label(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("app", []),
        ("MyName", []),
        ("my.name", []),
        ("123-abc", []),
        ("a_b", []),
        ("app.kubernetes.io/name", []),
        ("example.com/" + "a" * 63, []),
        ("", ["name part must be non-empty", KEY_NAME]),
        ("-app", [KEY_NAME]),
        ("app_", [KEY_NAME]),
        ("a b", [KEY_NAME]),
        ("a" * 64, ["name part must be no more than 63 bytes"]),
        ("/name", ["prefix part must be non-empty"]),
        ("example.com/", ["name part must be non-empty", KEY_NAME]),
        ("Example.com/name", ["prefix part " + SUBDOMAIN]),
        ("a" * 254 + "/name", ["prefix part must be no more than 253 bytes"]),
        ("a/b/c", [KEY_TOO_MANY_SLASHES]),
    ],
)
def test_is_qualified_name(value: str, expected: list[str]) -> None:
    assert is_qualified_name(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("a", []),
        ("My_value.1-2", []),
        ("12345", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 bytes"]),
        ("-a", [LABEL_VALUE]),
        ("a-", [LABEL_VALUE]),
        ("a b", [LABEL_VALUE]),
        ("a/b", [LABEL_VALUE]),
        ("é", [LABEL_VALUE]),
        ("é" * 32, ["must be no more than 63 bytes", LABEL_VALUE]),
    ],
)
def test_is_valid_label_value(value: str, expected: list[str]) -> None:
    assert is_valid_label_value(value) == expected


@pytest.mark.parametrize(
    ("validator", "name", "prefix", "valid"),
    [
        (name_is_dns1123_subdomain, "web-", True, True),
        (name_is_dns1123_subdomain, "web-", False, False),
        (name_is_dns1123_subdomain, "web.", True, False),
        # A lone "-" is not masked (upstream masks only names longer than one character).
        (name_is_dns1123_subdomain, "-", True, False),
        # Upstream replaces the last two characters with "a", so "a.-" is checked as "aa".
        (name_is_dns1123_subdomain, "a.-", True, True),
        (name_is_dns1123_label, "ns-", True, True),
        (name_is_dns1123_label, "ns.a", False, False),
        (name_is_dns1035_label, "svc-", True, True),
        (name_is_dns1035_label, "1svc", False, False),
    ],
)
def test_name_validators_mask_trailing_dash_only_for_prefixes(
    validator: NameValidator, name: str, prefix: bool, valid: bool
) -> None:
    assert (validator(name, prefix) == []) is valid


# --- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\tnew\nline", '"tab\\tnew\\nline"'),
        ("\x00\x7f", '"\\x00\\x7f"'),
        ("héllo ✓", '"héllo ✓"'),
        ("\u00a0", '"\\u00a0"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote_matches_go_strconv_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (FieldError.invalid("metadata.name", "Foo", "bad"), 'metadata.name: Invalid value: "Foo": bad'),
        (FieldError.invalid("spec.replicas", -1, "must be >= 0"), "spec.replicas: Invalid value: -1: must be >= 0"),
        (FieldError.invalid("spec.x", 1.0, "d"), "spec.x: Invalid value: 1: d"),
        (FieldError.invalid("spec.x", 0.5, "d"), "spec.x: Invalid value: 0.5: d"),
        (FieldError.invalid("spec.paused", True, "d"), "spec.paused: Invalid value: true: d"),
        (FieldError.invalid("f", ["a", "b"], "d"), 'f: Invalid value: ["a","b"]: d'),
        (FieldError.invalid("f", {"b": 1, "a": "<"}, "d"), 'f: Invalid value: {"a":"\\u003c","b":1}: d'),
        (FieldError.invalid("f", None, "d"), "f: Invalid value: null: d"),
        (FieldError.invalid("f", "v", ""), 'f: Invalid value: "v"'),
        (FieldError.required("metadata.namespace"), "metadata.namespace: Required value"),
        (
            FieldError.required("metadata.name", "name or generateName is required"),
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            FieldError.forbidden("metadata.namespace", "not allowed on this type"),
            "metadata.namespace: Forbidden: not allowed on this type",
        ),
        (
            FieldError.too_long("metadata.annotations", 262144),
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        ),
        (FieldError.too_long("f", 1), "f: Too long: may not be more than 1 byte"),
        (FieldError.too_long("f", -1), "f: Too long: value is too long"),
        (
            FieldError.not_supported("spec.restartPolicy", "Sometimes", ["Always", "Never"]),
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "Never"',
        ),
        (FieldError.duplicate("spec.ports[1].name", "http"), 'spec.ports[1].name: Duplicate value: "http"'),
        (FieldError.type_invalid("f", 5, "must be of type string"), "f: Invalid value: 5: must be of type string"),
    ],
)
def test_field_error_message_reproduces_upstream_text(error: FieldError, message: str) -> None:
    assert error.message == message
    assert str(error) == message
    assert error.body == message.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (FieldError.invalid("f", "v", "d"), "FieldValueInvalid"),
        (FieldError.required("f"), "FieldValueRequired"),
        (FieldError.too_long("f", 3), "FieldValueTooLong"),
        (FieldError.not_supported("f", "v", ["a"]), "FieldValueNotSupported"),
        (FieldError.forbidden("f", "d"), "FieldValueForbidden"),
        (FieldError.duplicate("f", "v"), "FieldValueDuplicate"),
        (FieldError.type_invalid("f", 1, "d"), "FieldValueTypeInvalid"),
    ],
)
def test_field_error_type_is_the_status_cause_reason(error: FieldError, reason: str) -> None:
    assert error.type == reason
    assert FieldErrorType(reason) == error.type


def test_field_error_is_frozen() -> None:
    error = FieldError.required("metadata.name")
    with pytest.raises(dataclasses.FrozenInstanceError):
        error.field = "other"  # type: ignore[misc]


def test_field_error_with_unknown_type_says_so() -> None:
    assert FieldError("f", "Weird", "v", "").message == 'f: <unknown error "Weird">'


# --- labels, annotations, finalizers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, []),
        ({}, []),
        ({"app": "web", "app.kubernetes.io/name": "", "tier": "front_end.1"}, []),
        ({"bad key": "v"}, ['metadata.labels: Invalid value: "bad key": ' + KEY_NAME]),
        ({"app": "-web"}, ['metadata.labels: Invalid value: "-web": ' + LABEL_VALUE]),
        (
            {"-k": "v-"},
            [
                'metadata.labels: Invalid value: "-k": ' + KEY_NAME,
                'metadata.labels: Invalid value: "v-": ' + LABEL_VALUE,
            ],
        ),
        ({"app": 3}, ["metadata.labels[app]: Invalid value: 3: must be of type string"]),
        (["app"], ['metadata.labels: Invalid value: ["app"]: must be of type object']),
    ],
)
def test_validate_labels(labels: object, expected: list[str]) -> None:
    assert [error.message for error in validate_labels(labels)] == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        (None, []),
        ({"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "any text, even spaces"}, []),
        # Annotation keys are checked case-insensitively.
        ({"Example.COM/Some-Key": "v"}, []),
        ({"bad key": "v"}, ['metadata.annotations: Invalid value: "bad key": ' + KEY_NAME]),
        ({"a": "x" * (262144 - 1)}, []),
        ({"a": "x" * 262144}, ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
        # 131073 characters, but 262145 bytes.
        ({"a": "é" * 131072}, ["metadata.annotations: Too long: may not be more than 262144 bytes"]),
        ({"a": None}, ["metadata.annotations[a]: Invalid value: null: must be of type string"]),
    ],
)
def test_validate_annotations(annotations: object, expected: list[str]) -> None:
    assert [error.message for error in validate_annotations(annotations)] == expected


@pytest.mark.parametrize(
    ("finalizers", "expected"),
    [
        (None, []),
        (["kubernetes.io/pv-protection", "foregroundDeletion"], []),
        (["bad finalizer"], ['metadata.finalizers: Invalid value: "bad finalizer": ' + KEY_NAME]),
        (
            ["orphan", "foregroundDeletion"],
            [
                'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: '
                "finalizer orphan and foregroundDeletion cannot be both set"
            ],
        ),
        ([7], ["metadata.finalizers[0]: Invalid value: 7: must be of type string"]),
        ("orphan", ['metadata.finalizers: Invalid value: "orphan": must be of type array']),
    ],
)
def test_validate_finalizers(finalizers: object, expected: list[str]) -> None:
    assert [error.message for error in validate_finalizers(finalizers)] == expected


# --- ObjectMeta --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "namespaced", "expected"),
    [
        ({"name": "web", "namespace": "default"}, True, []),
        ({"name": "node-1"}, False, []),
        ({"generateName": "web-", "namespace": "default"}, True, []),
        ({"generateName": "web-", "name": "web-x7k2p", "namespace": "default"}, True, []),
        (
            {"name": "Foo_Bar", "namespace": "default"},
            True,
            ['metadata.name: Invalid value: "Foo_Bar": ' + SUBDOMAIN],
        ),
        (
            {},
            True,
            ["metadata.name: Required value: name or generateName is required", "metadata.namespace: Required value"],
        ),
        (
            {"name": "", "namespace": "default"},
            True,
            ["metadata.name: Required value: name or generateName is required"],
        ),
        (
            {"generateName": "Web-", "namespace": "default"},
            True,
            ['metadata.generateName: Invalid value: "Web-": ' + SUBDOMAIN],
        ),
        (
            {"name": "n", "namespace": "default"},
            False,
            ["metadata.namespace: Forbidden: not allowed on this type"],
        ),
        (
            {"name": "n", "namespace": "Default"},
            True,
            ['metadata.namespace: Invalid value: "Default": ' + LABEL],
        ),
        (
            {"name": "n", "namespace": "team.a"},
            True,
            ['metadata.namespace: Invalid value: "team.a": must not contain dots'],
        ),
        (
            {"name": "n", "namespace": "default", "generation": -1},
            True,
            ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"name": "n", "namespace": "default", "labels": {"app": "web!"}, "annotations": {"x y": ""}},
            True,
            [
                'metadata.labels: Invalid value: "web!": ' + LABEL_VALUE,
                'metadata.annotations: Invalid value: "x y": ' + KEY_NAME,
            ],
        ),
        (
            {"name": 5, "namespace": "default"},
            True,
            [
                "metadata.name: Invalid value: 5: must be of type string",
                "metadata.name: Required value: name or generateName is required",
            ],
        ),
        (
            {"name": "n", "namespace": "default", "labels": None, "annotations": None, "finalizers": None},
            True,
            [],
        ),
    ],
)
def test_validate_object_meta(meta: dict[str, object], namespaced: bool, expected: list[str]) -> None:
    assert [error.message for error in validate_object_meta(meta, namespaced=namespaced)] == expected


def test_validate_object_meta_reports_structured_fields() -> None:
    errors = validate_object_meta({"name": "Foo_Bar"}, namespaced=True)
    assert errors == [
        FieldError("metadata.name", "FieldValueInvalid", "Foo_Bar", SUBDOMAIN),
        FieldError("metadata.namespace", "FieldValueRequired", "", ""),
    ]


@pytest.mark.parametrize(
    ("name_validator", "name", "expected"),
    [
        (name_is_dns1035_label, "my-svc", []),
        (name_is_dns1035_label, "1svc", ['metadata.name: Invalid value: "1svc": ' + DNS1035]),
        (name_is_dns1123_subdomain, "1svc", []),
        (name_is_dns1123_label, "a.b", ['metadata.name: Invalid value: "a.b": must not contain dots']),
    ],
)
def test_validate_object_meta_uses_the_resource_name_rule(
    name_validator: NameValidator, name: str, expected: list[str]
) -> None:
    errors = validate_object_meta(
        {"name": name, "namespace": "default"}, namespaced=True, name_validator=name_validator
    )
    assert [error.message for error in errors] == expected


def test_validate_object_meta_prefixes_paths_for_nested_metadata() -> None:
    errors = validate_object_meta({"labels": {"app": "-"}}, namespaced=False, field="spec.template.metadata")
    assert [error.field for error in errors] == ["spec.template.metadata.name", "spec.template.metadata.labels"]


def test_validate_object_meta_does_not_mutate_input() -> None:
    meta: dict[str, object] = {"name": "Bad_Name", "labels": {"k": "v"}, "annotations": {"A": "b"}}
    snapshot = {"name": "Bad_Name", "labels": {"k": "v"}, "annotations": {"A": "b"}}
    validate_object_meta(meta, namespaced=False)
    assert meta == snapshot
