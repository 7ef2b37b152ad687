"""Stream scenarios in the simulator: parsing, determinism, concurrency, per-key order,
poison records with and without limits, the stream presets and the CLI. Virtual time only."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sluicegate.cli import main
from sluicegate.core.streams import StreamBatch, shard_for_partition_key
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError
from sluicegate.sim import (
    STREAM_SERIES_KEYS,
    STREAM_SUMMARY_KEYS,
    PoisonSpec,
    Scenario,
    ScenarioError,
    StreamScenario,
    load_any_scenario,
    load_scenario,
    load_stream_scenario,
    simulate_any,
    simulate_stream,
)
from sluicegate.sim.presets import PARALLELIZATION_FACTORS, PRESETS, STREAM_SHARDS, run_preset
from sluicegate.store.memory_streams import MemoryStreams

EXAMPLE = """
name = "streams"
duration = "2m"
[stream]
shard_count = 2
retention_period = "24h"
record_size = 512
[[stream.poison]]
at = "30s"
key = "k7"
[producer]
rate = 50
partition_keys = 20
key_distribution = "zipf"
zipf_exponent = 1.2
[function]
duration = "100ms"
[mapping]
batch_size = 10
parallelization_factor = 2
bisect_batch_on_function_error = true
maximum_retry_attempts = 3
maximum_record_age = "2m"
on_failure = true
"""


def base(**sections: dict[str, Any]) -> dict[str, Any]:
    """A small stream scenario as a dict; ``sections`` are merged table by table."""
    data: dict[str, Any] = {
        "seed": 1,
        "duration": 120,
        "stream": {"shard_count": 4},
        "producers": [{"rate": 40, "partition_keys": 100}],
        "function": {"duration": "100ms"},
        "mapping": {"batch_size": 10},
    }
    for name, table in sections.items():
        if isinstance(table, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **table}
        else:
            data[name] = table
    return data


def error_of(source: Any, *overrides: str, loader: Any = load_stream_scenario) -> str:
    with pytest.raises(ScenarioError) as info:
        loader(source, overrides=list(overrides))
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ConfigError)
    return message


class Recorder:
    """Observer: every invocation, in flight keys, and per-key processed order."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.in_flight_keys: dict[str, int] = {}
        self.last_processed: dict[str, int] = {}
        self.processed_by_shard: dict[int, list[float]] = defaultdict(list)
        self.invocations: list[tuple[float, StreamBatch]] = []
        self.ends: list[tuple[float, StreamBatch, BatchOutcome]] = []
        self.order_violations = 0
        self.shared_keys = 0

    def invoked(self, now: float, batch: StreamBatch) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        keys = {r.partition_key for r in batch.records}
        for key in keys:
            if key in self.in_flight_keys:
                self.shared_keys += 1
            self.in_flight_keys[key] = batch.id
        self.invocations.append((now, batch))

    def finished(self, now: float, batch: StreamBatch, outcome: BatchOutcome) -> None:
        self.running -= 1
        for r in batch.records:
            if self.in_flight_keys.get(r.partition_key) == batch.id:
                del self.in_flight_keys[r.partition_key]
        if outcome.kind is OutcomeKind.SUCCESS:
            done = list(batch.records)
        elif outcome.kind is OutcomeKind.PARTIAL:
            lowest = min(int(s) for s in outcome.failed)
            done = [r for r in batch.records if r.sequence_number < lowest]
        else:
            done = []
        for r in done:
            last = self.last_processed.get(r.partition_key)
            if last is not None and r.sequence_number <= last:
                self.order_violations += 1
            self.last_processed[r.partition_key] = r.sequence_number
            self.processed_by_shard[r.shard].append(now)
        self.ends.append((now, batch, outcome))


def poisoned(**mapping: Any) -> tuple[StreamScenario, Recorder, dict[str, Any]]:
    """4 shards at 40 rec/s, a poison record with key k7 at 30 s; run it observed."""
    scenario = load_stream_scenario(base(
        duration=240,
        stream={"shard_count": 4, "poison": [{"at": 30, "key": "k7"}]},
        mapping={"batch_size": 10, "on_failure": True, **mapping},
    ))
    recorder = Recorder()
    result = simulate_stream(scenario, observer=recorder)
    return scenario, recorder, result.to_dict()


