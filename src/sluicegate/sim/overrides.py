"""The override language: ``KEY=VALUE`` strings applied to a scenario's plain data.

``KEY`` is a dotted key path (``mapping.maximum_concurrency``, ``producers.0.rate``,
``subscribers.billing.function.timeout``: an array element by index or by its ``name``);
``VALUE`` is a TOML value, or bare text when it is not one (``scaling=fixed``). Missing
tables along the path are created; ``producer`` reaches ``producers[0]``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from sluicegate.sim.schema import ScenarioError

__all__ = ["apply_override", "plain"]


def _parse_value(text: str) -> Any:
    """A TOML value (``50``, ``true``, ``"4m"``, ``{ ... }``), or the bare text when it is
    not one (so ``scaling=fixed`` needs no quotes)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def apply_override(data: dict[str, Any], override: str, context: str) -> None:
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("override", override, "KEY=VALUE, e.g. mapping.batch_size=10",
                            context)
    parts = key.split(".")
    node: Any = data
    depth = 0
    while True:
        if parts[depth] == "producer" and isinstance(node, dict):
            # [producer] is stored as producers[0] (a topic subscriber's too); in a list
            # the part is an element's name (a subscriber may be named "producer")
            parts[depth:depth + 1] = ["producers", "0"]
        if depth == len(parts) - 1:
            break
        part = parts[depth]
        depth += 1
        here = ".".join(parts[:depth])
        if isinstance(node, list):
            node = node[_element(node, part, here, override, context)]
        else:
            child = node.get(part)
            if child is None:
                child = node[part] = [{}] if part in ("producers",) else {}
            if not isinstance(child, (dict, list)):
                raise ScenarioError(here, child, "a table", context,
                                    message=f"override {override!r}: {here} is not a table")
            node = child
    last = parts[-1]
    value = _parse_value(text)
    if isinstance(node, list):
        node[_element(node, last, ".".join(parts), override, context)] = value
    else:
        node[last] = value


def _element(node: list[Any], part: str, here: str, override: str, context: str) -> int:
    """The index of an array element named in an override: a number, or the ``name`` of
    a table in the array (``subscribers.billing``)."""
    if part.isdigit():
        if int(part) < len(node):
            return int(part)
        raise ScenarioError(here, override, f"an index 0-{len(node) - 1}", context,
                            message=f"override {override!r}: no {here}")
    for index, element in enumerate(node):
        if isinstance(element, Mapping) and element.get("name") == part:
            return index
    names = [str(e["name"]) for e in node if isinstance(e, Mapping) and "name" in e]
    known = f" (known: {', '.join(names)})" if names else ""
    raise ScenarioError(here, override, "an index or a name", context,
                        message=f"override {override!r}: no {here}{known}")


def plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (so overrides never touch the caller's data)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value

