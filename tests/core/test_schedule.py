"""Schedule expressions: rate's grid and its singular/plural rule, cron's six fields with
?, L, W, # and names, every refusal, and cron against a minute-by-minute reference reading."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.events_bus import iso8601
from sluicegate.core.schedule import CronSchedule, RateSchedule, Schedule
from sluicegate.errors import ConfigError


def at(text: str) -> float:
    """Epoch seconds of a UTC time written ``2024-01-01T12:00``."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def ticks(expression: str, start: str, count: int) -> list[str]:
    schedule = Schedule.parse(expression)
    out: list[str] = []
    t = at(start)
    for _ in range(count):
        t = schedule.next_after(t)
        if t == math.inf:
            break
        out.append(iso8601(t)[:16])
    return out


# --------------------------------------------------------------------------- rate


def test_rate_ticks_on_a_grid_anchored_at_the_epoch() -> None:
    assert ticks("rate(5 minutes)", "2024-01-01T00:00", 3) == [
        "2024-01-01T00:05", "2024-01-01T00:10", "2024-01-01T00:15"]
    assert ticks("rate(5 minutes)", "2024-01-01T00:03", 2) == ["2024-01-01T00:05", "2024-01-01T00:10"]
    assert ticks("rate(1 hour)", "2024-01-01T10:59", 2) == ["2024-01-01T11:00", "2024-01-01T12:00"]
    assert ticks("rate(1 day)", "2024-02-28T13:00", 2) == ["2024-02-29T00:00", "2024-03-01T00:00"]
    assert ticks("rate(7 minutes)", "1970-01-01T00:00", 2) == ["1970-01-01T00:07", "1970-01-01T00:14"]


def test_rate_next_after_is_strictly_after_and_every_process_agrees() -> None:
    schedule = Schedule.parse("rate(2 minutes)")
    assert isinstance(schedule, RateSchedule) and schedule.period == 120
    tick = schedule.next_after(at("2024-01-01T00:00"))
    assert tick == at("2024-01-01T00:02")
    assert schedule.next_after(tick) == tick + 120
    assert schedule.next_after(tick - 1e-6) == tick
    # a fresh parse in another process computes the same ticks
    assert Schedule.parse("rate(2 minutes)").next_after(at("2024-01-01T00:01:30")) == tick


def test_rate_with_an_anchor() -> None:
    schedule = Schedule.parse("rate(10 minutes)", anchor=at("2024-01-01T00:03"))
    assert schedule.next_after(at("2024-01-01T00:00")) == at("2024-01-01T00:03")
    assert schedule.next_after(at("2024-01-01T00:03")) == at("2024-01-01T00:13")
    with pytest.raises(ConfigError, match="anchor"):
        Schedule.parse("rate(1 day)", anchor=math.nan)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500), st.sampled_from(["minute", "hour", "day"]),
       st.floats(0, 4e9, allow_nan=False))
def test_rate_ticks_are_multiples_of_the_period(value: int, unit: str, t: float) -> None:
    expression = f"rate({value} {unit}{'' if value == 1 else 's'})"
    schedule = Schedule.parse(expression)
    tick = schedule.next_after(t)
    period = value * {"minute": 60, "hour": 3600, "day": 86400}[unit]
    assert t < tick <= t + period
    assert tick % period == 0


# --------------------------------------------------------------------------- cron

