"""Live limits: the settings an operator, a controller or a function changes while the
mappings run, and the pure rules around them (which scope holds which setting, what a
value may be, what a schedule says at a time).

The store keeps them per *scope* (:mod:`sluicegate.store.live`):

``mapping:NAME``
    ``maximum_concurrency`` (2-1,000; ``None``: back to the App's) replaces the value of
    the mapping's ``maximum_concurrency`` limit term; ``enabled`` (``false`` pauses the
    mapping as AWS's ``Enabled``: it receives nothing; ``true`` resumes it).
``function:NAME``
    ``reserved_concurrency`` (0-1,000,000; ``None``: back to the App's) changes the
    function's reservation in the account's pool.
``breaker:NAME``
    ``state`` (``"open"`` trips the breaker, ``"closed"`` resets it) and ``reason``.

A live value wins over the App's while it is set; removing it (``None``) gives the App's
back. Every change goes through the store's compare-and-set and history, whoever makes
it: the CLI (``cli:USER``), a controller rule (``controller:RULE``), a function
(``function:NAME``).

:class:`Schedule` is a controller's clock rule ("50 from 09:00 to 17:00, 10 otherwise"),
pure: :meth:`Schedule.value` and :meth:`Schedule.next_change` take ``now`` (epoch
seconds).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sluicegate.core.settings import SETTINGS, check_bool
from sluicegate.errors import ConfigError

__all__ = [
    "BREAKER_SETTINGS",
    "FUNCTION_SETTINGS",
    "LIVE_SETTINGS",
    "MAPPING_SETTINGS",
    "Schedule",
    "breaker_scope",
    "check_live_value",
    "function_scope",
    "mapping_scope",
    "schedule",
    "scope_kind",
]

MAPPING_SETTINGS: Final = ("maximum_concurrency", "enabled")
FUNCTION_SETTINGS: Final = ("reserved_concurrency",)
BREAKER_SETTINGS: Final = ("state", "reason")
LIVE_SETTINGS: Final = (*MAPPING_SETTINGS, *FUNCTION_SETTINGS)
"""The settings ``sluicegate limits set`` and ``context.limits`` change."""

BREAKER_STATES: Final = ("open", "closed")


def mapping_scope(name: str) -> str:
    """The store scope of a mapping's live settings."""
    return f"mapping:{name}"


def function_scope(name: str) -> str:
    """The store scope of a function's live settings."""
    return f"function:{name}"


def breaker_scope(name: str) -> str:
    """The store scope of a named breaker's live state."""
    return f"breaker:{name}"


def scope_kind(setting: str) -> str:
    """``"mapping"``, ``"function"`` or ``"breaker"``: whose scope holds ``setting``.

    Raises:
        ConfigError: a setting that cannot be changed live.
    """
    if setting in MAPPING_SETTINGS:
        return "mapping"
    if setting in FUNCTION_SETTINGS:
        return "function"
    if setting in BREAKER_SETTINGS:
        return "breaker"
    raise ConfigError(setting, "", "a live setting: " + ", ".join(
        (*LIVE_SETTINGS, "breaker state")), "live limits")


def check_live_value(setting: str, value: object, context: str) -> Any:
    """``value`` checked for live ``setting`` (ranges of :mod:`sluicegate.core.settings`):
    an int in range, a bool for ``enabled``, a breaker state; ``None`` (back to the App's)
    for every setting but ``enabled`` and ``state``.

    Raises:
        ConfigError: one line naming the setting, the value and what is allowed.
    """
    kind = scope_kind(setting)
    if setting == "enabled":
        return check_bool(setting, value, context)
    if kind == "breaker":
        if setting == "state":
            if value not in BREAKER_STATES:
                raise ConfigError(setting, value, "'open' or 'closed'", context)
            return value
        if not isinstance(value, str):
            raise ConfigError(setting, value, "a str", context)
        return value
    if value is None:
        return None
    defn = SETTINGS[setting]
    low, high = defn.low, defn.high
    assert isinstance(low, int) and isinstance(high, int)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(setting, value, f"an integer {low:,}-{high:,} {defn.unit}, or unset "
                          f"({defn.unset or 'the App'!s})", context)
    return value


