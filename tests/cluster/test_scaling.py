"""The shared aws scaling state, with explicit times: a mapping's limit follows the same
trajectory with one worker and with several (and across a leader handover)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from sluicegate.cluster.scaling import ScaleLeader, SharedScaling
from sluicegate.core.limit import TERM_CLUSTER, ConcurrencyLimit, PolicyTerm, Share
from sluicegate.core.scaling import AwsScaling
from sluicegate.core.types import BatchOutcome, OutcomeKind

SUCCESS = BatchOutcome(OutcomeKind.SUCCESS)
ERROR = BatchOutcome(OutcomeKind.ERROR)


def observations(seed: int) -> list[tuple[float, str, Any]]:
    """Two minutes of a mapping's life: a backlog (full receives), an error burst, a
    throttle, then the queue running dry (empty receives); one observation per 20 ms."""
    rng = random.Random(seed)
    out: list[tuple[float, str, Any]] = []
    t = 0.0
    while t < 120.0:
        t = round(t + 0.02, 6)
        if t < 70.0:
            out.append((t, "receive", (10, rng.choice((0.0, 0.01)))))
            if 40.0 <= t < 45.0 and rng.random() < 0.2:
                out.append((t, "outcome", ERROR))
            else:
                out.append((t, "outcome", SUCCESS))
            if 50.0 <= t < 50.1:
                out.append((t, "throttle", None))
        else:
            out.append((t, "receive", (0, 20.0)))
    return out


def feed(policy: Any, kind: str, t: float, value: Any) -> None:
    if kind == "receive":
        policy.on_receive(t, value[0], value[1])
    elif kind == "outcome":
        policy.on_outcome(t, value)
    else:
        policy.on_throttle(t)


def single_trajectory(events: list[tuple[float, str, Any]], samples: list[float]) -> list[int]:
    policy = AwsScaling(None, False)
    out = []
    i = 0
    for s in samples:
        while i < len(events) and events[i][0] <= s:
            feed(policy, events[i][1], events[i][0], events[i][2])
            i += 1
        out.append(policy.limit(s))
    return out


def cluster_trajectory(events: list[tuple[float, str, Any]], samples: list[float], *,
                       workers: int, handover_at: float | None = None) -> list[int]:
    """``workers`` SharedScaling wrappers see the observations (each one a random worker's);
    at every sample a leader collects every outbox (JSON through "Redis", workers in a
    random order) and publishes; at ``handover_at`` a new leader takes over from the
    published state alone."""
    rng = random.Random(3)
    shared = [SharedScaling(5) for _ in range(workers)]
    leader = ScaleLeader(AwsScaling(None, False))
    state: dict[str, Any] = {}
    out = []
    i = 0
    for s in samples:
        while i < len(events) and events[i][0] <= s:
            feed(rng.choice(shared), events[i][1], events[i][0], events[i][2])
            i += 1
        if handover_at is not None and s >= handover_at:
            leader = ScaleLeader(AwsScaling(None, False), json.loads(json.dumps(state)))
            handover_at = None
        order = list(shared)
        rng.shuffle(order)
        pushed = [json.loads(json.dumps(e)) for w in order for e in w.take_outbox()]
        leader.apply(pushed)
        limit, state = leader.publish(s)
        for w in shared:
            w.published = limit
        out.append(min(w.limit(s) for w in shared))
    return out


@pytest.mark.parametrize("workers", [1, 3, 10])
def test_the_limit_follows_the_same_trajectory_with_any_number_of_workers(workers: int) -> None:
    events = observations(seed=1)
    samples = [round(0.5 * k, 6) for k in range(1, 241)]
    expected = single_trajectory(events, samples)
    assert max(expected) > 5  # the scenario does scale up ...
    assert expected[-1] < max(expected)  # ... and back down
    assert cluster_trajectory(events, samples, workers=workers) == expected


def test_a_new_leader_resumes_from_the_published_state() -> None:
    events = observations(seed=2)
    samples = [round(0.5 * k, 6) for k in range(1, 241)]
    expected = single_trajectory(events, samples)
    assert cluster_trajectory(events, samples, workers=3, handover_at=30.0) == expected


def test_a_late_observation_never_moves_the_leaders_time_back() -> None:
    leader = ScaleLeader(AwsScaling(None, False))
    leader.apply([["r", 10.0, 10, 0.0]])
    leader.apply([["o", 5.0, "error"]])  # reported late: applied at 10.0
    assert leader.applied_until == 10.0
    state = leader.policy.snapshot()
    assert state["_last_error"] == 10.0


def test_the_limit_never_exceeds_the_workers_share_nor_the_published_level() -> None:
    share = [2]
    policy = SharedScaling(7)
    limit = ConcurrencyLimit([PolicyTerm(policy), Share(TERM_CLUSTER, lambda: share[0])])
    assert limit.value(0.0) == 2 and limit.reason(0.0) == "cluster"
    share[0] = 9
    assert limit.value(0.0) == 7 and limit.reason(0.0) == "scaling"
    policy.published = 3
    assert limit.value(0.0) == 3
    policy.on_outcome(1.0, SUCCESS)  # AwsScaling ignores successes: nothing to report
    policy.on_outcome(2.0, ERROR)
    assert policy.take_outbox() == [["o", 2.0, "error"]]


def test_invocation_times_travel_as_one_mean_per_outbox() -> None:
    worker = SharedScaling(5)
    worker.on_outcome(1.0, SUCCESS, 0.3)
    worker.on_outcome(2.0, ERROR, 0.1)
    assert worker.take_outbox() == [["o", 2.0, "error"], ["d", 2.0, pytest.approx(0.2), 2]]
    assert worker.take_outbox() == []
    leader, single = ScaleLeader(AwsScaling(None, False)), AwsScaling(None, False)
    leader.apply([["d", 2.0, 0.2, 2]])
    single.on_outcome(1.0, SUCCESS, 0.2)
    single.on_outcome(2.0, SUCCESS, 0.2)
    assert leader.policy.invocation_time() == pytest.approx(single.invocation_time())



def test_a_worker_held_at_zero_keeps_its_hold_to_itself() -> None:
    # A worker whose own term holds its mapping at 0 (its semaphore's slots taken by
    # another worker, its breaker open) receives nothing; telling the leader would pause
    # the level every other worker grows by (found with two processes sharing a
    # 2-slot semaphore: the one holding both slots ran 1 at a time)
    from sluicegate.core.config import MappingConfig
    from sluicegate.core.limit import Fixed
    from sluicegate.core.mapping import QueueMapping
    from sluicegate.core.pool import ConcurrencyPool

    policy = SharedScaling(5)
    mapping = QueueMapping(MappingConfig("q", "f"), visibility_timeout=30.0,
                           pool=ConcurrencyPool(), policy=policy)
    mapping.concurrency_limit.add(Fixed("semaphore:db", 0))
    for now in (0.0, 1.0, 2.5):
        assert mapping.poll(now) == []
    assert mapping.limit_reason(2.5) == "semaphore:db"
    assert policy.take_outbox() == []