def poison_batches(recorder: Recorder) -> list[tuple[float, StreamBatch]]:
    return [(t, b) for t, b in recorder.invocations
            if any(r.sequence_number == poison_sequence(recorder) for r in b.records)]


def poison_sequence(recorder: Recorder) -> int:
    """The poison record's sequence number: the record with key k7 put at 30 s."""
    for _, batch in recorder.invocations:
        for r in batch.records:
            if r.partition_key == "k7" and r.approximate_arrival == 30.0:
                return r.sequence_number
    raise AssertionError("the poison record was never invoked")


# ---------------------------------------------------------------------- parsing


def test_example_parses_with_every_section_and_round_trips() -> None:
    scenario = load_stream_scenario(EXAMPLE)
    assert isinstance(scenario, StreamScenario)
    assert scenario.stream.shard_count == 2
    assert scenario.stream.retention_period == 86_400
    assert scenario.stream.poison == (PoisonSpec(30.0, "k7", "raise"),)
    (producer,) = scenario.producers
    assert (producer.partition_keys, producer.key_distribution, producer.zipf_exponent) == (
        20, "zipf", 1.2)
    assert producer.arrivals.rate == 50
    m = scenario.mapping
    assert (m.parallelization_factor, m.bisect_batch_on_function_error,
            m.maximum_retry_attempts, m.maximum_record_age, m.on_failure) == (
        2, True, 3, 120, "on-failure")
    config = scenario.mapping
    assert config.stream == "stream" and config.function == "function"
    assert load_stream_scenario(scenario.to_dict()) == scenario
    assert load_stream_scenario(scenario) == scenario
    assert load_any_scenario(EXAMPLE) == scenario


def test_defaults_are_aws_defaults() -> None:
    scenario = load_stream_scenario({"stream": {}})
    m = scenario.mapping
    assert (m.batch_size, m.parallelization_factor, m.maximum_retry_attempts,
            m.maximum_record_age, m.on_failure, m.starting_position) == (
        100, 1, -1, -1, None, "TRIM_HORIZON")
    assert scenario.stream.shard_count == 1
    assert scenario.producers == ()


def test_load_any_scenario_tells_the_kinds_apart() -> None:
    assert isinstance(load_any_scenario({"queue": {"backlog": 5}}), Scenario)
    assert isinstance(load_any_scenario({"stream": {}}), StreamScenario)
    assert isinstance(load_any_scenario({}, overrides=["stream.shard_count=2"]),
                      StreamScenario)
    queue = load_scenario({"queue": {}})
    assert load_any_scenario(queue) == queue


