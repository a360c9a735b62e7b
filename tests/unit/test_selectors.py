"""Label and field selectors: parsing, matching, canonical strings and upstream error texts."""

from __future__ import annotations

import dataclasses

import pytest

from edgek8s.model.selectors import (
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    escape_field_value,
    unescape_field_value,
)

KEY_NAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
OPERATORS = "in, notin, =, ==, !=, gt, lt"

WEB = {"app": "web", "tier": "front", "env": "prod"}


# --- label selector: parsing and matching ------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("", WEB, True),
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app=web", {}, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("app!=web", {}, True),  # != also matches objects without the label
        ("app=web,tier=front", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("tier in (front,back)", WEB, True),
        ("tier in (back)", WEB, False),
        ("tier in (front)", {}, False),
        ("tier notin (back)", WEB, True),
        ("tier notin (front,back)", WEB, False),
        ("tier notin (front)", {}, True),
        ("app", WEB, True),
        ("canary", WEB, False),
        ("!canary", WEB, True),
        ("!app", WEB, False),
        ("app=", {"app": ""}, True),
        ("app=", WEB, False),
        ("app in ()", {"app": ""}, True),
        ("app in (web,)", {"app": ""}, True),
        ("  app = web ,\ttier\nin ( front , back )  ", WEB, True),
        ("x in (foo,,baz),y,z notin ()", {"x": "", "y": "1"}, True),
        ("x in (foo,,baz),y,z notin ()", {"x": "foo", "y": "1", "z": ""}, False),
        ("in in (in,notin)", {"in": "notin"}, True),
        ("app.kubernetes.io/name=web", {"app.kubernetes.io/name": "web"}, True),
        ("replicas>2", {"replicas": "3"}, True),
        ("replicas>2", {"replicas": "2"}, False),
        ("replicas<2", {"replicas": "1"}, True),
        ("replicas<2", {"replicas": "+1"}, True),
        ("replicas<2", {"replicas": "-5"}, True),
        ("replicas>2", {"replicas": "many"}, False),
        ("replicas>2", {"replicas": "1_0"}, False),  # Go's ParseInt rejects underscores
        ("replicas>2", {"replicas": "99999999999999999999"}, False),  # beyond int64
        ("replicas>2", {}, False),
        ("replicas<2", {}, False),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert LabelSelector.parse(selector).matches(labels) is matches


@pytest.mark.parametrize(
    ("selector", "canonical"),
    [
        ("", ""),
        ("b=2,a=1", "a=1,b=2"),
        ("a==1", "a==1"),
        ("a != 1", "a!=1"),
        ("x in (c, a,b, a)", "x in (a,b,c)"),
        ("x notin (b,,a)", "x notin (,a,b)"),
        ("x in ()", "x in ()"),
        ("  !b , a  ", "a,!b"),
        ("a=", "a="),
        ("n>5,m<3", "m<3,n>5"),
        ("z,a in (in)", "a in (in),z"),
    ],
)
def test_label_selector_canonical_string(selector: str, canonical: str) -> None:
    parsed = LabelSelector.parse(selector)
    assert str(parsed) == canonical
    assert LabelSelector.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (",", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a b", f"unable to parse requirement: found 'b', expected: {OPERATORS}"),
        ("a (x)", f"unable to parse requirement: found '(', expected: {OPERATORS}"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in ((", "unable to parse requirement: found '(', expected: ',', ')' or identifier"),
        ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("Foo_=x", f'unable to parse requirement: <nil>: Invalid value: "Foo_": {KEY_NAME}'),
        ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_NAME}'),
        ("!-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_NAME}'),
        (
            "/a",
            'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty',
        ),
        (
            "a" * 64,
            f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": name part must be no more than 63 bytes',
        ),
        ("a=-x", f'unable to parse requirement: values[0][a]: Invalid value: "-x": {LABEL_VALUE}'),
        # Values are sorted before validation, so the index is the sorted position.
        ("a in (x,-y)", f'unable to parse requirement: values[0][a]: Invalid value: "-y": {LABEL_VALUE}'),
        (
            "a in (x-,-y)",
            "unable to parse requirement: ["
            f'values[0][a]: Invalid value: "-y": {LABEL_VALUE}, '
            f'values[1][a]: Invalid value: "x-": {LABEL_VALUE}]',
        ),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a<9223372036854775808",
            'unable to parse requirement: values[0]: Invalid value: "9223372036854775808": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("a>-1", f'unable to parse requirement: values[0][a]: Invalid value: "-1": {LABEL_VALUE}'),
    ],
)
def test_label_selector_parse_errors_use_upstream_text(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        LabelSelector.parse(selector)
    assert str(raised.value) == message


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        LabelSelector.parse("!")


# --- label selector: metav1.LabelSelector and sets ---------------------------------------------


@pytest.mark.parametrize(
    ("selector", "canonical", "labels", "matches"),
    [
        ({}, "", WEB, True),
        ({"matchLabels": {}, "matchExpressions": []}, "", {}, True),
        ({"matchLabels": {"app": "web"}}, "app=web", WEB, True),
        ({"matchLabels": {"tier": "front", "app": "db"}}, "app=db,tier=front", WEB, False),
        (
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]},
            "tier in (back,front)",
            WEB,
            True,
        ),
        (
            {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]},
            "env notin (prod)",
            WEB,
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, "app", WEB, True),
        (
            {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist", "values": None}]},
            "!canary",
            WEB,
            True,
        ),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}],
            },
            "app=web,env in (prod,staging)",
            WEB,
            True,
        ),
    ],
)
def test_label_selector_from_metav1_dict(
    selector: dict[str, object], canonical: str, labels: dict[str, str], matches: bool
) -> None:
    parsed = LabelSelector.from_dict(selector)
    assert str(parsed) == canonical
    assert parsed.matches(labels) is matches


