"""Reserved concurrency as a thread pool for asynchronous events: preset
``reserved-as-thread-pool`` (issue 14, section 3).

A function invoked asynchronously (here by an event bus rule) runs its events from its
internal queue under its reserved concurrency: a reservation of 20 makes it a pool of 20
workers, whatever the burst. What that costs is the preset's question, on a small
account (:data:`ACCOUNT` concurrent executions) shared with an API-like function
invoked synchronously:

- ``reserved``: an event bus at :data:`BUS_RATE` events/s for :data:`BUS_FOR` into
  ``worker`` (reserved concurrency :data:`RESERVED`, :data:`HANDLER` handlers: it runs
  :data:`RESERVED` / 0.2 s = 100 events/s), ``maximum_event_age``
  :data:`MAX_EVENT_AGE` s: the internal queue's backlog and the events' age grow, and
  events older than the limit are dropped (``EventAgeExceeded``). The reservation is
  carved out of the account for the whole run, used or not: the API keeps
  ``ACCOUNT - RESERVED`` slots even while ``worker`` idles, and is throttled above that.
- ``reserved-keep``: the same with AWS's default ``maximum_event_age`` (6 hours):
  nothing is dropped, every event runs, the last ones after minutes of waiting.
- ``queue-max-20``: the same load through a queue (the bus's rule targets it) read by a
  mapping with ``maximum_concurrency`` :data:`RESERVED`, ``worker`` without a
  reservation: the same 20 at most while the queue has messages, none held while it is
  empty.
- ``unreserved``: asynchronous as in ``reserved-keep`` but without a reservation: what
  the reservation protects the API from, ``worker``'s pollers following the burst up to
  the whole pool.

The API's :data:`API_RATE` requests/s of :data:`API_DURATION` (Poisson arrivals) need
about 105 concurrent executions, a little more than the ``ACCOUNT - RESERVED`` = 100 the
reservation leaves it. :func:`thread_pool_rows` gives the figures docs/scenarios.md
shows of what each variant costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluicegate.app import App
from sluicegate.sim.load import load_load
from sluicegate.sim.presets import PRESETS, Preset
from sluicegate.sim.world import World, app_world

__all__ = [
    "ACCOUNT",
    "API_DURATION",
    "API_RATE",
    "ASYNC_PRESET",
    "BUS_FOR",
    "BUS_RATE",
    "HANDLER",
    "MAX_EVENT_AGE",
    "QUIET_FROM",
    "RESERVED",
    "AppPreset",
    "thread_pool_app",
    "thread_pool_rows",
]

ACCOUNT = 120
"""The account's concurrency: 100 must stay unreserved, so 20 is all a function may
reserve."""

RESERVED = 20
"""``worker``'s reserved concurrency (``reserved``), or its mapping's
``maximum_concurrency`` (``queue-max-20``)."""

BUS_RATE = 500
"""Events put on the bus per second."""

BUS_FOR = "2m"
"""How long the bus's producer runs."""

HANDLER = "200ms"
"""``worker``'s handler duration: 20 at once run 100 events/s, a fifth of the bus's."""

MAX_EVENT_AGE = 90
"""``worker``'s ``maximum_event_age`` in ``reserved`` (AWS's minimum is 60 s)."""

API_RATE = 420
"""The API's requests per second (Poisson)."""

API_DURATION = "250ms"
"""The API's handler duration: 420/s x 0.25 s needs 105 at once on average."""

RUN = "15m"
"""Run length: the queue of ``queue-max-20`` drains after about ten minutes, and the
rest of the run shows what each variant leaves the API once the burst is over."""

QUIET_FROM = 600.0
"""Seconds into the run after which every variant's events are done (the last
stretch :func:`thread_pool_rows` reports the API's throttles over)."""


def _handler(event: Any, context: Any) -> None:
    """The functions' handler: the simulator models it, never calls it."""
    raise RuntimeError("a preset's function is simulated, not run")


def thread_pool_app(*, via: str = "function", reserved: int | None = RESERVED,
                    maximum_event_age: int = 21_600,
                    maximum_concurrency: int = RESERVED) -> App:
    """The preset's App: event bus ``orders`` with one rule, function ``worker`` and an
    API-like function ``api`` on an account of :data:`ACCOUNT`.

    Parameters:
        via: ``"function"``: the rule invokes ``worker`` asynchronously (its internal
            queue, its ``reserved`` concurrency and ``maximum_event_age``); ``"queue"``:
            the rule sends to queue ``orders-queue``, which a mapping with
            ``maximum_concurrency`` reads into ``worker``.
    """
    app = App(account_concurrency=ACCOUNT, name="reserved-as-thread-pool")
    app.function(name="worker", timeout=10, reserved_concurrency=reserved,
                 maximum_event_age=maximum_event_age)(_handler)
    app.function(name="api", timeout=10)(_handler)
    bus = app.event_bus("orders")
    pattern = {"source": ["shop"]}
    if via == "queue":
        queue = app.queue("orders-queue", visibility_timeout=60)
        app.rule(bus, pattern, targets=[queue])
        app.map(queue, "worker", batch_size=1, maximum_concurrency=maximum_concurrency)
    else:
        app.rule(bus, pattern, targets=["function:worker"])
    return app


