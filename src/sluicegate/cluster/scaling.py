"""The aws scaling policy's state, shared by every worker of a mapping (pure, sans-I/O).

With one worker, :class:`~sluicegate.core.scaling.AwsScaling` sees every receive, outcome
and throttle of the mapping and answers the mapping's limit. With several workers, each
sees only its own part, and ten independent policies would each grow to the maximum: ten
times what AWS would run. So the state is shared:

- every worker wraps the mapping's policy in a :class:`SharedScaling`: the hooks
  (``on_receive``, ``on_outcome``, ``on_throttle``, ``on_resume``) only record the
  observation, with its time, in an outbox; the coordinator appends the outboxes to one
  shared log per mapping in the store;
- one worker per mapping holds the mapping's *leader* lease (a lease of limit 1). Its
  :class:`ScaleLeader` owns an ``AwsScaling``, applies every worker's observations in
  time order, and publishes the limit the policy answers and the policy's whole state;
- every worker's :class:`SharedScaling` answers the published limit (the mapping's
  ``scaling`` term); this worker's share of the mapping's counted lease is another term
  of the mapping's limit (``cluster``). The published limit is also the limit of that
  lease, so the workers' shares together never exceed it.

A mapping therefore scales on the same observations with 1 or 10 workers (the cluster
runs ``limit`` pollers in total either way), which ``tests/cluster/test_scaling.py``
checks with explicit times. When the leader dies another worker takes the lease and
restores the last published state (:meth:`AwsScaling.snapshot` / :meth:`AwsScaling.restore`): the level does
not fall back to its initial value.

Observations travel as small JSON arrays: ``["r", now, count, waited]``,
``["o", now, kind]``, ``["t", now]``, ``["e", now]`` (resume), and
``["d", now, mean, count]``: the invocation times a worker saw since its last outbox,
as one mean (``AwsScaling.on_invocation_times``), rather than one event per invocation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sluicegate.core.scaling import AwsScaling, ScalingStatistics
from sluicegate.core.types import BatchOutcome, OutcomeKind

__all__ = ["ScaleLeader", "SharedScaling", "decode"]


def decode(raw: str) -> list[Any]:
    return list(json.loads(raw))


def apply(policy: AwsScaling, event: list[Any], at: float) -> None:
    """Apply one observation to ``policy`` at time ``at`` (never before an earlier one)."""
    kind = event[0]
    if kind == "r":
        policy.on_receive(at, int(event[2]), float(event[3]))
    elif kind == "o":
        policy.on_outcome(at, BatchOutcome(OutcomeKind(event[2])))
    elif kind == "t":
        policy.on_throttle(at)
    elif kind == "e":
        policy.on_resume(at)
    elif kind == "d":
        policy.on_invocation_times(at, float(event[2]), int(event[3]))


class ScaleLeader:
    """The leader's side: one ``AwsScaling`` fed with every worker's observations.

    Parameters:
        policy: the mapping's policy (from ``make_policy``).
        state: the last published state, to resume from (``None``: a fresh policy).
    """

    def __init__(self, policy: AwsScaling, state: dict[str, Any] | None = None) -> None:
        self.policy = policy
        self.applied_until = float("-inf")
        if state is not None:
            policy.restore(state)
            self.applied_until = float(state.get("applied_until", float("-inf")))

    def apply(self, events: Iterable[list[Any]]) -> None:
        """Apply observations, in time order; one older than what was already applied
        (a worker that reported late) is applied at that time instead, so the policy's
        time never runs backwards."""
        for event in sorted(events, key=lambda e: float(e[1])):
            at = max(float(event[1]), self.applied_until)
            apply(self.policy, event, at)
            self.applied_until = at

    def publish(self, now: float) -> tuple[int, dict[str, Any]]:
        """The limit at ``now`` and the state to store with it."""
        limit = self.policy.limit(now)
        # the policy's whole state; its times are the runtime's epoch seconds, which
        # mean the same on every host
        state = self.policy.snapshot()
        state["applied_until"] = self.applied_until
        return limit, state


class SharedScaling:
    """A worker's policy for a mapping whose level is the cluster's: the hooks record, the
    limit is the published one (this worker's share is the limit's ``cluster`` term).

    Parameters:
        published: the mapping's limit as last read from the store (:attr:`published`), or
            the policy's initial limit until a leader published one.
    """

    observes_receive_wait = True
    observes_invocation_time = True
    # No observes_hold: one worker held at 0 by a term of its own (its semaphore's slots,
    # its breaker) must not pause the level the others grow by (AwsScaling.on_held)

    def __init__(self, published: int) -> None:
        self.published = published
        self.next_published: float | None = None
        self.outbox: list[list[Any]] = []
        self._times = 0.0
        self._timed = 0
        self._timed_at = 0.0

    def limit(self, now: float) -> int:
        return self.published

    def on_receive(self, now: float, count: int, waited: float = 0.0) -> None:
        self.outbox.append(["r", now, count, waited])

    def on_outcome(self, now: float, outcome: BatchOutcome,
                   duration: float | None = None) -> None:
        if duration is not None and duration >= 0.0:
            self._times += duration
            self._timed += 1
            self._timed_at = max(self._timed_at, now)
        if outcome.kind is OutcomeKind.ERROR:  # the only kind AwsScaling reacts to
            self.outbox.append(["o", now, outcome.kind.value])

    def on_throttle(self, now: float) -> None:
        self.outbox.append(["t", now])

    def on_resume(self, now: float) -> None:
        self.outbox.append(["e", now])

    def next_change(self, now: float) -> float | None:
        return self.next_published

    def take_outbox(self) -> list[list[Any]]:
        if self._timed:
            self.outbox.append(["d", self._timed_at, self._times / self._timed, self._timed])
            self._times, self._timed = 0.0, 0
        out, self.outbox = self.outbox, []
        return out

    def statistics(self, now: float) -> ScalingStatistics:
        limit = self.limit(now)
        return ScalingStatistics("aws-shared", limit, float(limit), False, None)
