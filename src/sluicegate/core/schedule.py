"""Schedule expressions of EventBridge scheduled rules: ``rate(...)`` and ``cron(...)``, UTC.

:meth:`Schedule.parse` validates an expression once (a malformed one raises a one-line
:class:`~sluicegate.errors.ConfigError` naming the field at fault) and returns a schedule
whose :meth:`~Schedule.next_after` gives the next tick strictly after a time, in epoch
seconds. A tick's scheduled time is its identity: two processes asking for the tick after
the same time get the same number, so "fire each tick exactly once across processes" is a
claim on ``(rule, tick)`` in the store (and :func:`sluicegate.core.events_bus.scheduled_event_id`
turns that pair into the event's id).

**rate(value unit)** (user guide, "Schedule expressions for rules"): ``value`` a positive
whole number, ``unit`` one of ``minute``, ``minutes``, ``hour``, ``hours``, ``day``,
``days``, singular exactly when the value is 1 (``rate(1 hour)``, ``rate(5 minutes)``).
Ticks lie on a fixed grid of that period, anchored at the Unix epoch by default, so that
every process agrees without talking: ``rate(5 minutes)`` ticks at :00, :05, ... UTC and
``rate(1 day)`` at midnight UTC. (AWS starts a rate rule's clock when the rule is created;
pass ``anchor=`` to put the grid there.)

**cron(minutes hours day-of-month month day-of-week year)**, six fields, UTC:

============  ==================  ==========================
field         values              wildcards
============  ==================  ==========================
minutes       0-59                ``, - * /``
hours         0-23                ``, - * /``
day-of-month  1-31                ``, - * ? / L W``
month         1-12 or JAN-DEC     ``, - * /``
day-of-week   1-7 or SUN-SAT      ``, - * ? L #``
year          1970-2199           ``, - * /``
============  ==================  ==========================

- ``*`` every value, ``a-b`` a range, ``a,b`` a list, ``a/n`` or ``*/n`` or ``a-b/n``
  every n-th value from a (``0/15`` in minutes: 0, 15, 30, 45);
- exactly one of day-of-month and day-of-week is ``?`` ("any"): a schedule names days
  either by date or by weekday, never both;
- day-of-month ``L`` is the last day of the month, ``nW`` the weekday (Monday to Friday)
  nearest the n-th, within the month (1W on a Saturday is Monday the 3rd), ``LW`` the
  last weekday of the month;
- day-of-week counts from SUN=1 to SAT=7; ``L`` alone is the last day of the week
  (Saturday), ``nL`` the last such weekday of the month (``6L``: last Friday), ``n#k``
  the k-th such weekday (``2#1``: first Monday; k from 1 to 5);
- names are case-insensitive; ``L``, ``W``, ``LW``, ``nL`` and ``n#k`` stand alone in
  their field (not in a list or range).

Choices where AWS is silent:

- A range must run upwards (``MON-FRI``, not ``FRI-MON``; ``22-2`` is refused rather than
  read as wrapping round midnight).
- ``nW`` in a month without an n-th day (30W in February) matches no day that month;
  ``n#5`` likewise in a month with four such weekdays.
- An expression that names no future moment (``cron(0 0 30 2 ? *)``, or a year now past)
  is valid; its :meth:`~Schedule.next_after` is ``math.inf``.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as _dt
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from sluicegate.errors import ConfigError

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "CronSchedule",
    "RateSchedule",
    "Schedule",
]

MIN_YEAR = 1970
MAX_YEAR = 2199
"""The years a cron expression's year field may name."""

