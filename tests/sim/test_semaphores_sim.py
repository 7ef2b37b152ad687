"""An App's semaphores in the simulator: mappings naming one never run more than its
limit together, each gets its turn, and a semaphore that never binds changes nothing."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

import sluicegate
from sluicegate.sim import simulate
from sluicegate.sim.app_scenario import app_scenario
from sluicegate.sim.load import load_load
from sluicegate.sim.world import World


def _noop(event: object, context: object) -> None:
    return None


def two_queues(limit: int | None, *, maximum_concurrency: int = 5,
               stream: bool = False) -> sluicegate.App:
    """Two queues (and a stream) whose mappings each run up to ``maximum_concurrency``
    at once; with ``limit``, all of them take a slot of semaphore ``db``."""
    app = sluicegate.App()
    names: tuple[str, ...] = ()
    if limit is not None:
        app.semaphore("db", limit=limit)
        names = ("db",)
    for name in ("orders", "refunds"):
        app.queue(f"{name}-dlq")
        app.queue(name, visibility_timeout=30, dead_letter_queue=f"{name}-dlq",
                  max_receive_count=2)
        app.function(name=f"handle-{name}", timeout=10)(_noop)
        app.map(name, f"handle-{name}", batch_size=1, scaling="fixed",
                maximum_concurrency=maximum_concurrency, semaphores=names)
    if stream:
        app.stream("clicks", shard_count=2)
        app.function(name="handle-clicks", timeout=10)(_noop)
        app.map("clicks", "handle-clicks", batch_size=10, parallelization_factor=2,
                semaphores=names)
    return app


LOAD = """
seed = 11
duration = "60s"
bucket = "5s"
[queues.orders]
producers = [{ kind = "poisson", rate = 50 }]
[queues.refunds]
producers = [{ kind = "poisson", rate = 50 }]
[functions.handle-orders]
duration = "100ms"
errors = [{ start = "20s", stop = "30s", rate = 0.3 }]
[functions.handle-refunds]
duration = { distribution = "lognormal", median = "100ms", p99 = "300ms" }
"""

STREAM_LOAD = LOAD + """
[streams.clicks]
producers = [{ kind = "poisson", rate = 200 }]
[functions.handle-clicks]
duration = "50ms"
"""


def run(app: sluicegate.App, load: str = LOAD) -> dict[str, Any]:
    world = app_scenario(app, load_load(load))
    assert isinstance(world, World)
    return simulate(world).to_dict()


def assert_conserved(summary: dict[str, Any]) -> None:
    assert summary["messages_sent"] == (
        summary["messages_processed"] + summary["messages_queued"]
        + summary["messages_dead_lettered"])


def test_without_the_semaphore_the_load_runs_ten_at_once() -> None:
    result = run(two_queues(None))
    assert max(e["concurrency"] for e in result["series"]) == 10


@pytest.mark.parametrize("limit", [1, 3])
def test_mappings_sharing_a_semaphore_never_run_more_than_its_limit_together(
        limit: int) -> None:
    result = run(two_queues(limit))
    # the account's series: the peak of both mappings' invocations together, per bucket
    peaks = [e["concurrency"] for e in result["series"]]
    assert max(peaks) == limit
    orders, refunds = result["mappings"]
    for mapping in (orders, refunds):
        assert max(e["concurrency"] for e in mapping["series"]) <= limit
        assert mapping["summary"]["messages_processed"] > 0
        assert_conserved(mapping["summary"])
    # neither keeps the semaphore to itself: their shares are within 20% of each other
    done = [m["summary"]["total_invocations"] for m in (orders, refunds)]
    assert min(done) >= 0.8 * max(done)
    # 10 at once wanted, `limit` given: work is left in the queues
    assert orders["summary"]["messages_queued"] > 0


def test_a_stream_mapping_shares_the_semaphore_too() -> None:
    result = run(two_queues(3, stream=True), STREAM_LOAD)
    assert max(e["concurrency"] for e in result["series"]) == 3
    kinds = {m["name"]: m for m in result["mappings"]}
    assert kinds["clicks->handle-clicks"]["summary"]["total_invocations"] > 0
    for name in ("orders->handle-orders", "refunds->handle-refunds"):
        assert kinds[name]["summary"]["total_invocations"] > 0
        assert_conserved(kinds[name]["summary"])


def test_the_limit_series_shows_the_semaphores_share() -> None:
    # a semaphore of 1 shared by two: each mapping's limit is 0 or 1, never its 5
    result = run(two_queues(1))
    for mapping in result["mappings"]:
        assert {e["limit"] for e in mapping["series"]} <= {0, 1}


@pytest.mark.parametrize("limit", [10, 11, 1000])
def test_a_semaphore_that_never_binds_changes_nothing(limit: int) -> None:
    without = json.dumps(run(two_queues(None)))
    assert json.dumps(run(two_queues(limit))) == without


def test_a_one_mapping_app_with_a_semaphore_is_simulated_as_a_world() -> None:
    app = sluicegate.App()
    app.semaphore("db", limit=2)
    app.queue("orders", visibility_timeout=30)
    app.function(name="handle", timeout=10)(_noop)
    app.map("orders", "handle", batch_size=1, semaphores=("db",))
    world = app_scenario(app, load_load(
        '[queues.orders]\nbacklog = 500\n[functions.handle]\nduration = "100ms"\n'))
    assert isinstance(world, World)
    assert set(world.semaphores) == {"db"}
    result = simulate(world).to_dict()
    assert max(e["concurrency"] for e in result["series"]) == 2


def test_a_run_with_semaphores_leaves_no_reference_cycles() -> None:
    world = app_scenario(two_queues(3), load_load(LOAD))
    gc.collect()
    simulate(world)
    assert gc.collect() == 0
