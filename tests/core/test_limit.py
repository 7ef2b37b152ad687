"""ConcurrencyLimit: the minimum of named terms, which term binds, the fixed fast path."""

from __future__ import annotations

import pytest

from sluicegate.core.config import AccountConfig, FunctionConfig, MappingConfig
from sluicegate.core.limit import (
    NO_LIMIT,
    ConcurrencyLimit,
    Fixed,
    PolicyTerm,
    Share,
)
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.scaling import AwsScaling, FixedScaling
from sluicegate.core.types import Receive

from .support import SetLimit


class Ramp:
    """A dynamic term: grows by one per second from ``start`` at t=0, up to ``top``."""

    name = "ramp"

    def __init__(self, start: int, top: int) -> None:
        self.start = start
        self.top = top

    def value(self, now: float) -> int:
        return min(self.top, self.start + int(now))

    def next_change(self, now: float) -> float | None:
        if self.value(now) >= self.top:
            return None
        return float(int(now) + 1)


def test_empty_limit_is_unbounded() -> None:
    limit = ConcurrencyLimit()
    assert limit.value(0.0) == NO_LIMIT
    assert limit.fixed == NO_LIMIT
    assert limit.reason(0.0) == "none"
    assert limit.next_change(0.0) is None
    assert limit.describe(0.0) == {}


def test_value_is_the_minimum_and_reason_names_the_binding_term() -> None:
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 50), Fixed("pool", 20)])
    assert limit.value(0.0) == 20
    assert limit.reason(0.0) == "pool"
    assert limit.describe(0.0) == {"maximum_concurrency": 50, "pool": 20}


def test_a_tie_goes_to_the_term_added_first() -> None:
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 10), PolicyTerm(FixedScaling(10))])
    assert limit.reason(0.0) == "maximum_concurrency"


def test_unset_fixed_is_no_limit() -> None:
    term = Fixed("maximum_concurrency", None)
    assert term.value(0.0) == NO_LIMIT
    limit = ConcurrencyLimit([term, Fixed("shards", 4)])
    assert limit.value(0.0) == 4
    assert limit.reason(0.0) == "shards"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_fixed_refuses_what_is_not_a_count(bad: object) -> None:
    with pytest.raises(ValueError, match="not an integer >= 0"):
        Fixed("x", bad)


def test_fixed_is_set_only_when_every_term_is_static() -> None:
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 8), PolicyTerm(FixedScaling(5))])
    assert limit.fixed == 5
    limit.add(Ramp(1, 10))
    assert limit.fixed is None
    assert limit.value(0.0) == 1
    assert limit.value(3.5) == 4
    assert limit.value(100.0) == 5  # the fixed policy binds again
    assert limit.reason(100.0) == "scaling"
    limit.remove("ramp")
    assert limit.fixed == 5


def test_a_policy_other_than_fixed_scaling_is_dynamic() -> None:
    policy = SetLimit(7)
    limit = ConcurrencyLimit([PolicyTerm(policy)])
    assert limit.fixed is None
    assert limit.value(0.0) == 7
    policy.value = 3
    assert limit.value(1.0) == 3
    policy.change = 12.5
    assert limit.next_change(1.0) == 12.5


def test_next_change_is_the_earliest_of_the_dynamic_terms() -> None:
    policy = SetLimit(7)
    policy.change = 5.0
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 9), PolicyTerm(policy),
                              Ramp(0, 3)])
    assert limit.next_change(0.25) == 1.0
    assert limit.next_change(3.0) == 5.0  # the ramp is at its top
    policy.change = None
    assert limit.next_change(3.0) is None


def test_aws_policy_term_follows_its_level() -> None:
    policy = AwsScaling(maximum_concurrency=None, report_batch_item_failures=False)
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", None), PolicyTerm(policy)])
    assert limit.value(0.0) == 5
    policy.on_receive(0.0, 10)  # messages: grows (fast start)
    assert limit.next_change(0.0) is not None
    assert limit.value(1.0) > 5
    assert limit.reason(1.0) == "scaling"


def test_value_never_goes_below_zero() -> None:
    limit = ConcurrencyLimit([Share("cluster", lambda: -3)])
    assert limit.value(0.0) == 0


def test_share_is_read_every_time_unless_static() -> None:
    held = [4]
    limit = ConcurrencyLimit([Share("cluster", lambda: held[0])])
    assert limit.fixed is None
    held[0] = 2
    assert limit.value(0.0) == 2
    static = ConcurrencyLimit([Share("pool", lambda: held[0], static=True)])
    assert static.fixed == 2
    held[0] = 6
    assert static.value(0.0) == 2  # not told yet
    static.refresh()
    assert static.fixed == 6
    assert static.value(0.0) == 6


def test_add_replace_remove_by_name_and_watchers() -> None:
    calls: list[int | None] = []
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 10)])
    limit.watch(lambda: calls.append(limit.fixed))
    with pytest.raises(ValueError, match="there already"):
        limit.add(Fixed("maximum_concurrency", 3))
    limit.add(Fixed("override", 4))
    limit.replace(Fixed("maximum_concurrency", 2))
    assert [t.name for t in limit.terms] == ["maximum_concurrency", "override"]
    assert limit.value(0.0) == 2
    assert limit.remove("maximum_concurrency").value(0.0) == 2
    assert limit.get("override") is not None
    assert limit.get("maximum_concurrency") is None
    with pytest.raises(KeyError):
        limit.replace(Fixed("maximum_concurrency", 1))
    with pytest.raises(KeyError):
        limit.remove("maximum_concurrency")
    assert calls == [4, 2, 4]


