"""Preset experiments: BEHAVIOURS.md's observations of AWS's SQS pollers, ready to rerun.

Each :class:`Preset` is one experiment with a few variants (queue depths, batch sizes,
processing times, ...). Every variant is a plain scenario dict (the format of
``docs/scenarios.md``) validated by :func:`~sluicegate.sim.load_scenario`, so the
``KEY=VALUE`` overrides a user gives apply to every variant alike.

- ``aws-*`` presets run the ``aws`` scaling policy, which must reproduce what AWS does.
- ``sg-*`` presets run the same experiments with sluicegate's own ``fixed`` scaling, sized
  to what the load needs (arrival rate x duration). They are the benchmark of
  BEHAVIOURS.md's last section: never above the maximum, no over-provisioning.
- ``sg-adaptive-*`` presets (:mod:`sluicegate.sim.presets_adaptive`) run experiments
  with ``aws`` and ``scaling="adaptive"`` side by side.
- ``streams-*`` presets are stream scenarios (``[stream]``, run by
  :mod:`sluicegate.sim.streams`): how concurrency follows shards x
  ``parallelization_factor``, and what a poison record does to its shard with and
  without bisection, retry and age limits (lambda-semantics.md 6.1).
- ``topic-fanout`` is a topic scenario (``[topic]``, :mod:`sluicegate.sim.topic_scenario`):
  one topic fanned out to three queues whose functions share a small account's
  concurrency; what a reserved concurrency buys a function and costs the others, and a
  FIFO topic's groups kept in order in every queue.
- ``reserved-as-thread-pool`` (:mod:`sluicegate.sim.presets_async`) is an App plus a
  load rather than a scenario: an event bus into a function with reserved concurrency
  (its internal queue of asynchronous invocations) beside an API invoked synchronously,
  against the same load on a queue with ``maximum_concurrency``.

Quick use::

    from sluicegate.sim.presets import PRESETS, run_preset

    for name, scenario in PRESETS["aws-batch-size"].variants(["duration=1m"]):
        ...
    run_preset("aws-errors", seed=2)["variants"][0]["summary"]["throughput"]
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluicegate.sim.loading import load_any_scenario
from sluicegate.sim.scenario import Scenario
from sluicegate.sim.stream_scenario import StreamScenario
from sluicegate.sim.streams import simulate_any
from sluicegate.sim.topic_scenario import TopicScenario

__all__ = ["PRESETS", "Preset", "run_preset"]


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``patch`` merged in (tables merged key by key;
    anything else, arrays included, replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True, eq=False)
class Preset:
    """One experiment: a base scenario and named variants of it.

    Attributes:
        name: the preset's name (``aws-queue-depth``).
        description: one line, shown in listings.
        base: the scenario dict shared by every variant.
        patches: ``(variant name, patch)`` pairs in display order; each patch is merged
            into ``base`` (tables key by key).
    """

    name: str
    description: str
    base: Mapping[str, Any]
    patches: tuple[tuple[str, Mapping[str, Any]], ...]

    def variant_dicts(self) -> list[tuple[str, dict[str, Any]]]:
        """``(variant name, scenario dict)`` in display order, before overrides."""
        out = []
        for variant, patch in self.patches:
            data = _merge(self.base, patch)
            data["name"] = f"{self.name}/{variant}"
            data.setdefault("description", self.description)
            out.append((variant, data))
        return out

    def variants(self, overrides: Sequence[str] = ()
                 ) -> list[tuple[str, Scenario | StreamScenario | TopicScenario]]:
        """``(variant name, validated scenario)`` in display order, ``overrides``
        (``KEY=VALUE``) applied to every variant.

        Raises:
            ScenarioError: an override that makes a variant invalid.
        """
        return [(variant, load_any_scenario(data, overrides=list(overrides)))
                for variant, data in self.variant_dicts()]


def run_preset(name: str, overrides: Sequence[str] = (), seed: int | None = None
               ) -> dict[str, Any]:
    """Run every variant of preset ``name``.

    Parameters:
        name: a key of :data:`PRESETS`.
        overrides: ``KEY=VALUE`` strings applied to every variant.
        seed: when given, the seed of every variant (as ``seed=N`` after ``overrides``).

    Returns:
        ``{"preset": name, "variants": [{"name", "scenario", "summary", "series"}, ...]}``
        in display order (``scenario``, ``summary`` and ``series`` as
        :meth:`SimResult.to_dict` gives them).

    Raises:
        KeyError: an unknown preset name.
        ScenarioError: an override that makes a variant invalid.
    """
    try:
        preset = PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
    overrides = list(overrides)
    if seed is not None:
        overrides.append(f"seed={int(seed)}")
    variants = []
    for variant, scenario in preset.variants(overrides):
        variants.append({"name": variant, **simulate_any(scenario).to_dict()})
    return {"preset": name, "variants": variants}


# ---------------------------------------------------------------------- the experiments

QUEUE_DEPTHS = (1_000, 10_000, 100_000, 1_000_000)
"""Observation 1's backlogs."""

