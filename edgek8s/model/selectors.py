"""Label and field selectors with Kubernetes semantics.

Role: turn ``?labelSelector=`` / ``?fieldSelector=`` strings and the
``metav1.LabelSelector`` objects of Deployments, ReplicaSets, ... into
immutable matchers the store runs over thousands of objects per list call.
Reference: k8s.io/apimachinery pkg/labels/selector.go,
pkg/apis/meta/v1/helpers.go (LabelSelectorAsSelector), pkg/fields/selector.go.

Invariants:
- Pure: stdlib only, no I/O.  Selectors are frozen dataclasses, safe to share
  and to use as cache keys.
- All parsing and validation happen at construction; ``matches`` only does
  dict look-ups and comparisons (no regex, no allocation per requirement).
- Errors are ``SelectorError`` (a ``ValueError``) carrying upstream's text,
  e.g. ``unable to parse requirement: ...``; the server can return it as-is.
- ``str()`` is canonical: label requirements sorted by key with sorted values,
  field terms in upstream's (sorted) order with values escaped; re-parsing
  the string of a parsed selector yields an equal selector.
- An empty selector matches everything; ``LabelSelector.nothing()`` (what a
  null metav1 selector means) matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from edgek8s.model.validation import go_quote, is_qualified_name, is_valid_label_value

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "escape_field_value",
    "unescape_field_value",
]


class SelectorError(ValueError):
    """A selector string or object is malformed; the message is upstream's wording."""


class Operator(StrEnum):
    """Selector operators; values are upstream's ``selection.Operator`` strings."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_INCLUSIVE_OPERATORS = frozenset({Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS})
_EXCLUSIVE_OPERATORS = frozenset({Operator.NOT_IN, Operator.NOT_EQUALS})
_EXACT_OPERATORS = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_SET_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
_UNARY_OPERATORS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_NUMERIC_OPERATORS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
# Upstream's order, which appears verbatim in parse errors.
_BINARY_OPERATORS = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EQUALS,
    Operator.DOUBLE_EQUALS,
    Operator.NOT_EQUALS,
    Operator.GREATER_THAN,
    Operator.LESS_THAN,
)
_ALL_OPERATORS = (*_BINARY_OPERATORS, Operator.EXISTS, Operator.DOES_NOT_EXIST)
_OPERATOR_SYMBOLS = {
    Operator.EQUALS: "=",
    Operator.DOUBLE_EQUALS: "==",
    Operator.NOT_EQUALS: "!=",
    Operator.IN: " in ",
    Operator.NOT_IN: " notin ",
    Operator.GREATER_THAN: ">",
    Operator.LESS_THAN: "<",
}
_METAV1_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ASCII_DIGITS = frozenset("0123456789")


def _parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: optional sign, ASCII digits, int64 range."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not _ASCII_DIGITS.issuperset(digits):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _aggregate(messages: Sequence[str]) -> str:
    """Upstream's ``utilerrors.Aggregate`` text: duplicates dropped, brackets around several."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _render_values(values: Sequence[str]) -> str:
    # Go renders a []string bad value as JSON; an empty list arrives as nil there, hence "null".
    return "[" + ",".join(go_quote(value) for value in values) + "]" if values else "null"


def _key_error(key: str, path: str) -> str | None:
    problems = is_qualified_name(key)
    return f"{path}: Invalid value: {go_quote(key)}: {'; '.join(problems)}" if problems else None


# --- label selectors ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key <operator> values`` clause of a label selector.

    Build through ``Requirement.new`` (validates like upstream's
    ``NewRequirement``) or the ``LabelSelector`` constructors; direct
    construction skips validation.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: Operator | str, values: Iterable[str] = ()) -> Requirement:
        """Validate key, operator arity and values; raise ``SelectorError`` listing every problem."""
        value_list = tuple(values)
        problems: list[str] = []
        key_problem = _key_error(key, "key")
        if key_problem is not None:
            problems.append(key_problem)
        try:
            checked_operator = Operator(operator)
        except ValueError:
            supported = ", ".join(go_quote(op) for op in _ALL_OPERATORS)
            problems.append(f"operator: Unsupported value: {go_quote(str(operator))}: supported values: {supported}")
        else:
            problems += _arity_problems(checked_operator, value_list)
        problems += [
            f"values[{index}][{key}]: Invalid value: {go_quote(value)}: {'; '.join(value_problems)}"
            for index, value in enumerate(value_list)
            if (value_problems := is_valid_label_value(value))
        ]
        if problems:
            raise SelectorError(_aggregate(problems))
        return cls(key, checked_operator, value_list)

    def matches(self, labels: Mapping[str, str]) -> bool:
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key in labels
        if operator is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if operator in _INCLUSIVE_OPERATORS:
            return value is not None and value in self.values
        if operator in _EXCLUSIVE_OPERATORS:
            return value is None or value not in self.values
        return self._matches_numerically(value)

    def _matches_numerically(self, value: str | None) -> bool:
        if value is None or len(self.values) != 1:
            return False
        actual = _parse_int64(value)
        bound = _parse_int64(self.values[0])
        if actual is None or bound is None:
            return False
        return actual > bound if self.operator is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if self.operator in _SET_OPERATORS:
            values = f"({values})"
        return self.key + _OPERATOR_SYMBOLS[self.operator] + values


