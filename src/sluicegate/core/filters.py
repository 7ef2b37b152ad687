"""Event filtering: Lambda's ``FilterCriteria`` for mappings and EventBridge's event patterns
for rules, one compiler, each pattern compiled once and matched per record or event.

Two dialects share the compiler (one flag object, ``_Dialect``, holds every difference):
:class:`FilterCriteria` accepts the subset of EventBridge's language that Lambda documents
and is described below; :class:`EventPattern` accepts EventBridge's whole language and is
described in its own docstring and in ``docs/event-patterns.md``.

A mapping with filter criteria hands its function only the records that match at least
one pattern; the others are dropped (a queue deletes them, a stream advances past them;
the mapping does that and keeps the counters, not this module). The rules are AWS's
(lambda-semantics.md section 7; Lambda developer guide "Control which events Lambda sends
to your function"; EventBridge "comparison operators"):

- up to 5 patterns (the default quota; AWS raises it to 10 on request), OR-ed;
- within a pattern every field is AND-ed, nested objects descend into the record, and the
  record must contain every field the pattern names (except under ``{"exists": false}``);
- a pattern's leaves are lists of alternatives: exact values (``"x"``, ``100``, ``true``,
  ``null``, ``""``) and operator objects (``prefix``, ``suffix``, ``equals-ignore-case``,
  ``anything-but``, ``numeric``, ``exists``);
- where the record holds an array, the leaf matches if any element matches (EventBridge);
- strings match character by character, without case folding or normalisation, and
  numbers match exact values by representation while ``numeric`` compares them as numbers;
- the data key (``body`` for queues, ``data`` for streams) is decoded first: a queue body
  is matched as JSON when it is a JSON document and as a plain string otherwise, and a
  pattern whose format (JSON object or plain-string list) differs from the body's drops
  the message; stream data (base64 in the event) must be JSON to match a data pattern,
  and a plain-string data pattern is refused for streams, as AWS refuses it at create.

Patterns are validated and compiled into small closures when a :class:`FilterCriteria`
is built, so a bad pattern fails when the App is defined, with a one-line
:class:`~sluicegate.errors.ConfigError`, and matching a record never parses a pattern.
A record's payload is decoded at most once per call, and only when a pattern that could
still match needs it.

Choices where AWS is vague or silent (each is repeated where it applies):

- **Numbers, exact match**: AWS compares by JSON representation (300, 300.0 and 3.0e2
  are three values). sluicegate compares parsed values and keeps the int/float
  distinction: ``[300]`` matches ``300`` only, ``[300.0]`` matches ``300.0`` and
  ``3.0e2`` (one float once parsed; records given as Python objects carry no text).
  ``numeric`` compares values: ``{"numeric": ["=", 300]}`` matches 300, 300.0 and 3.0e2.
  Booleans are never numbers: ``[1]`` does not match ``true``, ``numeric`` ignores them.
- **What "JSON" means for a payload**: a body or data that parses as a JSON *object or
  array*. A JSON scalar (``42``, ``"x"``, ``true``) is a plain string, so a queue body
  ``42`` matches ``{"body": ["42"]}``. A stream record's data must be UTF-8.
- **Leaves meet objects**: operators and exact values only look at leaf values (strings,
  numbers, booleans, null); a field holding an object counts as absent for them, so
  ``{"exists": true}`` does not match it and ``{"exists": false}`` does (EventBridge:
  "exists matching only works on leaf nodes"). A field holding an empty array, or an
  array of objects only, likewise has no leaf value.
- **Arrays of objects**: a nested pattern matches an array if one element matches the
  whole nested pattern (all of its fields in the same element).
- **anything-but** matches every present leaf value not listed, whatever its type (null,
  booleans and numbers too: ``{"anything-but": ["a"]}`` matches ``5``); with an array it
  matches if one element is not listed. Its ``prefix``/``suffix``/``equals-ignore-case``
  forms only match strings.
- **equals-ignore-case** compares ``str.casefold()`` of both sides (full Unicode case
  folding: ``"STRASSE"`` equals ``"straße"``).
- **numeric** takes ``["=", n]``, one comparison, or a lower bound (``>``/``>=``) and an
  upper bound (``<``/``<=``) in either order; a range no number satisfies is refused.
  AWS's limits on operand size and precision (+-5e9, six decimals) are not enforced:
  Python compares ints exactly and floats as IEEE doubles.
- **Refused although AWS may accept them**: an empty pattern ``{}``, an empty list of
  alternatives ``[]`` and an empty nested object (they match nothing, or everything, by
  accident), and the EventBridge operators Lambda does not document (``wildcard``,
  ``cidr``, ``$or``, ``anything-but`` with lists of prefixes, ``prefix`` with
  ``equals-ignore-case``): Lambda's filtering page lists the subset above, so a mapping
  refuses the rest when it is defined; :class:`EventPattern` takes them.
- **Duplicate keys** in a JSON pattern: the last wins (as AWS documents).
- A record without its data key matches no pattern that names the data key.
- **Queue metadata**: the current SQS filtering page says SQS mappings only filter on
  ``body``, while the general filtering page (and its SQS format table: "no filter
  pattern for data properties") filters on metadata too. sluicegate filters queue
  records on any field of the event record, ``body`` or metadata.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from sluicegate.errors import ConfigError, InputError

__all__ = [
    "DATA_KEYS",
    "EVENT_PATTERN_NUMBER_LIMIT",
    "EVENT_PATTERN_OPERATORS",
    "MAX_EVENT_PATTERN_LENGTH",
    "MAX_PATTERNS",
    "MAX_PATTERNS_QUOTA",
    "MAX_PATTERN_LENGTH",
    "OPERATORS",
    "EventPattern",
    "FilterCriteria",
    "FilterSource",
]

FilterSource = Literal["queue", "stream"]
"""The kind of event source a :class:`FilterCriteria` filters: it decides the data key."""

DATA_KEYS: Mapping[str, str] = MappingProxyType({"queue": "body", "stream": "data"})
"""The record key that holds the payload, per source (Lambda developer guide: SQS ``body``,
Kinesis ``data``). Every other key of a pattern matches record metadata."""

MAX_PATTERNS = 5
"""Patterns per mapping under Lambda's default quota."""

