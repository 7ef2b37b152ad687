"""What a rule's target receives: EventBridge's ``Input``, ``InputPath`` and ``InputTransformer``.

A rule target gets, by default, the matched event as JSON. A target may say instead
(PutTargets, one of the three at most):

- ``Input``: constant JSON text; nothing of the event is passed;
- ``InputPath``: the part of the event a JSONPath selects (``$.detail``);
- ``InputTransformer``: an ``InputPathsMap`` of up to 100 variables, each a JSONPath into
  the event, and an ``InputTemplate`` with ``<variable>`` placeholders.

Everything is validated when built (:class:`TargetInput`, :class:`InputTransformer`,
:class:`JsonPath`), with a one-line :class:`~sluicegate.errors.ConfigError`, and rendering
an event never parses a path or a template. Rendering is pure: the rule's name and ARN and
the event's ingestion time are passed in.

The rules are EventBridge's (user guide "Amazon EventBridge input transformation", API
reference ``InputTransformer`` and ``Target``):

- **JSONPath subset**: ``$`` then steps: ``.name`` (letters, digits, ``-``, ``_``, ``/``),
  ``[n]`` (an array index), ``.*`` or ``[*]`` (every child). ``InputPath`` also takes
  bracket notation (``$['odd key']``); ``InputPathsMap`` paths take dot notation only. A
  path with a wildcard selects a list of every match, in document order.
- **Templates** come in three kinds, told apart by their first character:

  * a JSON template (``{`` or ``[``): a placeholder written as a JSON value
    (``{"state": <state>}``) is replaced by the value as JSON (a string in quotes, an
    object as an object); one written inside a JSON string (``"is <state>"``) is replaced
    by the value's text: a string without its quotes, an object or array as JSON with
    every ``"`` removed (EventBridge's rule, so that the string stays a string). The
    result is minified. A placeholder may not be an object key, and the template must be
    JSON once its placeholders are filled;
  * a string template (``"..."``): one JSON string; its placeholders are replaced by their
    text as inside a JSON template's strings, and the result keeps its quotes;
  * anything else is text (``<instance> is in state <state>``): placeholders are replaced
    by their text, strings without quotes, other values as JSON.

  A template that is exactly one placeholder (``<detail>``) is a JSON value: the value's
  JSON.
- **Predefined variables**, usable without a path and reserved as names:
  ``aws.events.rule-name``, ``aws.events.rule-arn``, ``aws.events.event.ingestion-time``
  (ISO 8601, UTC), ``aws.events.event`` (the event without its ``detail``) and
  ``aws.events.event.json`` (the whole event). The last two are JSON, usable only as a
  JSON value, not inside a string.
- **Escaping**: EventBridge does not escape values it puts into a string: a value holding
  ``"`` yields text that is not valid JSON. sluicegate renders the same text (a JSON
  template whose result does not parse is returned unminified, as it came out).

Choices where AWS is silent (each repeated where it applies):

- A variable whose path selects nothing ("isn't created and won't appear in the output"):
  as a JSON value it becomes ``null`` (so the JSON stays JSON); in a string or in text it
  becomes the empty string. An ``InputPath`` that selects nothing passes ``null``.
- A ``<name>`` that is neither a variable of the map nor a predefined one is left as
  written (``<b>`` in an HTML fragment stays ``<b>``).
- Variable names: letters, digits, ``-`` and ``_``, not starting with ``aws.`` (any case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NoReturn

from sluicegate.core.events_bus import iso8601
from sluicegate.errors import ConfigError

__all__ = [
    "MAX_INPUT_LENGTH",
    "MAX_INPUT_PATHS",
    "MAX_INPUT_TEMPLATE_LENGTH",
    "MAX_PATH_LENGTH",
    "PREDEFINED_VARIABLES",
    "InputTransformer",
    "JsonPath",
    "TargetInput",
]

MAX_INPUT_PATHS = 100
"""Variables in one ``InputPathsMap``."""

MAX_INPUT_TEMPLATE_LENGTH = 8192
"""Characters of an ``InputTemplate``."""

MAX_INPUT_LENGTH = 8192
"""Characters of a target's constant ``Input``."""

MAX_PATH_LENGTH = 256
"""Characters of an ``InputPath`` and of each ``InputPathsMap`` path."""

PREDEFINED_VARIABLES: tuple[str, ...] = (
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
)
"""Variables every template may use without defining them."""