def test_null_metav1_selector_selects_nothing() -> None:
    nothing = LabelSelector.from_dict(None)
    assert nothing == LabelSelector.nothing()
    assert not nothing.matches({})
    assert not nothing.matches(WEB)
    assert not nothing.empty
    assert str(nothing) == ""


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            '"in" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: ["x"]: values set must be empty for exists and does not exist',
        ),
        (
            {"matchLabels": {"Foo_": "-x"}},
            f'[key: Invalid value: "Foo_": {KEY_NAME}, values[0][Foo_]: Invalid value: "-x": {LABEL_VALUE}]',
        ),
        ({"matchLabels": {"app": 1}}, "matchLabels: must be a map of string keys to string values"),
        ({"matchLabels": ["app"]}, "matchLabels: must be a map of string keys to string values"),
        ({"matchExpressions": {"key": "a"}}, "matchExpressions: must be a list of objects"),
        (
            {"matchExpressions": [{"key": 1, "operator": "Exists"}]},
            "matchExpressions: key and operator must be strings",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]},
            "matchExpressions: values must be a list of strings",
        ),
    ],
)
def test_label_selector_from_dict_errors(selector: dict[str, object], message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        LabelSelector.from_dict(selector)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("labels", "canonical", "candidate", "matches"),
    [
        ({}, "", WEB, True),
        ({"tier": "front", "app": "web"}, "app=web,tier=front", WEB, True),
        ({"app": "web", "canary": "true"}, "app=web,canary=true", WEB, False),
    ],
)
def test_label_selector_from_set(
    labels: dict[str, str], canonical: str, candidate: dict[str, str], matches: bool
) -> None:
    selector = LabelSelector.from_set(labels)
    assert str(selector) == canonical
    assert selector.matches(candidate) is matches
    assert selector.empty is (not labels)


@pytest.mark.parametrize(
    ("key", "operator", "values", "message"),
    [
        (
            "a",
            "bogus",
            (),
            'operator: Unsupported value: "bogus": supported values: '
            '"in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"',
        ),
        (
            "a",
            Operator.EQUALS,
            ("x", "y"),
            'values: Invalid value: ["x","y"]: exact-match compatibility requires one single value',
        ),
        (
            "a",
            Operator.GREATER_THAN,
            ("1", "2"),
            "values: Invalid value: [\"1\",\"2\"]: for 'Gt', 'Lt' operators, exactly one value is required",
        ),
    ],
)
def test_requirement_new_validates_arity_and_operator(
    key: str, operator: str, values: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SelectorError) as raised:
        Requirement.new(key, operator, values)
    assert str(raised.value) == message


def test_requirement_new_accepts_operator_strings() -> None:
    assert Requirement.new("a", "notin", ["x"]) == Requirement("a", Operator.NOT_IN, ("x",))


@pytest.mark.parametrize(
    ("selector", "key", "value"),
    [
        ("app=web,tier in (a,b)", "app", "web"),
        ("app==web", "app", "web"),
        ("app in (web)", "app", "web"),
        ("app in (web,db)", "app", None),
        ("app!=web", "app", None),
        ("app", "app", None),
        ("tier=a", "app", None),
    ],
)
def test_label_selector_requires_exact_match(selector: str, key: str, value: str | None) -> None:
    assert LabelSelector.parse(selector).requires_exact_match(key) == value


@pytest.mark.parametrize(
    ("selector", "empty"),
    [("", True), ("   ", True), ("a", False), ("!a", False)],
)
def test_label_selector_empty(selector: str, empty: bool) -> None:
    assert LabelSelector.parse(selector).empty is empty