def test_terms_given_twice_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        ConcurrencyLimit([Fixed("pool", 1), Fixed("pool", 2)])


# ---------------------------------------------------------------------- in a queue mapping


def _mapping(pool: ConcurrencyPool, **config: object) -> QueueMapping:
    return QueueMapping(MappingConfig("q", "f", **config),  # type: ignore[arg-type]
                        visibility_timeout=30, pool=pool)


def test_fixed_mapping_is_bounded_by_reserved_concurrency() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=3))
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=50)
    receives = [a for a in mapping.poll(0.0) if isinstance(a, Receive)]
    assert len(receives) == 3
    assert mapping.limit == 3
    assert mapping.limit_reason(0.0) == "reserved_concurrency"
    assert mapping.concurrency_limit.describe(0.0)["maximum_concurrency"] == 50


def test_fixed_mapping_follows_a_reservation_registered_later() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=200))
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=50)
    assert len(mapping.poll(0.0)) == 50
    pool.register(FunctionConfig("f", reserved_concurrency=4))
    mapping.poll(1.0)
    assert mapping.limit == 4
    assert mapping.limit_reason(1.0) == "reserved_concurrency"


def test_fixed_mapping_is_bounded_by_the_unreserved_pool() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=150, min_unreserved=100))
    pool.register(FunctionConfig("other", reserved_concurrency=50))
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=150)
    mapping.poll(0.0)
    assert mapping.limit == 100
    assert mapping.limit_reason(0.0) == "pool"


def test_aws_mapping_is_not_bounded_by_reserved_concurrency() -> None:
    """AWS's pollers are throttled by a function's capacity, not bounded by it."""
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=1))
    mapping = _mapping(pool, maximum_concurrency=10)
    assert [t.name for t in mapping.concurrency_limit.terms] == [
        "maximum_concurrency", "scaling"]
    mapping.poll(0.0)
    assert mapping.limit == 5
    assert mapping.limit_reason(0.0) == "scaling"


def test_a_term_added_at_run_time_takes_effect_at_the_next_poll() -> None:
    pool = ConcurrencyPool()
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=10)
    assert len(mapping.poll(0.0)) == 10
    share = [2]
    mapping.concurrency_limit.add(Share("cluster", lambda: share[0]))
    mapping.poll(1.0)
    assert mapping.limit == 2
    assert mapping.limit_reason(1.0) == "cluster"
    share[0] = 6
    assert mapping.next_wakeup(2.0) == 2.0  # more pollers to start
    receives = [a for a in mapping.poll(2.0) if isinstance(a, Receive)]
    assert mapping.limit == 6
    assert receives == []  # pollers 0-9 still hold their long polls from t=0


# ---------------------------------------------------------------------- in a stream mapping


def test_stream_mapping_honours_a_term_below_its_lanes() -> None:
    from sluicegate.core.results import SUCCESS_OUTCOME
    from sluicegate.core.stream_mapping import StreamMapping
    from sluicegate.core.streams import (
        Fetch,
        StreamConfig,
        StreamInvoke,
        StreamMappingConfig,
        StreamRecord,
        lane_for_partition_key,
    )

    keys: dict[int, str] = {}
    i = 0
    while len(keys) < 3:
        keys.setdefault(lane_for_partition_key(f"k{i}", 3), f"k{i}")
        i += 1
    m = StreamMapping(StreamMappingConfig("s", "f", parallelization_factor=3),
                      StreamConfig("s"), pool=ConcurrencyPool())
    assert m.limit == 3
    m.concurrency_limit.add(Fixed("semaphore", 1))
    fetch = next(a for a in m.poll(0.0) if isinstance(a, Fetch))
    m.read_done(0.0, fetch, [StreamRecord(0, n + 1, keys[n], b"", 0.0, 10) for n in range(3)],
                latest=3)
    invokes = [a for a in m.poll(0.0) if isinstance(a, StreamInvoke)]
    assert len(invokes) == 1
    assert m.limit == 1
    assert m.limit_reason(0.0) == "semaphore"
    assert m.next_wakeup(0.0) != 0.0  # the other two lanes wait for the slot
    m.finished(1.0, invokes[0].batch.id, SUCCESS_OUTCOME)
    assert m.next_wakeup(1.0) == 1.0
    second = [a for a in m.poll(1.0) if isinstance(a, StreamInvoke)]
    assert len(second) == 1
    m.concurrency_limit.remove("semaphore")
    assert m.next_wakeup(1.5) == 1.5  # the limit was raised: the last lane takes a slot
    third = [a for a in m.poll(1.5) if isinstance(a, StreamInvoke)]
    assert len(third) == 1
    assert m.in_flight == 2


def test_a_fixed_mapping_and_its_pool_make_no_reference_cycle() -> None:
    """The pool calls back the limits it refreshes; nothing they hold leads back to the
    pool, so reference counting frees them all (the simulator runs with the cyclic
    collector paused)."""
    import gc

    gc.collect()
    pool = ConcurrencyPool()
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=10)
    pool.register(FunctionConfig("f", reserved_concurrency=2))
    assert mapping.concurrency_limit.fixed == 2
    del mapping, pool
    assert gc.collect() == 0


def test_a_reservation_of_zero_throttles_rather_than_stops_the_mapping() -> None:
    """Reserved concurrency 0 is AWS's off switch for a function: its invocations are
    throttled and the messages return; the fixed policy's mapping keeps receiving."""
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=0))
    mapping = _mapping(pool, scaling="fixed", maximum_concurrency=2)
    receives = [a for a in mapping.poll(0.0) if isinstance(a, Receive)]
    assert len(receives) == 2
    assert mapping.limit_reason(0.0) == "maximum_concurrency"
