"""Asynchronous invocations and synchronous requests in the simulator: a function's
internal queue is one more lane of the event loop, run by the core's
AsyncEventMapping under AWS's rules (retries after 1 and 2 minutes, maximum event age,
reserved concurrency as the cap, a reservation of 0), sharing the account's pool with
mappings and with requests, which take a slot or are throttled."""

from __future__ import annotations

from typing import Any

import pytest

import sluicegate
from sluicegate.cli import main
from sluicegate.core.types import BatchOutcome
from sluicegate.sim import ScenarioError, simulate
from sluicegate.sim.app_scenario import load_app_scenario
from sluicegate.sim.plan import plan, reservation_values
from sluicegate.sim.presets import PRESETS, run_preset
from sluicegate.sim.presets_async import ASYNC_PRESET, MAX_EVENT_AGE, thread_pool_rows
from sluicegate.sim.report import print_report, write_csv
from sluicegate.sim.world import World


def _noop(event: Any, context: Any) -> None:
    return None


def _app(*, reserved: int | None = None, retries: int = 2, max_age: int = 21_600,
         account: int = 1000, scale: float = 1.0) -> sluicegate.App:
    app = sluicegate.App(account_concurrency=account, async_time_scale=scale)
    app.function(name="worker", timeout=10, reserved_concurrency=reserved,
                 maximum_retry_attempts=retries, maximum_event_age=max_age)(_noop)
    return app


def _world(app: sluicegate.App, load: str) -> World:
    run = load_app_scenario(app, load)
    assert isinstance(run, World)
    return run


def _lane(result: dict[str, Any], name: str = "async:worker") -> dict[str, Any]:
    for mapping in result["mappings"]:
        if mapping["name"] == name:
            return mapping
    raise LookupError(name)


def _accounted(summary: dict[str, Any]) -> None:
    """Every accepted event is succeeded, dropped or still queued."""
    assert summary["events_sent"] == (summary["events_succeeded"] + summary["events_dropped"]
                                      + summary["events_queued"])


class _Watch:
    """Records every invocation's start and end."""

    def __init__(self) -> None:
        self.started: list[float] = []
        self.ended: list[float] = []
        self.running = 0
        self.peak = 0

    def invoked(self, now: float, batch: Any) -> None:
        self.started.append(now)
        self.running += 1
        self.peak = max(self.peak, self.running)

    def finished(self, now: float, batch: Any, outcome: BatchOutcome) -> None:
        self.ended.append(now)
        self.running -= 1


ONE_FAILING_EVENT = """
duration = "5m"
[functions.worker]
duration = "100ms"
errors = [{ rate = 1.0 }]
events = [{ kind = "burst", size = 1, start = "1s", stop = "1s" }]
"""


# ---------------------------------------------------------------------- AWS's rules


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_a_failed_event_is_retried_after_one_then_two_minutes(scale: float) -> None:
    watch = _Watch()
    result = simulate(_world(_app(scale=scale), ONE_FAILING_EVENT), observer=watch).to_dict()
    assert len(watch.started) == 3
    # the waits, from an attempt's end to the next attempt, on virtual time
    assert watch.started[1] - watch.ended[0] == pytest.approx(60.0 * scale)
    assert watch.started[2] - watch.ended[1] == pytest.approx(120.0 * scale)
    summary = _lane(result)["summary"]
    assert (summary["total_invocations"], summary["total_errors"]) == (3, 3)
    assert summary["events_retried"] == 2
    assert summary["events_dropped_retries_exhausted"] == 1
    assert summary["events_succeeded"] == 0
    _accounted(summary)


def test_maximum_retry_attempts_zero_fails_at_the_first_error() -> None:
    watch = _Watch()
    result = simulate(_world(_app(retries=0), ONE_FAILING_EVENT), observer=watch).to_dict()
    assert len(watch.started) == 1
    summary = _lane(result)["summary"]
    assert (summary["events_retried"], summary["events_dropped_retries_exhausted"]) == (0, 1)


