"""Reading a scenario's (or a load file's) plain data from where it is given.

A path to a TOML file, TOML text, a plain mapping, or an object with ``to_dict()``; the
``KEY=VALUE`` overrides (:mod:`sluicegate.sim.overrides`) are applied to the result, so
that every loader validates data that already carries them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sluicegate.sim.overrides import apply_override, plain
from sluicegate.sim.schema import ScenarioError

__all__ = ["read_source", "scenario_data"]


def scenario_data(source: Any, overrides: Iterable[str]
                   ) -> tuple[dict[str, Any], str, Path | None]:
    """The plain data of a scenario of any kind with ``overrides`` applied, where it came
    from (for error messages), and the directory relative paths use.

    ``source`` is a file or TOML text (see :func:`load_scenario`), a plain mapping, or a
    scenario object (its ``to_dict()``). ``[producer]`` tables, the top level's and a topic
    subscriber's, are stored as ``producers[0]`` first, so that overrides reach them
    either way.
    """
    base: Path | None = None
    if isinstance(source, Mapping):
        context = "scenario"
        data = plain(source)
    elif hasattr(source, "to_dict"):
        context = getattr(source, "name", "") or "scenario"
        data = source.to_dict()
    else:
        text, context, base = read_source(source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError("toml", None, "", context,
                                message=f"invalid TOML: {exc}") from None
    tables = [data]
    subscribers = data.get("subscribers")
    if isinstance(subscribers, list):
        tables += [t for t in subscribers if isinstance(t, dict)]
    for table in tables:
        if isinstance(table.get("producer"), Mapping) and not table.get("producers"):
            table["producers"] = [table.pop("producer")]
    for override in overrides:
        apply_override(data, override, context)
    return data, context, base


def read_source(source: str | Path) -> tuple[str, str, Path | None]:
    """The TOML text, the name to show in errors, and the directory relative paths use."""
    if isinstance(source, str) and ("\n" in source or "=" in source):
        is_file = "\n" not in source and len(source) < 4096 and Path(source).is_file()
        if not is_file:
            return source, "scenario", None
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), path.name, path.parent
    except OSError as exc:
        raise ScenarioError("file", str(source), "", path.name or "scenario",
                            message=f"cannot read {source}: {exc.strerror or exc}") from None