BATCH_SIZES = (1, 2, 5)
"""Observation 2's batch sizes."""

BATCH_SIZE_BACKLOG = 100_000
"""Observation 2's backlog: deep enough that no variant drains in the first minute."""

BATCH_SIZE_RUN = "3m"
"""Observation 2's run length: the first minute after resuming runs 5 batches for every
batch size (``ENABLE_SCALE_UP_DELAY``), and batch size 1 needs about 90 s of +300/min
growth after it to empty 100k; three minutes lets every variant drain."""

RESUME_AT = "10s"
"""When observations 1 and 2 resume the paused mapping (the backlog is there from t=0)."""

PROCESSING_TIMES_MS = (100, 200, 400, 600)
"""Observation 3's processing times."""

PRODUCER_RATE = 750
"""Observation 3's (and 6's) producer rate, messages/s."""

MAX_CONCURRENCY_DURATION_MS = 400
"""Observation 6's processing time: 750 msg/s x 0.4 s needs 300 concurrent invocations."""

MAX_CONCURRENCY_CAPS = (("unbounded", None), ("cap-400", 400), ("cap-200", 200))
"""Observation 6's maximum concurrencies: none, a good fraction below the settled
unbounded concurrency (but above the 300 the load needs), and much lower (below need)."""

ERROR_RATES = (0.0, 0.01, 0.05, 0.10)
"""Observation 7's error rates."""

ERRORS_RUN = "12m"
"""Observation 7's run length. The original runs lasted 22 minutes; the shape (ramp,
steady state, errors from minute 5 to 9, recovery) is over by minute 12, and each
simulated minute at 2,000 msg/s costs several seconds of wall time."""

ERROR_PRODUCER_RATE = 2000
"""Observation 7's load: 2,000 msg/s x 50 ms needs 100 concurrent invocations."""


def _backlog_base(duration: str) -> dict[str, Any]:
    return {
        "seed": 1,
        "duration": duration,
        "queue": {"backlog": 0},
        "function": {"duration": "200ms"},
        "mapping": {"batch_size": 1, "enabled": False,
                    "pauses": [{"at": 0, "until": RESUME_AT}]},
    }


def _producer_base(rate: float, duration: str, produce_for: str, fn_ms: int
                   ) -> dict[str, Any]:
    return {
        "seed": 1,
        "duration": duration,
        "producer": {"rate": rate, "stop": produce_for},
        "function": {"duration": f"{fn_ms}ms"},
        "mapping": {"batch_size": 1},
    }


def _errors_base() -> dict[str, Any]:
    return {
        "seed": 1,
        "duration": ERRORS_RUN,
        "producer": {"rate": ERROR_PRODUCER_RATE},
        "function": {"duration": "50ms"},
        "mapping": {"batch_size": 1},
    }


