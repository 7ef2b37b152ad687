"""Live limits' pure rules: scopes, value checks, command-line values, and schedules at
explicit times (UTC and a zone with daylight saving)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.core.live import (
    Schedule,
    check_live_value,
    parse_live_value,
    schedule,
    scope_kind,
)
from sluicegate.errors import ConfigError


def _at(text: str, tz: str = "UTC") -> float:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_settings_belong_to_their_scope() -> None:
    assert scope_kind("maximum_concurrency") == "mapping"
    assert scope_kind("enabled") == "mapping"
    assert scope_kind("reserved_concurrency") == "function"
    assert scope_kind("state") == "breaker"
    with pytest.raises(ConfigError, match="batch_size"):
        scope_kind("batch_size")


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("maximum_concurrency", 2, 2), ("maximum_concurrency", 1000, 1000),
    ("maximum_concurrency", None, None), ("reserved_concurrency", 0, 0),
    ("enabled", False, False), ("state", "open", "open"),
])
def test_values_in_range_pass(setting: str, value: object, expected: object) -> None:
    assert check_live_value(setting, value, "test") == expected


@pytest.mark.parametrize(("setting", "value", "allowed"), [
    ("maximum_concurrency", 1, "2-1,000"), ("maximum_concurrency", 1001, "2-1,000"),
    ("maximum_concurrency", True, "2-1,000"), ("maximum_concurrency", 2.5, "2-1,000"),
    ("reserved_concurrency", -1, "0-1,000,000"), ("enabled", None, "true or false"),
    ("state", "half_open", "'open' or 'closed'"),
])
def test_values_out_of_range_are_one_line_errors(setting: str, value: object,
                                                 allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_live_value(setting, value, "mapping q->f")
    assert allowed in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("mapping q->f: ")


def test_command_line_values() -> None:
    assert parse_live_value("maximum_concurrency", "20", "t") == 20
    assert parse_live_value("maximum_concurrency", "unset", "t") is None
    assert parse_live_value("enabled", "off", "t") is False
    with pytest.raises(ConfigError, match="'twenty'"):
        parse_live_value("maximum_concurrency", "twenty", "t")
    with pytest.raises(ConfigError, match="true or false"):
        parse_live_value("enabled", "maybe", "t")


def test_a_schedule_by_time_of_day() -> None:
    office = schedule({"09:00-17:00": 50}, default=10)
    assert office.value(_at("2026-12-07T08:59:59")) == 10
    assert office.value(_at("2026-12-07T09:00:00")) == 50
    assert office.value(_at("2026-12-07T16:59:59")) == 50
    assert office.value(_at("2026-12-07T17:00:00")) == 10
    assert office.next_change(_at("2026-12-07T08:00:00")) == _at("2026-12-07T09:00:00")
    assert office.next_change(_at("2026-12-07T09:00:00")) == _at("2026-12-07T17:00:00")
    assert office.next_change(_at("2026-12-07T18:00:00")) == _at("2026-12-08T09:00:00")


def test_a_window_across_midnight_and_the_first_window_wins() -> None:
    night = Schedule({"22:00-06:00": 5, "00:00-24:00": 40}, default=1)
    assert night.value(_at("2026-12-07T23:30:00")) == 5
    assert night.value(_at("2026-12-08T05:59:00")) == 5
    assert night.value(_at("2026-12-08T06:00:00")) == 40


def test_a_schedule_follows_its_zone_through_daylight_saving() -> None:
    paris = schedule({"09:00-17:00": 50}, default=10, tz="Europe/Paris")
    # summer (UTC+2) and winter (UTC+1): 09:00 local both times
    assert paris.value(_at("2026-07-01T09:00:00", "Europe/Paris")) == 50
    assert paris.value(_at("2026-07-01T06:30:00")) == 10  # 08:30 in Paris (UTC+2)
    assert paris.value(_at("2026-12-01T08:30:00")) == 50  # 09:30 in Paris (UTC+1)
    # the change on the day clocks go forward (29 March 2026) lands on local 09:00
    assert paris.next_change(_at("2026-03-29T05:00:00")) == _at("2026-03-29T09:00:00",
                                                                "Europe/Paris")


@pytest.mark.parametrize("windows", [{"9-17": 1}, {"09:00-09:00": 1}, {"25:00-26:00": 1},
                                     {"09:60-10:00": 1}])
def test_bad_windows_are_refused(windows: dict[str, int]) -> None:
    with pytest.raises(ConfigError, match="schedule"):
        Schedule(windows, 1)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(ConfigError, match="IANA"):
        schedule({"09:00-17:00": 1}, tz="Mars/Olympus")


@given(st.integers(min_value=0, max_value=86_400 * 365 * 30),
       st.integers(0, 23), st.integers(0, 59), st.integers(1, 600))
def test_a_schedule_changes_only_at_its_next_change(now: int, h: int, m: int,
                                                    length: int) -> None:
    start = h * 60 + m
    end = (start + length) % 1440
    if end == start:
        return
    window = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    rule = schedule({window: 1}, default=0)
    t = float(now)
    change = rule.next_change(t)
    assert change > t
    # the value holds until just before the change
    assert rule.value(change - 0.001) == rule.value(t)
    assert change - t <= 86_400
