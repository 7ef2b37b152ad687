"""Scenario files: durations, distributions, defaults, validation messages, overrides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sluicegate.errors import ConfigError
from sluicegate.sim import (
    ENVIRONMENT_IDLE_TIMEOUT,
    Empirical,
    ErrorWindow,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    Pause,
    ProducerSpec,
    Scenario,
    ScenarioError,
    Uniform,
    load_scenario,
    parse_duration,
)

ISSUE_EXAMPLE = """
seed = 1
duration = "4m"
[queue]
backlog = 100000
visibility_timeout = 30
[producer]
rate = 750
start = "0s"
stop = "4m"
[function]
duration = "200ms"
cold_start = "300ms"
timeout = 30
reserved_concurrency = 70
[[function.errors]]
start = "5m"
stop = "9m"
rate = 0.01
kind = "raise"
[mapping]
batch_size = 1
maximum_batching_window = 0
maximum_concurrency = 60
report_batch_item_failures = false
scaling = "aws"
"""


def error_of(source: object, *overrides: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(source, overrides=list(overrides))  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ConfigError)
    return message


# ---------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("200ms", 0.2),
        ("4m", 240.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("2d", 172800.0),
        ("1m 30s", 90.0),
        ("0", 0.0),
        ("12.5", 12.5),
        (3, 3.0),
        (0.05, 0.05),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5 minutes", "m5", "-1s", "1x", True, None, [1], -2, math.inf])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ScenarioError, match=r"function\.timeout="):
        parse_duration(bad, "function.timeout")


# ---------------------------------------------------------------------- the issue's example


def test_the_issue_example_loads() -> None:
    s = load_scenario(ISSUE_EXAMPLE)
    assert (s.seed, s.duration, s.bucket) == (1, 240.0, 10.0)
    assert (s.queue.backlog, s.queue.visibility_timeout) == (100_000, 30)
    assert s.producers == (ProducerSpec("constant", 750.0, 0.0, 240.0),)
    assert s.function.duration == Fixed(0.2)
    assert s.function.cold_start == Fixed(0.3)
    assert (s.function.timeout, s.function.reserved_concurrency) == (30.0, 70)
    assert s.function.errors == (ErrorWindow(300.0, 540.0, 0.01, "raise"),)
    m = s.mapping
    assert (m.batch_size, m.maximum_batching_window, m.maximum_concurrency) == (1, 0, 60)
    assert (m.report_batch_item_failures, m.scaling) == (False, "aws")


def test_defaults() -> None:
    s = load_scenario({})
    assert s == Scenario()
    assert s.function.idle_timeout == ENVIRONMENT_IDLE_TIMEOUT
    assert s.mapping.batch_size == 10  # AWS's default
    assert s.producers == () and s.downstream is None


def test_distributions() -> None:
    s = load_scenario("""
        [function]
        duration = { distribution = "lognormal", median = "200ms", p99 = "400ms" }
        cold_start = { distribution = "uniform", min = "100ms", max = "300ms" }
        [downstream]
        concurrency = 10
        latency = { distribution = "normal", mean = "20ms", stddev = "5ms" }
    """)
    assert s.function.duration == LogNormal(0.2, 0.4)
    assert s.function.cold_start == Uniform(0.1, 0.3)
    assert s.downstream is not None and s.downstream.latency == Normal(0.02, 0.005)
    assert load_scenario(
        {"function": {"duration": {"distribution": "exponential", "mean": "50ms"}}}
    ).function.duration == Exponential(0.05)
    assert load_scenario(
        {"function": {"duration": {"distribution": "fixed", "value": "50ms"}}}
    ).function.duration == Fixed(0.05)


def test_lognormal_parameters() -> None:
    d = LogNormal(0.2, 0.4)
    assert math.exp(d.mu) == pytest.approx(0.2)
    # the 99th percentile of the lognormal is p99
    assert math.exp(d.mu + 2.3263478740408408 * d.sigma) == pytest.approx(0.4)


def test_empirical_inline_and_from_a_file(tmp_path: Path) -> None:
    inline = load_scenario(
        {"function": {"duration": {"distribution": "empirical", "samples": ["10ms", 0.02]}}}
    )
    assert inline.function.duration == Empirical((0.01, 0.02))
    (tmp_path / "durations.txt").write_text("# from the logs\n120ms\n\n0.08\n1s\n")
    (tmp_path / "s.toml").write_text(
        '[function]\nduration = { distribution = "empirical", file = "durations.txt" }\n'
    )
    s = load_scenario(tmp_path / "s.toml")
    assert s.function.duration == Empirical((0.12, 0.08, 1.0), "durations.txt")
    # the normalized form carries the samples, so it reloads without the file
    assert load_scenario(s.to_dict()).function.duration.samples == (0.12, 0.08, 1.0)  # type: ignore[union-attr]


def test_round_trip_through_the_plain_form() -> None:
    s = load_scenario(ISSUE_EXAMPLE + """
        [[mapping.pauses]]
        at = "1m"
        until = "2m"
        [downstream]
        rate = 300
        latency = { distribution = "lognormal", median = "10ms", p99 = "50ms" }
        error_kind = "batch_item_failure"
        per = "record"
        [account]
        concurrency_limit = 3000
    """)
    assert s.pauses == (Pause(60.0, 120.0),)
    assert load_scenario(s.to_dict()) == s
    assert load_scenario(s) == s


def test_producers_as_an_array() -> None:
    s = load_scenario("""
        [[producers]]
        kind = "poisson"
        rate = 100
        [[producers]]
        kind = "burst"
        size = 5000
        interval = "1m"
        start = "30s"
    """)
    assert [p.kind for p in s.producers] == ["poisson", "burst"]
    assert s.producers[1] == ProducerSpec("burst", 0.0, 30.0, None, 5000, 60.0)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["mapping.maximum_concurrency=5000"], "mapping.maximum_concurrency=5000 is invalid: allowed an integer 2-1,000"),
        (["mapping.batch_size=0"], "mapping.batch_size=0 is invalid"),
        (["mapping.batch_size=100"], "mapping.maximum_batching_window=0 is invalid: allowed >= 1 s when batch_size (100) is above 10"),
        (["mapping.maximum_batching_window=\"500ms\""], "mapping.maximum_batching_window='500ms' is invalid: allowed whole seconds 0-300"),
        (["mapping.scaling=\"fast\""], "mapping.scaling='fast' is invalid: allowed 'aws' or 'fixed'"),
        (["function.timeout=60"], "queue.visibility_timeout=30 is invalid: allowed >= the function timeout"),
        (["function.timeout=1000"], "function.timeout=1000 is invalid: allowed 1-900 s"),
        (["function.reserved_concurrency=950"], "function.reserved_concurrency=950 is invalid: allowed at most 900"),
        (["queue.visibility_timeout=-1"], "queue.visibility_timeout=-1 is invalid"),
        (["function.errors.0.rate=1.5"], "function.errors[0].rate=1.5 is invalid: allowed a number >= 0 and <= 1"),
        (["function.errors.0.kind=\"oops\""], "function.errors[0].kind='oops' is invalid: allowed 'raise' or 'batch_item_failure' or 'timeout'"),
        (["function.errors.0.stop=\"1m\""], "function.errors[0].stop='1m' is invalid: allowed a time >= start (300 s)"),
        (["producer.rate=0"], "producers[0].rate=0 is invalid: allowed messages/s > 0 for a constant producer"),
        (["duration=\"soon\""], "duration='soon' is invalid"),
        (["function.duration={ distribution = \"lognormal\", median = \"1s\", p99 = \"10ms\" }"], "function.duration.p99='10ms' is invalid: allowed a duration >= the median (1 s)"),
        (["function.duration={ distribution = \"zipf\" }"], "function.duration.distribution='zipf' is invalid"),
        (["downstream.latency=\"5ms\""], "downstream.concurrency=None is invalid: allowed exactly one of concurrency"),
        (["account.concurrency_limit=0"], "account.concurrency_limit=0 is invalid"),
    ],
)
def test_errors_name_the_key_path(overrides: list[str], expected: str) -> None:
    message = error_of(ISSUE_EXAMPLE, *overrides)
    assert message.startswith("scenario: ")
    assert expected in message


def test_unknown_keys_are_named() -> None:
    message = error_of(ISSUE_EXAMPLE, "mapping.maximum_concurency=50")
    assert message == (
        "scenario: unknown key mapping.maximum_concurency (did you mean maximum_concurrency?)"
    )
    assert "unknown key colour (known: " in error_of({"colour": "blue"})
    assert "unknown key function.errors[0].when" in error_of(
        {"function": {"errors": [{"rate": 0.1, "when": 3}]}}
    )


def test_invalid_toml_and_missing_files(tmp_path: Path) -> None:
    message = error_of("duration = \n[queue")
    assert message.startswith("scenario: invalid TOML: ")
    path = tmp_path / "broken.toml"
    path.write_text("[mapping]\nbatch_size = 0\n")
    assert error_of(path).startswith("broken.toml: mapping.batch_size=0 is invalid")
    assert "cannot read" in error_of(tmp_path / "missing.toml")
    assert "function.duration.file='nope.txt' is invalid: allowed a readable file" in error_of(
        {"function": {"duration": {"distribution": "empirical", "file": "nope.txt"}}}
    )


def test_producer_and_producers_together_are_refused() -> None:
    assert "use [producer] or [[producers]], not both" in error_of(
        {"producer": {"rate": 1}, "producers": [{"rate": 2}]}
    )


# ---------------------------------------------------------------------- overrides


def test_overrides() -> None:
    s = load_scenario(
        ISSUE_EXAMPLE,
        overrides=[
            "mapping.maximum_concurrency=50",
            "mapping.scaling=fixed",  # bare text
            "duration=1h30m",
            'function.duration={ distribution = "lognormal", median = "200ms", p99 = "400ms" }',
            "producer.rate=500",
            "function.errors.0.rate=0.1",
            "downstream.concurrency=10",
            "seed=7",
        ],
    )
    assert s.mapping.maximum_concurrency == 50
    assert s.mapping.scaling == "fixed"
    assert s.duration == 5400.0
    assert s.function.duration == LogNormal(0.2, 0.4)
    assert s.producers[0].rate == 500.0
    assert s.function.errors[0].rate == 0.1
    assert s.downstream is not None and s.downstream.concurrency == 10
    assert s.seed == 7


def test_overrides_do_not_touch_the_callers_dict() -> None:
    data = {"mapping": {"batch_size": 5}}
    load_scenario(data, overrides=["mapping.batch_size=7"])
    assert data == {"mapping": {"batch_size": 5}}


def test_bad_overrides() -> None:
    assert "override='mapping.batch_size' is invalid: allowed KEY=VALUE" in error_of(
        {}, "mapping.batch_size"
    )
    assert error_of({}, "mapping.colour=1") == "scenario: unknown key mapping.colour (known: " + (
        "adaptive, batch_size, breaker, enabled, filter_criteria, maximum_batching_window, maximum_concurrency, "
        "pauses, "
        "report_batch_item_failures, scaling, scaling_ceiling)"
    )
    assert "no function.errors.3" in error_of(ISSUE_EXAMPLE, "function.errors.3.rate=1")
    assert error_of(ISSUE_EXAMPLE, "seed.x=1") == "scenario: override 'seed.x=1': seed is not a table"


def test_the_public_surface() -> None:
    import sluicegate.sim as sim

    assert sim.__all__ == sorted(sim.__all__, key=lambda n: (not n.isupper(), n))
    missing = [name for name in sim.__all__ if name not in vars(sim)]
    assert missing == []
    # every class and function exported is sluicegate's own, from a module of the package
    # (constants and the Distribution union are checked by what they hold)
    foreign = [name for name in sim.__all__
               if isinstance(vars(sim)[name], type) or callable(vars(sim)[name])
               if not vars(sim)[name].__module__.startswith("sluicegate.sim.")]
    assert foreign == []
    assert set(sim.Distribution.__args__) == {
        sim.Fixed, sim.Uniform, sim.Normal, sim.LogNormal, sim.Exponential, sim.Empirical}
    assert sim.Scenario().mapping.batch_size == 10