def test_events_older_than_maximum_event_age_are_dropped_untried() -> None:
    # one at a time, a second each: of 100 events accepted at t=0, those not started
    # within 60 s are dropped when their turn comes, without running
    load = """
    duration = "3m"
    [functions.worker]
    duration = "1s"
    events = [{ kind = "burst", size = 100, start = 0, stop = 0 }]
    """
    watch = _Watch()
    result = simulate(_world(_app(reserved=1, max_age=60), load), observer=watch).to_dict()
    summary = _lane(result)["summary"]
    assert 55 <= summary["events_succeeded"] <= 62
    assert summary["events_dropped_event_age_exceeded"] == 100 - summary["events_succeeded"]
    assert summary["total_invocations"] == summary["events_succeeded"] == len(watch.started)
    assert all(t <= 61.0 for t in watch.started)
    assert summary["max_oldest_age"] <= 61.0
    _accounted(summary)


def test_reserved_concurrency_caps_the_events_concurrency() -> None:
    load = """
    duration = "1m"
    [functions.worker]
    duration = "200ms"
    events = [{ rate = 500 }]
    """
    watch = _Watch()
    result = simulate(_world(_app(reserved=20), load), observer=watch).to_dict()
    lane = _lane(result)
    assert watch.peak == 20
    assert lane["summary"]["peak_concurrency"] == 20
    assert max(b["limit"] for b in lane["series"]) == 20
    # 20 at once for 200 ms: 100 events/s of the 500/s, the rest waits
    assert lane["summary"]["events_succeeded"] == pytest.approx(100 * 60, rel=0.03)
    assert lane["series"][-1]["visible"] > 20_000
    assert lane["series"][-1]["oldest_age"] > 40.0
    _accounted(lane["summary"])


def test_a_reservation_of_zero_drops_every_event_untried() -> None:
    load = """
    duration = "30s"
    [functions.worker]
    events = [{ rate = 10 }]
    """
    result = simulate(_world(_app(reserved=0), load)).to_dict()
    summary = _lane(result)["summary"]
    assert summary["events_sent"] == 300
    assert summary["events_dropped_zero_reserved_concurrency"] == 300
    assert (summary["total_invocations"], summary["total_cold_starts"]) == (0, 0)
    _accounted(summary)


def test_the_invariant_holds_with_events_still_queued_and_retrying() -> None:
    load = """
    duration = "90s"
    [functions.worker]
    duration = "300ms"
    errors = [{ rate = 0.3 }]
    events = [{ kind = "poisson", rate = 80 }]
    """
    result = simulate(_world(_app(reserved=10), load)).to_dict()
    summary = _lane(result)["summary"]
    assert summary["events_queued"] > 0 and summary["events_retried"] > 0
    _accounted(summary)
    series = _lane(result)["series"]
    assert sum(b["sent"] for b in series) == summary["events_sent"]
    assert summary["events_received"] <= summary["events_sent"]


def test_destinations_and_the_dead_letter_queue_are_counted() -> None:
    app = sluicegate.App(async_time_scale=0.01)
    app.queue("ok")
    app.queue("dlq")
    app.function(name="worker", timeout=10, maximum_retry_attempts=0, on_success="queue:ok",
                 on_failure="queue:dlq", dead_letter="queue:dlq")(_noop)
    load = """
    duration = "1m"
    [functions.worker]
    errors = [{ rate = 0.5 }]
    events = [{ rate = 20 }]
    """
    summary = _lane(simulate(_world(app, load)).to_dict())["summary"]
    assert summary["on_success_records"] == summary["events_succeeded"] > 0
    assert summary["on_failure_records"] == summary["dead_lettered"] == (
        summary["events_dropped"]) > 0


# ---------------------------------------------------------------------- ways in


def test_a_bus_rule_a_topic_and_direct_events_reach_the_internal_queue() -> None:
    app = sluicegate.App()
    app.queue("audit")
    app.function(name="worker")(_noop)
    app.function(name="auditor")(_noop)
    app.map("audit", "auditor")
    bus = app.event_bus("orders")
    other = app.event_bus("relay")
    app.topic("news", subscribers=["audit", "function:worker"])
    app.rule(bus, {"source": ["shop"]}, targets=["function:worker", "bus:relay"])
    app.rule(other, {"source": ["shop"]}, targets=["topic:news"])
    load = """
    duration = "20s"
    [buses.orders]
    producers = [{ rate = 10 }]
    [topics.news]
    producers = [{ rate = 5 }]
    [functions.worker]
    events = [{ rate = 2 }]
    """
    result = simulate(_world(app, load)).to_dict()
    worker = _lane(result)["summary"]
    # per second: 10 put on the bus (each to worker, and through relay to the topic),
    # 5 published to the topic, 2 invoked directly
    assert worker["events_sent"] == 20 * (10 + 10 + 5 + 2)
    assert _lane(result, "audit->auditor")["summary"]["messages_sent"] == 20 * (10 + 5)
    assert result["summary"]["events_put"] == 200
    assert result["series"][0]["put"] == 100


