"""Controller rules (``app.control``): their definition and checks, and the controller
that runs them on explicit clocks: schedules, health checks, store keys, callables of
signals, one leader per App, compare-and-set writes with the rule's name in the history."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import sluicegate
from sluicegate.control import Signals, health_check, schedule, store_key
from sluicegate.errors import ConfigError
from sluicegate.runtime.controller import Controller
from sluicegate.store import MemoryStore
from sluicegate.testing import VirtualClock

NINE = 1_796_634_000.0
"""2026-12-07 09:00 UTC."""


def _app() -> sluicegate.App:
    app = sluicegate.App(name="shop")
    orders = app.queue("orders")
    app.queue("other")

    @app.function(reserved_concurrency=20)
    def process(event: object, context: object) -> None: ...

    app.map(orders, process, maximum_concurrency=10)
    app.map("other", process)
    return app


def test_rules_resolve_their_targets_and_are_named() -> None:
    app = _app()
    (by_queue,) = app.control("orders", maximum_concurrency=schedule({"09:00-17:00": 50},
                                                                      default=10))
    assert (by_queue.name, by_queue.kind, by_queue.target) == (
        "orders->process:maximum_concurrency", "mapping", "orders->process")
    (fn,) = app.control("orders", reserved_concurrency=5, name="reserve")
    assert (fn.name, fn.kind, fn.target) == ("reserve", "function", "process")
    both = app.control("other->process", name="ops", enabled=True, every=5)
    assert [(r.name, r.every) for r in both] == [("ops", 5.0)]
    (breaker,) = app.control("db", state=health_check("http://127.0.0.1:1/health"))
    assert breaker.source.healthy == "closed" and breaker.source.unhealthy == "open"


@pytest.mark.parametrize(("call", "match"), [
    (lambda a: a.control("orders"), "at least one live setting"),
    (lambda a: a.control("orders", batch_size=5), "a live setting"),
    (lambda a: a.control("nowhere", maximum_concurrency=5), "a mapping"),
    (lambda a: a.control("orders", maximum_concurrency=1), "2-1,000"),
    (lambda a: a.control("orders", maximum_concurrency=schedule({"09:00-17:00": 5000})),
     "5000"),
    (lambda a: a.control("orders", maximum_concurrency=health_check("http://x/h")),
     "healthy=N"),
    (lambda a: a.control("orders", enabled=True, every=0), "seconds > 0"),
    (lambda a: health_check("ftp://x"), "http"),
])
def test_bad_rules_are_refused_at_definition(call: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        call(_app())
    assert "\n" not in str(info.value)


def test_two_rules_for_one_setting_are_refused() -> None:
    app = _app()
    app.control("orders", maximum_concurrency=20)
    with pytest.raises(ConfigError, match="one rule per setting"):
        app.control("orders->process", maximum_concurrency=30)


def _controller(app: sluicegate.App, store: MemoryStore, clock: VirtualClock,
                holder: str = "a") -> Controller:
    return Controller(app, store, holder=holder, ttl=10, clock=clock,
                      monotonic=clock)


def test_a_schedule_writes_when_its_value_changes_and_only_then() -> None:
    app = _app()
    app.control("orders", maximum_concurrency=schedule({"09:00-17:00": 50}, default=10),
                name="office-hours")
    clock = VirtualClock(NINE - 60)

    async def main() -> None:
        async with MemoryStore(clock=clock) as store:
            controller = _controller(app, store, clock)
            await controller._renew()
            assert controller.leading
            assert await controller.step() == 1  # 10 before nine
            clock.advance(1)
            assert await controller.step() == 0  # unchanged: no write
            clock.advance(60)
            await controller._renew()  # as its loop does, every ttl / 4 at most
            assert await controller.step() == 1  # 50 from nine
            history = await store.settings_history()
            assert [(h.by, h.old, h.new) for h in history] == [
                ("controller:office-hours", {"maximum_concurrency": None},
                 {"maximum_concurrency": 10}),
                ("controller:office-hours", {"maximum_concurrency": 10},
                 {"maximum_concurrency": 50})]
            assert history[0].why == "schedule: 50 09:00-17:00, 10 otherwise"

    asyncio.run(main())


def test_only_the_lease_holder_runs_the_rules_and_another_takes_over() -> None:
    app = _app()
    app.control("orders", enabled=False)
    clock = VirtualClock(NINE)

    async def main() -> None:
        async with MemoryStore(clock=clock) as store:
            a = _controller(app, store, clock, "a")
            b = _controller(app, store, clock, "b")
            await a._renew()
            await b._renew()
            assert (a.leading, b.leading) == (True, False)
            # a stops renewing (killed): b takes over once the store expires a's claim
            clock.advance(9)
            await b._renew()
            assert not b.leading
            clock.advance(1.5)
            await b._renew()
            assert b.leading
            assert await b.step() == 1
            # and a, back, finds its lease gone: it stopped before the store expired it
            assert a.lease.share() == 0
            await a._renew()
            assert not a.leading
            (change,) = await store.settings_history()
            assert change.by == "controller:orders->process:enabled"

    asyncio.run(main())


@pytest.fixture
def health() -> Iterator[dict[str, Any]]:
    """A tiny HTTP server whose /health answers ``state["code"]``."""
    state: dict[str, Any] = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["code"])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()
    server.server_close()


def test_a_health_check_trips_and_resets_a_breaker_and_sets_a_number(
    health: dict[str, Any]
) -> None:
    app = _app()
    app.control("db", state=health_check(health["url"]))
    app.control("orders", maximum_concurrency=health_check(health["url"], healthy=40,
                                                           unhealthy=2))
    clock = VirtualClock(NINE)

    async def main() -> None:
        async with MemoryStore(clock=clock) as store:
            controller = _controller(app, store, clock)
            await controller._renew()
            assert await controller.step() == 2
            assert (await store.get_settings("breaker:db")).values["state"] == "closed"
            health["code"] = 503
            clock.advance(1)
            assert await controller.step() == 2
            db = await store.get_settings("breaker:db")
            assert db.values == {"state": "open", "reason": f"health of {health['url']}"}
            orders = await store.get_settings("mapping:orders->process")
            assert orders.values == {"maximum_concurrency": 2}

    asyncio.run(main())


def test_a_store_key_and_a_callable_of_signals() -> None:
    app = _app()
    app.control("orders", maximum_concurrency=store_key("ops:cap"))
    seen: list[Signals] = []

    async def by_backlog(s: Signals) -> int:
        seen.append(s)
        return 5 if s.queue.visible > 3 else 20

    app.control("other", maximum_concurrency=by_backlog, name="backlog")
    clock = VirtualClock(NINE)

    async def main() -> None:
        async with MemoryStore(clock=clock) as store:
            for q in app.queues.values():
                await store.ensure_queue(q)
            controller = _controller(app, store, clock)
            await controller._renew()
            assert await controller.step() == 1  # no key yet: only the callable writes
            assert (await store.get_settings("mapping:other->process")).values == {
                "maximum_concurrency": 20}
            await store.write_shared("ops:cap", "33")
            for i in range(4):
                await store.send("other", str(i))
            clock.advance(1)
            assert await controller.step() == 2
            assert (await store.get_settings("mapping:orders->process")).values == {
                "maximum_concurrency": 33}
            assert (await store.get_settings("mapping:other->process")).values == {
                "maximum_concurrency": 5}
            last = seen[-1]
            assert (last.target, last.setting, last.current, last.configured) == (
                "other->process", "maximum_concurrency", 20, None)
            assert last.in_flight == 0
            # a value out of range is not written (logged once)
            await store.write_shared("ops:cap", "1")
            clock.advance(1)
            assert await controller.step() == 0
            assert (await store.get_settings("mapping:orders->process")).values == {
                "maximum_concurrency": 33}

    asyncio.run(main())


def test_a_controller_inside_a_runtime_applies_its_rule() -> None:
    from sluicegate.runtime.driver import Runtime

    app = sluicegate.App(name="inside")
    app.queue("q")

    @app.function()
    async def f(event: object, context: object) -> None: ...

    app.map("q", f, scaling="fixed", maximum_concurrency=10)
    app.control("q", maximum_concurrency=3)

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(app, store)
            task = asyncio.create_task(runtime.run())
            loop = asyncio.get_running_loop()
            started = loop.time()
            while not runtime.runners or runtime.runners[0].core.concurrency_limit.value(
                    store.clock()) != 3:
                assert loop.time() - started < 3
                await asyncio.sleep(0.01)
            runtime.stop()
            await asyncio.wait_for(task, 10)
            assert runtime.controller is not None and runtime.controller.writes == 1
            assert not (await store.lease_holders("controller:inside"))  # given back

    asyncio.run(main())
