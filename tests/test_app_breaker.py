"""``app.breaker`` and the mappings' ``breaker=``: validation and sharing by name."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate import App
from sluicegate.core.breaker import Breaker, BreakerConfig, Breakers
from sluicegate.core.config import MappingConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.errors import ConfigError


def make_app() -> App:
    app = App()
    app.queue("orders")
    app.queue("refunds.fifo")
    app.stream("clicks")

    @app.function
    def handle(event: Any, context: Any) -> None:
        return None

    return app


def test_a_named_breaker_is_shared_by_the_mappings_that_name_it() -> None:
    app = make_app()
    ledger = app.breaker("ledger", failure_rate_threshold=25, open_wait=5)
    orders = app.map("orders", "handle", breaker="ledger")
    refunds = app.map("refunds.fifo", "handle", breaker=ledger)  # the config: shared too
    clicks = app.map("clicks", "handle", breaker={"minimum_calls": 3, "sliding_window_size": 3})
    assert isinstance(orders, MappingConfig) and isinstance(clicks, StreamMappingConfig)
    assert orders.breaker == "ledger" and refunds.breaker == "ledger"
    assert isinstance(clicks.breaker, BreakerConfig)
    registry = Breakers(app.breakers)
    a = registry.for_mapping(orders.name, orders.breaker, 0.0)
    b = registry.for_mapping(refunds.name, refunds.breaker, 0.0)
    c = registry.for_mapping(clicks.name, clicks.breaker, 0.0)
    assert isinstance(a, Breaker) and a is b and a.label == "ledger"
    assert c is not None and c is not a and c.label == "clicks->handle"
    assert sorted(registry) == ["clicks->handle", "ledger"]
    assert registry.for_mapping("x->y", None, 0.0) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda app: app.map("orders", "handle", breaker="nope"),
         "mapping orders: breaker='nope' is invalid: allowed a breaker defined with app.breaker"),
        (lambda app: app.map("orders", "handle", breaker={"open_wait": -1}),
         r"mapping orders->handle: breaker: open_wait=-1 is invalid"),
        (lambda app: app.map("orders", "handle", breaker=3),
         "breaker=3 is invalid: allowed a breaker's name"),
        (lambda app: app.breaker("ledger", wait=3),
         "breaker 'ledger': wait=3 is invalid: allowed a breaker setting"),
        (lambda app: app.breaker("bad name"), "name='bad name' is invalid"),
        (lambda app: (app.breaker("x"), app.breaker("x")), "not defined already"),
    ],
)
def test_bad_breaker_definitions_are_one_line_errors(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        call(make_app())
    assert "\n" not in str(info.value)