CRON_CASES: list[tuple[str, str, list[str]]] = [
    # (expression, start, the next ticks)
    ("cron(0 12 * * ? *)", "2024-01-01T12:00", ["2024-01-02T12:00", "2024-01-03T12:00"]),
    ("cron(15 10 * * ? *)", "2024-01-01T00:00", ["2024-01-01T10:15", "2024-01-02T10:15"]),
    # weekdays at 18:00; 2024-01-05 is a Friday
    ("cron(0 18 ? * MON-FRI *)", "2024-01-05T18:00", ["2024-01-08T18:00", "2024-01-09T18:00"]),
    ("cron(0 18 ? * 2-6 *)", "2024-01-05T18:00", ["2024-01-08T18:00", "2024-01-09T18:00"]),
    # the first of every month
    ("cron(0 8 1 * ? *)", "2024-01-15T00:00", ["2024-02-01T08:00", "2024-03-01T08:00"]),
    # every 10 minutes on weekdays
    ("cron(0/10 * ? * MON-FRI *)", "2024-01-05T23:45", ["2024-01-05T23:50", "2024-01-08T00:00"]),
    # every 5 minutes between 8:00 and 17:55
    ("cron(0/5 8-17 ? * MON-FRI *)", "2024-01-01T17:55", ["2024-01-02T08:00", "2024-01-02T08:05"]),
    # 9:00 on the first Monday of the month
    ("cron(0 9 ? * 2#1 *)", "2024-01-02T00:00", ["2024-02-05T09:00", "2024-03-04T09:00"]),
    ("cron(0 9 ? * MON#1 *)", "2024-01-02T00:00", ["2024-02-05T09:00", "2024-03-04T09:00"]),
    # the fifth Friday: only months that have one
    ("cron(0 9 ? * 6#5 2024)", "2024-01-01T00:00",
     ["2024-03-29T09:00", "2024-05-31T09:00", "2024-08-30T09:00", "2024-11-29T09:00"]),
    # the last day, the last weekday, the last Friday of the month
    ("cron(0 12 L * ? *)", "2024-01-31T12:00", ["2024-02-29T12:00", "2024-03-31T12:00"]),
    ("cron(0 12 LW * ? *)", "2024-03-01T00:00", ["2024-03-29T12:00", "2024-04-30T12:00"]),
    ("cron(15 10 ? * 6L 2024)", "2024-01-01T00:00", ["2024-01-26T10:15", "2024-02-23T10:15"]),
    ("cron(15 10 ? * FRIL 2024)", "2024-01-01T00:00", ["2024-01-26T10:15", "2024-02-23T10:15"]),
    # L alone in day-of-week: the last day of the week, Saturday
    ("cron(0 12 ? * L *)", "2024-01-01T00:00", ["2024-01-06T12:00", "2024-01-13T12:00"]),
    # the weekday nearest the 1st (2024-06-01 is a Saturday: Monday the 3rd, not May)
    ("cron(0 12 1W * ? 2024)", "2024-05-02T00:00", ["2024-06-03T12:00", "2024-07-01T12:00"]),
    # nearest the 31st (2024-03-31 is a Sunday: Friday the 29th)
    ("cron(0 12 31W * ? 2024)", "2024-03-01T00:00", ["2024-03-29T12:00", "2024-05-31T12:00"]),
    # nearest the 15th (2024-06-15 is a Saturday: Friday the 14th)
    ("cron(0 12 15W 6 ? 2024)", "2024-01-01T00:00", ["2024-06-14T12:00"]),
    # names and lists, any case
    ("cron(0 0 1 jan,Jul ? *)", "2024-02-01T00:00", ["2024-07-01T00:00", "2025-01-01T00:00"]),
    ("cron(30 6 ? * sun,sat *)", "2024-01-01T00:00", ["2024-01-06T06:30", "2024-01-07T06:30"]),
    # steps with a start, and over a range
    ("cron(5/20 * * * ? *)", "2024-01-01T00:00", ["2024-01-01T00:05", "2024-01-01T00:25",
                                                 "2024-01-01T00:45", "2024-01-01T01:05"]),
    ("cron(0 1-10/3 * * ? *)", "2024-01-01T00:00", ["2024-01-01T01:00", "2024-01-01T04:00",
                                                   "2024-01-01T07:00", "2024-01-01T10:00",
                                                   "2024-01-02T01:00"]),
    ("cron(0 0 */10 * ? *)", "2024-01-01T00:00", ["2024-01-11T00:00", "2024-01-21T00:00",
                                                 "2024-01-31T00:00", "2024-02-01T00:00"]),
    # years
    ("cron(0 0 1 1 ? 2030/5)", "2024-01-01T00:00", ["2030-01-01T00:00", "2035-01-01T00:00"]),
    ("cron(0 0 29 2 ? *)", "2024-03-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
    # never again
    ("cron(0 0 30 2 ? *)", "2024-01-01T00:00", []),
    ("cron(0 0 1 1 ? 2023)", "2024-01-01T00:00", []),
    ("cron(0 0 31 12 ? 2199)", "2199-12-31T00:00", []),
]


@pytest.mark.parametrize(("expression", "start", "expected"), CRON_CASES)
def test_cron(expression: str, start: str, expected: list[str]) -> None:
    assert ticks(expression, start, len(expected) + (0 if expected else 1)) == expected


def test_cron_next_after_is_strictly_after() -> None:
    schedule = Schedule.parse("cron(0 12 * * ? *)")
    assert isinstance(schedule, CronSchedule)
    noon = at("2024-01-01T12:00")
    assert schedule.next_after(noon - 0.5) == noon
    assert schedule.next_after(noon) == noon + 86400
    assert schedule.next_after(math.inf) == math.inf
    assert list(schedule.ticks(noon - 1, noon + 2 * 86400)) == [noon, noon + 86400, noon + 2 * 86400]


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        (5, "a string"),
        ("every 5 minutes", '"rate(value unit)" or "cron(6 fields)"'),
        ("rate(1 minutes)", "rate(1 minute)"),
        ("rate(1 hours)", "rate(1 hour)"),
        ("rate(5 minute)", "rate(5 minutes)"),
        ("rate(2 day)", "rate(2 days)"),
        ("rate(0 minutes)", "whole number from 1"),
        ("rate(-5 minutes)", "whole number from 1"),
        ("rate(1.5 hours)", "whole number from 1"),
        ("rate(5 seconds)", "unit minute"),
        ("rate(5 weeks)", "unit minute"),
        ("rate(5 Minutes)", "unit minute"),
        ("rate(5minutes)", "unit minute"),
        ("rate(5 minutes", "unit minute"),
        ("cron(0 12 * * ?)", "six fields"),
        ("cron(0 12 * * ? * *)", "six fields"),
        ("cron()", "six fields"),
        ("cron(0 12 * * * *)", 'exactly one of day-of-month and day-of-week as "?"'),
        ("cron(0 12 ? * ? *)", 'exactly one of day-of-month and day-of-week as "?"'),
        ("cron(0 12 1 * MON *)", 'exactly one of day-of-month and day-of-week as "?"'),
        ("cron(60 12 * * ? *)", "minutes values 0-59"),
        ("cron(0 24 * * ? *)", "hours values 0-23"),
        ("cron(0 12 0 * ? *)", "day-of-month values 1-31"),
        ("cron(0 12 32 * ? *)", "day-of-month values 1-31"),
        ("cron(0 12 * 13 ? *)", "month values 1-12 or JAN-DEC"),
        ("cron(0 12 * FOO ? *)", "month values 1-12 or JAN-DEC"),
        ("cron(0 12 ? * 0 *)", "day-of-week values 1-7 or SUN-SAT"),
        ("cron(0 12 ? * 8 *)", "day-of-week values 1-7 or SUN-SAT"),
        ("cron(0 12 ? * MONDAY *)", "day-of-week values 1-7 or SUN-SAT"),
        ("cron(0 12 * * ? 1969)", "year values 1970-2199"),
        ("cron(0 12 * * ? 2200)", "year values 1970-2199"),
        ("cron(0 12 ? * FRI-MON *)", "a range that runs upwards"),
        ("cron(0 22-2 * * ? *)", "a range that runs upwards"),
        ("cron(*/0 12 * * ? *)", "a step of a whole number from 1"),
        ("cron(0/x 12 * * ? *)", "a step of a whole number from 1"),
        ("cron(0,,5 12 * * ? *)", "no empty element"),
        ("cron(0 12 1,L * ? *)", '"L", "LW" and "nW" stand alone'),
        ("cron(0 12 L-2 * ? *)", '"L", "LW" and "nW" stand alone'),
        ("cron(0 12 0W * ? *)", "nW with n from 1 to 31"),
        ("cron(0 12 32W * ? *)", "nW with n from 1 to 31"),
        ("cron(0 12 1#2 * ? *)", '"L", "LW" and "nW" stand alone'),
        ("cron(0 12 ? * 2#0 *)", "n#k with k from 1 to 5"),
        ("cron(0 12 ? * 2#6 *)", "n#k with k from 1 to 5"),
        ("cron(0 12 ? * 9#1 *)", "day-of-week values 1-7"),
        ("cron(0 12 ? * 1L,2 *)", '"L" and "nL" stand alone'),
        ("cron(0 12 ? * L5 *)", '"L" and "nL" stand alone'),
        ("cron(0 12 ? * 1-3L *)", '"L" and "nL" stand alone'),
        ("cron(0 12 ? * 15W *)", "day-of-week values 1-7"),
        ("cron(? 12 * * ? *)", "minutes values 0-59"),
        ("cron(0 12 * * ? L)", "year values 1970-2199"),
    ],
)
def test_refused(expression: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        Schedule.parse(expression)
    message = str(err.value)
    assert err.value.parameter == "schedule_expression"
    assert fragment in message, message
    assert "\n" not in message


def test_schedules_compare_and_print_by_expression() -> None:
    assert Schedule.parse("rate(5 minutes)") == Schedule.parse("rate(5 minutes)")
    assert str(Schedule.parse("cron(0 12 * * ? *)")) == "cron(0 12 * * ? *)"
    assert Schedule.parse("cron(0 12 * * ? *)") == Schedule.parse("cron(0 12 * * ? *)")


# --------------------------------------------------------------------------- reference


def _weekday(moment: dt.datetime) -> int:
    """SUN=1 .. SAT=7, from isoweekday (MON=1 .. SUN=7)."""
    return moment.isoweekday() % 7 + 1


def _field_allows(spec: str, value: int, low: int, high: int, names: dict[str, int]) -> bool:
    for element in spec.split(","):
        base, _, step = element.partition("/")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-")
            first, last = names.get(a, 0) or int(a), names.get(b, 0) or int(b)
        else:
            first = names.get(base, 0) or int(base)
            last = high if step else first
        if first <= value <= last and (value - first) % int(step or 1) == 0:
            return True
    return False


def reference_day(fields: list[str], day: dt.datetime) -> bool:
    """Whether one day matches the day-level fields, read straight from their texts."""
    _, _, dom, month, dow, year = fields
    months = {m: i for i, m in enumerate(MONTH_NAMES, 1)}
    days = {d: i for i, d in enumerate(DAY_NAMES, 1)}
    if not (_field_allows(month, day.month, 1, 12, months)
            and _field_allows(year, day.year, 1970, 2199, {})):
        return False
    last_of_month = (day + dt.timedelta(days=1)).month != day.month
    if dom != "?":
        if dom == "L":
            return last_of_month
        if dom == "LW":
            later_weekday = any(
                (day + dt.timedelta(days=k)).month == day.month
                and (day + dt.timedelta(days=k)).isoweekday() <= 5
                for k in range(1, 4))
            return day.isoweekday() <= 5 and not later_weekday
        if dom.endswith("W"):
            try:
                wanted = day.replace(day=int(dom[:-1]))
            except ValueError:
                return False
            # the weekday nearest the wanted day, without leaving its month
            for shift in (0, -1, 1, -2, 2):
                candidate = wanted + dt.timedelta(days=shift)
                if candidate.month == wanted.month and candidate.isoweekday() <= 5:
                    return candidate.day == day.day
            return False
        return _field_allows(dom, day.day, 1, 31, {})
    if dow == "L":
        return _weekday(day) == 7
    if "#" in dow:
        weekday, k = dow.split("#")
        return _weekday(day) == (days.get(weekday, 0) or int(weekday)) and (
            (day.day - 1) // 7 + 1 == int(k))
    if dow.endswith("L"):
        weekday = dow[:-1]
        return _weekday(day) == (days.get(weekday, 0) or int(weekday)) and (
            (day + dt.timedelta(days=7)).month != day.month)
    return _field_allows(dow, _weekday(day), 1, 7, days)


def reference_next(fields: list[str], t: float, horizon_days: int) -> float:
    """The first matching minute after ``t``: day by day, then minute by minute."""
    start = dt.datetime.fromtimestamp(math.floor(t / 60) * 60 + 60, dt.UTC)
    day = start.replace(hour=0, minute=0)
    for _ in range(horizon_days):
        if reference_day(fields, day):
            moment = max(day, start)
            while moment.day == day.day and moment.month == day.month:
                if _field_allows(fields[1], moment.hour, 0, 23, {}) and _field_allows(
                        fields[0], moment.minute, 0, 59, {}):
                    return moment.timestamp()
                moment += dt.timedelta(minutes=1)
        day += dt.timedelta(days=1)
    return math.inf


MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def element(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    def number(n: int) -> str:
        return names[n - low] if names and n % 2 else str(n)

    values = st.integers(low, high)
    single = values.map(number)
    ranged = st.tuples(values, values).map(lambda p: (min(p), max(p))).map(
        lambda p: f"{number(p[0])}-{number(p[1])}")
    stepped = st.tuples(st.one_of(st.just("*"), single), st.integers(1, high - low + 1)).map(
        lambda p: f"{p[0]}/{p[1]}")
    return st.one_of(st.just("*"), single, ranged, stepped)


def field_of(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    return st.lists(element(low, high, names), min_size=1, max_size=3).map(",".join)


special_dom = st.one_of(st.just("L"), st.just("LW"), st.integers(1, 31).map(lambda n: f"{n}W"))
special_dow = st.one_of(
    st.just("L"),
    st.integers(1, 7).map(lambda n: f"{n}L"),
    st.tuples(st.integers(1, 7), st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
)
days_part = st.one_of(
    st.tuples(st.one_of(field_of(1, 31), special_dom), st.just("?")),
    st.tuples(st.just("?"), st.one_of(field_of(1, 7, DAY_NAMES), special_dow)),
)


@settings(max_examples=120, deadline=None)
@given(
    field_of(0, 59),
    st.one_of(st.just("*"), field_of(0, 23)),
    days_part,
    st.one_of(st.just("*"), field_of(1, 12, MONTH_NAMES)),
    st.integers(0, 3 * 366 * 86400).map(lambda s: at("2023-06-01T00:00") + s),
)
def test_cron_agrees_with_a_minute_by_minute_reading(
    minute: str, hour: str, days: tuple[str, str], month: str, t: float
) -> None:
    fields = [minute, hour, days[0], month, days[1], "*"]
    schedule = Schedule.parse(f"cron({' '.join(fields)})")
    expected = reference_next(fields, t, horizon_days=400)
    found = schedule.next_after(t)
    if expected == math.inf:
        assert found == math.inf or found > t + 399 * 86400
    else:
        assert found == expected, (fields, iso8601(t), iso8601(found), iso8601(expected))