def test_overrides_reach_stream_tables() -> None:
    scenario = load_stream_scenario(EXAMPLE, overrides=[
        "stream.shard_count=8", "producer.partition_keys=5", 'stream.poison.0.at="1m"',
        "mapping.on_failure=false", "mapping.maximum_record_age=-1",
    ])
    assert scenario.stream.shard_count == 8
    assert scenario.producers[0].partition_keys == 5
    assert scenario.stream.poison[0].at == 60.0
    assert scenario.mapping.on_failure is None
    assert scenario.mapping.maximum_record_age == -1


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["stream.shard_cont=2"], "unknown key stream.shard_cont (did you mean shard_count?)"),
        (["stream.shard_count=0"], "stream.shard_count=0 is invalid"),
        (["stream.shard_count=20000"], "stream.shard_count=20000 is invalid"),
        (["stream.retention_period=3600"], "stream.retention_period=3600 is invalid"),
        (["stream.record_size=0"], "stream.record_size=0 is invalid"),
        (['stream.poison.0.key=""'], "stream.poison[0].key='' is invalid"),
        (['stream.poison.0.kind="explode"'], "stream.poison[0].kind='explode' is invalid"),
        (["mapping.parallelization_factor=11"],
         "mapping.parallelization_factor=11 is invalid: allowed an integer 1-10"),
        (["mapping.maximum_record_age=30"],
         "mapping.maximum_record_age=30 is invalid: allowed -1 (no limit) or 60-604,800 s"),
        (["mapping.maximum_retry_attempts=-2"], "mapping.maximum_retry_attempts=-2 is invalid"),
        (["mapping.on_failure=5"], "mapping.on_failure=5 is invalid"),
        (['mapping.on_failure="no spaces"'], "mapping.on_failure='no spaces' is invalid"),
        (['mapping.starting_position="OLDEST"'], "mapping.starting_position='OLDEST' is invalid"),
        (['mapping.starting_position="AT_TIMESTAMP"'],
         "mapping.starting_position_timestamp=None is invalid"),
        (["mapping.maximum_concurrency=5"], "unknown key mapping.maximum_concurrency"),
        (["producer.partition_keys=0"], "producers[0].partition_keys=0 is invalid"),
        (['producer.key_distribution="pareto"'], "producers[0].key_distribution='pareto' is invalid"),
        (["producer.hot_key_share=1.5"], "producers[0].hot_key_share=1.5 is invalid"),
        (["producer.batch=501"], "producers[0].batch=501 is invalid"),
        (["producer.rate=0"], "producers[0].rate=0 is invalid: allowed records/s > 0"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(overrides: list[str], expected: str) -> None:
    assert expected in error_of(EXAMPLE, *overrides)


def test_queue_and_stream_loaders_refuse_each_others_scenarios() -> None:
    assert "stream scenario" in error_of(EXAMPLE, loader=load_scenario)
    assert "no [stream] table" in error_of({"queue": {}})
    assert "[queue] or [stream], not both" in error_of({"queue": {}, "stream": {}})
    assert "not both" in error_of({"queue": {}, "stream": {}}, loader=load_any_scenario)


def test_count_after_counts_records_behind_a_checkpoint() -> None:
    now = [0.0]
    engine = MemoryStreams(lambda: now[0])
    scenario = load_stream_scenario({"stream": {"shard_count": 2}})
    engine.ensure_stream(scenario.stream_config())
    numbers = engine.put("stream", [(0, "a", b""), (1, "b", b""), (0, "a", b""),
                                    (0, "a", b"")])
    assert engine.count_after("stream", 0, None) == 3
    assert engine.count_after("stream", 0, numbers[0]) == 2
    assert engine.count_after("stream", 0, numbers[3]) == 0
    assert engine.count_after("stream", 1, numbers[0]) == 1


# ---------------------------------------------------------------------- runs


def test_a_run_has_the_stream_keys_and_accounts_for_every_record() -> None:
    result = simulate_stream(load_stream_scenario(EXAMPLE))
    assert tuple(result.summary) == STREAM_SUMMARY_KEYS
    assert len(result.series) == 12
    for bucket in result.series:
        assert tuple(bucket) == STREAM_SERIES_KEYS
        assert bucket["concurrency"] <= bucket["limit"] == 4
    s = result.summary
    assert s["records_sent"] == 50 * 120 + 1  # the poison record is put too
    assert s["records_sent"] == (s["records_processed"] + s["records_discarded"]
                                 + s["records_expired"] + s["records_unsettled"])
    assert 0 <= s["records_unsettled"] <= s["records_behind"]
    assert s["records_discarded"] == 1 and s["on_failure_records"] == 1  # bisect + retries
    assert s["records_received"] >= s["records_processed"]


def test_same_scenario_and_seed_give_identical_output_and_seeds_differ() -> None:
    data = base(function={"duration": {"distribution": "lognormal", "median": "50ms",
                                       "p99": "400ms"},
                          "errors": [{"rate": 0.1}]},
                producers=[{"kind": "poisson", "rate": 60, "key_distribution": "hot",
                            "hot_key_share": 0.3}],
                mapping={"parallelization_factor": 3, "maximum_retry_attempts": 1})
    first = json.dumps(simulate_stream(data).to_dict())
    again = json.dumps(simulate_any(load_stream_scenario(data)).to_dict())
    assert first == again
    other = json.dumps(simulate_stream(load_stream_scenario(data, overrides=["seed=2"])
                                       ).to_dict())
    assert other != first


def test_concurrency_reaches_shards_times_factor_and_never_more() -> None:
    recorder = Recorder()
    result = simulate_stream(base(
        duration=60, stream={"shard_count": 2},
        producers=[{"rate": 400, "partition_keys": 500}],
        function={"duration": "1s"}, mapping={"parallelization_factor": 3}),
        observer=recorder)
    assert recorder.peak == 6
    assert result.summary["peak_concurrency"] == 6
    assert all(b["concurrency"] <= 6 for b in result.series)
    assert result.summary["total_throttles"] == 0


def test_reserved_concurrency_below_the_lanes_throttles_and_caps() -> None:
    recorder = Recorder()
    result = simulate_stream(base(
        duration=60, producers=[{"rate": 400, "partition_keys": 500}],
        function={"duration": "1s", "reserved_concurrency": 3},
        mapping={"parallelization_factor": 2}), observer=recorder)
    assert recorder.peak == 3
    assert result.summary["total_throttles"] > 0


def test_records_of_one_key_are_processed_in_order_through_failures() -> None:
    recorder = Recorder()
    result = simulate_stream(base(
        duration=180,
        producers=[{"kind": "poisson", "rate": 80, "partition_keys": 30,
                    "key_distribution": "hot", "hot_key_share": 0.4}],
        function={"duration": {"distribution": "uniform", "min": "20ms", "max": "300ms"},
                  "errors": [{"rate": 0.2}, {"rate": 0.05, "kind": "batch_item_failure"}]},
        mapping={"parallelization_factor": 5, "report_batch_item_failures": True,
                 "bisect_batch_on_function_error": True, "maximum_batching_window": 1}),
        observer=recorder)
    s = result.summary
    assert s["total_errors"] > 50 and s["total_partial"] > 10
    assert s["records_processed"] > 5_000
    assert recorder.order_violations == 0
    assert recorder.shared_keys == 0  # a key is never in two batches in flight


def test_thousands_of_keys_keep_their_order_and_every_record_is_accounted_for() -> None:
    """Issue 4's history checks at scale: 5,000 partition keys on 8 shards x factor 10,
    thrown errors and reported failures: no key ever in two batches at once, no record
    processed out of order or again once done, and every record put is processed,
    discarded, expired or still behind a checkpoint."""
    recorder = Recorder()
    result = simulate_stream(base(
        duration=120,
        stream={"shard_count": 8},
        producers=[{"kind": "poisson", "rate": 400, "partition_keys": 5_000}],
        function={"duration": {"distribution": "uniform", "min": "20ms", "max": "200ms"},
                  "errors": [{"rate": 0.1}, {"rate": 0.05, "kind": "batch_item_failure"}]},
        mapping={"parallelization_factor": 10, "report_batch_item_failures": True,
                 "bisect_batch_on_function_error": True, "maximum_retry_attempts": 2,
                 "on_failure": True}),
        observer=recorder)
    s = result.summary
    assert len(recorder.last_processed) > 4_000  # thousands of keys took part
    assert s["total_errors"] > 100 and s["total_partial"] > 50
    assert recorder.peak > 8  # lanes ran in parallel within shards
    assert recorder.order_violations == 0
    assert recorder.shared_keys == 0
    assert sum(map(len, recorder.processed_by_shard.values())) == s["records_processed"]
    assert s["records_sent"] == (s["records_processed"] + s["records_discarded"]
                                 + s["records_expired"] + s["records_unsettled"])


def test_checkpoint_lag_stays_small_when_the_mapping_keeps_up() -> None:
    result = simulate_stream(base())
    assert all(b["checkpoint_lag"] <= 40 for b in result.series[1:])
    assert result.summary["stalled_shards"] == 0
    assert result.summary["max_iterator_age_ms"] < 2_000


def test_latest_starts_with_records_put_after_the_first_read() -> None:
    result = simulate_stream(base(
        producers=[{"kind": "burst", "size": 500, "start": 0, "stop": 0},
                   {"rate": 10, "start": 5}],
        mapping={"starting_position": "LATEST"}))
    s = result.summary
    assert s["records_sent"] == 500 + 10 * 115
    assert s["records_processed"] <= 10 * 115
    assert s["records_received"] <= 10 * 115


def test_pauses_stop_invocations() -> None:
    result = simulate_stream(base(mapping={"pauses": [{"at": 30, "until": 90}]}))
    quiet = [b for b in result.series if 40 <= b["t"] < 90]
    assert quiet and all(b["invocations"] == 0 for b in quiet)
    assert result.series[-1]["invocations"] > 0
    assert max(b["checkpoint_lag"] for b in result.series) >= 40 * 55


# ---------------------------------------------------------------------- poison records


def test_poison_without_limits_stalls_its_shard_while_the_others_flow() -> None:
    _, recorder, result = poisoned()
    shard = shard_for_partition_key("k7", 4)
    after = {s: sum(1 for t in times if t >= 60) for s, times in
             recorder.processed_by_shard.items()}
    assert after.get(shard, 0) < 20  # a few records of the blocked batch's lane, then none
    assert all(after[s] > 1000 for s in range(4) if s != shard)
    s = result["summary"]
    assert s["stalled_shards"] == 1
    assert s["records_discarded"] == 0 and s["on_failure_records"] == 0
    ages = [b["iterator_age_ms"] for b in result["series"] if b["t"] >= 40]
    assert ages == sorted(ages) and ages[-1] > 190_000  # grows with the stall
    lags = [b["max_shard_lag"] for b in result["series"] if b["t"] >= 40]
    assert lags == sorted(lags)
    # retried about once a second plus its run time, until retention (24 h) or max age
    assert len(poison_batches(recorder)) > 150


def test_bisect_isolates_the_poison_and_processes_the_records_before_it() -> None:
    _, recorder, result = poisoned(bisect_batch_on_function_error=True)
    seq = poison_sequence(recorder)
    batches = poison_batches(recorder)
    first = batches[0][1]
    assert len(first.records) > 1
    assert any(len(b.records) == 1 for _, b in batches)  # isolated
    before = [r for r in first.records if r.sequence_number < seq]
    assert before and all(recorder.last_processed.get(r.partition_key, -1)
                          >= r.sequence_number for r in before)
    # without a retry limit the poison is retried alone, and its lane stays blocked
    assert result["summary"]["stalled_shards"] == 1


def test_bisect_with_retries_discards_only_the_poison() -> None:
    _, recorder, result = poisoned(bisect_batch_on_function_error=True,
                                   maximum_retry_attempts=2)
    s = result["summary"]
    assert (s["records_discarded"], s["on_failure_records"]) == (1, 1)
    assert s["stalled_shards"] == 0
    seq = poison_sequence(recorder)
    alone = [b for _, b in poison_batches(recorder) if len(b.records) == 1]
    assert len(alone) == 3 and [b.retries for b in alone] == [0, 1, 2]
    assert all(r.sequence_number == seq for b in alone for r in b.records)


def test_retry_limit_discards_the_batch_after_n_plus_one_attempts() -> None:
    _, recorder, result = poisoned(maximum_retry_attempts=2)
    batches = poison_batches(recorder)
    assert len(batches) == 3  # the first attempt and 2 retries
    assert [b.retries for _, b in batches] == [0, 1, 2]
    assert len({tuple(r.sequence_number for r in b.records) for _, b in batches}) == 1
    s = result["summary"]
    assert s["on_failure_records"] == 1
    assert s["records_discarded"] == len(batches[0][1].records)
    assert s["stalled_shards"] == 0
    assert sum(b["on_failure"] for b in result["series"]) == 1


def test_record_age_limit_discards_records_older_than_it() -> None:
    _, recorder, result = poisoned(maximum_record_age=60)
    for now, batch in recorder.invocations:
        oldest = min(r.approximate_arrival for r in batch.records)
        assert now - oldest <= 60  # nothing older is ever invoked
    batches = poison_batches(recorder)
    assert batches[-1][0] - 30.0 <= 60
    assert batches[-1][0] - 30.0 > 50  # retried until the age limit, not before
    s = result["summary"]
    assert s["records_discarded"] >= len(batches[0][1].records)
    assert s["on_failure_records"] >= 1 and s["stalled_shards"] == 0
    assert s["max_iterator_age_ms"] <= 60_000


def test_a_reported_poison_is_judged_by_the_core() -> None:
    poison = {"stream": {"shard_count": 4,
                         "poison": [{"at": 30, "key": "k7", "kind": "batch_item_failure"}]}}
    ignored = simulate_stream(base(**poison))  # reports ignored without the setting
    assert ignored.summary["stalled_shards"] == 0 and ignored.summary["total_partial"] == 0
    honoured = simulate_stream(base(**poison, mapping={"report_batch_item_failures": True,
                                                       "maximum_retry_attempts": 1}))
    s = honoured.summary
    assert s["total_partial"] == 2 and s["records_discarded"] >= 1


# ---------------------------------------------------------------------- presets


@pytest.fixture(scope="module")
def parallelization() -> dict[str, Any]:
    return {v["name"]: v for v in run_preset("streams-parallelization")["variants"]}


@pytest.fixture(scope="module")
def poison() -> dict[str, Any]:
    return {v["name"]: v for v in run_preset("streams-poison")["variants"]}


def test_stream_presets_are_listed_with_one_line() -> None:
    for name in ("streams-parallelization", "streams-poison"):
        assert name in PRESETS
        assert "\n" not in PRESETS[name].description
        for _, scenario in PRESETS[name].variants(["duration=30s", "seed=3"]):
            assert isinstance(scenario, StreamScenario)
            assert (scenario.duration, scenario.seed) == (30.0, 3)


def test_preset_concurrency_follows_shards_times_factor(
        parallelization: dict[str, Any]) -> None:
    throughputs = []
    for factor in PARALLELIZATION_FACTORS:
        run = parallelization[f"factor-{factor}"]
        s = run["summary"]
        assert s["peak_concurrency"] == STREAM_SHARDS * factor
        assert all(b["limit"] == STREAM_SHARDS * factor for b in run["series"])
        # every lane busy: steady concurrency at the limit once warm
        assert min(b["concurrency"] for b in run["series"][1:]) == STREAM_SHARDS * factor
        assert s["total_throttles"] == 0
        throughputs.append(s["throughput"])
    assert throughputs == sorted(throughputs)
    assert throughputs[-1] > 7 * throughputs[0]


def test_preset_poison_default_and_bisect_stall_the_shard(poison: dict[str, Any]) -> None:
    for name in ("default", "bisect"):
        s = poison[name]["summary"]
        assert s["stalled_shards"] == 1
        assert s["records_discarded"] == 0
        assert s["max_iterator_age_ms"] > 250_000  # the whole run since the poison
        assert s["max_shard_lag"] > 1_500


def test_preset_poison_limits_unblock_the_shard(poison: dict[str, Any]) -> None:
    default = poison["default"]["summary"]
    for name in ("retries-2", "max-age-60", "bisect-retries-2"):
        s = poison[name]["summary"]
        assert s["stalled_shards"] == 0
        assert s["on_failure_records"] == 1
        assert s["records_processed"] > default["records_processed"] + 1_500
    assert poison["bisect-retries-2"]["summary"]["records_discarded"] == 1
    assert poison["retries-2"]["summary"]["records_discarded"] > 1  # the whole batch
    assert poison["retries-2"]["summary"]["max_iterator_age_ms"] < 5_000
    assert 50_000 < poison["max-age-60"]["summary"]["max_iterator_age_ms"] <= 60_000


# ---------------------------------------------------------------------- CLI


def test_cli_simulates_a_stream_scenario_with_every_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "streams.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    out_json, out_csv = tmp_path / "s.json", tmp_path / "s.csv"
    args = ["simulate", str(path), "--set", "duration=30s", "--seed", "4",
            "--json", str(out_json), "--csv", str(out_csv)]
    assert main(args) == 0
    assert "Records processed" in capsys.readouterr().out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["scenario"]["seed"] == 4 and data["scenario"]["duration"] == 30
    assert data["scenario"]["stream"]["shard_count"] == 2
    header = out_csv.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == list(STREAM_SERIES_KEYS)
    first = out_json.read_bytes()
    assert main(args) == 0
    assert out_json.read_bytes() == first
    assert main(["simulate", str(path), "--set", "mapping.parallelization_factor=11"]) == 2
    assert "mapping.parallelization_factor=11" in capsys.readouterr().err


def test_cli_runs_a_stream_preset_and_plots_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "p.png"
    assert main(["simulate", "--preset", "streams-poison", "--set", "duration=1m",
                 "--plot", str(out)]) == 0
    assert "bisect-retries-2" in capsys.readouterr().out
    assert out.read_bytes()[:4] == b"\x89PNG"
    from sluicegate.sim.plot import figure

    titles = [ax.get_title(loc="left") for ax in figure(run_preset(
        "streams-poison", ["duration=1m"])).axes]
    assert "Iterator age (max)" in titles and "Records behind (checkpoint lag)" in titles
    assert "Queue depth (visible + in flight)" not in titles
