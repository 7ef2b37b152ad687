"""App definitions: validation names the parameter, the value and the allowed range."""

from __future__ import annotations

import pytest

import sluicegate
from sluicegate import ConfigError


def handler(event, context):
    return None


def test_the_documented_example_defines_cleanly():
    app = sluicegate.App()
    orders = app.queue("orders", visibility_timeout=60, dead_letter_queue="orders-dlq",
                       max_receive_count=5)

    @app.function(timeout=10, reserved_concurrency=50)
    def process(event, context): ...

    mapping = app.map(orders, process, batch_size=10, maximum_batching_window=1,
                      maximum_concurrency=20, report_batch_item_failures=True, scaling="aws")
    assert mapping.name == "orders->process"
    assert app.queues["orders-dlq"].visibility_timeout == 30  # defined implicitly
    assert app.functions["process"].config.reserved_concurrency == 50


@pytest.mark.parametrize(
    ("kwargs", "parameter", "allowed"),
    [
        ({"batch_size": 0}, "batch_size", "1-10,000"),
        ({"batch_size": 10_001}, "batch_size", "1-10,000"),
        ({"batch_size": 11}, "maximum_batching_window", ">= 1 s"),
        ({"maximum_batching_window": 301}, "maximum_batching_window", "0-300"),
        ({"maximum_concurrency": 1}, "maximum_concurrency", "2-1,000"),
        ({"maximum_concurrency": 1001}, "maximum_concurrency", "2-1,000"),
        ({"scaling": "fast"}, "scaling", "'aws' or 'fixed'"),
        ({"report_batch_item_failures": "yes"}, "report_batch_item_failures", "true or false"),
    ],
)
def test_mapping_out_of_range_names_parameter_value_and_range(kwargs, parameter, allowed):
    app = sluicegate.App()
    app.queue("q")
    app.function(handler)
    with pytest.raises(ConfigError) as info:
        app.map("q", handler, **kwargs)
    assert info.value.parameter == parameter
    assert allowed in str(info.value)
    assert repr(next(iter(kwargs.values()))) in str(info.value)


def test_batch_above_ten_with_a_window_is_allowed():
    app = sluicegate.App()
    app.queue("q")
    app.function(handler)
    assert app.map("q", handler, batch_size=10_000, maximum_batching_window=1).batch_size == 10_000


def test_visibility_timeout_shorter_than_function_timeout_is_refused():
    app = sluicegate.App()
    app.queue("q", visibility_timeout=60)
    app.function(timeout=120)(handler)
    with pytest.raises(ConfigError, match=r"visibility_timeout=60 .*function timeout.*120"):
        app.map("q", handler)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"visibility_timeout": 43_201}, "visibility_timeout"),
        ({"visibility_timeout": -1}, "visibility_timeout"),
        ({"delay_seconds": 901}, "delay_seconds"),
        ({"retention_period": 59}, "retention_period"),
        ({"max_message_size": 300_000}, "max_message_size"),
        ({"dead_letter_queue": "dlq"}, "max_receive_count"),
        ({"dead_letter_queue": "dlq", "max_receive_count": 0}, "max_receive_count"),
        ({"max_receive_count": 3}, "dead_letter_queue"),
    ],
)
def test_queue_out_of_range(kwargs, parameter):
    with pytest.raises(ConfigError) as info:
        sluicegate.App().queue("q", **kwargs)
    assert info.value.parameter == parameter


def test_bad_queue_name_and_duplicates():
    app = sluicegate.App()
    with pytest.raises(ConfigError, match="name"):
        app.queue("has space")
    app.queue("q")
    with pytest.raises(ConfigError, match="already"):
        app.queue("q")


def test_function_ranges_and_reserved_pool():
    app = sluicegate.App()
    with pytest.raises(ConfigError) as info:
        app.function(timeout=901)(handler)
    assert info.value.parameter == "timeout"
    app.function(name="big", reserved_concurrency=900)(handler)
    with pytest.raises(ConfigError) as info:
        app.function(name="more", reserved_concurrency=1)(handler)
    assert info.value.parameter == "reserved_concurrency"


def test_mapping_needs_defined_queue_and_function():
    app = sluicegate.App()
    app.queue("q")
    with pytest.raises(ConfigError, match="function"):
        app.map("q", handler)
    app.function(handler)
    with pytest.raises(ConfigError, match="queue"):
        app.map("nope", handler)
    app.map("q", handler)
    with pytest.raises(ConfigError, match="mapped once"):
        app.map("q", handler)