MAX_PATTERNS_QUOTA = 10
"""The most patterns per mapping AWS grants on a quota increase request."""

MAX_PATTERN_LENGTH = 4096
"""Characters of one pattern's JSON text (CreateEventSourceMapping, ``Filter.Pattern``)."""

OPERATORS: tuple[str, ...] = (
    "anything-but",
    "equals-ignore-case",
    "exists",
    "numeric",
    "prefix",
    "suffix",
)
"""The operator objects a filter criteria pattern may use (the EventBridge subset Lambda
documents)."""

EVENT_PATTERN_OPERATORS: tuple[str, ...] = (*OPERATORS, "cidr", "wildcard")
"""The operator objects an EventBridge event pattern may use: Lambda's, plus ``cidr`` and
``wildcard`` (and, beyond operators, ``$or`` and the richer ``prefix``/``suffix``/
``anything-but`` forms that :class:`EventPattern` describes)."""

MAX_EVENT_PATTERN_LENGTH = 4096
"""Characters of an event pattern's JSON text (PutRule, ``EventPattern``)."""

EVENT_PATTERN_NUMBER_LIMIT = 5_000_000_000
"""The largest magnitude of a number an event pattern may compare against (``numeric``
operands and ``anything-but`` numbers); EventBridge also caps them at six decimals."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class _Missing:
    """The value of a field the record does not have."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
_NOT_JSON: Any = object()
"""What a payload decodes to when it is not a JSON object or array."""

_Match = Callable[[Any], bool]
_SCALARS = frozenset({str, int, float, bool, type(None)})
_JSON_START = re.compile(r"[ \t\n\r]*[\[{]")
"""A JSON object or array starts so (JSON's four whitespace characters, then a bracket)."""

_LOWER = (">", ">=")
_UPPER = ("<", "<=")
_STRING_FORMS = ("prefix", "suffix", "equals-ignore-case")