def test_every_rule_of_a_bus_is_taken_to_match() -> None:
    app = sluicegate.App()
    app.function(name="worker")(_noop)
    bus = app.event_bus("orders")
    app.rule(bus, {"source": ["shop"]}, targets=["function:worker"])
    app.rule(bus, {"source": ["never-sent"]}, targets=["function:worker"])
    load = """
    duration = "10s"
    [buses.orders]
    producers = [{ rate = 3 }]
    """
    assert _lane(simulate(_world(app, load)).to_dict())["summary"]["events_sent"] == 60


# ---------------------------------------------------------------------- requests


def test_requests_take_a_slot_of_the_pool_or_are_throttled() -> None:
    app = sluicegate.App(account_concurrency=120)
    app.function(name="api", timeout=10)(_noop)
    app.function(name="worker", timeout=10, reserved_concurrency=20)(_noop)
    load = """
    duration = "1m"
    [functions.api]
    duration = "1s"
    requests = [{ rate = 150 }]
    """
    result = simulate(_world(app, load)).to_dict()
    (api,) = result["requests"]
    summary = api["summary"]
    assert api["name"] == "requests:api"
    # 150/s of 1 s need 150 at once: the unreserved 100 (worker's 20 are its own even
    # while it idles) run, the rest is throttled, never retried
    assert summary["peak_concurrency"] == 100
    assert summary["total_requests"] == 150 * 60
    assert summary["total_requests"] == summary["total_invocations"] + summary["total_throttles"]
    assert summary["total_throttles"] > 2000
    assert result["summary"]["peak_unreserved_concurrency"] == 100
    assert sum(b["requests"] for b in api["series"]) == summary["total_requests"]


def test_requests_and_a_mapping_share_the_pool() -> None:
    app = sluicegate.App(account_concurrency=100)
    app.queue("jobs")
    app.function(name="api", timeout=10)(_noop)
    app.function(name="job", timeout=10)(_noop)
    app.map("jobs", "job", batch_size=1, maximum_concurrency=30, scaling="fixed")
    load = """
    duration = "1m"
    [queues.jobs]
    producers = [{ rate = 300 }]
    [functions.job]
    duration = "100ms"
    [functions.api]
    duration = "1s"
    requests = [{ rate = 70 }]
    """
    result = simulate(_world(app, load)).to_dict()
    assert result["summary"]["peak_concurrency"] == 100
    assert result["requests"][0]["summary"]["total_throttles"] > 0
    quiet = simulate(_world(app, load.replace("rate = 300", "rate = 1"))).to_dict()
    assert quiet["requests"][0]["summary"]["total_throttles"] == 0


# ---------------------------------------------------------------------- the preset


SHORT = ("duration=5m", "buses.orders.producers.0.stop=30s")


@pytest.fixture(scope="module")
def preset() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in run_preset(ASYNC_PRESET.name, SHORT)["variants"]}


def test_the_preset_is_registered_with_its_variants() -> None:
    assert PRESETS["reserved-as-thread-pool"] is ASYNC_PRESET
    assert [v for v, _ in ASYNC_PRESET.variants()] == ["reserved", "reserved-keep",
                                                        "queue-max-20", "unreserved"]
    for _, world in ASYNC_PRESET.variants(["seed=4", "duration=1m"]):
        assert isinstance(world, World)
        assert (world.seed, world.duration) == (4, 60.0)


