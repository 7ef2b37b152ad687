"""Live settings: values an operator, a controller or a function changes while mappings
run, kept in the store with a version and a history (the store contract's live-settings
part).

A *scope* names what the settings belong to (``mapping:orders``, ``function:resize``,
``breaker:payments``); its settings are a JSON object of named values. Every scope has a
*version*, 0 before its first write, raised by one at every write, so a writer can
compare and set: a write given ``expected_version`` happens only when the scope's version
is still that one (of two writers that read the same version, exactly one wins). A write
without it always happens.

A write merges: the names it gives get their new values, a value ``None`` removes the
name (the setting goes back to what the App configured), the other names keep theirs.
Every write, even one that changes no value, raises the version (so a compare-and-set
write of a value already there still wins once only) and adds one
:class:`SettingsChange` to the store's history (when, who, the old and new values of the
names it gave, why), which keeps the newest :data:`MAX_SETTINGS_HISTORY` entries.

Every write also raises the store's *settings revision*, a counter over every scope,
stored as the shared value :data:`SETTINGS_REVISION` (read with the other shared values
of a coordination round, :meth:`~sluicegate.store.base.Store.coordinate`) and as each
scope's ``revision``: a process that saw revision R reads the scopes written since with
``list_settings(since=R)``. So the processes of a cluster learn of a change in the round
they run anyway, with no extra polling.

:func:`merge_settings` is the write rule in Python, used by the memory and SQLite stores
and, before its compare-and-set script, by the Redis store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_SETTINGS_HISTORY",
    "SETTINGS_REVISION",
    "LiveSettings",
    "MemorySettings",
    "SettingsChange",
    "SettingsWrite",
    "merge_settings",
]

SETTINGS_REVISION = "settings:revision"
"""The shared value holding the store's settings revision (decimal text)."""

MAX_SETTINGS_HISTORY = 1000
"""Most history entries a store keeps (the oldest go first)."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """One scope's live settings as stored.

    Attributes:
        scope: ``mapping:NAME``, ``function:NAME``, ``breaker:NAME`` (any string).
        values: setting name -> value (JSON values); names never written are absent.
        version: 0 before the first write, then raised by one at every write.
        revision: the store's settings revision at the scope's last write (0: never).
        changed_at: epoch seconds (store clock) of the last write, ``None``: never.
        changed_by: who wrote last (``""``: never).
    """

    scope: str
    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    revision: int = 0
    changed_at: float | None = None
    changed_by: str = ""


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """One write, as the history keeps it.

    Attributes:
        scope: the scope written.
        version: the scope's version after the write.
        at: epoch seconds (store clock).
        by: who wrote (``cli:alice``, ``controller:office-hours``, ``function:resize``).
        why: the reason given (``""``: none).
        old: each name the write gave -> its value before (``None``: unset).
        new: each name the write gave -> its value after (``None``: unset).
    """

    scope: str
    version: int
    at: float
    by: str
    why: str
    old: dict[str, Any]
    new: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps({"scope": self.scope, "version": self.version, "at": self.at,
                           "by": self.by, "why": self.why, "old": self.old, "new": self.new},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SettingsChange:
        d = json.loads(text)
        return cls(str(d["scope"]), int(d["version"]), float(d["at"]), str(d["by"]),
                   str(d.get("why", "")), dict(d["old"]), dict(d["new"]))


@dataclass(frozen=True, slots=True)
class SettingsWrite:
    """The answer to a write.

    Attributes:
        won: whether it was applied (``False`` only for a compare-and-set write whose
            expected version was no longer the scope's).
        settings: the scope as stored after the call (the winner's, when it lost).
    """

    won: bool
    settings: LiveSettings


def merge_settings(
    current: LiveSettings,
    changes: Mapping[str, Any],
    *,
    by: str,
    why: str,
    now: float,
    revision: int,
) -> tuple[LiveSettings, SettingsChange]:
    """The write rule: ``current`` with ``changes`` merged (``None`` removes a name), its
    version raised by one, stamped with ``revision`` (the store's new revision), ``now``
    and ``by``; and the history entry of the write."""
    values = dict(current.values)
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name, value in changes.items():
        old[name] = values.get(name)
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        new[name] = value
    version = current.version + 1
    stored = LiveSettings(current.scope, values, version, revision, now, by)
    return stored, SettingsChange(current.scope, version, now, by, why, old, new)


class MemorySettings:
    """The live settings of one memory store: the
    :class:`~sluicegate.store.engine.SettingsEngine` of plain Python dicts.

    Parameters:
        clock: epoch seconds, read once per write.
        shared: the memory store's shared values (where :data:`SETTINGS_REVISION` goes).
    """

    def __init__(self, clock: Any, shared: dict[str, str]) -> None:
        self.clock = clock
        self.shared = shared
        self.scopes: dict[str, LiveSettings] = {}
        self.history: list[SettingsChange] = []
        self.revision = 0

    def get_settings(self, scope: str) -> LiveSettings:
        return self.scopes.get(scope) or LiveSettings(scope)

    def list_settings(self, since: int) -> tuple[int, list[LiveSettings]]:
        return self.revision, [s for s in self.scopes.values() if s.revision > since]

    def write_settings(self, scope: str, changes: dict[str, Any], expected_version: int | None,
                       by: str, why: str) -> SettingsWrite:
        current = self.get_settings(scope)
        if expected_version is not None and expected_version != current.version:
            return SettingsWrite(False, current)
        self.revision += 1
        stored, change = merge_settings(current, changes, by=by, why=why, now=self.clock(),
                                        revision=self.revision)
        self.scopes[scope] = stored
        self.history.append(change)
        del self.history[:-MAX_SETTINGS_HISTORY]
        self.shared[SETTINGS_REVISION] = str(self.revision)
        return SettingsWrite(True, stored)

    def settings_history(self, scope: str | None, limit: int) -> list[SettingsChange]:
        entries = [c for c in self.history if scope is None or c.scope == scope]
        return entries[-limit:] if limit > 0 else []
