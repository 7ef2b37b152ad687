"""FIFO receive turns: with ``receive_turns``, one receive of a FIFO mapping is out at a
time and the other pollers wait their turn, in the order they asked."""

from __future__ import annotations

from sluicegate.core.config import MappingConfig
from sluicegate.core.mapping import LONG_POLL_WAIT, QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME
from sluicegate.core.types import Action, Invoke, QueueRecord, Receive


def fifo(turns: bool = True, limit: int = 3, queue: str = "q.fifo") -> QueueMapping:
    return QueueMapping(MappingConfig(queue, "f", scaling="fixed", maximum_concurrency=limit),
                        visibility_timeout=30, pool=ConcurrencyPool(), receive_turns=turns)


def receives(actions: list[Action]) -> list[int]:
    return [a.poller for a in actions if isinstance(a, Receive)]


def rec(n: int, group: str = "g") -> QueueRecord:
    return QueueRecord(f"m{n}", f"h{n}", 10, 30.0, group_id=group)


def test_without_turns_every_poller_receives_at_once() -> None:
    m = fifo(turns=False)
    assert receives(m.poll(0.0)) == [0, 1, 2]


def test_turns_are_for_fifo_queues_only() -> None:
    m = fifo(queue="q")
    assert receives(m.poll(0.0)) == [0, 1, 2]


def test_one_receive_out_at_a_time_the_others_in_order() -> None:
    m = fifo()
    assert receives(m.poll(0.0)) == [0]
    assert m.receiving == 1
    assert m.next_wakeup(0.0) is None  # nothing to do until the receive comes back
    m.received(20.0, 0, [])  # the long poll ran out: poller 0 asks again, behind 1 and 2
    assert receives(m.poll(20.0)) == [1]
    m.received(21.0, 1, [rec(1)])
    actions = m.poll(21.0)
    assert receives(actions) == [2]
    invoke = next(a for a in actions if isinstance(a, Invoke))
    assert invoke.batch.poller == 1
    m.received(22.0, 2, [])
    assert receives(m.poll(22.0)) == [0]  # then 0 (1 is invoking)
    m.finished(23.0, invoke.batch.id, SUCCESS_OUTCOME)
    assert receives(m.poll(23.0)) == []  # 1 waits behind 2 now: 0's receive is out
    m.received(24.0, 0, [])
    assert receives(m.poll(24.0)) == [2]


def test_the_receive_given_the_turn_is_a_full_long_poll() -> None:
    m = fifo()
    m.poll(0.0)
    m.received(5.0, 0, [])
    receive = next(a for a in m.poll(5.0) if isinstance(a, Receive))
    assert receive.poller == 1
    assert receive.wait == LONG_POLL_WAIT


def test_a_paused_waiter_passes_the_turn_on() -> None:
    m = fifo()
    m.poll(0.0)
    m.pause(1.0)
    m.received(2.0, 0, [])
    assert receives(m.poll(2.0)) == []
    assert m.idle
    m.resume(3.0)
    out = receives(m.poll(3.0))
    assert len(out) == 1
    assert m.receiving == 1


def test_the_fused_calls_take_turns_too() -> None:
    m = fifo()
    assert receives(m.poll(0.0)) == [0]
    actions, _ = m.received_poll(1.0, 0, [rec(1)])
    assert receives(actions) == [1]
    invoke = next(a for a in actions if isinstance(a, Invoke))
    deleted, actions, _ = m.finished_poll(2.0, invoke.batch, SUCCESS_OUTCOME)
    assert [r.message_id for r in deleted] == ["m1"]
    assert receives(actions) == []  # poller 1's receive is out
    actions, _ = m.received_poll(3.0, 1, [])
    assert receives(actions) == [2]
