"""The fused driver calls (received_poll, finished_poll) answer exactly as the separate
ones (received or finished, then poll, then next_wakeup) would.

Two mappings are driven side by side through the same random operations: one through the
separate calls, the other through the fused ones, and every answer is compared.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluicegate.core.config import AccountConfig, FunctionConfig, MappingConfig
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome
from sluicegate.core.scaling import ScalingPolicy, make_policy
from sluicegate.core.types import (
    Action,
    Batch,
    BatchOutcome,
    Delete,
    Invoke,
    OutcomeKind,
    QueueRecord,
    Receive,
)

from .support import SetLimit
from .test_mapping_properties import configurations


def _mapping(
    config: MappingConfig, reserved: int | None, vt: float, hand_set: bool
) -> tuple[QueueMapping, ConcurrencyPool, ScalingPolicy]:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=8, min_unreserved=3))
    pool.register(FunctionConfig("f", reserved_concurrency=reserved))
    policy: ScalingPolicy = (
        SetLimit(3) if hand_set else make_policy(config, reserved_concurrency=reserved)
    )
    return QueueMapping(config, visibility_timeout=vt, pool=pool, policy=policy), pool, policy


operations = st.lists(
    st.tuples(
        st.sampled_from(["deliver"] * 6 + ["finish"] * 4 + ["advance"] * 2
                        + ["wake", "pause", "resume", "hog", "unhog", "limit"]),
        st.integers(0, 20),
        st.integers(0, 10),
        st.integers(0, 1023),
        st.floats(0.0, 12.0),
        st.booleans(),  # after advance or wake: skip the poll (timers fall due unseen)
    ),
    min_size=30,
    max_size=150,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=configurations(), ops=operations, hand_set=st.booleans())
def test_fused_calls_answer_as_the_separate_ones(
    setup: tuple[MappingConfig, int | None, float],
    ops: list[tuple[Any, ...]],
    hand_set: bool,
) -> None:
    # Given two identical mappings, each with its own pool and policy
    config, reserved, vt = setup
    a, pool_a, policy_a = _mapping(config, reserved, vt, hand_set)
    b, pool_b, policy_b = _mapping(config, reserved, vt, hand_set)
    now = 0.0
    ids = itertools.count(1)
    receives: dict[int, Receive] = {}
    in_flight: dict[int, Batch] = {}
    b_batches: dict[int, Batch] = {}  # the fused calls are given b's own batch objects
    hogged = 0

    def perform(actions: list[Action], b_actions: list[Action]) -> None:
        b_batches.update((a.batch.id, a.batch) for a in b_actions if isinstance(a, Invoke))
        for action in actions:
            if isinstance(action, Receive):
                receives[action.poller] = action
            elif isinstance(action, Invoke):
                in_flight[action.batch.id] = action.batch

    def both_poll() -> None:
        actions = a.poll(now)
        b_actions = b.poll(now)
        assert b_actions == actions
        perform(actions, b_actions)
        assert b.next_wakeup(now) == a.next_wakeup(now)

    both_poll()
    for name, index, count, mask, seconds, skip in ops:
        if name == "deliver" and receives:
            # When a receive comes back, reported to each mapping its own way
            poller = sorted(receives)[index % len(receives)]
            receive = receives.pop(poller)
            got = [
                QueueRecord(f"m{n}", f"h{n}", 200, now + vt)
                for n in itertools.islice(ids, min(count, receive.max_messages))
            ]
            a.received(now, poller, list(got))
            expected = a.poll(now)
            actions, wake = b.received_poll(now, poller, list(got))
            # Then the fused call answers as received + poll + next_wakeup
            assert actions == expected
            assert wake == a.next_wakeup(now)
            perform(expected, actions)
        elif name == "finish" and in_flight:
            batch_id = sorted(in_flight)[index % len(in_flight)]
            batch = in_flight.pop(batch_id)
            b_batch = b_batches.pop(batch_id)
            kind = count % 3
            if kind == 0:
                outcome: BatchOutcome = SUCCESS_OUTCOME
            elif kind == 1:
                outcome = exception_outcome(batch, "boom")
            else:
                outcome = BatchOutcome(OutcomeKind.PARTIAL, frozenset(
                    r.message_id for i, r in enumerate(batch.records) if mask >> i & 1
                ))
            a.finished(now, batch_id, outcome)
            expected = a.poll(now)
            if seconds > 9.0:
                # (now and then the other one reports by batch id too: it then keeps an
                # index of the batches in flight, which the fused call must keep up)
                b.finished(now, batch_id, outcome)
                b_actions = b.poll(now)
                assert b_actions == expected
                assert b.next_wakeup(now) == a.next_wakeup(now)
                perform(expected, b_actions)
                continue
            deleted, actions, wake = b.finished_poll(now, b_batch, outcome)
            # Then the records handed back are poll's leading Delete, and the rest match
            assert ([Delete(deleted)] if deleted else []) + actions == expected
            assert wake == a.next_wakeup(now)
            perform(expected, actions)
        elif name == "advance":
            now += seconds
            if not skip:
                both_poll()
        elif name == "wake":
            wake = a.next_wakeup(now)
            assert b.next_wakeup(now) == wake
            if wake is not None:
                now = wake
            if not skip:
                both_poll()
        elif name == "pause":
            a.pause(now)
            b.pause(now)
        elif name == "resume":
            a.resume(now)
            b.resume(now)
            both_poll()
        elif name == "hog":
            got_a, got_b = pool_a.try_acquire("other"), pool_b.try_acquire("other")
            assert got_a == got_b
            hogged += got_a
        elif name == "unhog" and hogged:
            pool_a.release("other")
            pool_b.release("other")
            hogged -= 1
        elif name == "limit" and isinstance(policy_a, SetLimit):
            assert isinstance(policy_b, SetLimit)
            policy_a.value = policy_b.value = count % 7
            both_poll()
    assert a.statistics() == b.statistics()


def test_finished_poll_refuses_a_batch_not_in_flight() -> None:
    # Given a mapping invoking one batch
    config = MappingConfig("q", "f", batch_size=1, scaling="fixed", maximum_concurrency=2)
    m, _, _ = _mapping(config, None, 30.0, False)
    m.poll(0.0)
    actions, _ = m.received_poll(0.0, 0, [QueueRecord("m1", "h1", 200, 30.0)])
    (invoke,) = [a for a in actions if isinstance(a, Invoke)]
    batch = invoke.batch
    # When another batch is reported (a copy of it, one with the id of none in flight,
    # one naming a poller not invoking or that does not exist), or this one twice
    for wrong in (Batch(batch.id, batch.poller, batch.records),
                  Batch(batch.id + 1, batch.poller, batch.records),
                  Batch(batch.id, 1, batch.records), Batch(batch.id, 7, batch.records),
                  Batch(batch.id, -1, batch.records)):
        with pytest.raises(RuntimeError, match="not in flight"):
            m.finished_poll(1.0, wrong, SUCCESS_OUTCOME)
    deleted, _, _ = m.finished_poll(1.0, batch, SUCCESS_OUTCOME)
    assert deleted == batch.records
    # Then only the batch in flight settles, once
    with pytest.raises(RuntimeError, match="not in flight"):
        m.finished_poll(1.0, batch, SUCCESS_OUTCOME)
    with pytest.raises(RuntimeError, match="not in flight"):
        m.finished(1.0, batch.id, SUCCESS_OUTCOME)


def test_batches_reported_both_ways_settle_once_each() -> None:
    # Given a mapping invoking three batches
    config = MappingConfig("q", "f", batch_size=1, scaling="fixed", maximum_concurrency=3)
    m, pool, _ = _mapping(config, None, 30.0, False)
    m.poll(0.0)
    batches = []
    for poller in range(3):
        actions, _ = m.received_poll(0.0, poller, [QueueRecord(f"m{poller}", "h", 200, 30.0)])
        batches += [a.batch for a in actions if isinstance(a, Invoke)]
    assert len(batches) == 3
    # When the first ends through the fused call, the second by its id (the first such
    # report), then a fourth batch is invoked, and the rest end one way and the other
    _, actions, _ = m.finished_poll(1.0, batches[0], SUCCESS_OUTCOME)
    (receive,) = [a for a in actions if isinstance(a, Receive)]
    m.finished(1.0, batches[1].id, SUCCESS_OUTCOME)
    assert [a.poller for a in m.poll(1.0) if isinstance(a, Receive)] == [1]
    actions, _ = m.received_poll(1.0, receive.poller, [QueueRecord("m3", "h", 200, 31.0)])
    (fourth,) = [a.batch for a in actions if isinstance(a, Invoke)]
    m.finished(2.0, fourth.id, SUCCESS_OUTCOME)
    m.finished_poll(2.0, batches[2], SUCCESS_OUTCOME)
    # Then each settled once: nothing is in flight, every slot is back, and none of them
    # can be reported again
    assert m.statistics().in_flight == 0 and pool.in_use("f") == 0
    for batch in (*batches, fourth):
        with pytest.raises(RuntimeError, match="not in flight"):
            m.finished(3.0, batch.id, SUCCESS_OUTCOME)
        with pytest.raises(RuntimeError, match="not in flight"):
            m.finished_poll(3.0, batch, SUCCESS_OUTCOME)