def _error_patches(kind: str, report: bool) -> tuple[tuple[str, dict[str, Any]], ...]:
    out = []
    for rate in ERROR_RATES:
        out.append((f"errors-{rate:.0%}", {
            "function": {"errors": [{"start": "5m", "stop": "9m", "rate": rate, "kind": kind}]},
            "mapping": {"report_batch_item_failures": report},
        }))
    return tuple(out)


def _fixed(patches: tuple[tuple[str, Mapping[str, Any]], ...],
           limits: Sequence[int]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The same variants with the ``fixed`` policy at the given limits."""
    out = []
    for (variant, patch), limit in zip(patches, limits, strict=True):
        out.append((variant, _merge(patch, {
            "mapping": {"scaling": "fixed", "maximum_concurrency": limit}})))
    return tuple(out)


_QUEUE_DEPTH = tuple((f"depth-{n:,}".replace(",", "_"), {"queue": {"backlog": n}})
                     for n in QUEUE_DEPTHS)
_BATCH_SIZE = tuple((f"batch-{b}", {"mapping": {"batch_size": b}}) for b in BATCH_SIZES)
_PROCESSING = tuple((f"{ms}ms", {"function": {"duration": f"{ms}ms"}})
                    for ms in PROCESSING_TIMES_MS)
_MAX_CONCURRENCY = tuple(
    (name, {"mapping": {"maximum_concurrency": cap}} if cap else {})
    for name, cap in MAX_CONCURRENCY_CAPS)

_NEED_PROCESSING = [max(2, round(PRODUCER_RATE * ms / 1000 * 1.1)) for ms in PROCESSING_TIMES_MS]
"""sluicegate's fixed limits for observation 3: what the load needs plus 10%."""

_NEED_ERRORS = max(2, round(ERROR_PRODUCER_RATE * 0.05 * 1.1))


STREAM_SHARDS = 4
"""Shards of the stream presets."""

PARALLELIZATION_FACTORS = (1, 2, 5, 10)
"""``streams-parallelization``'s factors: 4 to 40 concurrent batches on 4 shards."""

PARALLELIZATION_RATE = 500
"""``streams-parallelization``'s records/s: a lane runs batches of 10 records for 1 s, 10
records/s, so even 40 lanes (400 records/s) cannot keep up and every lane stays busy."""

POISON_RATE = 40
"""``streams-poison``'s records/s over 100 keys (10 per shard, 10 per batch of 10)."""

POISON_AT = "30s"
POISON_KEY = "k7"
"""``streams-poison``'s poison record: put at 30 s with partition key ``k7``."""


def _stream_base(rate: float, duration: str, fn: str, batch: int) -> dict[str, Any]:
    # Retention stays Kinesis's minimum (24 h): runs of minutes keep every record they
    # put in memory, a few tens of thousands.
    return {
        "seed": 1,
        "duration": duration,
        "stream": {"shard_count": STREAM_SHARDS},
        "producer": {"rate": rate, "partition_keys": 1000 if rate > 100 else 100},
        "function": {"duration": fn},
        "mapping": {"batch_size": batch},
    }


_PARALLELIZATION = tuple((f"factor-{f}", {"mapping": {"parallelization_factor": f}})
                         for f in PARALLELIZATION_FACTORS)
_POISON: tuple[tuple[str, dict[str, Any]], ...] = (
    ("default", {}),
    ("bisect", {"mapping": {"bisect_batch_on_function_error": True}}),
    ("retries-2", {"mapping": {"maximum_retry_attempts": 2}}),
    ("max-age-60", {"mapping": {"maximum_record_age": 60}}),
    ("bisect-retries-2", {"mapping": {"bisect_batch_on_function_error": True,
                                      "maximum_retry_attempts": 2}}),
)


FIFO_GROUPS = (1, 10, 50, 200)
"""``fifo-groups``' variants: message groups the producer spreads its messages over."""

FIFO_MAX_CONCURRENCY = 100
"""``fifo-groups``' maximum concurrency: above every variant's need but the last's."""

_FIFO_GROUPS: tuple[tuple[str, dict[str, Any]], ...] = (
    *((f"groups-{g}", {"queue": {"groups": g}}) for g in FIFO_GROUPS),
    ("groups-200-hot-50%", {"queue": {"groups": 200, "hot_group_share": 0.5}}),
)


def _fifo_base() -> dict[str, Any]:
    return {
        "seed": 1,
        "duration": "3m",
        "queue": {"fifo": True, "visibility_timeout": 30},
        "producer": {"rate": 500, "stop": "2m"},
        "function": {"duration": "200ms"},
        "mapping": {"batch_size": 10, "maximum_concurrency": FIFO_MAX_CONCURRENCY,
                    "scaling": "fixed"},
    }


TOPIC_RATE = 300
"""``topic-fanout``'s publishes/s (each reaches all three queues), for two minutes."""

TOPIC_ACCOUNT = 200
"""``topic-fanout``'s account concurrency: a modest account, 100 of it reservable (AWS's
``min_unreserved`` of 100 stays for the others)."""

TOPIC_RESERVED = 50
"""``billing``'s reserved concurrency: above its need (300 msg/s x 100 ms = 30), so that
it never waits for the slow subscriber."""

TOPIC_GROUPS = 100
"""``topic-fanout``'s message groups in its FIFO variant."""

TOPIC_ERROR_RATE = 0.05
"""``audit``'s thrown errors: a rate the ``aws`` policy's error backoff still keeps up
with (at 10% it falls behind, as observation 7 shows for a queue of its own)."""


def _topic_fanout(*, reserved: bool, fifo: bool) -> dict[str, Any]:
    """``topic-fanout``'s variant: a topic to three subscribers on one small account.

    - ``billing``: 100 ms per message, with reserved concurrency (unless ``reserved`` is
      false): it needs 30 at once;
    - ``analytics``: about 1 s per message (lognormal, p99 2 s) and no reservation: it
      would need 300 at once, more than the unreserved pool holds, so it takes what it
      can and its queue grows;
    - ``audit``: 100 ms, with thrown errors; failed messages come back after its 10 s
      visibility timeout and go to a dead-letter queue after 3 receives.
    """
    return {
        "seed": 1,
        "duration": "3m",
        "account": {"concurrency_limit": TOPIC_ACCOUNT},
        "topic": ({"name": "orders.fifo", "groups": TOPIC_GROUPS} if fifo
                  else {"name": "orders"}),
        "producer": {"rate": TOPIC_RATE, "stop": "2m"},
        "subscribers": [
            {"name": "billing",
             "function": {"duration": "100ms",
                          **({"reserved_concurrency": TOPIC_RESERVED} if reserved else {})},
             "mapping": {"batch_size": 1}},
            {"name": "analytics",
             "queue": {"visibility_timeout": 60},
             "function": {"duration": {"distribution": "lognormal", "median": "1s",
                                       "p99": "2s"},
                          "timeout": 10},
             "mapping": {"batch_size": 1}},
            {"name": "audit",
             "queue": {"visibility_timeout": 10, "max_receive_count": 3},
             "function": {"duration": "100ms", "errors": [{"rate": TOPIC_ERROR_RATE}]},
             "mapping": {"batch_size": 1}},
        ],
    }


def _topic_patch(**kwargs: bool) -> dict[str, Any]:
    variant = _topic_fanout(**kwargs)
    return {"topic": variant["topic"], "subscribers": variant["subscribers"]}


def _presets() -> dict[str, Preset]:
    qd = _backlog_base("2m")
    bs = _merge(_backlog_base(BATCH_SIZE_RUN), {"queue": {"backlog": BATCH_SIZE_BACKLOG}})
    pt = _producer_base(PRODUCER_RATE, "5m", "4m", 200)
    mc = _producer_base(PRODUCER_RATE, "4m", "4m", MAX_CONCURRENCY_DURATION_MS)
    er = _errors_base()
    presets = [
        Preset("aws-queue-depth",
               "obs 1: paused mapping, 1k-1M backlog, resume; batch 1, 200 ms",
               qd, _QUEUE_DEPTH),
        Preset("aws-batch-size",
               "obs 2: 100k backlog, resume; batch sizes 1, 2, 5; 200 ms",
               bs, _BATCH_SIZE),
        Preset("aws-processing-time",
               "obs 3: 750 msg/s for 4 min; processing 100, 200, 400, 600 ms",
               pt, _PROCESSING),
        Preset("aws-max-concurrency",
               "obs 6: 750 msg/s, 400 ms; unbounded vs maximum concurrency 400 and 200",
               mc, _MAX_CONCURRENCY),
        Preset("aws-errors",
               "obs 7: 2,000 msg/s, 50 ms, 12 min; 0-10% thrown errors from minute 5 to 9",
               er, _error_patches("raise", False)),
        Preset("aws-batch-item-failures",
               "obs 7: as aws-errors, failures reported as batch item failures",
               er, _error_patches("batch_item_failure", True)),
        Preset("sg-queue-depth",
               "aws-queue-depth with sluicegate's fixed scaling at 100",
               qd, _fixed(_QUEUE_DEPTH, [100] * len(QUEUE_DEPTHS))),
        Preset("sg-processing-time",
               "aws-processing-time with fixed scaling at the load's need + 10%",
               pt, _fixed(_PROCESSING, _NEED_PROCESSING)),
        Preset("sg-errors",
               "aws-errors with fixed scaling at the load's need x 1.1 (110)",
               er, _fixed(_error_patches("raise", False), [_NEED_ERRORS] * len(ERROR_RATES))),
        Preset("streams-parallelization",
               "stream, 4 shards, 500 rec/s, 1 s per batch of 10: concurrency = shards x "
               "factor (1, 2, 5, 10)",
               _stream_base(PARALLELIZATION_RATE, "3m", "1s", 10), _PARALLELIZATION),
        Preset("streams-poison",
               "stream, 4 shards, 40 rec/s, poison record at 30 s: default, bisect, "
               "2 retries, max age 60 s, bisect + 2 retries",
               _merge(_stream_base(POISON_RATE, "5m", "100ms", 10), {
                   "stream": {"poison": [{"at": POISON_AT, "key": POISON_KEY}]},
                   "mapping": {"on_failure": True}}),
               _POISON),
        Preset("fifo-groups",
               "FIFO queue, 500 msg/s for 2 min, 200 ms, max concurrency 100: concurrency "
               "follows active groups (1, 10, 50, 200; 200 with one hot group)",
               _fifo_base(), _FIFO_GROUPS),
        Preset("topic-fanout",
               "topic, 300 msg/s to 3 queues on a 200-concurrency account: billing "
               "(reserved 50), slow analytics, audit (5% errors); unreserved; FIFO topic",
               _topic_fanout(reserved=True, fifo=False),
               (("reserved", {}),
                ("unreserved", _topic_patch(reserved=False, fifo=False)),
                ("fifo", _topic_patch(reserved=True, fifo=True)))),
    ]
    from sluicegate.sim.presets_breaker import breaker_presets
    presets += breaker_presets(Preset)
    from sluicegate.sim.presets_adaptive import adaptive_presets  # here: it imports Preset
    presets.extend(adaptive_presets())
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _presets()
"""Every preset by name, in display order."""

from sluicegate.sim.presets_margin import MARGIN_PRESET  # noqa: E402  (it imports Preset)

PRESETS[MARGIN_PRESET.name] = MARGIN_PRESET

# registers itself (imported first, it imports this module, which then finds it partly
# initialised: a plain import of it works where a name from it would not yet exist)
import sluicegate.sim.presets_async  # noqa: E402, F401