_JSON_ONLY = frozenset({"aws.events.event", "aws.events.event.json"})
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_DOT_NAME = re.compile(r"[A-Za-z0-9_/-]+")
_INDEX = re.compile(r"\[(\d+|\*)\]")
_BRACKET_NAME = re.compile(r"""\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]""")


class _Missing:
    """What a path selects when the event has nothing there."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
_WILD: Any = object()
"""A wildcard step."""


def _refuse(parameter: str, value: Any, allowed: str, context: str) -> NoReturn:
    raise ConfigError(parameter, value, allowed, context)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- JSONPath


@dataclass(frozen=True, slots=True, init=False)
class JsonPath:
    """A JSONPath in EventBridge's subset, parsed once.

    Parameters:
        path: the path, such as ``$.detail.state`` or ``$.resources[0]``.
        brackets: whether bracket notation (``$['a b']``) is allowed: yes for an
            ``InputPath``, no for an ``InputPathsMap`` path (default ``True``).
        parameter: the name the error message gives the path (``InputPath``).
        context: what the path belongs to ("rule orders target 1").

    Raises:
        ConfigError: the path is not in the subset, or longer than 256 characters.
    """

    path: str
    steps: tuple[Any, ...] = field(repr=False, compare=False)
    wildcard: bool = field(repr=False, compare=False)

    def __init__(
        self,
        path: str,
        *,
        brackets: bool = True,
        parameter: str = "InputPath",
        context: str = "",
    ) -> None:
        allowed = (
            "a JSONPath such as $.detail.state or $.resources[0]: $ then .name (letters, "
            "digits, - _ /), [n], .* or [*]"
            + (", or ['name']" if brackets else " (dot notation, no ['name'])")
        )
        if not isinstance(path, str) or not path.startswith("$"):
            _refuse(parameter, path, allowed, context)
        if len(path) > MAX_PATH_LENGTH:
            _refuse(parameter, path, f"at most {MAX_PATH_LENGTH} characters", context)
        steps: list[Any] = []
        i = 1
        while i < len(path):
            if path.startswith(".*", i):
                steps.append(_WILD)
                i += 2
                continue
            if path[i] == ".":
                found = _DOT_NAME.match(path, i + 1)
                if found is None:
                    _refuse(parameter, path, allowed, context)
                steps.append(found.group())
                i = found.end()
                continue
            index = _INDEX.match(path, i)
            if index is not None:
                steps.append(_WILD if index.group(1) == "*" else int(index.group(1)))
                i = index.end()
                continue
            named = _BRACKET_NAME.match(path, i) if brackets else None
            if named is not None:
                raw = named.group(1) if named.group(1) is not None else named.group(2)
                steps.append(re.sub(r"\\(.)", r"\1", raw))
                i = named.end()
                continue
            _refuse(parameter, path, allowed, context)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "wildcard", any(step is _WILD for step in steps))

    def find(self, document: Any) -> Any:
        """What the path selects in ``document``.

        Returns:
            The value; for a path with a wildcard, the list of every value selected (in
            document order, empty when none is); for another path that selects nothing,
            the module's missing marker (test it with :meth:`selects`).
        """
        if not self.wildcard:
            value = document
            for step in self.steps:
                if isinstance(step, int):
                    if not isinstance(value, (list, tuple)) or step >= len(value):
                        return _MISSING
                    value = value[step]
                else:
                    if not isinstance(value, Mapping) or step not in value:
                        return _MISSING
                    value = value[step]
            return value
        found: list[Any] = []
        self._collect(document, 0, found)
        return found

    def _collect(self, value: Any, at: int, found: list[Any]) -> None:
        if at == len(self.steps):
            found.append(value)
            return
        step = self.steps[at]
        if step is _WILD:
            if isinstance(value, Mapping):
                children: Any = value.values()
            elif isinstance(value, (list, tuple)):
                children = value
            else:
                return
            for child in children:
                self._collect(child, at + 1, found)
        elif isinstance(step, int):
            if isinstance(value, (list, tuple)) and step < len(value):
                self._collect(value[step], at + 1, found)
        elif isinstance(value, Mapping) and step in value:
            self._collect(value[step], at + 1, found)

    def selects(self, document: Any) -> bool:
        """Whether the path selects something in ``document`` (a wildcard path always
        does: its selection may be the empty list)."""
        return self.find(document) is not _MISSING

    def __str__(self) -> str:
        return self.path

    def __reduce__(self) -> tuple[Any, ...]:
        return (JsonPath, (self.path,))


# --------------------------------------------------------------------------- templates

_Kind = Literal["json", "string", "text"]


@dataclass(frozen=True, slots=True)
class _Slot:
    """One placeholder of a template: its variable and how its value is written."""

    name: str
    mode: Literal["json", "string", "text"]


def _template_kind(template: str) -> _Kind:
    stripped = template.strip()
    if stripped[:1] in ("{", "["):
        return "json"
    if stripped[:1] == '"':
        return "string"
    found = _PLACEHOLDER.fullmatch(stripped)
    if found is not None:
        return "json"
    return "text"


def _split_template(
    template: str, names: frozenset[str], context: str
) -> tuple[_Kind, tuple[str | _Slot, ...]]:
    """The template as literal pieces and slots, each slot knowing whether it stands as a
    JSON value or inside a string; validated as EventBridge validates templates."""
    kind = _template_kind(template)
    pieces: list[str | _Slot] = []
    literal: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if kind != "text" and in_string and char == "\\":
            literal.append(template[i : i + 2])
            i += 2
            continue
        if kind != "text" and char == '"':
            in_string = not in_string
            literal.append(char)
            i += 1
            continue
        found = _PLACEHOLDER.match(template, i) if char == "<" else None
        if found is None or found.group(1) not in names:
            literal.append(char)
            i += 1
            continue
        name = found.group(1)
        if kind == "text":
            mode: Literal["json", "string", "text"] = "text"
        elif in_string:
            mode = "string"
        else:
            mode = "json"
            rest = template[found.end() :].lstrip()
            if kind == "json" and rest.startswith(":"):
                _refuse(
                    "InputTemplate",
                    template,
                    f"placeholders as values, not object keys (<{name}> is a key)",
                    context,
                )
        if name in _JSON_ONLY and mode != "json":
            _refuse(
                "InputTemplate",
                template,
                f"<{name}> only as a JSON value, such as {{\"event\": <{name}>}} (its "
                "content is not escaped, so it cannot stand in a string)",
                context,
            )
        if literal:
            pieces.append("".join(literal))
            literal.clear()
        pieces.append(_Slot(name, mode))
        i = found.end()
    if literal:
        pieces.append("".join(literal))
    if kind != "text":
        probe = "".join(
            piece if isinstance(piece, str) else ("null" if piece.mode == "json" else "x")
            for piece in pieces
        )
        try:
            json.loads(probe)
        except ValueError as exc:
            what = "JSON" if kind == "json" else "one JSON string"
            _refuse(
                "InputTemplate",
                template,
                f"a template that is {what} once its placeholders are filled "
                f"({exc.args[0] if exc.args else exc})",
                context,
            )
    return kind, tuple(pieces)


def _as_text(value: Any, *, in_string: bool) -> str:
    """A value written into a string (or into a text template)."""
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return value
    text = _compact(value)
    if in_string and isinstance(value, (Mapping, list, tuple)):
        return text.replace('"', "")
    return text


def _as_json(value: Any) -> str:
    return "null" if value is _MISSING else _compact(value)


@dataclass(frozen=True, slots=True, init=False)
class InputTransformer:
    """EventBridge's ``InputTransformer``: variables from JSONPaths, and a template.

    Parameters:
        input_paths_map: variable name to JSONPath (dot notation), at most 100; names are
            letters, digits, ``-`` and ``_``, and may not start with ``aws.``.
        input_template: the template, 1 to 8,192 characters, with ``<name>`` placeholders
            for the map's variables and the predefined ones (module docstring).
        context: what the transformer belongs to ("rule orders target 1").

    Raises:
        ConfigError: for anything EventBridge refuses: a bad name or path, too many
            variables, a placeholder used as an object key, a JSON template that is not
            JSON once filled, ``<aws.events.event>`` inside a string.
    """

    input_paths_map: Mapping[str, str]
    input_template: str
    _paths: tuple[tuple[str, JsonPath], ...] = field(repr=False, compare=False)
    _kind: _Kind = field(repr=False, compare=False)
    _pieces: tuple[str | _Slot, ...] = field(repr=False, compare=False)

    def __init__(
        self,
        input_paths_map: Mapping[str, str] | None = None,
        input_template: str = "",
        *,
        context: str = "",
    ) -> None:
        given = {} if input_paths_map is None else input_paths_map
        if not isinstance(given, Mapping):
            _refuse("InputPathsMap", given, "an object of variable name to JSONPath", context)
        if len(given) > MAX_INPUT_PATHS:
            _refuse(
                "InputPathsMap", len(given), f"at most {MAX_INPUT_PATHS} variables", context
            )
        paths: list[tuple[str, JsonPath]] = []
        for name, path in given.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                _refuse(
                    "InputPathsMap", name, "variable names of letters, digits, - and _", context
                )
            if name.lower().startswith("aws."):
                _refuse("InputPathsMap", name, 'names that do not start with "aws."', context)
            if not isinstance(path, str):
                _refuse(f"InputPathsMap.{name}", path, "a JSONPath string", context)
            paths.append(
                (name, JsonPath(path, brackets=False, parameter=f"InputPathsMap.{name}",
                                context=context))
            )
        if not isinstance(input_template, str) or not input_template:
            _refuse("InputTemplate", input_template, "a non-empty string", context)
        if len(input_template) > MAX_INPUT_TEMPLATE_LENGTH:
            _refuse(
                "InputTemplate",
                f"{input_template[:40]}...",
                f"at most {MAX_INPUT_TEMPLATE_LENGTH:,} characters",
                context,
            )
        names = frozenset(name for name, _ in paths) | frozenset(PREDEFINED_VARIABLES)
        kind, pieces = _split_template(input_template, names, context)
        set_ = object.__setattr__
        set_(self, "input_paths_map", MappingProxyType({n: p.path for n, p in paths}))
        set_(self, "input_template", input_template)
        set_(self, "_paths", tuple(paths))
        set_(self, "_kind", kind)
        set_(self, "_pieces", pieces)

    @classmethod
    def from_aws(cls, value: Mapping[str, Any], *, context: str = "") -> InputTransformer:
        """Build from the API shape ``{"InputPathsMap": {...}, "InputTemplate": "..."}``.

        Raises:
            ConfigError: another shape, or a transformer the constructor refuses.
        """
        if not isinstance(value, Mapping) or not set(value) <= {"InputPathsMap", "InputTemplate"}:
            _refuse(
                "InputTransformer",
                value,
                'an object {"InputPathsMap": {...}, "InputTemplate": "..."}',
                context,
            )
        return cls(value.get("InputPathsMap"), value.get("InputTemplate", ""), context=context)

    def __reduce__(self) -> tuple[Any, ...]:
        return (InputTransformer, (dict(self.input_paths_map), self.input_template))

    def to_aws(self) -> dict[str, Any]:
        """The API shape of this transformer."""
        shape: dict[str, Any] = {"InputTemplate": self.input_template}
        if self.input_paths_map:
            shape["InputPathsMap"] = dict(self.input_paths_map)
        return shape

    @property
    def kind(self) -> _Kind:
        """``"json"``, ``"string"`` or ``"text"``: how the template is read."""
        return self._kind

    def variables(
        self,
        event: Mapping[str, Any],
        *,
        rule_name: str,
        rule_arn: str,
        ingestion_time: float,
    ) -> dict[str, Any]:
        """Every variable's value for ``event``; a path that selects nothing is left out.

        Parameters:
            event: the matched event.
            rule_name: the rule's name (``<aws.events.rule-name>``).
            rule_arn: the rule's ARN (``<aws.events.rule-arn>``).
            ingestion_time: epoch seconds at which the bus accepted the event.
        """
        values: dict[str, Any] = {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": iso8601(ingestion_time),
            "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
            "aws.events.event.json": event,
        }
        for name, path in self._paths:
            found = path.find(event)
            if found is not _MISSING:
                values[name] = found
        return values

    def render(
        self,
        event: Mapping[str, Any],
        *,
        rule_name: str,
        rule_arn: str,
        ingestion_time: float,
    ) -> str:
        """The text the target receives for ``event``.

        Parameters:
            event: the matched event.
            rule_name: the rule's name.
            rule_arn: the rule's ARN.
            ingestion_time: epoch seconds at which the bus accepted the event.

        Returns:
            The filled template: minified JSON for a JSON template (when it parses), the
            quoted string for a string template, the text for a text template.
        """
        values = self.variables(
            event, rule_name=rule_name, rule_arn=rule_arn, ingestion_time=ingestion_time
        )
        out: list[str] = []
        for piece in self._pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = values.get(piece.name, _MISSING)
            if piece.mode == "json":
                out.append(_as_json(value))
            else:
                out.append(_as_text(value, in_string=piece.mode == "string"))
        text = "".join(out)
        if self._kind == "json":
            try:
                return _compact(json.loads(text))
            except ValueError:
                return text
        return text


# --------------------------------------------------------------------------- a target's input


@dataclass(frozen=True, slots=True, init=False)
class TargetInput:
    """What one rule target receives: the event, a constant, a part, or a transformation.

    At most one of the three may be given, as PutTargets requires; none means the whole
    matched event.

    Parameters:
        input: constant JSON text (``Input``), at most 8,192 characters.
        input_path: a JSONPath (``InputPath``); bracket notation allowed.
        input_transformer: an :class:`InputTransformer`, or its API shape
            ``{"InputPathsMap": ..., "InputTemplate": ...}``.
        context: what the target belongs to ("rule orders target 1").

    Raises:
        ConfigError: two of the three given, ``input`` that is not JSON, or a path or
            transformer EventBridge refuses.
    """

    input: str | None
    input_path: JsonPath | None
    input_transformer: InputTransformer | None

    def __init__(
        self,
        *,
        input: str | None = None,
        input_path: str | JsonPath | None = None,
        input_transformer: InputTransformer | Mapping[str, Any] | None = None,
        context: str = "",
    ) -> None:
        given = [
            name
            for name, value in (
                ("Input", input),
                ("InputPath", input_path),
                ("InputTransformer", input_transformer),
            )
            if value is not None
        ]
        if len(given) > 1:
            _refuse(
                "target input",
                " and ".join(given),
                "at most one of Input, InputPath and InputTransformer",
                context,
            )
        if input is not None:
            if not isinstance(input, str) or len(input) > MAX_INPUT_LENGTH:
                _refuse(
                    "Input", input, f"JSON text of at most {MAX_INPUT_LENGTH:,} characters",
                    context,
                )
            try:
                json.loads(input)
            except ValueError as exc:
                _refuse("Input", input, f"valid JSON text ({exc})", context)
        path = input_path
        if isinstance(path, str):
            path = JsonPath(path, context=context)
        elif path is not None and not isinstance(path, JsonPath):
            _refuse("InputPath", path, "a JSONPath string", context)
        transformer = input_transformer
        if transformer is not None and not isinstance(transformer, InputTransformer):
            transformer = InputTransformer.from_aws(transformer, context=context)
        set_ = object.__setattr__
        set_(self, "input", input)
        set_(self, "input_path", path)
        set_(self, "input_transformer", transformer)

    @classmethod
    def from_aws(cls, target: Mapping[str, Any], *, context: str = "") -> TargetInput:
        """Read ``Input`` / ``InputPath`` / ``InputTransformer`` from a PutTargets target
        (other keys, such as ``Id`` and ``Arn``, are ignored here).

        Raises:
            ConfigError: as for the constructor.
        """
        return cls(
            input=target.get("Input"),
            input_path=target.get("InputPath"),
            input_transformer=target.get("InputTransformer"),
            context=context,
        )

    def to_aws(self) -> dict[str, Any]:
        """The keys this input adds to a PutTargets target (none for the whole event)."""
        if self.input is not None:
            return {"Input": self.input}
        if self.input_path is not None:
            return {"InputPath": self.input_path.path}
        if self.input_transformer is not None:
            return {"InputTransformer": self.input_transformer.to_aws()}
        return {}

    def render(
        self,
        event: Mapping[str, Any],
        *,
        rule_name: str = "",
        rule_arn: str = "",
        ingestion_time: float = 0.0,
    ) -> str:
        """The text the target receives for ``event``.

        Parameters:
            event: the matched event.
            rule_name: the rule's name (used by transformer templates only).
            rule_arn: the rule's ARN (likewise).
            ingestion_time: epoch seconds at which the bus accepted the event (likewise).

        Returns:
            The event as compact JSON; the constant ``Input`` as given; the JSON of what
            ``InputPath`` selects (``null`` when it selects nothing); or the rendered
            template (:meth:`InputTransformer.render`).
        """
        if self.input is not None:
            return self.input
        if self.input_path is not None:
            found = self.input_path.find(event)
            return "null" if found is _MISSING else _compact(found)
        if self.input_transformer is not None:
            return self.input_transformer.render(
                event, rule_name=rule_name, rule_arn=rule_arn, ingestion_time=ingestion_time
            )
        return _compact(event)