def parse_live_value(setting: str, text: str, context: str) -> Any:
    """A command-line value for ``setting``: ``20``, ``true``/``false``, ``none``/``unset``
    (back to the App's), then checked (:func:`check_live_value`).

    Raises:
        ConfigError: a value that does not parse or is out of range.
    """
    word = text.strip().lower()
    value: Any
    if word in ("none", "unset", "null", ""):
        value = None
    elif setting == "enabled":
        if word not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ConfigError(setting, text, "true or false", context)
        value = word in ("true", "yes", "on", "1")
    elif setting in ("state", "reason"):
        value = text
    else:
        try:
            value = int(word)
        except ValueError:
            value = text
    return check_live_value(setting, value, context)


# ---------------------------------------------------------------------- schedules
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class _Window:
    start: int  # minutes after midnight
    end: int
    value: Any

    def holds(self, minute: float) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # across midnight


def _minutes(h: str, m: str, text: str) -> int:
    hours, minutes = int(h), int(m)
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ConfigError("schedule", text, "windows 'HH:MM-HH:MM' of 00:00-24:00")
    return hours * 60 + minutes


class Schedule:
    """A value by time of day: the value of the first window that holds ``now``, else
    ``default``.

    Parameters:
        windows: ``"HH:MM-HH:MM"`` -> value; a window includes its start and excludes
            its end; one whose end is before its start runs across midnight
            (``"22:00-06:00"``); ``24:00`` is the end of the day.
        default: the value outside every window.
        tz: an IANA time zone (``"Europe/Paris"``); ``None``: UTC. Windows follow the
            zone's local clock, daylight saving included.

    Raises:
        ConfigError: a window that is not ``HH:MM-HH:MM``, an empty one, an unknown zone.
    """

    __slots__ = ("_windows", "_zone", "default", "windows")

    def __init__(self, windows: Mapping[str, Any], default: Any = None,
                 tz: str | None = None) -> None:
        parsed: list[_Window] = []
        for text, value in windows.items():
            match = _WINDOW.match(text) if isinstance(text, str) else None
            if match is None:
                raise ConfigError("schedule", text, "windows 'HH:MM-HH:MM' of 00:00-24:00")
            start = _minutes(match[1], match[2], text)
            end = _minutes(match[3], match[4], text)
            if start == end:
                raise ConfigError("schedule", text, "a window that lasts (start != end)")
            parsed.append(_Window(start, end, value))
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            self._zone: dt.tzinfo = ZoneInfo(tz) if tz is not None else dt.UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError("tz", tz, "an IANA time zone such as 'Europe/Paris'",
                              "schedule") from None
        self._windows = tuple(parsed)
        self.windows = dict(windows)
        self.default = default

    def __repr__(self) -> str:
        return f"Schedule({self.windows!r}, default={self.default!r})"

    def _local(self, now: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(now, self._zone)

    def value(self, now: float) -> Any:
        """The value at ``now`` (epoch seconds)."""
        local = self._local(now)
        minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        for window in self._windows:
            if window.holds(minute):
                return window.value
        return self.default

    def next_change(self, now: float) -> float:
        """The first minute boundary after ``now`` where a window starts or ends (the value
        may change there), in epoch seconds: a controller need not look before it."""
        local = self._local(now)
        edges = sorted({w.start for w in self._windows} | {w.end % 1440 for w in self._windows})
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for day in (0, 1):
            for edge in edges:
                at = midnight + dt.timedelta(days=day, minutes=edge)
                # rebuild through the wall clock so a daylight-saving day lands right
                at = at.replace(tzinfo=None).replace(tzinfo=self._zone)
                if at.timestamp() > now:
                    return at.timestamp()
        return now + 86_400.0


def schedule(windows: Mapping[str, Any], *, default: Any = None, tz: str | None = None
             ) -> Schedule:
    """A :class:`Schedule`: ``schedule({"09:00-17:00": 50}, default=10)`` is 50 from 09:00
    to 17:00 (UTC unless ``tz`` says otherwise) and 10 otherwise."""
    return Schedule(windows, default, tz)
