"""FIFO rules of the core: queue and mapping configuration, and which records a partial
failure lets go within each message group."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.core.config import MappingConfig, QueueConfig, is_fifo_queue
from sluicegate.core.results import deletable, fifo_deletable
from sluicegate.core.types import Batch, BatchOutcome, OutcomeKind, QueueRecord
from sluicegate.errors import ConfigError


def _fifo_batch(*pairs: tuple[str, str]) -> Batch:
    """A batch of (message id, group id) records in the given order."""
    return Batch(
        1,
        0,
        tuple(
            QueueRecord(mid, f"h-{mid}", 10, 30.0, group_id=group) for mid, group in pairs
        ),
    )


def _partial(*failed: str) -> BatchOutcome:
    return BatchOutcome(OutcomeKind.PARTIAL, frozenset(failed), "partial")


# ---------------------------------------------------------------------- configuration


def test_fifo_is_told_by_the_name() -> None:
    assert QueueConfig("orders.fifo").fifo
    assert not QueueConfig("orders").fifo
    assert is_fifo_queue("a.fifo") and not is_fifo_queue("a-fifo")
    assert MappingConfig("orders.fifo", "f").fifo


@pytest.mark.parametrize("name", ["a.fifo.fifo", ".fifo", "a.FIFO", "x" * 76 + ".fifo"])
def test_bad_fifo_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="name"):
        QueueConfig(name)


def test_a_name_of_80_characters_with_the_suffix_is_accepted() -> None:
    assert QueueConfig("x" * 75 + ".fifo").fifo


def test_dead_letter_queue_kind_must_match() -> None:
    with pytest.raises(ConfigError, match="dead_letter_queue='dlq' is invalid: allowed a FIFO"):
        QueueConfig("a.fifo", dead_letter_queue="dlq", max_receive_count=3)
    with pytest.raises(ConfigError, match="allowed a standard queue"):
        QueueConfig("a", dead_letter_queue="dlq.fifo", max_receive_count=3)
    assert QueueConfig("a.fifo", dead_letter_queue="dlq.fifo", max_receive_count=3).fifo


def test_content_based_deduplication_only_on_fifo() -> None:
    assert QueueConfig("a.fifo", content_based_deduplication=True).content_based_deduplication
    with pytest.raises(ConfigError, match="content_based_deduplication=True"):
        QueueConfig("a", content_based_deduplication=True)
    with pytest.raises(ConfigError, match="content_based_deduplication"):
        QueueConfig("a.fifo", content_based_deduplication="yes")  # type: ignore[arg-type]


def test_fifo_mapping_batch_size_and_window() -> None:
    assert MappingConfig("a.fifo", "f", batch_size=10).batch_size == 10
    with pytest.raises(ConfigError, match="batch_size=11 is invalid: allowed 1-10 for a FIFO"):
        MappingConfig("a.fifo", "f", batch_size=11, maximum_batching_window=1)
    with pytest.raises(ConfigError, match="maximum_batching_window=1 is invalid"):
        MappingConfig("a.fifo", "f", batch_size=5, maximum_batching_window=1)
    # the standard queue of the same base name is not constrained
    assert MappingConfig("a", "f", batch_size=100, maximum_batching_window=1).batch_size == 100


# ---------------------------------------------------------------------- partial failures


def test_success_and_error_are_as_for_standard_queues() -> None:
    batch = _fifo_batch(("m1", "g1"), ("m2", "g1"))
    assert fifo_deletable(batch, BatchOutcome(OutcomeKind.SUCCESS)) == batch.records
    error = BatchOutcome(OutcomeKind.ERROR, frozenset({"m1", "m2"}), "exception")
    assert fifo_deletable(batch, error) == ()


def test_a_failure_keeps_every_later_record_of_its_group_only() -> None:
    batch = _fifo_batch(
        ("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("a3", "A"), ("c1", "C")
    )
    kept = fifo_deletable(batch, _partial("a2"))
    assert [r.message_id for r in kept] == ["a1", "b1", "b2", "c1"]
    # the standard rule would have let a3 go ahead of a2
    assert "a3" in [r.message_id for r in deletable(batch, _partial("a2"))]


def test_failures_in_several_groups() -> None:
    batch = _fifo_batch(("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C"))
    kept = fifo_deletable(batch, _partial("a1", "b2", "c1"))
    assert [r.message_id for r in kept] == ["b1"]


@given(
    st.lists(st.tuples(st.sampled_from("ABCD"), st.booleans()), min_size=1, max_size=10)
)
def test_deleted_records_are_a_prefix_of_each_group_without_failures(
    spec: list[tuple[str, bool]],
) -> None:
    pairs = [(f"m{i}", group) for i, (group, _) in enumerate(spec)]
    failed = {f"m{i}" for i, (_, fails) in enumerate(spec) if fails}
    batch = _fifo_batch(*pairs)
    kept = {r.message_id for r in fifo_deletable(batch, _partial(*failed))}
    for group in "ABCD":
        ids = [mid for mid, g in pairs if g == group]
        flags = [mid in kept for mid in ids]
        # deleted records form a prefix of the group's records ...
        assert flags == sorted(flags, reverse=True)
        # ... that stops exactly at the group's first failure
        first_failure = next((k for k, mid in enumerate(ids) if mid in failed), len(ids))
        assert sum(flags) == first_failure


def test_a_fifo_mapping_deletes_by_the_fifo_rule() -> None:
    from sluicegate.core.mapping import QueueMapping
    from sluicegate.core.pool import ConcurrencyPool
    from sluicegate.core.scaling import FixedScaling
    from sluicegate.core.types import Delete, Invoke

    m = QueueMapping(
        MappingConfig("q.fifo", "f", batch_size=4),
        visibility_timeout=30.0,
        pool=ConcurrencyPool(),
        policy=FixedScaling(1),
    )
    m.poll(0.0)
    batch = _fifo_batch(("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"))
    m.received(0.0, 0, list(batch.records))
    (invoke,) = [a for a in m.poll(0.0) if isinstance(a, Invoke)]
    m.finished(1.0, invoke.batch.id, _partial("a2"))
    (delete,) = [a for a in m.poll(1.0) if isinstance(a, Delete)]
    assert [r.message_id for r in delete.records] == ["a1", "b1"]


def test_records_the_filter_rejects_are_deleted_and_counted() -> None:
    from sluicegate.core.mapping import QueueMapping
    from sluicegate.core.pool import ConcurrencyPool
    from sluicegate.core.scaling import FixedScaling
    from sluicegate.core.types import Delete, Invoke

    m = QueueMapping(
        MappingConfig("q", "f", batch_size=10),
        visibility_timeout=30.0,
        pool=ConcurrencyPool(),
        policy=FixedScaling(1),
        record_filter=lambda r: r.message_id.startswith("keep"),
    )
    m.poll(0.0)
    records = [QueueRecord(mid, f"h-{mid}", 10, 30.0) for mid in ("keep1", "drop1", "keep2")]
    m.received(0.0, 0, records)
    actions = m.poll(0.0)
    (delete,) = [a for a in actions if isinstance(a, Delete)]
    (invoke,) = [a for a in actions if isinstance(a, Invoke)]
    assert [r.message_id for r in delete.records] == ["drop1"]
    assert [r.message_id for r in invoke.batch.records] == ["keep1", "keep2"]
    assert (m.received_records, m.filtered_records) == (3, 1)
    # a receive that is all filtered invokes nothing and leaves the poller free
    m.finished(1.0, invoke.batch.id, BatchOutcome(OutcomeKind.SUCCESS))
    m.poll(1.0)
    m.received(1.0, 0, [QueueRecord("drop2", "h", 10, 31.0)])
    actions = m.poll(1.0)
    assert not [a for a in actions if isinstance(a, Invoke)]
    assert [r.message_id for a in actions if isinstance(a, Delete) for r in a.records] == ["drop2"]
