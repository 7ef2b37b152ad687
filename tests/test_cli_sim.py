"""``sluicegate simulate`` and ``sluicegate plan``: virtual time only, small scenarios."""

from __future__ import annotations

import csv
import json
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluicegate.cli import main
from sluicegate.sim import Scenario, load_scenario

# 20 msg/s for one simulated minute, 100 ms per message: about 2 invocations at once.
SMALL = """
name = "small"
seed = 1
duration = "1m"

[producer]
rate = 20

[function]
duration = { distribution = "lognormal", median = "100ms", p99 = "200ms" }
cold_start = "100ms"

[mapping]
batch_size = 1
maximum_concurrency = 5
"""

# 40 msg/s, 200 ms each: the load needs 8 invocations at once.
NEED_8 = """
name = "need8"
duration = "2m"
[producer]
rate = 40
[function]
duration = "200ms"
cold_start = "100ms"
[mapping]
batch_size = 1
"""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    return path


@dataclass(frozen=True)
class _StandInPreset:
    name: str
    description: str

    def variants(self, overrides: Sequence[str] = ()) -> list[tuple[str, Scenario]]:
        return [(label, load_scenario(SMALL, overrides=[f"mapping.maximum_concurrency={mc}",
                                                        *overrides]))
                for label, mc in (("two", 2), ("five", 5))]


