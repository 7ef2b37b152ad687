"""Validating scenario and load tables: the error, durations, and a table reader.

:class:`Table` reads one TOML table key by key with converters that check types and
ranges, records the key path of each value (for messages such as
``mapping.batch_size=0 is invalid: allowed an integer 1-10,000``) and reports whatever key
was left unread as unknown, with the nearest known key. :func:`checked` turns a core
configuration class's :class:`~sluicegate.errors.ConfigError` into the same one-line
:class:`ScenarioError`, so the AWS parameters are validated by the core's rules alone.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sluicegate.core.settings import SETTINGS
from sluicegate.errors import ConfigError
from sluicegate.sim.distributions import (
    Distribution,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    Uniform,
)

__all__ = ["ScenarioError", "Table", "checked", "parse_distribution", "parse_duration"]


class ScenarioError(ConfigError):
    """A scenario value outside its allowed range, an unknown key, or a file that cannot be
    read. ``str()`` is one line: ``<source>: <key.path>=<value> is invalid: allowed ...``
    (or ``<source>: <problem>`` for a file or TOML syntax problem).

    Parameters:
        parameter: the key path, e.g. ``mapping.maximum_concurrency``.
        value: the value given.
        allowed: what is allowed.
        context: where the scenario came from (a file name, or ``"scenario"``).
        message: a complete message that replaces the standard one.
    """

    def __init__(
        self,
        parameter: str,
        value: Any,
        allowed: str,
        context: str = "scenario",
        *,
        message: str | None = None,
    ) -> None:
        super().__init__(parameter, value, allowed, context)
        if message is not None:
            self.args = (f"{context}: {message}" if context else message,)


_MAX_DURATION = 10 * 365 * 86400.0
"""Longest duration accepted anywhere (ten years): a guard against typos, not a model."""

# ---------------------------------------------------------------------- durations

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"[+]?(\d+(?:\.\d*)?|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)


def parse_duration(value: Any, parameter: str = "duration", context: str = "scenario") -> float:
    """Seconds from a duration written as a number of seconds or a string with units.

    Strings are one or more ``<number><unit>`` parts, units ``us``, ``ms``, ``s``, ``m``,
    ``h``, ``d`` (``"200ms"``, ``"4m"``, ``"1h30m"``, ``"1.5s"``); a bare number string is
    seconds.

    Parameters:
        value: an ``int``, ``float`` or ``str``.
        parameter: the key path, for the error message.
        context: where the scenario came from, for the error message.

    Returns:
        Seconds, a finite float >= 0.

    Raises:
        ScenarioError: anything else (negative, not finite, a bad unit, a bool).
    """
    allowed = 'seconds >= 0, or a duration like "200ms", "4m", "1h30m"'
    if isinstance(value, bool):
        raise ScenarioError(parameter, value, allowed, context)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            seconds = 0.0
            pos = 0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ScenarioError(parameter, value, allowed, context)
    else:
        raise ScenarioError(parameter, value, allowed, context)
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_DURATION:
        raise ScenarioError(parameter, value, allowed, context)
    return seconds


# ---------------------------------------------------------------------- parsing


class Table:
    """Reads the keys of one TOML table, tracking the key path and the keys used, so that
    whatever is left over can be reported as unknown."""

    def __init__(
        self,
        data: Any,
        path: str,
        context: str,
        base: Path | None,
        given: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(path or "scenario", data, "a table", context)
        self.data = data
        self.path = path
        self.context = context
        self.base = base
        self.used: set[str] = set()
        self.given: dict[str, Any] = {} if given is None else given
        """Every value read, by key path, as written: what error messages quote."""

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, value: Any, allowed: str) -> ScenarioError:
        return ScenarioError(self.key(name), value, allowed, self.context)

    def raw(self, name: str) -> Any:
        """The value of ``name``, ``None`` when absent."""
        self.used.add(name)
        value = self.data.get(name)
        self.given[self.key(name)] = value
        return value

    def get(self, name: str, default: Any, convert: Callable[[str, Any], Any]) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        return convert(name, value)

    def sub(self, name: str) -> Table:
        value = self.raw(name)
        return Table({} if value is None else value, self.key(name), self.context, self.base,
                      self.given)

    def subs(self, name: str) -> list[Table]:
        value = self.raw(name)
        if value is None:
            return []
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list):
            raise self.error(name, value, "an array of tables")
        return [Table(v, f"{self.key(name)}[{i}]", self.context, self.base, self.given)
                for i, v in enumerate(value)]

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                known = sorted(self.used)
                near = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {near[0]}?" if near else "known: " + ", ".join(known)
                raise ScenarioError(
                    self.key(str(name)), self.data[name], "", self.context,
                    message=f"unknown key {self.key(str(name))} ({hint})",
                )

    # ---- converters (each takes the key name and the raw value)

    def seconds(self, name: str, value: Any) -> float:
        return parse_duration(value, self.key(name), self.context)

    def positive_seconds(self, name: str, value: Any) -> float:
        seconds = parse_duration(value, self.key(name), self.context)
        if seconds <= 0:
            raise self.error(name, value, "a duration > 0")
        return seconds

    def integer(self, low: int, high: int) -> Callable[[str, Any], int]:
        def convert(name: str, value: Any) -> int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise self.error(name, value, f"an integer {low:,}-{high:,}")
            return value

        return convert

    def whole_seconds(self, low: int, high: int) -> Callable[[str, Any], int]:
        """AWS parameters given in whole seconds (they also accept "30s", "1m")."""

        def convert(name: str, value: Any) -> int:
            seconds = parse_duration(value, self.key(name), self.context)
            if not seconds.is_integer() or not low <= seconds <= high:
                raise self.error(name, value, f"whole seconds {low:,}-{high:,}")
            return int(seconds)

        return convert

    def number(self, low: float, high: float, *, open_low: bool = False
               ) -> Callable[[str, Any], float]:
        def convert(name: str, value: Any) -> float:
            ok = (
                not isinstance(value, bool)
                and isinstance(value, (int, float))
                and math.isfinite(value)
                and (low < value if open_low else low <= value)
                and value <= high
            )
            if not ok:
                bound = f"> {low:g}" if open_low else f">= {low:g}"
                upper = "" if math.isinf(high) else f" and <= {high:g}"
                raise self.error(name, value, f"a number {bound}{upper}")
            return float(value)

        return convert

    def boolean(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(name, value, "true or false")
        return value

    def text(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(name, value, "a string")
        return value

    def choice(self, options: Iterable[str]) -> Callable[[str, Any], str]:
        options = tuple(options)

        def convert(name: str, value: Any) -> str:
            if value not in options:
                raise self.error(name, value, " or ".join(repr(o) for o in options))
            return str(value)

        return convert

    def setting(self, name: str, kind: str | None = None, *,
                convert: Callable[[str, Any], Any] | None = None) -> Any:
        """The value of the core setting ``name`` (:data:`~sluicegate.core.settings.
        SETTINGS`): its default for the source ``kind`` when absent, else the value
        checked against the setting's type and range (whole seconds for a setting in
        seconds, which also takes "30s" or "1m"), or by ``convert`` when given (a
        setting whose range the core's class checks, or that has a special value)."""
        s = SETTINGS[name]
        if convert is None:
            low, high = s.range_for(kind)
            if s.type == "bool":
                convert = self.boolean
            elif s.type == "choice":
                convert = self.choice(s.choices)
            elif s.unit == "s":
                convert = self.whole_seconds(int(low), int(high))
            else:
                convert = self.integer(int(low), int(high))
        return self.get(name, s.default_for(kind), convert)

    def distribution(self, name: str, value: Any) -> Distribution:
        return parse_distribution(value, self.key(name), self.context, self.base)


def parse_distribution(value: Any, path: str, context: str, base: Path | None) -> Distribution:
    if not isinstance(value, Mapping):
        return Fixed(parse_duration(value, path, context))
    t = Table(value, path, context, base)
    kind = t.get("distribution", "fixed",
                 t.choice(("fixed", "uniform", "normal", "lognormal", "exponential",
                           "empirical")))
    result: Distribution
    if kind == "fixed":
        result = Fixed(t.get("value", None, t.seconds))
        if result.value is None:
            raise t.error("value", None, "a duration (the fixed value)")
    elif kind == "uniform":
        low = t.get("min", None, t.seconds)
        high = t.get("max", None, t.seconds)
        if low is None or high is None or high < low:
            raise t.error("max" if low is not None else "min", high if low is not None else low,
                          "min and max durations with min <= max")
        result = Uniform(low, high)
    elif kind == "normal":
        mean = t.get("mean", None, t.seconds)
        stddev = t.get("stddev", 0.0, t.seconds)
        if mean is None:
            raise t.error("mean", None, "a duration")
        result = Normal(mean, stddev)
    elif kind == "lognormal":
        median = t.get("median", None, t.positive_seconds)
        p99 = t.get("p99", None, t.positive_seconds)
        if median is None:
            raise t.error("median", None, "a duration > 0")
        if p99 is None or p99 < median:
            raise t.error("p99", t.data.get("p99"), f"a duration >= the median ({median:g} s)")
        result = LogNormal(median, p99)
    elif kind == "exponential":
        mean = t.get("mean", None, t.positive_seconds)
        if mean is None:
            raise t.error("mean", None, "a duration > 0")
        result = Exponential(mean)
    else:
        file = t.get("file", None, t.text)
        inline = t.raw("samples")
        if file is None and inline is None:
            raise t.error("samples", None, "samples = [...] or file = \"path\"")
        if inline is not None:
            if not isinstance(inline, list) or not inline:
                raise t.error("samples", inline, "a non-empty array of durations")
            samples = tuple(parse_duration(v, f"{t.key('samples')}[{i}]", context)
                            for i, v in enumerate(inline))
        else:
            samples = read_samples(file, t.key("file"), context, base)
        result = Empirical(samples, file)
    t.finish()
    return result


def read_samples(file: str, path: str, context: str, base: Path | None) -> tuple[float, ...]:
    """Durations from a file: one per line, a number of seconds or a string with units;
    blank lines and lines starting with ``#`` are skipped."""
    where = Path(file)
    if not where.is_absolute() and base is not None:
        where = base / where
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(path, file, f"a readable file ({exc.strerror or exc})",
                            context) from None
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        samples.append(parse_duration(line, f"{path} line {number}", context))
    if not samples:
        raise ScenarioError(path, file, "a file with at least one duration", context)
    return tuple(samples)


def checked(section: str, top: Table, build: Callable[[], Any]) -> Any:
    """Build a core configuration, turning its ConfigError into one naming the key path
    (and quoting the value as written, when it was)."""
    try:
        return build()
    except ScenarioError:
        raise
    except ConfigError as exc:
        path = f"{section}.{exc.parameter}"
        value = top.given.get(path)
        raise ScenarioError(path, exc.value if value is None else value, exc.allowed,
                            top.context) from None