@dataclass(frozen=True, eq=False)
class AppPreset(Preset):
    """A preset whose variants are an App plus a load (:func:`app_world`) rather than a
    scenario: ``base`` and each patch are a load's plain form, and a patch's ``app``
    table the keyword arguments of ``build`` for its variant. Overrides apply to the
    load (``duration=5m``, ``buses.orders.producers.0.rate=300``)."""

    build: Callable[..., App] = field(default=App)

    def variants(self, overrides: Sequence[str] = ()) -> list[tuple[str, World]]:  # type: ignore[override]
        """``(variant name, world)`` in display order, ``overrides`` (``KEY=VALUE``,
        keys of the load) applied to every variant.

        Raises:
            ScenarioError: an override that makes a variant's load invalid.
        """
        out = []
        for variant, data in self.variant_dicts():
            settings: Mapping[str, Any] = data.pop("app", {})
            load = load_load(data, overrides=list(overrides))
            out.append((variant, app_world(self.build(**settings), load)))
        return out


ASYNC_PRESET: AppPreset = AppPreset(
    "reserved-as-thread-pool",
    "event bus 500/s for 2 min into reserved concurrency 20 (200 ms) beside an API on a "
    "120-concurrency account; max age 90 s, default age, queue with max concurrency 20, "
    "unreserved",
    {
        "seed": 1,
        "duration": RUN,
        "buses": {"orders": {"producers": [{"rate": BUS_RATE, "stop": BUS_FOR}]}},
        "functions": {
            "worker": {"duration": HANDLER},
            "api": {"duration": API_DURATION,
                    "requests": [{"kind": "poisson", "rate": API_RATE}]},
        },
    },
    (
        ("reserved", {"app": {"maximum_event_age": MAX_EVENT_AGE}}),
        ("reserved-keep", {"app": {}}),
        ("queue-max-20", {"app": {"via": "queue", "reserved": None}}),
        ("unreserved", {"app": {"reserved": None}}),
    ),
    build=thread_pool_app,
)
"""Preset ``reserved-as-thread-pool`` (registered in
:data:`sluicegate.sim.presets.PRESETS`)."""

PRESETS[ASYNC_PRESET.name] = ASYNC_PRESET


def thread_pool_rows(result: Mapping[str, Any], quiet_from: float = QUIET_FROM,
                     burst_until: float = 120.0) -> list[dict[str, Any]]:
    """The figures of a :func:`~sluicegate.sim.presets.run_preset` result of
    ``reserved-as-thread-pool``, one row per variant.

    Returns:
        ``{"variant", "events", "done", "dropped", "max_age", "worker_peak",
        "worker_busy_until", "api_requests", "api_throttles", "api_throttle_rate",
        "api_peak", "api_throttles_burst", "api_throttles_quiet", "api_requests_quiet"}``:
        the events put,
        those that ran to success (a queue's messages processed), those dropped for
        their age, the oldest event's (message's) largest age in seconds, ``worker``'s
        peak concurrency and the end of its last bucket with invocations, the API's
        requests, throttles, their share and its peak concurrency, its throttles before
        ``burst_until`` seconds (while the bus's producer runs, :data:`BUS_FOR`), and its
        requests and throttles from ``quiet_from`` seconds on.
    """
    rows = []
    for variant in result["variants"]:
        (worker,) = [m for m in variant["mappings"] if m["function"] == "worker"]
        (api,) = variant["requests"]
        s, a = worker["summary"], api["summary"]
        busy = [b["t"] for b in worker["series"] if b["invocations"] > 0]
        step = worker["series"][1]["t"] - worker["series"][0]["t"]
        quiet = [b for b in api["series"] if b["t"] >= quiet_from]
        rows.append({
            "variant": variant["name"],
            "events": variant["summary"]["events_put"],
            "done": s.get("events_succeeded", s.get("messages_processed")),
            "dropped": s.get("events_dropped_event_age_exceeded", 0),
            "max_age": s["max_oldest_age"],
            "worker_peak": s["peak_concurrency"],
            "worker_busy_until": max(busy) + step if busy else 0.0,
            "api_requests": a["total_requests"],
            "api_throttles": a["total_throttles"],
            "api_throttle_rate": a["throttle_rate"],
            "api_peak": a["peak_concurrency"],
            "api_throttles_burst": sum(b["throttles"] for b in api["series"]
                                       if b["t"] < burst_until),
            "api_throttles_quiet": sum(b["throttles"] for b in quiet),
            "api_requests_quiet": sum(b["requests"] for b in quiet),
        })
    return rows