def _arity_problems(operator: Operator, values: tuple[str, ...]) -> list[str]:
    rendered = _render_values(values)
    if operator in _SET_OPERATORS and not values:
        return [f"values: Invalid value: {rendered}: for 'in', 'notin' operators, values set can't be empty"]
    if operator in _EXACT_OPERATORS and len(values) != 1:
        return [f"values: Invalid value: {rendered}: exact-match compatibility requires one single value"]
    if operator in _UNARY_OPERATORS and values:
        return [f"values: Invalid value: {rendered}: values set must be empty for exists and does not exist"]
    if operator not in _NUMERIC_OPERATORS:
        return []
    problems = []
    if len(values) != 1:
        problems.append(f"values: Invalid value: {rendered}: for 'Gt', 'Lt' operators, exactly one value is required")
    problems += [
        f"values[{index}]: Invalid value: {go_quote(value)}: for 'Gt', 'Lt' operators, the value must be an integer"
        for index, value in enumerate(values)
        if _parse_int64(value) is None
    ]
    return problems


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """AND of label requirements.  ``LabelSelector()`` matches everything."""

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the ``?labelSelector=`` syntax, e.g. ``app=web,tier in (a,b),!canary``."""
        requirements = _LabelSelectorParser(text).parse()
        return cls(_sorted_by_key(requirements))

    @classmethod
    def from_set(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Exact match on every entry, e.g. a Service's ``spec.selector``.  Not validated, as upstream."""
        requirements = (Requirement(key, Operator.EQUALS, (value,)) for key, value in labels.items())
        return cls(_sorted_by_key(requirements))

    @classmethod
    def from_dict(cls, selector: Mapping[str, object] | None) -> LabelSelector:
        """Build from a ``metav1.LabelSelector`` (``matchLabels`` / ``matchExpressions``).

        ``None`` selects nothing and ``{}`` everything, as in upstream's
        ``LabelSelectorAsSelector``.
        """
        if selector is None:
            return cls.nothing()
        requirements = [
            Requirement.new(key, Operator.EQUALS, (value,)) for key, value in _match_labels(selector.get("matchLabels"))
        ]
        requirements += [_expression_requirement(expr) for expr in _match_expressions(selector)]
        return cls(_sorted_by_key(requirements))

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(selects_nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every object)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.selects_nothing:
            return False
        # A plain loop: all() over a generator costs noticeably more per object on hot list paths.
        for requirement in self.requirements:  # noqa: SIM110
            if not requirement.matches(labels):
                return False
        return True

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have to match, if the selector pins one (for index look-ups)."""
        for requirement in self.requirements:
            if requirement.key == key:
                exact = requirement.operator in _INCLUSIVE_OPERATORS and len(requirement.values) == 1
                return requirement.values[0] if exact else None
        return None

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _sorted_by_key(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda requirement: requirement.key))


def _match_labels(match_labels: object) -> list[tuple[str, str]]:
    if match_labels is None:
        return []
    if not isinstance(match_labels, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in match_labels.items()
    ):
        raise SelectorError("matchLabels: must be a map of string keys to string values")
    return sorted(match_labels.items())


def _match_expressions(selector: Mapping[str, object]) -> list[Mapping[str, object]]:
    expressions = selector.get("matchExpressions")
    if expressions is None:
        return []
    if not isinstance(expressions, list | tuple) or not all(isinstance(e, Mapping) for e in expressions):
        raise SelectorError("matchExpressions: must be a list of objects")
    return list(expressions)


def _expression_requirement(expression: Mapping[str, object]) -> Requirement:
    key = expression.get("key", "")
    operator_name = expression.get("operator", "")
    values = expression.get("values")
    if not isinstance(key, str) or not isinstance(operator_name, str):
        raise SelectorError("matchExpressions: key and operator must be strings")
    if values is None:
        values = []
    if not isinstance(values, list | tuple) or not all(isinstance(value, str) for value in values):
        raise SelectorError("matchExpressions: values must be a list of strings")
    operator = _METAV1_OPERATORS.get(operator_name)
    if operator is None:
        raise SelectorError(f"{go_quote(operator_name)} is not a valid label selector operator")
    return Requirement.new(key, operator, values)


# --- label selector string syntax --------------------------------------------------------------
#
# Grammar (upstream's):
#   selector    ::= requirement | requirement "," selector
#   requirement ::= ["!"] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]
# Tokens are (kind, literal); "in"/"notin" are keywords only where an operator may appear.

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL_CHARACTERS = frozenset("=!(),<>")
_WORD_TERMINATORS = _WHITESPACE | _SPECIAL_CHARACTERS
_TWO_CHARACTER_SYMBOLS = frozenset({"==", "!="})
_IDENTIFIER = "identifier"
_END = "end"
_KEYWORDS = frozenset({"in", "notin"})
_SYMBOL_OPERATORS = {
    "=": Operator.EQUALS,
    "==": Operator.DOUBLE_EQUALS,
    "!=": Operator.NOT_EQUALS,
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
    "in": Operator.IN,
    "notin": Operator.NOT_IN,
}
_EXPECTED_OPERATORS = ", ".join(_BINARY_OPERATORS)

_Token = tuple[str, str]


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position, length = 0, len(text)
    while True:
        while position < length and text[position] in _WHITESPACE:
            position += 1
        if position == length:
            tokens.append((_END, ""))
            return tokens
        if text[position] in _SPECIAL_CHARACTERS:
            width = 2 if text[position : position + 2] in _TWO_CHARACTER_SYMBOLS else 1
            symbol = text[position : position + width]
            tokens.append((symbol, symbol))
            position += width
            continue
        start = position
        while position < length and text[position] not in _WORD_TERMINATORS:
            position += 1
        word = text[start:position]
        tokens.append((word if word in _KEYWORDS else _IDENTIFIER, word))


class _LabelSelectorParser:
    """Recursive-descent parser over pre-scanned tokens; raises ``SelectorError`` with upstream's texts."""

    def __init__(self, text: str) -> None:
        self._tokens = _tokenize(text)
        self._position = 0

    def _peek(self, operator_context: bool = False) -> _Token:
        return self._as_context(self._tokens[self._position], operator_context)

    def _next(self, operator_context: bool = False) -> _Token:
        token = self._tokens[self._position]
        self._position += 1
        return self._as_context(token, operator_context)

    @staticmethod
    def _as_context(token: _Token, operator_context: bool) -> _Token:
        # Outside operator position "in"/"notin" are plain words: "in in (in)" is a valid selector.
        if not operator_context and token[0] in _KEYWORDS:
            return (_IDENTIFIER, token[1])
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self._peek()
            if kind == _END:
                return requirements
            if kind not in (_IDENTIFIER, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except SelectorError as error:
                raise SelectorError(f"unable to parse requirement: {error}") from None
            kind, literal = self._next()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self._peek()
            if kind not in (_IDENTIFIER, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        negated = self._peek()[0] == "!"
        if negated:
            self._next()
        kind, key = self._next()
        if kind != _IDENTIFIER:
            raise SelectorError(f"found '{key}', expected: identifier")
        key_problem = _key_error(key, "<nil>")
        if key_problem is not None:
            raise SelectorError(key_problem)
        if negated:
            return Requirement.new(key, Operator.DOES_NOT_EXIST)
        if self._peek()[0] in (_END, ","):
            return Requirement.new(key, Operator.EXISTS)
        operator = self._operator()
        values = self._value_set() if operator in _SET_OPERATORS else self._exact_value()
        return Requirement.new(key, operator, sorted(values))

    def _operator(self) -> Operator:
        kind, literal = self._next(operator_context=True)
        operator = _SYMBOL_OPERATORS.get(kind)
        if operator is None:
            raise SelectorError(f"found '{literal}', expected: {_EXPECTED_OPERATORS}")
        return operator

    def _value_set(self) -> set[str]:
        kind, literal = self._next()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self._peek()
        if kind == ")":
            self._next()
            return {""}
        if kind not in (_IDENTIFIER, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifier_list()
        self._next()  # the ")" that ended the list
        return values

    def _identifier_list(self) -> set[str]:
        """Comma-separated, possibly empty words: "(a,,b)" and "(a,)" both include ""."""
        values: set[str] = set()
        while True:
            kind, literal = self._next()
            if kind == _IDENTIFIER:
                values.add(literal)
                next_kind, next_literal = self._peek()
                if next_kind == ")":
                    return values
                if next_kind != ",":
                    raise SelectorError(f"found '{next_literal}', expected: ',' or ')'")
            elif kind == ",":
                if not values:
                    values.add("")
                next_kind = self._peek()[0]
                if next_kind == ")":
                    values.add("")
                    return values
                if next_kind == ",":
                    self._next()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._peek()[0] in (_END, ","):
            return {""}
        kind, literal = self._next()
        if kind != _IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


# --- field selectors ---------------------------------------------------------------------------


def escape_field_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so ``value`` can appear literally in a field selector."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(text: str) -> str:
    """Inverse of ``escape_field_value``; unknown escapes and bare ``,``/``=`` are errors."""
    if "\\" not in text and "," not in text and "=" not in text:
        return text
    characters: list[str] = []
    escaping = False
    for character in text:
        if escaping:
            if character not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{character}")
            characters.append(character)
            escaping = False
        elif character == "\\":
            escaping = True
        elif character in ",=":
            # Upstream formats the rune with %v, so the code point number is what users see.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(character)}")
        else:
            characters.append(character)
    if escaping:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(characters)


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field = value`` or ``field != value``; a missing field reads as ""."""

    field: str
    operator: Operator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return not equal if self.operator is Operator.NOT_EQUALS else equal

    def __str__(self) -> str:
        symbol = "!=" if self.operator is Operator.NOT_EQUALS else "="
        return self.field + symbol + escape_field_value(self.value)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """AND of field equality terms.  ``FieldSelector()`` matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        """Parse the ``?fieldSelector=`` syntax, e.g. ``spec.nodeName=pi-1,status.phase!=Failed``."""
        requirements = []
        # Upstream sorts the raw terms before parsing; that order is also the canonical string's.
        for term in sorted(_split_field_terms(text)):
            if not term:
                continue
            requirement = _parse_field_term(text, term)
            # A term with neither field nor value ("=") selects everything upstream, so it is dropped.
            if requirement.field or requirement.value:
                requirements.append(requirement)
        return cls(tuple(requirements))

    @classmethod
    def from_set(cls, fields: Mapping[str, str]) -> FieldSelector:
        """Exact match on every entry."""
        entries = sorted(fields.items())
        return cls(tuple(FieldRequirement(name, Operator.EQUALS, value) for name, value in entries))

    def fields(self) -> frozenset[str]:
        """Field names the selector reads, so callers can reject unsupported ones up front."""
        return frozenset(requirement.field for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for requirement in self.requirements:  # noqa: SIM110 (see LabelSelector.matches)
            if not requirement.matches(fields):
                return False
        return True

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal to match, if the selector pins one (for index look-ups)."""
        for requirement in self.requirements:
            if requirement.field == field and requirement.operator is Operator.EQUALS:
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _split_field_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; escapes stay in the terms."""
    terms: list[str] = []
    start = 0
    escaping = False
    for index, character in enumerate(text):
        if escaping:
            escaping = False
        elif character == "\\":
            escaping = True
        elif character == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _parse_field_term(selector: str, term: str) -> FieldRequirement:
    """Split at the first operator; the field part has no escaping, the value part is unescaped."""
    for index, character in enumerate(term):
        if character == "!" and term.startswith("=", index + 1):
            operator, value_start = Operator.NOT_EQUALS, index + 2
        elif character == "=":
            # "==" means the same as "="; consuming both keeps a stray "=" out of the value.
            operator, value_start = Operator.EQUALS, index + (2 if term.startswith("=", index + 1) else 1)
        else:
            continue
        return FieldRequirement(term[:index], operator, unescape_field_value(term[value_start:]))
    raise SelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