def test_the_reservation_costs_the_api_throttles(preset: dict[str, dict[str, Any]]) -> None:
    def api(name: str) -> dict[str, Any]:
        return preset[name]["requests"][0]["summary"]

    assert api("reserved")["total_throttles"] > 1.5 * api("queue-max-20")["total_throttles"]
    assert api("reserved-keep")["total_throttles"] > 1.5 * api("queue-max-20")[
        "total_throttles"]
    assert api("reserved")["peak_concurrency"] == 100
    assert api("queue-max-20")["peak_concurrency"] == 120
    # once the events are done, the reservation still holds its 20 from the API
    rows = {r["variant"]: r for r in thread_pool_rows(
        {"variants": list(preset.values())}, quiet_from=180.0, burst_until=30.0)}
    assert rows["reserved"]["api_throttles_quiet"] > 3 * rows["queue-max-20"][
        "api_throttles_quiet"]
    # and without a reservation, the burst takes the pool from the API
    assert rows["unreserved"]["worker_peak"] > 60
    assert rows["unreserved"]["api_throttles_burst"] > 3 * rows["reserved"][
        "api_throttles_burst"]


def test_the_reservation_bounds_events_and_maximum_event_age_drops_them(
        preset: dict[str, dict[str, Any]]) -> None:
    reserved = _lane(preset["reserved"])["summary"]
    keep = _lane(preset["reserved-keep"])["summary"]
    queue = _lane(preset["queue-max-20"], "orders-queue->worker")["summary"]
    for summary in (reserved, keep):
        assert summary["peak_concurrency"] == 20
        _accounted(summary)
    assert queue["peak_concurrency"] == 20
    assert reserved["events_dropped_event_age_exceeded"] > 0
    assert reserved["max_oldest_age"] <= MAX_EVENT_AGE + 1
    assert keep["events_dropped"] == 0 and keep["events_succeeded"] == keep["events_sent"]
    assert queue["messages_processed"] == queue["messages_sent"]
    assert keep["max_oldest_age"] > 1.3 * reserved["max_oldest_age"]
    assert queue["max_oldest_age"] > 1.3 * reserved["max_oldest_age"]


@pytest.mark.slow
def test_the_preset_figures_in_the_docs() -> None:
    """docs/scenarios.md's table of the full preset (seed 1)."""
    rows = {r["variant"]: r for r in thread_pool_rows(run_preset(ASYNC_PRESET.name))}
    figures = {name: (r["done"], r["dropped"], round(r["max_age"]), r["worker_peak"],
                      r["worker_busy_until"], r["api_throttles"], r["api_peak"],
                      r["api_throttles_quiet"], r["api_throttles_burst"])
               for name, r in rows.items()}
    assert figures == {
        "reserved": (20_980, 39_020, 90, 20, 210.0, 39_999, 100, 13_128, 5_361),
        "reserved-keep": (60_000, 0, 480, 20, 610.0, 39_999, 100, 13_128, 5_361),
        "queue-max-20": (60_000, 0, 480, 20, 610.0, 28_694, 120, 1_854, 5_330),
        "unreserved": (60_000, 0, 98, 112, 170.0, 45_423, 120, 1_809, 40_397),
    }
    assert {r["api_requests"] for r in rows.values()} == {377_939}


# ---------------------------------------------------------------------- plan


def test_plan_finds_the_reservation_that_keeps_the_event_age_under_a_target() -> None:
    load = """
    duration = "2m"
    [functions.worker]
    duration = "200ms"
    events = [{ rate = 50 }]
    """
    world = _world(_app(reserved=2), load)
    result = plan(world, mapping="async:worker", values=[2, 5, 20], max_age=20)
    assert result.parameter == "reserved_concurrency"
    assert result.recommendation == 20
    by_value = {s.value: s for s in result.settings}
    assert not by_value[5].keeps_up and not by_value[5].within_age
    assert by_value[20].oldest_age_p99 <= 20
    plain = result.to_dict()
    assert plain["max_age"] == 20 and plain["settings"][0]["dropped"] == 0
    assert "within_age" in plain["settings"][0]


def test_plan_does_not_recommend_a_reservation_that_drops_events() -> None:
    load = """
    duration = "3m"
    [functions.worker]
    duration = "200ms"
    events = [{ rate = 50 }]
    """
    world = _world(_app(reserved=2, max_age=60), load)
    result = plan(world, mapping="async:worker", values=[5, 20])
    assert result.settings[0].dropped > 0
    assert result.recommendation == 20
    assert reservation_values(world, "worker") == [1, 2, 5, 10, 20, 50, 100, 200, 500, 900]


