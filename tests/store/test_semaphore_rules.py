"""The semaphore rules (sluicegate.store.semaphores), as properties over random histories
with explicit times: never more holders than the limit, fencing tokens that only grow,
waiters served in arrival order, dead holders and waiters dropped by expiry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.store.semaphores import SemaphoreState, acquire_in, release_in, renew_in

TOKENS = st.sampled_from([f"t{i}" for i in range(6)])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("try"), TOKENS),  # attempt, queueing when refused
        st.tuples(st.just("release"), TOKENS),
        st.tuples(st.just("renew"), TOKENS),
        st.tuples(st.just("wait"), st.sampled_from([0.5, 2.0, 6.0])),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 3), ops=OPS)
def test_holders_never_exceed_the_limit_and_waiters_go_first_in_order(
    limit: int, ops: list[tuple[str, object]]
) -> None:
    state = SemaphoreState("db")
    now, ttl = 0.0, 5.0
    last_token = 0
    for op, arg in ops:
        if op == "wait":
            assert isinstance(arg, float)
            now += arg
            continue
        assert isinstance(arg, str)
        if op == "try":
            before = [w.waiter for w in state.waiters if w.expires > now]
            holders = {h.holder for h in state.holders if h.expires > now}
            free = limit - len(holders)
            grant = acquire_in(state, arg, limit=limit, ttl=ttl, now=now, queue=True)
            if arg in holders:
                assert grant.acquired  # a renewal
            elif grant.acquired:
                # FIFO: granted only within the first `free` of the queue, or as a
                # newcomer when the queue is shorter than the free slots
                place = before.index(arg) if arg in before else len(before)
                assert place < free
                assert grant.token > last_token  # fencing tokens only grow
                last_token = grant.token
            else:
                assert [w.waiter for w in state.waiters].count(arg) == 1
                if arg not in before:
                    assert state.waiters[-1].waiter == arg  # joins at the back
        elif op == "release":
            release_in(state, arg, now=now)
            assert arg not in {h.holder for h in state.holders}
            assert arg not in {w.waiter for w in state.waiters}
        else:
            renew_in(state, [arg], ttl=ttl, now=now)
        live = [h for h in state.holders if h.expires > now]
        assert len(live) <= limit
        assert not {h.holder for h in live} & {w.waiter for w in state.waiters}
        tokens = [h.token for h in state.holders]
        assert len(set(tokens)) == len(tokens) and max(tokens, default=0) <= state.token


def test_a_dead_holder_and_a_dead_waiter_are_dropped_by_expiry() -> None:
    state = SemaphoreState("db")
    assert acquire_in(state, "dead", limit=1, ttl=5, now=0, queue=True).acquired
    assert not acquire_in(state, "also-dead", limit=1, ttl=5, now=1, queue=True).acquired
    assert not acquire_in(state, "w", limit=1, ttl=5, now=2, queue=True).acquired
    # the holder's lease ran out at 5, but the dead waiter ahead still counts until 16
    assert not acquire_in(state, "w", limit=1, ttl=5, now=6, queue=True).acquired
    grant = acquire_in(state, "w", limit=1, ttl=5, now=16.5, queue=True)
    assert grant.acquired and grant.token == 2