@pytest.fixture
def presets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in registry, so these tests do not depend on the real presets."""
    module = types.ModuleType("sluicegate.sim.presets")
    module.PRESETS = {  # type: ignore[attr-defined]
        "tiny": _StandInPreset("tiny", "two small variants"),
        "other-one": _StandInPreset("other-one", "the same again"),
    }
    monkeypatch.setitem(sys.modules, "sluicegate.sim.presets", module)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sluicegate: error: ")
    return lines[0]


# ---------------------------------------------------------------------- simulate
def test_simulate_prints_and_writes_every_output(
    scenario_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    code = main(["simulate", str(scenario_file), "--json", str(out_json), "--csv",
                 str(out_csv), "--plot", str(out_png)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Peak concurrency" in out and "Throughput" in out
    assert "concurrency  peak" in out and "invocations  peak" in out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert set(data) == {"scenario", "summary", "series"}
    assert data["scenario"]["name"] == "small"
    assert len(data["series"]) == 6
    assert data["summary"]["messages_sent"] == 1200
    rows = list(csv.reader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert rows[0][0] == "t" and "concurrency" in rows[0]
    assert len(rows) == 1 + 6
    assert out_png.read_bytes().startswith(PNG_SIGNATURE)


def test_simulate_set_and_seed_change_the_scenario(
    scenario_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    assert main(["simulate", str(scenario_file), "--set", "mapping.maximum_concurrency=3",
                 "--set", "producer.rate=10", "--seed", "42", "--json", str(out)]) == 0
    scenario = json.loads(out.read_text(encoding="utf-8"))["scenario"]
    assert scenario["mapping"]["maximum_concurrency"] == 3
    assert scenario["producers"][0]["rate"] == 10
    assert scenario["seed"] == 42


def test_simulate_is_deterministic(scenario_file: Path, tmp_path: Path) -> None:
    outputs = []
    for n in (1, 2):
        j, c = tmp_path / f"{n}.json", tmp_path / f"{n}.csv"
        assert main(["simulate", str(scenario_file), "--json", str(j), "--csv", str(c)]) == 0
        outputs.append((j.read_bytes(), c.read_bytes()))
    assert outputs[0] == outputs[1]


def test_simulate_bad_set_key_is_one_line_naming_it(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", str(scenario_file), "--set", "mapping.maximum_concurency=5"])
    assert code == 2
    assert "mapping.maximum_concurency" in _error_line(capsys)


def test_simulate_bad_set_value_is_one_line_naming_it(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario_file), "--set", "mapping.maximum_concurrency=5000"]) == 2
    line = _error_line(capsys)
    assert "mapping.maximum_concurrency=5000" in line and "small.toml" in line


def test_simulate_missing_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(tmp_path / "absent=1.toml")]) == 2
    assert "absent=1.toml" in _error_line(capsys)


def test_simulate_malformed_toml_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\nduration = = 3\n', encoding="utf-8")
    assert main(["simulate", str(path)]) == 2
    line = _error_line(capsys)
    assert "broken.toml" in line and "line 2" in line


@pytest.mark.usefixtures("presets")
def test_simulate_needs_exactly_one_of_scenario_and_preset(
    scenario_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(scenario_file), "--preset", "tiny"]) == 2
    assert "exactly one" in _error_line(capsys)
    assert main(["simulate"]) == 2
    assert "exactly one" in _error_line(capsys)


@pytest.mark.usefixtures("presets")
def test_simulate_list_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["tiny", "other-one"]
    assert lines[0].endswith("two small variants")


def test_simulate_list_presets_of_the_real_registry(capsys: pytest.CaptureFixture[str]) -> None:
    presets = pytest.importorskip("sluicegate.sim.presets")
    assert main(["simulate", "--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(presets.PRESETS)


@pytest.mark.usefixtures("presets")
def test_simulate_preset_writes_variants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_csv = tmp_path / "p.json", tmp_path / "p.csv"
    code = main(["simulate", "--preset", "tiny", "--seed", "7", "--set", "duration=30s",
                 "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 0
    assert "two" in capsys.readouterr().out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert list(data) == ["variants"]
    assert [v["name"] for v in data["variants"]] == ["two", "five"]
    for variant in data["variants"]:
        assert set(variant) == {"name", "scenario", "summary", "series"}
        assert variant["scenario"]["seed"] == 7
        assert variant["scenario"]["duration"] == 30
    assert [v["scenario"]["mapping"]["maximum_concurrency"] for v in data["variants"]] == [2, 5]
    rows = list(csv.reader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:2] == ["variant", "t"]
    assert {row[0] for row in rows[1:]} == {"two", "five"}


@pytest.mark.usefixtures("presets")
def test_simulate_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--preset", "nope"]) == 2
    line = _error_line(capsys)
    assert "'nope'" in line and "tiny" in line


# ---------------------------------------------------------------------- plan
@pytest.fixture
def need8_file(tmp_path: Path) -> Path:
    path = tmp_path / "need8.toml"
    path.write_text(NEED_8, encoding="utf-8")
    return path


def test_plan_recommends_the_smallest_setting_that_keeps_up(
    need8_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert main(["plan", str(need8_file), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keeps up" in text
    assert "recommendation: maximum_concurrency=10:" in text
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data) == ["scenario", "parameter", "downstream_limit", "settings",
                          "recommendation", "reason"]
    assert data["recommendation"] == 10 and data["downstream_limit"] is None
    assert [s["maximum_concurrency"] for s in data["settings"]] == [
        2, 5, 10, 20, 50, 100, 200, 500, 1000]
    first = data["settings"][0]
    assert {"maximum_concurrency", "keeps_up", "oldest_age_p99", "peak_concurrency",
            "throughput"} <= set(first)
    assert first["keeps_up"] is False


def test_plan_with_a_low_downstream_limit_says_none_fits(
    need8_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    code = main(["plan", str(need8_file), "--downstream-limit", "6", "--values", "5,10,20",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "recommendation: none:" in text
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["recommendation"] is None and data["downstream_limit"] == 6
    assert "downstream limit of 6" in data["reason"]
    assert [s["maximum_concurrency"] for s in data["settings"]] == [5, 10, 20]


def test_plan_takes_the_downstream_limit_from_the_scenario(
    need8_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan.json"
    assert main(["plan", str(need8_file), "--set", "downstream.concurrency=50",
                 "--values", "10", "--json", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["downstream_limit"] == 50


def test_plan_is_deterministic(need8_file: Path, tmp_path: Path) -> None:
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for f in files:
        assert main(["plan", str(need8_file), "--values", "5,10", "--json", str(f)]) == 0
    assert files[0].read_bytes() == files[1].read_bytes()


@pytest.mark.parametrize(("argv", "needle"), [
    (["--values", "5,x"], "'x' is not an integer"),
    (["--values", ","], "names no value"),
    (["--values", "1"], "mapping.maximum_concurrency=1"),
    (["--downstream-limit", "0"], "at least 1"),
    (["--set", "mapping.nope=3"], "mapping.nope"),
])
def test_plan_bad_arguments_are_one_line(
    need8_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(["plan", str(need8_file), *argv]) == 2
    assert needle in _error_line(capsys)


def test_plan_of_a_stream_sweeps_the_parallelization_factor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 shards at 50 rec/s, 0.5 s per batch of up to 10: factor 3 keeps up, with 6 at
    once, as many as the downstream's concurrency (the default limit) allows."""
    path = tmp_path / "need3.toml"
    path.write_text('duration = "2m"\n[stream]\nshard_count = 2\n[producer]\nrate = 100\n'
                    'partition_keys = 200\n[function]\nduration = "500ms"\n'
                    '[mapping]\nbatch_size = 10\n[downstream]\nconcurrency = 6\n',
                    encoding="utf-8")
    out = tmp_path / "plan.json"
    assert main(["plan", str(path), "--values", "2,3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parallelization_factor sweep" in text and "iterator age" in text
    assert "recommendation: parallelization_factor=3:" in text
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["parameter"] == "parallelization_factor" and data["downstream_limit"] == 6
    assert [s["keeps_up"] for s in data["settings"]] == [False, True]
    assert main(["plan", str(path), "--values", "2,3", "--downstream-limit", "5"]) == 0
    text = capsys.readouterr().out
    assert "recommendation: none:" in text and "6 > 5" in text
    assert main(["plan", str(path), "--values", "11"]) == 2
    assert "mapping.parallelization_factor=11" in _error_line(capsys)


# ---------------------------------------------------------------------- topics
# 20 publishes/s to two queues on a 20-concurrency account: "quick" keeps up with its
# reservation of 5, "heavy" (1 s per message) would need 20 of the 15 left.
TOPIC = """
name = "fanout"
duration = "1m"
[account]
concurrency_limit = 20
min_unreserved = 10
[topic]
name = "events"
[producer]
rate = 20
[[subscribers]]
name = "quick"
[subscribers.function]
duration = "100ms"
reserved_concurrency = 5
[subscribers.mapping]
batch_size = 1
[[subscribers]]
name = "heavy"
[subscribers.function]
duration = "1s"
[subscribers.mapping]
batch_size = 1
[subscribers.downstream]
concurrency = 8
"""


@pytest.fixture
def topic_file(tmp_path: Path) -> Path:
    path = tmp_path / "fanout.toml"
    path.write_text(TOPIC, encoding="utf-8")
    return path


def test_simulate_a_topic_shows_the_account_and_each_mapping(
    topic_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out_json, out_csv, out_png = tmp_path / "t.json", tmp_path / "t.csv", tmp_path / "t.png"
    code = main(["simulate", str(topic_file), "--set", "subscribers.heavy.mapping.batch_size=2",
                 "--json", str(out_json), "--csv", str(out_csv), "--plot", str(out_png)])
    assert code == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "metric" in line)
    assert [cell.strip() for cell in header.split("┃")][2:5] == ["account", "quick", "heavy"]
    assert "Messages published" in out
    assert "concurrency · account  peak" in out and "concurrency · heavy  peak" in out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert list(data) == ["scenario", "summary", "series", "mappings"]
    assert [m["name"] for m in data["mappings"]] == ["quick", "heavy"]
    assert data["scenario"]["subscribers"][1]["mapping"]["batch_size"] == 2
    assert data["summary"]["messages_sent"] == 2 * data["summary"]["messages_published"]
    rows = list(csv.reader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:2] == ["mapping", "t"]
    assert "unreserved_concurrency" in rows[0] and "limit" in rows[0]
    assert [row[0] for row in rows[1:]] == ["account"] * 6 + ["quick"] * 6 + ["heavy"] * 6
    assert out_png.read_bytes().startswith(PNG_SIGNATURE)


def test_simulate_a_topic_bad_key_is_one_line_naming_it(
    topic_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", str(topic_file), "--set", "subscribers.heavy.mapping.bacth_size=2"]) == 2
    line = _error_line(capsys)
    assert "unknown key subscribers[1].mapping.bacth_size (did you mean batch_size?)" in line
    assert "fanout.toml" in line


def test_the_topic_preset_runs_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "p.csv"
    assert main(["simulate", "--preset", "topic-fanout", "--set", "duration=20s",
                 "--csv", str(out_csv)]) == 0
    assert "reserved/billing" in capsys.readouterr().out
    rows = list(csv.reader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert rows[0][:3] == ["variant", "mapping", "t"]
    assert {(row[0], row[1]) for row in rows[1:]} == {
        (v, m) for v in ("reserved", "unreserved", "fifo")
        for m in ("account", "billing", "analytics", "audit")}


def test_plan_sweeps_a_named_subscriber(
    topic_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert main(["plan", str(topic_file), "--subscriber", "heavy", "--values", "2,10",
                 "--json", str(out)]) == 0
    assert "subscriber heavy (downstream limit 8)" in capsys.readouterr().out
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["subscriber"] == "heavy" and data["downstream_limit"] == 8
    settings = {s["maximum_concurrency"]: s for s in data["settings"]}
    assert settings[2]["peak_concurrency"] == 2 and not settings[2]["keeps_up"]
    assert settings[10]["peak_concurrency"] > 8 and not settings[10]["within_limit"]


@pytest.mark.parametrize("argv, needle", [
    ([], "name the one to sweep with --subscriber (one of quick, heavy)"),
    (["--subscriber", "nope"], "no subscriber 'nope' in the topic scenario (known: quick, heavy)"),
])
def test_plan_of_a_topic_needs_a_subscriber(
    topic_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    assert main(["plan", str(topic_file), *argv]) == 2
    assert needle in _error_line(capsys)


def test_plan_of_a_queue_refuses_a_subscriber(
    need8_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(need8_file), "--subscriber", "x"]) == 2
    assert "only a topic scenario has subscribers" in _error_line(capsys)


# ---------------------------------------------------------------------- an App and its load
JOBS = """
import sluicegate

app = sluicegate.App()
orders = app.queue("orders", visibility_timeout=60)


@app.function(timeout=10, reserved_concurrency=50)
def process(event, context):
    return None


app.map(orders, process, batch_size=1, maximum_concurrency=5)
"""

LOAD = """
name = "orders"
duration = "1m"

[queues.orders]
producers = [{ rate = 20 }]

[functions.process]
duration = { distribution = "lognormal", median = "100ms", p99 = "200ms" }
cold_start = "100ms"
"""

# The same App and load written as one scenario: what the two must simulate alike.
AS_SCENARIO = """
name = "orders"
duration = "1m"
[queue]
name = "orders"
visibility_timeout = 60
[producer]
rate = 20
[function]
name = "process"
timeout = 10
reserved_concurrency = 50
duration = { distribution = "lognormal", median = "100ms", p99 = "200ms" }
cold_start = "100ms"
[mapping]
batch_size = 1
maximum_concurrency = 5
"""


@pytest.fixture
def app_files(tmp_path: Path) -> tuple[Path, Path]:
    jobs, load = tmp_path / "jobs.py", tmp_path / "load.toml"
    jobs.write_text(JOBS, encoding="utf-8")
    load.write_text(LOAD, encoding="utf-8")
    return jobs, load


def test_simulate_an_app_under_a_load_is_the_scenario_written_out(
    app_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, load = app_files
    scenario = tmp_path / "orders.toml"
    scenario.write_text(AS_SCENARIO, encoding="utf-8")
    from_app, from_file = tmp_path / "app.json", tmp_path / "file.json"
    assert main(["simulate", str(jobs), "--load", str(load), "--json", str(from_app)]) == 0
    assert "Peak concurrency" in capsys.readouterr().out
    assert main(["simulate", str(scenario), "--json", str(from_file)]) == 0
    app_result = json.loads(from_app.read_text(encoding="utf-8"))
    assert app_result == json.loads(from_file.read_text(encoding="utf-8"))
    assert app_result["scenario"]["mapping"]["maximum_concurrency"] == 5
    assert app_result["scenario"]["function"]["reserved_concurrency"] == 50
    assert app_result["summary"]["messages_sent"] == 1200


def test_simulate_an_app_set_and_seed_apply_to_the_load(
    app_files: tuple[Path, Path], tmp_path: Path
) -> None:
    jobs, load = app_files
    out = tmp_path / "r.json"
    assert main(["simulate", str(jobs), "--load", str(load), "--set", "duration=30s",
                 "--set", "queues.orders.producers.0.rate=10", "--seed", "9",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["scenario"]["seed"] == 9 and data["scenario"]["duration"] == 30
    assert data["summary"]["messages_sent"] == 300


def test_plan_an_app_under_a_load(
    app_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, load = app_files
    out = tmp_path / "plan.json"
    assert main(["plan", str(jobs), "--load", str(load), "--values", "2,5",
                 "--json", str(out)]) == 0
    assert "maximum_concurrency sweep: orders" in capsys.readouterr().out
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [s["maximum_concurrency"] for s in data["settings"]] == [2, 5]


@pytest.mark.parametrize("load_text, needle", [
    ("duration = = 1\n", "load.toml: invalid TOML"),
    ("[queues.nope]\nbacklog = 1\n", "load.toml: queues.nope: the App has no queue 'nope' "
                                     "(its queues: orders)"),
    ("[functions.nope]\nduration = 1\n", "functions.nope: the App has no function 'nope' "
                                         "(its functions: process)"),
    ("[functions.process]\ntimeout = 5\n", "functions.process.timeout: the App sets"),
    ("[queues.orders]\nbaclog = 1\n", "unknown key queues.orders.baclog (did you mean backlog?)"),
    ("[queue]\nbacklog = 1\n", "[queue] is a scenario's table, not a load's"),
    ("[queues.orders]\ngroups = 4\n", "queues.orders.groups=4 is invalid: allowed only for a "
                                      "FIFO queue"),
    ("[mappings.nope]\npauses = []\n", "mappings.nope: the App has no mapping"),
])
def test_simulate_a_bad_load_is_one_line_naming_the_problem(
    app_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], load_text: str,
    needle: str
) -> None:
    jobs, load = app_files
    load.write_text(load_text, encoding="utf-8")
    assert main(["simulate", str(jobs), "--load", str(load)]) == 2
    assert needle in _error_line(capsys)


def test_simulate_a_missing_load_file_names_it(
    app_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, _ = app_files
    assert main(["simulate", str(jobs), "--load", str(tmp_path / "absent.toml")]) == 2
    line = _error_line(capsys)
    assert "cannot read" in line and "absent.toml" in line


@pytest.mark.parametrize("app_text, needle", [
    ("raise RuntimeError('boom')\n", "importing 'jobs.py' failed: RuntimeError: boom"),
    ("x = (\n", "importing 'jobs.py' failed: SyntaxError"),
    ("import sluicegate\n", "defines no sluicegate.App"),
    ("import sluicegate\napp = sluicegate.App()\n@app.function(timeout=0)\n"
     "def f(event, context):\n    return None\n", "timeout"),
])
def test_simulate_an_app_file_that_does_not_load_is_one_line(
    app_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], app_text: str,
    needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs, load = app_files
    jobs.write_text(app_text, encoding="utf-8")
    monkeypatch.chdir(jobs.parent)
    assert main(["simulate", "jobs.py", "--load", str(load)]) == 2
    assert needle in _error_line(capsys)


def test_simulate_a_missing_app_file_names_it(
    app_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, load = app_files
    assert main(["simulate", str(tmp_path / "absent.py"), "--load", str(load)]) == 2
    assert "absent.py" in _error_line(capsys)


def test_simulate_an_app_needs_a_load(
    app_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, _ = app_files
    assert main(["simulate", str(jobs)]) == 2
    assert "is an App: give --load LOAD.toml" in _error_line(capsys)
    assert main(["plan", str(jobs)]) == 2
    assert "is an App: give --load LOAD.toml" in _error_line(capsys)


def test_simulate_an_app_mixing_queues_and_streams_runs_them_in_one_pool(
    app_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, load = app_files
    jobs.write_text(JOBS + 'app.stream("clicks")\n'
                           "@app.function\ndef count(event, context):\n    return None\n"
                           'app.map("clicks", count)\n', encoding="utf-8")
    load.write_text(LOAD + '[streams.clicks]\nproducers = [{ rate = 100 }]\n',
                    encoding="utf-8")
    out = tmp_path / "mix.json"
    assert main(["simulate", str(jobs), "--load", str(load), "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [(m["name"], m["function"]) for m in data["mappings"]] == [
        ("orders->process", "process"), ("clicks->count", "count")]
    assert data["scenario"]["app"]["mappings"] == ["orders->process", "clicks->count"]
    summaries = [m["summary"] for m in data["mappings"]]
    assert summaries[0]["messages_sent"] == 1200 and summaries[1]["records_sent"] == 6000
    assert data["summary"]["peak_concurrency"] <= sum(s["peak_concurrency"]
                                                      for s in summaries)
    capsys.readouterr()
    assert main(["plan", str(jobs), "--load", str(load)]) == 2
    assert ("name the one to sweep with --mapping (one of orders->process, clicks->count)"
            in _error_line(capsys))
    assert main(["plan", str(jobs), "--load", str(load), "--mapping", "nope"]) == 2
    assert "no mapping 'nope' in the App (known: orders->process, clicks->count)" in (
        _error_line(capsys))
    assert main(["plan", str(jobs), "--load", str(load), "--mapping", "orders",
                 "--subscriber", "x"]) == 2
    assert "only a topic scenario has subscribers" in _error_line(capsys)
    # the queue's mapping, named by its source, swept while the stream's runs as written
    planned = tmp_path / "plan.json"
    assert main(["plan", str(jobs), "--load", str(load), "--mapping", "orders",
                 "--values", "2,20", "--json", str(planned)]) == 0
    out = capsys.readouterr().out
    assert "maximum_concurrency sweep" in out and "mapping orders->process" in out
    result = json.loads(planned.read_text(encoding="utf-8"))
    assert result["mapping"] == "orders->process"
    assert result["parameter"] == "maximum_concurrency"
    two, twenty = result["settings"]
    assert (two["maximum_concurrency"], twenty["maximum_concurrency"]) == (2, 20)
    assert two["peak_concurrency"] <= 2 < twenty["peak_concurrency"] <= 20
    assert two["throughput"] < twenty["throughput"]
    # the stream's, by its name: its parallelization factor
    assert main(["plan", str(jobs), "--load", str(load), "--mapping", "clicks->count",
                 "--values", "1,3", "--json", str(planned)]) == 0
    result = json.loads(planned.read_text(encoding="utf-8"))
    assert result["parameter"] == "parallelization_factor"
    assert [s["parallelization_factor"] for s in result["settings"]] == [1, 3]
    assert main(["plan", str(jobs), "--load", str(load), "--mapping", "clicks",
                 "--values", "11"]) == 2
    assert "mapping clicks->count: " in _error_line(capsys)


def test_simulate_an_app_reading_a_queue_twice_is_refused_in_one_line(
    app_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, load = app_files
    jobs.write_text(JOBS + "@app.function\ndef audit(event, context):\n    return None\n"
                           "app.map(orders, audit)\n", encoding="utf-8")
    assert main(["simulate", str(jobs), "--load", str(load)]) == 2
    assert ("'orders' is read by two mappings (orders->process, orders->audit)"
            in _error_line(capsys))


def test_simulate_an_app_with_a_topic_runs_each_subscriber(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str]
) -> None:
    jobs, load, out = tmp_path / "fan.py", tmp_path / "fan.toml", tmp_path / "fan.json"
    jobs.write_text("""
import sluicegate

app = sluicegate.App()
billing, audit = app.queue("billing"), app.queue("audit")
app.topic("events", subscribers=[billing, audit])


@app.function(reserved_concurrency=20)
def bill(event, context):
    return None


@app.function
def record(event, context):
    return None


app.map(billing, bill)
app.map(audit, record, maximum_concurrency=5)
""", encoding="utf-8")
    load.write_text("""
duration = "30s"
[topics.events]
producers = [{ rate = 50 }]
[functions.bill]
duration = "150ms"
""", encoding="utf-8")
    assert main(["simulate", str(jobs), "--load", str(load), "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [m["name"] for m in data["mappings"]] == ["billing", "audit"]
    assert data["summary"]["messages_published"] == 1500
    assert data["summary"]["messages_sent"] == 3000