_OR = "$or"
_OR_RESERVED = frozenset(
    {
        *EVENT_PATTERN_OPERATORS,
        "exactly",
        "html",
        "=",
        "<",
        "<=",
        ">",
        ">=",
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)
"""Names EventBridge's matching engine keeps for operators: none may be a field name inside
a ``$or`` branch."""


@dataclass(frozen=True, slots=True)
class _Dialect:
    """What one pattern language accepts: Lambda's filter criteria or EventBridge's event
    patterns. One compiler serves both; each difference is a flag read here."""

    name: str
    eventbridge: bool
    operators: tuple[str, ...]
    numeric_allowed: str
    anything_but_allowed: str

    @property
    def operator_list(self) -> str:
        return ", ".join(f'"{name}"' for name in self.operators)


_LAMBDA = _Dialect(
    name="filter criteria",
    eventbridge=False,
    operators=OPERATORS,
    numeric_allowed=(
        '"numeric" with ["=", n], one comparison such as [">", n], or a range such as '
        '[">", 0, "<=", 5], n a number'
    ),
    anything_but_allowed=(
        '"anything-but" with a string, a number, a non-empty list of strings and numbers, '
        'or one of {"prefix": s}, {"suffix": s}, {"equals-ignore-case": s} with s a string'
    ),
)
_EVENTBRIDGE = _Dialect(
    name="event pattern",
    eventbridge=True,
    operators=EVENT_PATTERN_OPERATORS,
    numeric_allowed=(
        '"numeric" with ["=", n], one comparison such as [">", n], or a lower bound then '
        'an upper bound such as [">", 0, "<=", 5], n a number'
    ),
    anything_but_allowed=(
        '"anything-but" with a string, a number, a non-empty list of only strings or only '
        'numbers, or one of {"prefix": s}, {"suffix": s}, {"equals-ignore-case": s}, '
        '{"wildcard": s} with s a string or a non-empty list of strings'
    ),
)


class _Refused(Exception):
    """A pattern fragment that cannot be compiled; turned into a ConfigError by the caller."""

    def __init__(self, value: Any, allowed: str, path: str) -> None:
        super().__init__(value, allowed, path)
        self.value = value
        self.allowed = allowed
        self.path = path


def _refuse(value: Any, allowed: str, path: str) -> NoReturn:
    raise _Refused(value, allowed, path)


def _always(_value: Any) -> bool:
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    """``value`` as an exact ``str``/``int``/``float`` when it is a subclass of one (an
    enum member in user metadata, say); anything else unchanged."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def _any_leaf(values: Any, test: _Match) -> bool | None:
    """Whether some leaf value in the (possibly nested) array passes ``test``; ``None``
    when the array holds no leaf value at all (only objects, or nothing)."""
    seen = False
    for item in values:
        cls = item.__class__
        if cls in _SCALARS:
            if test(item):
                return True
            seen = True
        elif cls is list or cls is tuple:
            inner = _any_leaf(item, test)
            if inner:
                return True
            if inner is False:
                seen = True
        elif cls is dict or isinstance(item, Mapping):
            continue
        else:
            if test(item):
                return True
            seen = True
    return False if seen else None


# --------------------------------------------------------------------------- operators


def _string_operand(name: str, rule: Mapping[str, Any], path: str) -> str:
    operand = rule[name]
    if not isinstance(operand, str):
        _refuse(rule, f'"{name}" with a string operand, such as {{"{name}": "x"}}', path)
    return str.__str__(operand)


def _string_predicate(name: str, operand: str) -> _Match:
    if name == "prefix":
        return lambda s: s.startswith(operand)
    if name == "suffix":
        return lambda s: s.endswith(operand)
    folded = operand.casefold()  # equals-ignore-case
    return lambda s: s.casefold() == folded


def _folded_predicate(name: str, operand: str) -> _Match:
    """``prefix``/``suffix`` compared without case: both sides case-folded."""
    folded = operand.casefold()
    if name == "prefix":
        return lambda s: s.casefold().startswith(folded)
    return lambda s: s.casefold().endswith(folded)


def _affix(name: str, rule: Mapping[str, Any], path: str, dialect: _Dialect) -> _Match:
    """``prefix`` or ``suffix``: a string, or (event patterns) ``{"equals-ignore-case": s}``."""
    operand = rule[name]
    if dialect.eventbridge and isinstance(operand, Mapping):
        text = operand.get("equals-ignore-case") if len(operand) == 1 else None
        if not isinstance(text, str):
            _refuse(
                rule,
                f'"{name}" with a string or {{"equals-ignore-case": s}}, s a string',
                path,
            )
        return _folded_predicate(name, str.__str__(text))
    if dialect.eventbridge and not isinstance(operand, str):
        _refuse(rule, f'"{name}" with a string or {{"equals-ignore-case": s}}, s a string', path)
    return _string_predicate(name, _string_operand(name, rule, path))


def _wildcard_regex(text: str, rule: Any, path: str) -> re.Pattern[str]:
    """A ``wildcard`` operand as a regular expression matched in full.

    ``*`` stands for any run of characters (none too); ``\\*`` is a literal asterisk and
    ``\\\\`` a literal backslash. Two ``*`` in a row, and a backslash before anything
    else (or at the end), are refused, as EventBridge refuses them.
    """
    pieces: list[str] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                _refuse(
                    rule,
                    f'"wildcard" without consecutive "*" (two at character {i})',
                    path,
                )
            pieces.append(re.escape("".join(literal)))
            literal.clear()
            pieces.append(".*")
        elif char == "\\":
            if i + 1 < len(text) and text[i + 1] in "*\\":
                literal.append(text[i + 1])
                i += 1
            else:
                _refuse(
                    rule,
                    f'"wildcard" where a backslash escapes only "*" or a backslash (character {i})',
                    path,
                )
        else:
            literal.append(char)
        i += 1
    pieces.append(re.escape("".join(literal)))
    return re.compile("".join(pieces), re.DOTALL)


def _wildcard(rule: Mapping[str, Any], path: str) -> _Match:
    fullmatch = _wildcard_regex(_string_operand("wildcard", rule, path), rule, path).fullmatch
    return lambda s: fullmatch(s) is not None


def _cidr(rule: Mapping[str, Any], path: str) -> _Match:
    """``cidr``: IPv4 or IPv6 addresses in a block.

    EventBridge's engine starts the block at the address given and ends it where the
    ``/n`` block containing that address ends: ``10.0.0.5/24`` holds 10.0.0.5 to
    10.0.0.255. A mask of /32 (IPv4) or /128 (IPv6) is refused, as EventBridge refuses it
    (an exact-match string ``["10.0.0.5"]`` names one address).
    """
    allowed = (
        '"cidr" with an IPv4 or IPv6 block such as "10.0.0.0/24" or "2001:db8::/32" '
        "(mask below /32 for IPv4, below /128 for IPv6)"
    )
    text = _string_operand("cidr", rule, path)
    address, slash, bits = text.partition("/")
    if not slash or not bits.isascii() or not bits.isdigit() or "%" in address:
        _refuse(rule, allowed, path)
    try:
        start = ipaddress.ip_address(address)
    except ValueError:
        _refuse(rule, allowed, path)
    mask = int(bits)
    if mask >= start.max_prefixlen:
        _refuse(rule, allowed, path)
    end = ipaddress.ip_network(f"{start}/{mask}", strict=False).broadcast_address
    low, high, version = int(start), int(end), start.version

    def in_block(value: str) -> bool:
        try:
            found = ipaddress.ip_address(value)
        except ValueError:
            return False
        return found.version == version and low <= int(found) <= high

    return in_block


def _finite(value: Any, path: str, rule: Any) -> int | float:
    if isinstance(value, float):
        if not math.isfinite(value):
            _refuse(rule, "finite numbers", path)
        return float(value)
    return int(value)


def _bounded(value: Any, path: str, rule: Any) -> int | float:
    """An event pattern's number operand: finite, within +-5e9, at most six decimals."""
    number = _finite(value, path, rule)
    if abs(number) > EVENT_PATTERN_NUMBER_LIMIT:
        _refuse(
            rule,
            f"numbers from -{EVENT_PATTERN_NUMBER_LIMIT:,} to {EVENT_PATTERN_NUMBER_LIMIT:,}",
            path,
        )
    if isinstance(number, float):
        exponent = decimal.Decimal(repr(number)).normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -6:
            _refuse(rule, "numbers with at most six decimal places", path)
    return number


def _anything_but_form(
    rule: Mapping[str, Any], path: str, dialect: _Dialect
) -> tuple[str, _Match]:
    """``anything-but`` with ``{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": ...}``:
    strings that pass none of the listed tests."""
    operand = rule["anything-but"]
    forms = (*_STRING_FORMS, "wildcard") if dialect.eventbridge else _STRING_FORMS
    if len(operand) != 1:
        _refuse(rule, dialect.anything_but_allowed, path)
    ((name, given),) = operand.items()
    if name not in forms:
        _refuse(rule, dialect.anything_but_allowed, path)
    if isinstance(given, str):
        texts = [str.__str__(given)]
    elif dialect.eventbridge and isinstance(given, (list, tuple)) and given:
        if not all(isinstance(text, str) for text in given):
            _refuse(rule, dialect.anything_but_allowed, path)
        texts = [str.__str__(text) for text in given]
    else:
        _refuse(rule, dialect.anything_but_allowed, path)
    if dialect.eventbridge and name in ("prefix", "suffix") and "" in texts:
        _refuse(rule, f'"anything-but" with a non-empty {name}', path)
    if name == "equals-ignore-case":
        folded = frozenset(text.casefold() for text in texts)
        return "str", lambda s: s.casefold() not in folded
    if name == "wildcard":
        regexes = tuple(_wildcard_regex(text, rule, path).fullmatch for text in texts)
        return "str", lambda s: not any(fullmatch(s) is not None for fullmatch in regexes)
    if len(texts) == 1:
        positive = _string_predicate(name, texts[0])
        return "str", lambda s: not positive(s)
    affixes = tuple(texts)
    if name == "prefix":
        return "str", lambda s: not s.startswith(affixes)
    return "str", lambda s: not s.endswith(affixes)


def _anything_but(rule: Mapping[str, Any], path: str, dialect: _Dialect) -> tuple[str, _Match]:
    operand = rule["anything-but"]
    if isinstance(operand, Mapping):
        return _anything_but_form(rule, path, dialect)
    values = operand if isinstance(operand, (list, tuple)) else [operand]
    if not values:
        _refuse(rule, dialect.anything_but_allowed, path)
    strs: set[str] = set()
    ints: set[int] = set()
    floats: set[float] = set()
    for value in values:
        if isinstance(value, str):
            strs.add(str.__str__(value))
        elif _is_number(value):
            number = (_bounded if dialect.eventbridge else _finite)(value, path, rule)
            if isinstance(number, float):
                floats.add(number)
            else:
                ints.add(number)
        else:
            _refuse(rule, dialect.anything_but_allowed, path)
    if dialect.eventbridge and strs and (ints or floats):
        _refuse(rule, dialect.anything_but_allowed, path)
    listed_strs = frozenset(strs)
    listed_ints: frozenset[float] = frozenset(ints)
    listed_floats: frozenset[float] = frozenset(floats)
    if dialect.eventbridge:
        # Event patterns compare numbers by value: 5 and 5.0 are one number.
        listed_ints = listed_floats = listed_ints | listed_floats

    def anything_but(value: Any) -> bool:
        cls = value.__class__
        if cls is str:
            return value not in listed_strs
        if cls is int:
            return value not in listed_ints
        if cls is float:
            return value not in listed_floats
        return True

    return "any", anything_but


_COMPARE: dict[str, Callable[[float], _Match]] = {
    "=": lambda n: lambda x: x == n,
    ">": lambda n: lambda x: x > n,
    ">=": lambda n: lambda x: x >= n,
    "<": lambda n: lambda x: x < n,
    "<=": lambda n: lambda x: x <= n,
}

_RANGE: dict[tuple[str, str], Callable[[float, float], _Match]] = {
    (">", "<"): lambda lo, hi: lambda x: lo < x < hi,
    (">", "<="): lambda lo, hi: lambda x: lo < x <= hi,
    (">=", "<"): lambda lo, hi: lambda x: lo <= x < hi,
    (">=", "<="): lambda lo, hi: lambda x: lo <= x <= hi,
}


def _numeric(rule: Mapping[str, Any], path: str, dialect: _Dialect) -> tuple[str, _Match]:
    spec = rule["numeric"]
    allowed = dialect.numeric_allowed
    if not isinstance(spec, (list, tuple)) or len(spec) not in (2, 4):
        _refuse(rule, allowed, path)
    pairs = [(spec[i], spec[i + 1]) for i in range(0, len(spec), 2)]
    for op, number in pairs:
        if not isinstance(op, str) or op not in _COMPARE or not _is_number(number):
            _refuse(rule, allowed, path)
    operand = _bounded if dialect.eventbridge else _finite
    if len(pairs) == 1:
        op, number = pairs[0]
        return "num", _COMPARE[op](operand(number, path, rule))
    (op1, n1), (op2, n2) = pairs
    if not dialect.eventbridge and op1 in _UPPER and op2 in _LOWER:
        (op1, n1), (op2, n2) = (op2, n2), (op1, n1)
    if op1 not in _LOWER or op2 not in _UPPER:
        order = "then" if dialect.eventbridge else "and"
        _refuse(
            rule, f'"numeric" with a lower bound (> or >=) {order} an upper bound (< or <=)', path
        )
    low, high = operand(n1, path, rule), operand(n2, path, rule)
    if low > high or (low == high and (op1, op2) != (">=", "<=")):
        _refuse(rule, '"numeric" with a range some number is in (lower bound below upper)', path)
    return "num", _RANGE[(op1, op2)](low, high)


def _operator(rule: Mapping[str, Any], path: str, dialect: _Dialect) -> tuple[str, _Match]:
    """Compile one operator object; return the kind of value it tests and its predicate.

    Kinds: ``"str"`` (strings only), ``"num"`` (ints and floats, not booleans), ``"any"``
    (every leaf value), ``"exists"`` and ``"absent"``.
    """
    if len(rule) != 1:
        _refuse(rule, f"an object with exactly one operator: {dialect.operator_list}", path)
    ((name, operand),) = rule.items()
    if name in ("prefix", "suffix"):
        return "str", _affix(name, rule, path, dialect)
    if name == "equals-ignore-case":
        return "str", _string_predicate(name, _string_operand(name, rule, path))
    if name == "anything-but":
        return _anything_but(rule, path, dialect)
    if name == "numeric":
        return _numeric(rule, path, dialect)
    if name == "exists":
        if not isinstance(operand, bool):
            _refuse(rule, '"exists" with true or false, such as {"exists": true}', path)
        return ("exists" if operand else "absent"), _always
    if dialect.eventbridge and name == "wildcard":
        return "str", _wildcard(rule, path)
    if dialect.eventbridge and name == "cidr":
        return "str", _cidr(rule, path)
    if name in EVENT_PATTERN_OPERATORS:
        _refuse(
            rule,
            f"one of the operators {dialect.operator_list} (Lambda filter criteria have no "
            f'"{name}"; EventBridge event patterns do)',
            path,
        )
    _refuse(rule, f"one of the operators {dialect.operator_list}", path)


# --------------------------------------------------------------------------- patterns


def _compile_leaf(rules: Any, path: str, dialect: _Dialect) -> tuple[_Match, bool]:
    """Compile a list of alternatives; return the matcher of a field's value (or
    ``_MISSING``) and whether a missing field matches (``{"exists": false}``)."""
    if not rules:
        _refuse(rules, 'a non-empty list of values or operators, such as ["x"]', path)
    strs: set[str] = set()
    ints: set[int] = set()
    floats: set[float] = set()
    null = true = false = exists = absent = False
    str_tests: list[_Match] = []
    num_tests: list[_Match] = []
    any_tests: list[_Match] = []
    for rule in rules:
        if rule is None:
            null = True
        elif rule is True:
            true = True
        elif rule is False:
            false = True
        elif isinstance(rule, str):
            strs.add(str.__str__(rule))
        elif _is_number(rule):
            number = _finite(rule, path, rule)
            if isinstance(number, float):
                floats.add(number)
            else:
                ints.add(number)
        elif isinstance(rule, Mapping):
            kind, test = _operator(rule, path, dialect)
            if kind == "str":
                str_tests.append(test)
            elif kind == "num":
                num_tests.append(test)
            elif kind == "any":
                any_tests.append(test)
            elif kind == "exists":
                exists = True
            else:
                absent = True
        else:
            _refuse(rule, "a string, number, true, false, null or an operator object", path)

    if exists:
        test_leaf: _Match = _always
    elif len(rules) == 1 and len(strs) == 1:
        (only,) = strs
        test_leaf = lambda value: value == only and isinstance(value, str)  # noqa: E731
    else:
        str_set = frozenset(strs)
        int_set: frozenset[float] = frozenset(ints)
        float_set: frozenset[float] = frozenset(floats)
        if dialect.eventbridge:
            # Event patterns compare exact numbers by value (300 matches 300.0), as
            # EventBridge's engine adds a numeric-equals test to every number given.
            int_set = float_set = int_set | float_set
        str_all, num_all, any_all = tuple(str_tests), tuple(num_tests), tuple(any_tests)

        def test_leaf(value: Any) -> bool:
            cls = value.__class__
            if cls is str:
                if value in str_set:
                    return True
                for test in str_all:
                    if test(value):
                        return True
            elif cls is int or cls is float:
                if value in (int_set if cls is int else float_set):
                    return True
                for test in num_all:
                    if test(value):
                        return True
            elif value is None:
                if null:
                    return True
            elif cls is bool:
                if true if value else false:
                    return True
            else:
                plain = _plain(value)
                if plain is not value:
                    return test_leaf(plain)
            for test in any_all:
                if test(value):
                    return True
            return False

    missing_ok = absent

    def match_leaf(value: Any) -> bool:
        cls = value.__class__
        if cls in _SCALARS:
            return test_leaf(value)
        if value is _MISSING or cls is dict:
            return missing_ok
        if cls is list or cls is tuple:
            found = _any_leaf(value, test_leaf)
            return missing_ok if found is None else found
        if isinstance(value, Mapping):
            return missing_ok
        if isinstance(value, (list, tuple)):
            found = _any_leaf(value, test_leaf)
            return missing_ok if found is None else found
        return test_leaf(value)

    return match_leaf, missing_ok


def _merge(into: dict[str, Any], key: str, value: Any, path: str) -> None:
    """Put ``value`` at ``key`` of ``into``; two objects meeting at a key merge (a later
    field wins over an earlier one of the same path), an object meeting a list is refused."""
    if key in into and isinstance(into[key], Mapping) and isinstance(value, Mapping):
        merged = dict(into[key])
        for sub_key, sub_value in value.items():
            _merge(merged, sub_key, sub_value, f"{path}.{key}" if path else key)
        into[key] = merged
    elif key in into and (isinstance(into[key], Mapping) or isinstance(value, Mapping)):
        where = f"{path}.{key}" if path else key
        _refuse(
            value,
            "one meaning per field path: a dotted key names the same field as the nested "
            "objects it spells, and a field cannot be both a list of values and an object",
            where,
        )
    else:
        into[key] = value


def _expand_dotted(pattern: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """An event pattern's level with dotted keys spelled out: ``{"detail.state": [...]}``
    is ``{"detail": {"state": [...]}}``, as EventBridge's engine joins a field's path with
    dots (a key with an empty part, such as ``"a."``, is kept as written)."""
    if not any(isinstance(key, str) and "." in key for key in pattern):
        return pattern
    expanded: dict[str, Any] = {}
    for key, value in pattern.items():
        parts = key.split(".") if isinstance(key, str) and key != _OR else [key]
        if len(parts) > 1 and all(parts):
            for part in reversed(parts[1:]):
                value = {part: value}
            key = parts[0]
        _merge(expanded, key, value, path)
    return expanded


def _compile_or(branches: Any, path: str, dialect: _Dialect) -> tuple[_Match, ...]:
    where = f"{path}.{_OR}" if path else _OR
    if not isinstance(branches, (list, tuple)) or len(branches) < 2:
        _refuse(branches, f'"{_OR}" with a list of at least two objects', where)
    compiled: list[_Match] = []
    for index, branch in enumerate(branches):
        if not isinstance(branch, Mapping):
            _refuse(branch, f'"{_OR}" with a list of at least two objects', f"{where}[{index}]")
        compiled.append(_compile_object(branch, f"{where}[{index}]", dialect, in_or=True)[0])
    return tuple(compiled)


def _compile_object(
    pattern: Mapping[Any, Any], path: str, dialect: _Dialect, *, in_or: bool = False
) -> tuple[_Match, bool]:
    """Compile a (nested) object pattern; return the matcher of a field's value (or
    ``_MISSING``) and whether a missing field matches (every leaf is exists:false)."""
    if not pattern:
        _refuse(pattern, "a non-empty object of fields to match", path)
    if dialect.eventbridge:
        pattern = _expand_dotted(pattern, path)
    fields: list[tuple[str, _Match]] = []
    branches: tuple[_Match, ...] = ()
    branches_missing_ok = True
    for key, sub in pattern.items():
        if not isinstance(key, str):
            _refuse(key, "string field names", path)
        where = f"{path}.{key}" if path else key
        if key == _OR:
            if not dialect.eventbridge:
                _refuse(
                    pattern,
                    'separate patterns instead of "$or" (Lambda does not support it; '
                    "patterns are OR-ed)",
                    path,
                )
            branches = _compile_or(sub, path, dialect)
            branches_missing_ok = any(branch(_MISSING) for branch in branches)
            continue
        if in_or and key in _OR_RESERVED:
            _refuse(
                key,
                f'field names other than operator names inside "{_OR}" (EventBridge keeps '
                f'"{key}" for its operators)',
                path,
            )
        fields.append((str.__str__(key), _compile_field(sub, where, key, dialect, in_or)[0]))
    missing_ok = all(m(_MISSING) for _, m in fields) and branches_missing_ok
    items = tuple(fields)

    if branches:

        def match_fields(value: Mapping[str, Any]) -> bool:
            get = value.get
            for key, match in items:
                if not match(get(key, _MISSING)):
                    return False
            for branch in branches:
                if branch(value):
                    return True
            return False

    else:

        def match_fields(value: Mapping[str, Any]) -> bool:
            get = value.get
            for key, match in items:
                if not match(get(key, _MISSING)):
                    return False
            return True

    def match_items(values: Iterable[Any]) -> bool:
        seen = False
        for item in values:
            if item.__class__ in _SCALARS:
                continue
            seen = True
            if match_object(item):
                return True
        return False if seen else missing_ok

    def match_object(value: Any) -> bool:
        cls = value.__class__
        if cls is dict:
            return match_fields(value)
        if cls is list or cls is tuple:
            return match_items(value)
        if cls in _SCALARS or value is _MISSING:
            return missing_ok
        if isinstance(value, Mapping):
            return match_fields(value)
        if isinstance(value, (list, tuple)):
            return match_items(value)
        return missing_ok

    return match_object, missing_ok


def _compile_field(
    sub: Any, path: str, key: str, dialect: _Dialect, in_or: bool = False
) -> tuple[_Match, bool]:
    if isinstance(sub, Mapping):
        return _compile_object(sub, path, dialect, in_or=in_or)
    if isinstance(sub, (list, tuple)):
        return _compile_leaf(sub, path, dialect)
    if key in dialect.operators:
        _refuse(sub, f'operators inside a list of alternatives, such as [{{"{key}": ...}}]', path)
    _refuse(sub, 'a list of alternatives, such as ["x"], or a nested object', path)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One pattern, split at the data key: the metadata fields and the payload's."""

    metadata: _Match | None
    data: _Match | None
    data_is_json: bool


def _parse(raw: Any) -> Any:
    def no_constants(name: str) -> NoReturn:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        _refuse(raw, f"a JSON object (invalid JSON: {exc.msg} at character {exc.pos})", "")
    except (ValueError, RecursionError) as exc:
        _refuse(raw, f"a JSON object (invalid JSON: {exc})", "")


def _pattern_object(raw: Any, max_length: int, example: str) -> Mapping[str, Any]:
    """A pattern given as JSON text (at most ``max_length`` characters) or a dict, as the
    object it is; ``example`` shows one in the error."""
    if isinstance(raw, str):
        if len(raw) > max_length:
            _refuse(raw, f"at most {max_length:,} characters of JSON", "")
        pattern = _parse(raw)
    elif isinstance(raw, Mapping):
        pattern = raw
    else:
        _refuse(raw, "a JSON string or a dict", "")
    if not isinstance(pattern, Mapping):
        _refuse(raw, f"a JSON object, such as {example}", "")
    return pattern


def _compile_pattern(raw: Any, source: str) -> tuple[str, _Compiled]:
    """Validate and compile one pattern; return its canonical JSON text and matchers."""
    pattern = _pattern_object(raw, MAX_PATTERN_LENGTH, '{"body": {"type": ["order"]}}')
    if not pattern:
        _refuse(raw, "a non-empty object (give no patterns at all for no filtering)", "")
    data_key = DATA_KEYS[source]
    metadata_fields = {k: v for k, v in pattern.items() if k != data_key}
    metadata = _compile_object(metadata_fields, "", _LAMBDA)[0] if metadata_fields else None
    data: _Match | None = None
    data_is_json = False
    if data_key in pattern:
        sub = pattern[data_key]
        if source == "stream" and isinstance(sub, (list, tuple)):
            _refuse(
                sub,
                f'a JSON object pattern under "{data_key}" (streams match data as JSON; AWS '
                "refuses plain-string data patterns)",
                data_key,
            )
        data, _ = _compile_field(sub, data_key, data_key, _LAMBDA)
        data_is_json = isinstance(sub, Mapping)
    text = raw if isinstance(raw, str) else None
    canonical = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if text is None and len(canonical) > MAX_PATTERN_LENGTH:
        _refuse(raw, f"at most {MAX_PATTERN_LENGTH:,} characters of JSON", "")
    return canonical, _Compiled(metadata, data, data_is_json)


def _json_document(text: str) -> Any:
    """``text`` parsed when it is a JSON object or array, else ``_NOT_JSON``."""
    if not _JSON_START.match(text):
        return _NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _stream_document(data: str | bytes | bytearray | memoryview) -> Any:
    """Stream data (base64 text as in the event, or raw bytes) parsed when it is UTF-8 text
    of a JSON object or array, else ``_NOT_JSON``."""
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return _NOT_JSON
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_JSON
    return _json_document(text)


# --------------------------------------------------------------------------- the criteria


@dataclass(frozen=True, slots=True, init=False)
class FilterCriteria:
    """A mapping's event filter: up to 5 patterns, validated and compiled when built.

    An empty criteria (no patterns, the default) filters nothing: every record matches.
    ``len(criteria)`` is the number of patterns, so ``if criteria:`` asks whether the
    mapping filters at all. Equal criteria have equal :attr:`patterns`, ``source`` and
    ``max_patterns``; they hash, pickle and copy (the compiled matchers are rebuilt).

    Parameters:
        patterns: the filter patterns, each a JSON string (as in the AWS API's
            ``Filters[].Pattern``) or an already-parsed dict; at most ``max_patterns``.
            A pattern that is not a JSON object, is empty, or uses an unknown or
            ill-formed operator raises :class:`~sluicegate.errors.ConfigError` naming
            ``filter_criteria[i]``, the offending fragment, and what is allowed (with
            the field's path). Stored in :attr:`patterns` as compact JSON text.
        source: ``"queue"`` (default; the payload is ``body``) or ``"stream"`` (the
            payload is ``data``, base64 in the event; a plain-string ``data`` pattern is
            refused, as AWS refuses it when the mapping is created).
        max_patterns: how many patterns the account's quota allows, 5-10 (default 5;
            AWS raises it to 10 on request).

    Raises:
        ConfigError: for any pattern AWS would refuse, and for the choices listed in
            this module's docstring ("Refused although AWS may accept them").
    """

    patterns: tuple[str, ...]
    source: FilterSource
    max_patterns: int
    _metadata_only: tuple[_Match, ...] = field(init=False, repr=False, compare=False)
    _with_data: tuple[_Compiled, ...] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        patterns: Iterable[str | Mapping[str, Any]] = (),
        *,
        source: FilterSource = "queue",
        max_patterns: int = MAX_PATTERNS,
    ) -> None:
        if not isinstance(source, str) or source not in DATA_KEYS:
            raise ConfigError("source", source, "'queue' or 'stream'", "filter_criteria")
        if (
            isinstance(max_patterns, bool)
            or not isinstance(max_patterns, int)
            or not MAX_PATTERNS <= max_patterns <= MAX_PATTERNS_QUOTA
        ):
            raise ConfigError(
                "max_patterns",
                max_patterns,
                f"{MAX_PATTERNS}-{MAX_PATTERNS_QUOTA} (Lambda's filter quota)",
                "filter_criteria",
            )
        if isinstance(patterns, (str, bytes, Mapping)) or not isinstance(patterns, Iterable):
            raise ConfigError(
                "filter_criteria", patterns, "a list of patterns, each a JSON string or a dict"
            )
        given = list(patterns)
        if len(given) > max_patterns:
            raise ConfigError(
                "filter_criteria",
                len(given),
                f"at most {max_patterns} patterns (Lambda's quota: 5 by default, up to 10)",
            )
        texts: list[str] = []
        metadata_only: list[_Match] = []
        with_data: list[_Compiled] = []
        for index, raw in enumerate(given):
            try:
                text, compiled = _compile_pattern(raw, source)
            except _Refused as refused:
                where = f" (at {refused.path})" if refused.path else ""
                raise ConfigError(
                    f"filter_criteria[{index}]", refused.value, refused.allowed + where
                ) from None
            texts.append(text)
            if compiled.data is None:
                assert compiled.metadata is not None
                metadata_only.append(compiled.metadata)
            else:
                with_data.append(compiled)
        set_ = object.__setattr__
        set_(self, "patterns", tuple(texts))
        set_(self, "source", source)
        set_(self, "max_patterns", max_patterns)
        set_(self, "_metadata_only", tuple(metadata_only))
        set_(self, "_with_data", tuple(with_data))

    @classmethod
    def from_aws(
        cls,
        value: Mapping[str, Any] | None,
        *,
        source: FilterSource = "queue",
        max_patterns: int = MAX_PATTERNS,
    ) -> FilterCriteria:
        """Build from the AWS API shape ``{"Filters": [{"Pattern": "<JSON>"}, ...]}``.

        Parameters:
            value: the ``FilterCriteria`` object of CreateEventSourceMapping; ``None`` or
                ``{}`` (what AWS takes to remove filtering) for no filtering.
            source: as for the constructor.
            max_patterns: as for the constructor.

        Returns:
            The criteria. Raises :class:`~sluicegate.errors.ConfigError` for a value of
            another shape, or for any pattern the constructor refuses.
        """
        shape = 'an object {"Filters": [{"Pattern": "<JSON>"}, ...]}'
        if value is None or (isinstance(value, Mapping) and not value):
            return cls((), source=source, max_patterns=max_patterns)
        if not isinstance(value, Mapping) or set(value) != {"Filters"}:
            raise ConfigError("filter_criteria", value, shape)
        filters = value["Filters"]
        if not isinstance(filters, (list, tuple)):
            raise ConfigError("filter_criteria", value, shape)
        patterns: list[str] = []
        for index, item in enumerate(filters):
            if not isinstance(item, Mapping) or set(item) != {"Pattern"}:
                raise ConfigError(f"filter_criteria[{index}]", item, '{"Pattern": "<JSON>"}')
            patterns.append(item["Pattern"])
        return cls(patterns, source=source, max_patterns=max_patterns)

    def to_aws(self) -> dict[str, Any]:
        """The AWS API shape of these criteria: ``{"Filters": [{"Pattern": ...}]}``, or
        ``{}`` when there are no patterns (what UpdateEventSourceMapping takes to remove
        filtering)."""
        if not self.patterns:
            return {}
        return {"Filters": [{"Pattern": text} for text in self.patterns]}

    @property
    def data_key(self) -> str:
        """The record key holding the payload: ``"body"`` for queues, ``"data"`` for streams."""
        return DATA_KEYS[self.source]

    def __len__(self) -> int:
        return len(self.patterns)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.patterns, self.source, self.max_patterns))

    def matches_payload(self, payload: Any, metadata: Mapping[str, Any] = _EMPTY) -> bool:
        """Whether one record passes the filter: the hot-path form, without building an event.

        Parameters:
            payload: the record's payload. Queue: the body as ``str`` (``bytes`` are read
                as UTF-8). Stream: the data as ``bytes``, or as the base64 text of the
                event's ``data`` field. Either: an already-parsed dict or list is taken as
                the decoded JSON document.
            metadata: the record's other fields, as the event shows them (SQS:
                ``messageId``, ``attributes``, ``messageAttributes``, ...; Kinesis:
                ``partitionKey``, ``sequenceNumber``, ...). Pattern fields other than the
                data key are matched here.

        Returns:
            ``True`` when there are no patterns or at least one pattern matches. A queue
            body is decoded when a pattern names ``body``: a JSON object or array is
            matched by object patterns only, any other body by plain-string (list)
            patterns only, and a mismatch drops the message (the table in the Lambda
            developer guide, "Properly filtering Amazon SQS messages"). Stream data that is
            not a UTF-8 JSON object or array matches no pattern naming ``data``. The
            payload is decoded at most once, and only when a pattern whose metadata fields
            match still needs it.
        """
        if not self.patterns:
            return True
        for match in self._metadata_only:
            if match(metadata):
                return True
        return self._match_with_data(payload, metadata)

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether a record in the AWS event shape passes the filter.

        Parameters:
            record: one element of the event's ``Records``: for a queue the SQS record
                (``messageId``, ``body``, ``attributes``, ``messageAttributes``, ...);
                for a stream the record's ``kinesis`` object (``data`` in base64,
                ``partitionKey``, ``sequenceNumber``, ...). The data key's value is
                decoded as :meth:`matches_payload` describes; the other keys are metadata.

        Returns:
            ``True`` when there are no patterns or at least one pattern matches. A record
            without the data key matches no pattern that names it.
        """
        if not self.patterns:
            return True
        for match in self._metadata_only:
            if match(record):
                return True
        if not self._with_data:
            return False
        return self._match_with_data(record.get(self.data_key, _MISSING), record)

    def _match_with_data(self, payload: Any, metadata: Mapping[str, Any]) -> bool:
        decoded = False
        text: str | None = None
        document: Any = _NOT_JSON
        for compiled in self._with_data:
            if compiled.metadata is not None and not compiled.metadata(metadata):
                continue
            if not decoded:
                text, document = self._decode(payload)
                decoded = True
            assert compiled.data is not None
            if compiled.data_is_json:
                if document is not _NOT_JSON and compiled.data(document):
                    return True
            elif document is _NOT_JSON and text is not None and compiled.data(text):
                return True
        return False

    def _decode(self, payload: Any) -> tuple[str | None, Any]:
        """The payload as (plain text or ``None``, JSON document or ``_NOT_JSON``)."""
        if payload.__class__ is str:
            if self.source == "queue":
                return payload, _json_document(payload)
            return None, _stream_document(payload)
        if isinstance(payload, (Mapping, list, tuple)):
            return None, payload
        if isinstance(payload, (bytes, bytearray, memoryview)):
            if self.source == "queue":
                text = bytes(payload).decode("utf-8", "replace")
                return text, _json_document(text)
            return None, _stream_document(payload)
        if isinstance(payload, str):
            return self._decode(str.__str__(payload))
        return None, _NOT_JSON


def _restore(patterns: tuple[str, ...], source: FilterSource, max_patterns: int) -> FilterCriteria:
    """Rebuild pickled criteria (their compiled matchers are closures, not picklable)."""
    return FilterCriteria(patterns, source=source, max_patterns=max_patterns)


# --------------------------------------------------------------------------- event patterns


def _compile_event_pattern(raw: Any) -> tuple[str, _Match]:
    """Validate and compile an event pattern; return its canonical JSON text and matcher."""
    pattern = _pattern_object(raw, MAX_EVENT_PATTERN_LENGTH, '{"source": ["my.app"]}')
    match, _ = _compile_object(pattern, "", _EVENTBRIDGE)
    canonical = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    if not isinstance(raw, str) and len(canonical) > MAX_EVENT_PATTERN_LENGTH:
        _refuse(raw, f"at most {MAX_EVENT_PATTERN_LENGTH:,} characters of JSON", "")
    return canonical, match


@dataclass(frozen=True, slots=True, init=False)
class EventPattern:
    """An EventBridge event pattern (a rule's ``EventPattern``), validated and compiled once.

    The language is EventBridge's (user guide, "Amazon EventBridge event patterns" and
    "Comparison operators for use in event patterns"); it shares its compiler with
    :class:`FilterCriteria`, which speaks the subset Lambda documents. Beyond that subset
    an event pattern has ``wildcard``, ``cidr``, ``prefix``/``suffix`` with
    ``{"equals-ignore-case": s}``, ``anything-but`` with ``wildcard`` and with lists of
    prefixes, suffixes, case-insensitive values or wildcards, and ``$or`` at any level.
    Every rule, and each choice sluicegate makes where AWS says nothing, is in
    ``docs/event-patterns.md``; the ones that differ from filter criteria:

    - numbers compare by value: ``[300]`` matches 300 and 300.0, and
      ``{"anything-but": [5]}`` refuses 5.0 too (EventBridge's engine adds a numeric
      test to every number); ``numeric`` and ``anything-but`` operands must lie within
      +-5,000,000,000 with at most six decimals;
    - a ``numeric`` range is written lower bound first (``[">", 0, "<=", 5]``);
    - ``anything-but`` lists hold only strings or only numbers;
    - a dotted key names a nested field: ``{"detail.state": ["on"]}`` is
      ``{"detail": {"state": ["on"]}}`` (EventBridge joins a field's path with dots);
    - ``$or`` takes a list of at least two objects, whose field names (at any depth) may
      not be operator names.

    Equal patterns have equal :attr:`pattern` text; they hash, pickle and copy (the
    compiled matcher is rebuilt).

    Parameters:
        pattern: the pattern as JSON text (as PutRule takes it, at most 4,096 characters)
            or an already-parsed dict.
        context: what the pattern belongs to ("rule orders"), put before the error
            message.

    Raises:
        ConfigError: for a pattern EventBridge would refuse, naming the offending key path
            (``event_pattern.detail.state``), the fragment and what is allowed, on one line.
    """

    pattern: str
    _match: _Match = field(init=False, repr=False, compare=False)

    def __init__(self, pattern: str | Mapping[str, Any], *, context: str = "") -> None:
        try:
            text, match = _compile_event_pattern(pattern)
        except _Refused as refused:
            parameter = f"event_pattern.{refused.path}" if refused.path else "event_pattern"
            value = refused.value
            if isinstance(value, str) and len(value) > 120:
                value = value[:100] + "..."  # the whole text of a long pattern is no help
            raise ConfigError(parameter, value, refused.allowed, context) from None
        object.__setattr__(self, "pattern", text)
        object.__setattr__(self, "_match", match)

    @classmethod
    def parse(cls, pattern: str | Mapping[str, Any], *, context: str = "") -> EventPattern:
        """Validate and compile ``pattern``; the same as the constructor.

        Parameters:
            pattern: JSON text or a dict.
            context: put before an error message ("rule orders").

        Returns:
            The compiled pattern.

        Raises:
            ConfigError: the pattern is not one EventBridge accepts.
        """
        return cls(pattern, context=context)

    def matches(self, event: Mapping[str, Any] | str | bytes) -> bool:
        """Whether ``event`` matches the pattern.

        Parameters:
            event: the event as a dict (the EventBridge envelope, or any JSON object), or
                its JSON text.

        Returns:
            ``True`` when every field the pattern names matches (``$or`` branches: at
            least one). Anything but a JSON object matches nothing.

        Raises:
            InputError: ``event`` is text that is not JSON.
        """
        if isinstance(event, (str, bytes, bytearray)):
            try:
                event = json.loads(event)
            except (ValueError, RecursionError) as exc:
                raise InputError(f"the event is not JSON: {exc}") from None
        if not isinstance(event, Mapping):
            return False
        return self._match(event)

    def __str__(self) -> str:
        return self.pattern

    def __reduce__(self) -> tuple[Any, ...]:
        return (EventPattern, (self.pattern,))