# ---------------------------------------------------------------------- load errors


def _bus_app() -> sluicegate.App:
    app = sluicegate.App()
    app.queue("unread")
    app.queue("jobs.fifo")
    app.function(name="worker")(_noop)
    app.map("jobs.fifo", "worker")
    app.event_bus("to-fifo")
    app.rule("to-fifo", {"source": ["a"]}, targets=["queue:jobs.fifo"])
    app.event_bus("orders")
    app.event_bus("empty")
    app.event_bus("to-queue")
    app.event_bus("ping")
    app.event_bus("pong")
    app.rule("orders", {"source": ["a"]}, targets=["function:worker"])
    app.rule("to-queue", {"source": ["a"]}, targets=["queue:unread"])
    app.rule("ping", {"source": ["a"]}, targets=["bus:pong"])
    app.rule("pong", {"source": ["a"]}, targets=["bus:ping"])
    return app


@pytest.mark.parametrize(("load", "message"), [
    ("[buses.nope]\nproducers = [{ rate = 1 }]\n",
     "buses.nope: the App has no event bus 'nope' (its buses: to-fifo, orders, empty, "
     "to-queue, ping, pong)"),
    ("[buses.to-fifo]\nproducers = [{ rate = 1 }]\n",
     "buses.to-fifo: a rule delivers to FIFO queue 'jobs.fifo', which refuses events"),
    ("[buses.empty]\nproducers = [{ rate = 1 }]\n",
     "buses.empty: no rule of event bus 'empty' has an event pattern and a target"),
    ("[buses.to-queue]\nproducers = [{ rate = 1 }]\n",
     "buses.to-queue: a rule delivers to queue 'unread', which no mapping of the App reads"),
    ("[buses.ping]\nproducers = [{ rate = 1 }]\n",
     "buses.ping: the rules of event bus 'pong' lead back to 'ping' (ping -> pong -> ping)"),
    ("[buses.orders]\nproducers = [{ rate = 0 }]\n",
     "buses.orders.producers[0].rate=0 is invalid"),
    ("[functions.worker]\nevents = [{ rate = 1, rat = 1 }]\n",
     "unknown key functions.worker.events[0].rat (did you mean"),
    ("[functions.worker]\nrequests = [{ rate = -1 }]\n",
     "functions.worker.requests[0].rate=-1 is invalid"),
    ("[functions.worker]\nrequets = [{ rate = 1 }]\n",
     "unknown key functions.worker.requets (did you mean requests?)"),
])
def test_bad_load_keys_give_one_line_errors(load: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_app_scenario(_bus_app(), load)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_cli_reports_a_bad_bus_in_one_line(tmp_path: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "jobs.py"
    app.write_text("import sluicegate\napp = sluicegate.App()\n"
                   "app.function(name='worker')(lambda e, c: None)\n")
    load = tmp_path / "load.toml"
    load.write_text("[buses.orders]\nproducers = [{ rate = 1 }]\n")
    assert main(["simulate", str(app), "--load", str(load)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "buses.orders: the App has no event bus 'orders' (it has no buses)" in err[0]


# ---------------------------------------------------------------------- outputs


def test_the_report_shows_async_lanes_and_requests(tmp_path: Any) -> None:
    app = _app(reserved=5, account=200)
    app.function(name="api")(_noop)
    load = """
    duration = "20s"
    [functions.worker]
    events = [{ rate = 10 }]
    [functions.api]
    requests = [{ rate = 10 }]
    """
    world = _world(app, load)
    result = simulate(world).to_dict()
    assert result == simulate(world).to_dict()  # deterministic
    print_report(result, width=60)
    text = write_csv(tmp_path / "out.csv", result).read_text()
    header = text.splitlines()[0].split(",")
    assert header[:2] == ["mapping", "t"]
    assert "events_put" not in result["summary"]
    assert {line.split(",")[0] for line in text.splitlines()[1:]} == {
        "account", "async:worker", "requests:api"}


def test_the_preset_runs_from_the_cli_with_a_seed(tmp_path: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.json"
    assert main(["simulate", "--preset", "reserved-as-thread-pool", "--set", "duration=20s",
                 "--seed", "5", "--json", str(out)]) == 0
    assert '"seed": 5' in out.read_text()