def test_selectors_are_immutable_and_hashable() -> None:
    label_selector = LabelSelector.parse("app=web")
    field_selector = FieldSelector.parse("metadata.name=a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        label_selector.requirements = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        field_selector.requirements = ()  # type: ignore[misc]
    assert {label_selector: 1}[LabelSelector.parse("app = web")] == 1
    assert {field_selector: 1}[FieldSelector.parse("metadata.name==a")] == 1


# --- field selector ----------------------------------------------------------------------------

POD = {"metadata.name": "web-1", "metadata.namespace": "default", "spec.nodeName": "pi-1", "status.phase": "Running"}


@pytest.mark.parametrize(
    ("selector", "fields", "matches"),
    [
        ("", POD, True),
        ("metadata.name=web-1", POD, True),
        ("metadata.name==web-1", POD, True),
        ("metadata.name=web-2", POD, False),
        ("metadata.name!=web-2", POD, True),
        ("metadata.name!=web-1", POD, False),
        ("spec.nodeName=pi-1,status.phase=Running", POD, True),
        ("spec.nodeName=pi-1,status.phase!=Running", POD, False),
        # A field the caller did not supply reads as "", as upstream's Fields.Get.
        ("spec.nodeName=", {"metadata.name": "pending"}, True),
        ("spec.nodeName!=", {"metadata.name": "pending"}, False),
        ("spec.nodeName!=", POD, True),
        ("spec.nodeName=,status.phase=Pending", {"spec.nodeName": "", "status.phase": "Pending"}, True),
        (r"metadata.name=a\,b", {"metadata.name": "a,b"}, True),
        (r"metadata.name=a\=b", {"metadata.name": "a=b"}, True),
        (r"metadata.name=a\\b", {"metadata.name": "a\\b"}, True),
        (r"metadata.name=a\\b", {"metadata.name": "ab"}, False),
        ("metadata.name=a,,status.phase=Running", {"metadata.name": "a", "status.phase": "Running"}, True),
        ("status.phase = Running", {"status.phase": " Running"}, False),  # no whitespace trimming upstream
        ("status.phase = Running", {"status.phase ": " Running"}, True),
    ],
)
def test_field_selector_matches(selector: str, fields: dict[str, str], matches: bool) -> None:
    assert FieldSelector.parse(selector).matches(fields) is matches


@pytest.mark.parametrize(
    ("selector", "canonical", "fields"),
    [
        ("", "", set()),
        (
            "status.phase=Running,metadata.name==a",
            "metadata.name=a,status.phase=Running",
            {"metadata.name", "status.phase"},
        ),
        ("spec.nodeName!=", "spec.nodeName!=", {"spec.nodeName"}),
        (r"metadata.name=x\,y\=z\\", r"metadata.name=x\,y\=z\\", {"metadata.name"}),
        ("a=1,a!=2", "a!=2,a=1", {"a"}),
        # A term with neither field nor value selects everything upstream, so it disappears.
        ("=", "", set()),
        ("!=,a=1", "a=1", {"a"}),
        ("==", "", set()),
        ("=x", "=x", {""}),
        ("a=b,,", "a=b", {"a"}),
    ],
)
def test_field_selector_canonical_string_and_fields(selector: str, canonical: str, fields: set[str]) -> None:
    parsed = FieldSelector.parse(selector)
    assert str(parsed) == canonical
    assert parsed.fields() == fields
    assert FieldSelector.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("b,a=1", "invalid selector: 'b,a=1'; can't understand 'b'"),
        ("a=1,!b", "invalid selector: 'a=1,!b'; can't understand '!b'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a!==b", "invalid field selector: unescaped character in value: 61"),
        ("a===b", "invalid field selector: unescaped character in value: 61"),
        (r"a=b\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_parse_errors_use_upstream_text(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as raised:
        FieldSelector.parse(selector)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("selector", "field", "value"),
    [
        ("spec.nodeName=pi-1,status.phase=Running", "spec.nodeName", "pi-1"),
        ("spec.nodeName==pi-1", "spec.nodeName", "pi-1"),
        ("spec.nodeName=", "spec.nodeName", ""),
        ("spec.nodeName!=pi-1", "spec.nodeName", None),
        ("status.phase=Running", "spec.nodeName", None),
    ],
)
def test_field_selector_requires_exact_match(selector: str, field: str, value: str | None) -> None:
    assert FieldSelector.parse(selector).requires_exact_match(field) == value


def test_field_selector_from_set() -> None:
    selector = FieldSelector.from_set({"spec.nodeName": "pi-1", "metadata.name": "a,b"})
    assert str(selector) == r"metadata.name=a\,b,spec.nodeName=pi-1"
    assert selector.requirements[0] == FieldRequirement("metadata.name", Operator.EQUALS, "a,b")
    assert selector.matches({"metadata.name": "a,b", "spec.nodeName": "pi-1"})
    assert not selector.matches({"metadata.name": "a", "spec.nodeName": "pi-1"})


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ("a\\b", r"a\\b"),
        ("\\,=", r"\\\,\="),
        ("x=y,z\\", r"x\=y\,z\\"),
    ],
)
def test_field_value_escaping_round_trips(value: str, escaped: str) -> None:
    assert escape_field_value(value) == escaped
    assert unescape_field_value(escaped) == value
    assert FieldSelector.parse(f"f={escaped}").matches({"f": value})