_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"rate\((\d+) ([a-z]+)\)")
_CRON = re.compile(r"cron\((.*)\)")
_MONTHS = {
    name: i
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")


def _refuse(expression: str, allowed: str) -> ConfigError:
    return ConfigError("schedule_expression", expression, allowed)


class Schedule:
    """A parsed schedule expression; build one with :meth:`parse`.

    Attributes:
        expression: the expression as given.
    """

    expression: str

    @staticmethod
    def parse(expression: str, *, anchor: float = 0.0) -> Schedule:
        """Validate and compile a ``rate(...)`` or ``cron(...)`` expression.

        Parameters:
            expression: the rule's ``ScheduleExpression``.
            anchor: epoch seconds the grid of a ``rate`` schedule is anchored at
                (default 0, the Unix epoch); ignored for ``cron``.

        Returns:
            A :class:`RateSchedule` or a :class:`CronSchedule`.

        Raises:
            ConfigError: the expression is malformed; the message names what is wrong.
        """
        if not isinstance(expression, str):
            raise _refuse(expression, 'a string such as "rate(5 minutes)" or "cron(0 12 * * ? *)"')
        if expression.startswith("rate("):
            return RateSchedule.from_expression(expression, anchor=anchor)
        if expression.startswith("cron("):
            return CronSchedule.from_expression(expression)
        raise _refuse(expression, '"rate(value unit)" or "cron(6 fields)"')

    def next_after(self, t: float) -> float:
        """The first tick strictly after ``t`` (epoch seconds); ``math.inf`` if none."""
        raise NotImplementedError

    def ticks(self, after: float, until: float) -> Iterator[float]:
        """Every tick in ``(after, until]``, in order.

        Parameters:
            after: epoch seconds; a tick at exactly this time is not included.
            until: epoch seconds; a tick at exactly this time is included.
        """
        tick = self.next_after(after)
        while tick <= until:
            yield tick
            tick = self.next_after(tick)

    def __str__(self) -> str:
        return self.expression


@dataclass(frozen=True, slots=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: a tick every :attr:`period` seconds on a grid through
    :attr:`anchor`."""

    expression: str
    period: float
    anchor: float = 0.0

    @classmethod
    def from_expression(cls, expression: str, *, anchor: float = 0.0) -> RateSchedule:
        """Validate and compile a ``rate(...)`` expression (:meth:`Schedule.parse`)."""
        found = _RATE.fullmatch(expression)
        allowed = (
            'rate(value unit): value a whole number from 1, unit minute, minutes, hour, '
            'hours, day or days, singular exactly when the value is 1, such as "rate(5 minutes)"'
        )
        if found is None:
            raise _refuse(expression, allowed)
        value, unit = int(found.group(1)), found.group(2)
        singular = unit.removesuffix("s")
        if singular not in _UNITS or value < 1:
            raise _refuse(expression, allowed)
        if (value == 1) != (unit == singular):
            form = f"rate(1 {singular})" if value == 1 else f"rate({value} {singular}s)"
            raise _refuse(expression, f"{form}: the unit is singular exactly when the value is 1")
        if isinstance(anchor, bool) or not isinstance(anchor, (int, float)) or not math.isfinite(
            anchor
        ):
            raise ConfigError("anchor", anchor, "finite epoch seconds")
        return cls(expression, float(value * _UNITS[singular]), float(anchor))

    def next_after(self, t: float) -> float:
        steps = math.floor((t - self.anchor) / self.period) + 1
        tick = self.anchor + steps * self.period
        while tick <= t:  # float rounding at a grid point
            tick += self.period
        return tick


@dataclass(frozen=True, slots=True)
class _Days:
    """The day rule of a cron expression: by date (day-of-month) or by weekday."""

    dates: frozenset[int] = frozenset()
    last_day: bool = False
    nearest_weekday: int = 0  # nW; 0 when not used
    last_weekday: bool = False  # LW
    weekdays: frozenset[int] = frozenset()  # 1=SUN .. 7=SAT
    last_of: int = 0  # nL: the last weekday n of the month
    nth: tuple[int, int] = (0, 0)  # n#k: (weekday, k)

    def days_in(self, year: int, month: int) -> list[int]:
        """The matching days of one month, ascending."""
        length = calendar.monthrange(year, month)[1]
        if self.last_day:
            return [length]
        if self.last_weekday:
            day = length
            while _weekday(year, month, day) in (1, 7):
                day -= 1
            return [day]
        if self.nearest_weekday:
            return _nearest_weekday(year, month, self.nearest_weekday, length)
        if self.dates:
            return sorted(day for day in self.dates if day <= length)
        first = _weekday(year, month, 1)  # 1=SUN .. 7=SAT
        if self.last_of:
            day = length
            while _weekday(year, month, day) != self.last_of:
                day -= 1
            return [day]
        if self.nth != (0, 0):
            weekday, k = self.nth
            day = 1 + (weekday - first) % 7 + 7 * (k - 1)
            return [day] if day <= length else []
        return [day for day in range(1, length + 1) if (first + day - 2) % 7 + 1 in self.weekdays]


def _weekday(year: int, month: int, day: int) -> int:
    """EventBridge's day-of-week number: SUN=1 .. SAT=7."""
    return (calendar.weekday(year, month, day) + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> list[int]:
    if day > length:
        return []
    weekday = _weekday(year, month, day)
    if weekday == 7:  # Saturday: Friday before, or Monday after when the 1st
        return [day - 1] if day > 1 else [day + 2]
    if weekday == 1:  # Sunday: Monday after, or Friday before when the last day
        return [day + 1] if day < length else [day - 2]
    return [day]


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """``cron(minutes hours day-of-month month day-of-week year)``, UTC; each field
    compiled to the sorted values it allows."""

    expression: str
    minutes: tuple[int, ...] = field(repr=False)
    hours: tuple[int, ...] = field(repr=False)
    months: tuple[int, ...] = field(repr=False)
    years: tuple[int, ...] = field(repr=False)
    days: _Days = field(repr=False)

    _RANGES: ClassVar[dict[str, tuple[int, int]]] = {
        "minutes": (0, 59),
        "hours": (0, 23),
        "day-of-month": (1, 31),
        "month": (1, 12),
        "day-of-week": (1, 7),
        "year": (MIN_YEAR, MAX_YEAR),
    }

    @classmethod
    def from_expression(cls, expression: str) -> CronSchedule:
        """Validate and compile a ``cron(...)`` expression (:meth:`Schedule.parse`)."""
        found = _CRON.fullmatch(expression)
        if found is None:
            raise _refuse(expression, "cron(minutes hours day-of-month month day-of-week year)")
        fields = found.group(1).split()
        if len(fields) != 6:
            raise _refuse(
                expression,
                f"six fields (minutes hours day-of-month month day-of-week year), got "
                f"{len(fields)}",
            )
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise _refuse(
                expression,
                'exactly one of day-of-month and day-of-week as "?" (a schedule names days '
                "by date or by weekday), such as cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *)",
            )
        days = _day_of_week(expression, dow) if dom == "?" else _day_of_month(expression, dom)
        return cls(
            expression,
            minutes=_values(expression, "minutes", minute),
            hours=_values(expression, "hours", hour),
            months=_values(expression, "month", month, _MONTHS),
            years=_values(expression, "year", year),
            days=days,
        )

    def next_after(self, t: float) -> float:
        if not math.isfinite(t):
            return math.inf
        start = _dt.datetime.fromtimestamp(math.floor(t / 60) * 60 + 60, _dt.UTC)
        if start.year > MAX_YEAR:
            return math.inf
        y_at = bisect.bisect_left(self.years, start.year)
        for year in self.years[y_at:]:
            first_year = year == start.year
            m_from = start.month if first_year else 1
            for month in self.months[bisect.bisect_left(self.months, m_from) :]:
                first_month = first_year and month == start.month
                days = self.days.days_in(year, month)
                d_from = start.day if first_month else 1
                for day in days[bisect.bisect_left(days, d_from) :]:
                    first_day = first_month and day == start.day
                    h_from = start.hour if first_day else 0
                    for hour in self.hours[bisect.bisect_left(self.hours, h_from) :]:
                        first_hour = first_day and hour == start.hour
                        m_at = bisect.bisect_left(self.minutes, start.minute if first_hour else 0)
                        if m_at < len(self.minutes):
                            moment = _dt.datetime(
                                year, month, day, hour, self.minutes[m_at], tzinfo=_dt.UTC
                            )
                            return moment.timestamp()
        return math.inf


def _number(expression: str, name: str, text: str, names: dict[str, int] | None) -> int:
    low, high = CronSchedule._RANGES[name]
    upper = text.upper()
    if names is not None and upper in names:
        return names[upper]
    spelled = f" or {next(iter(names))}-{list(names)[-1]}" if names else ""
    if not text.isascii() or not text.isdigit():
        raise _refuse(expression, f"{name} values {low}-{high}{spelled} (not {text!r})")
    value = int(text)
    if not low <= value <= high:
        raise _refuse(expression, f"{name} values {low}-{high}{spelled} (not {value})")
    return value


def _values(
    expression: str, name: str, text: str, names: dict[str, int] | None = None
) -> tuple[int, ...]:
    """A field of lists, ranges, steps and ``*`` as the sorted values it allows."""
    low, high = CronSchedule._RANGES[name]
    allowed: set[int] = set()
    for element in text.split(","):
        if not element:
            raise _refuse(expression, f"{name}: no empty element in a list ({text!r})")
        base, slash, step_text = element.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) < 1:
                raise _refuse(expression, f"{name}: a step of a whole number from 1 ({element!r})")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _number(expression, name, a, names), _number(expression, name, b, names)
            if first > last:
                raise _refuse(expression, f"{name}: a range that runs upwards ({element!r})")
        else:
            first = _number(expression, name, base, names)
            last = high if slash else first
        allowed.update(range(first, last + 1, step))
    return tuple(sorted(allowed))


def _day_of_month(expression: str, text: str) -> _Days:
    upper = text.upper()
    if upper == "L":
        return _Days(last_day=True)
    if upper == "LW":
        return _Days(last_weekday=True)
    if upper.endswith("W"):
        day = upper[:-1]
        if not day.isascii() or not day.isdigit() or not 1 <= int(day) <= 31:
            raise _refuse(expression, f"day-of-month: nW with n from 1 to 31 ({text!r})")
        return _Days(nearest_weekday=int(day))
    if "L" in upper or "W" in upper or "#" in upper:
        raise _refuse(
            expression, f'day-of-month: "L", "LW" and "nW" stand alone in the field ({text!r})'
        )
    return _Days(dates=frozenset(_values(expression, "day-of-month", text)))


def _weekday_number(expression: str, text: str) -> int:
    return _number(expression, "day-of-week", text, _DAYS)


def _day_of_week(expression: str, text: str) -> _Days:
    upper = text.upper()
    if upper == "L":
        return _Days(weekdays=frozenset({7}))
    if "#" in upper:
        weekday, _, k = upper.partition("#")
        if not k.isascii() or not k.isdigit() or not 1 <= int(k) <= 5:
            raise _refuse(expression, f"day-of-week: n#k with k from 1 to 5 ({text!r})")
        return _Days(nth=(_weekday_number(expression, weekday), int(k)))
    if "L" in upper:  # no day's name holds an L
        weekday = upper[:-1]
        if not upper.endswith("L") or not weekday or any(c in weekday for c in ",-/*L"):
            raise _refuse(
                expression, f'day-of-week: "L" and "nL" stand alone in the field ({text!r})'
            )
        return _Days(last_of=_weekday_number(expression, weekday))
    return _Days(weekdays=frozenset(_values(expression, "day-of-week", text, _DAYS)))
