"""App definitions of FIFO queues, streams, topics and their mappings."""

from __future__ import annotations

import pytest

from sluicegate import App
from sluicegate.core.config import MappingConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.errors import ConfigError


def _app() -> App:
    app = App()

    @app.function
    def handle(event, context):  # type: ignore[no-untyped-def]
        return None

    return app


def test_fifo_queue_and_mapping() -> None:
    app = _app()
    q = app.queue("orders.fifo", content_based_deduplication=True,
                  dead_letter_queue="orders-dlq.fifo", max_receive_count=3)
    assert q.fifo and app.queues["orders-dlq.fifo"].fifo
    mapping = app.map(q, "handle", batch_size=10)
    assert isinstance(mapping, MappingConfig) and mapping.fifo
    with pytest.raises(ConfigError, match="batch_size=11"):
        app.map("orders-dlq.fifo", "handle", batch_size=11, maximum_batching_window=1)


def test_stream_mapping_with_its_own_parameters() -> None:
    app = _app()
    app.queue("failures")
    clicks = app.stream("clicks", shard_count=4)
    mapping = app.map(clicks, "handle", parallelization_factor=10,
                      bisect_batch_on_function_error=True, maximum_retry_attempts=2,
                      on_failure="failures", filter_criteria=[{"data": {"kind": ["click"]}}])
    assert isinstance(mapping, StreamMappingConfig)
    assert (mapping.batch_size, mapping.parallelization_factor, mapping.on_failure) == (
        100, 10, "failures"
    )
    assert mapping.filter_criteria.source == "stream"
    assert app.stream_mappings == [mapping]
    with pytest.raises(ConfigError, match="mapped once"):
        app.map("clicks", "handle")


@pytest.mark.parametrize(
    "source, kwargs, match",
    [
        ("clicks", {"maximum_concurrency": 5}, "maximum_concurrency=5 is invalid: allowed only for queue"),
        ("clicks", {"scaling": "fixed"}, "only for queue sources"),
        ("orders", {"parallelization_factor": 2}, "only for stream sources"),
        ("orders", {"on_failure": "orders"}, "only for stream sources"),
        ("clicks", {"on_failure": "missing"}, "on_failure='missing'"),
        ("clicks", {"parallelization_factor": 11}, "parallelization_factor=11"),
        ("clicks", {"maximum_record_age": 30}, "maximum_record_age=30"),
        ("nowhere", {}, "source='nowhere'"),
        ("orders", {"filter_criteria": ["{not json"]}, "filter_criteria"),
    ],
)
def test_parameters_of_the_wrong_kind_or_range_are_refused(
    source: str, kwargs: dict[str, object], match: str
) -> None:
    app = _app()
    app.queue("orders")
    app.stream("clicks")
    with pytest.raises(ConfigError, match=match):
        app.map(source, "handle", **kwargs)  # type: ignore[arg-type]


def test_names_are_unique_across_queues_and_streams() -> None:
    app = _app()
    app.queue("events")
    with pytest.raises(ConfigError, match="name='events'"):
        app.stream("events")
    app.stream("clicks")
    with pytest.raises(ConfigError, match="name='clicks'"):
        app.queue("clicks")


def test_topics_deliver_to_queues_of_their_kind() -> None:
    app = _app()
    a = app.queue("a.fifo", content_based_deduplication=True)
    app.queue("b")
    topic = app.topic("events.fifo", subscribers=[a], content_based_deduplication=True)
    assert topic.fifo and topic.subscribers == ("a.fifo",)
    with pytest.raises(ConfigError, match="FIFO queues only"):
        app.topic("more.fifo", subscribers=["b"])
    with pytest.raises(ConfigError, match="standard queues only"):
        app.topic("plain", subscribers=["a.fifo"])
    with pytest.raises(ConfigError, match="a queue defined"):
        app.topic("plain", subscribers=["missing"])
    with pytest.raises(ConfigError, match="content_based_deduplication"):
        app.topic("plain2", subscribers=["b"], content_based_deduplication=True)
    with pytest.raises(ConfigError, match="not defined already"):
        app.topic("events.fifo", subscribers=[a])
