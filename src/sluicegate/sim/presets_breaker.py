"""The circuit-breaker preset: a downstream outage with and without a breaker.

``breaker-outage``: a queue fed at a constant rate, whose handler's downstream is down for
:data:`OUTAGE` (every invocation fails, modelled by a ``[[function.errors]]`` window at
rate 1: the handler raises as a refused connection would make it), with
``max_receive_count`` :data:`MAX_RECEIVE_COUNT` and a visibility timeout of
:data:`VISIBILITY_TIMEOUT`:

- ``aws``: no breaker. Each message received during the outage fails, returns after the
  visibility timeout and is received again: one lasting longer than max_receive_count x
  visibility timeout (15 s) dead-letters good messages (AWS's behaviour; lambda-semantics.md
  section 4);
- ``breaker``: a breaker (:data:`BREAKER`: trips at 50% failures over 10 calls once 5
  are in, open 30 s, doubling per failed probe). The calls that trip it spend one
  receive of their messages, each failed probe one more; while it is open nothing is
  received. With at most ``max_receive_count - 2`` failed probes during the outage (here
  one: probes 30 s and 90 s after the trip), no message is dead-lettered, and the
  backlog is processed once a probe succeeds;
- ``breaker-short-wait``: the same breaker opened for 5 s (doubling): three failed probes
  during the outage (5, 15 and 35 s after the trip), the same messages in each (the
  oldest visible), so some reach their fourth receive and are dead-lettered: fewer than
  without a breaker, not none. The rule the docs give (docs/control.md, circuit
  breakers) comes from here.

Registered in :data:`~sluicegate.sim.presets.PRESETS` by :func:`breaker_presets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from sluicegate.sim.presets import Preset

__all__ = [
    "BREAKER",
    "MAX_RECEIVE_COUNT",
    "OUTAGE",
    "OUTAGE_START",
    "RATE",
    "VISIBILITY_TIMEOUT",
    "breaker_presets",
]

OUTAGE_START: Final = 60.0
"""When the downstream goes down, seconds into the run."""

OUTAGE: Final = 60.0
"""How long it stays down, seconds."""

VISIBILITY_TIMEOUT: Final = 5
"""The queue's visibility timeout, seconds."""

MAX_RECEIVE_COUNT: Final = 3
"""Receives before a message goes to the dead-letter queue."""

RATE: Final = 20.0
"""Messages per second, sent for the first four minutes of five."""

BREAKER: Final[dict[str, Any]] = {
    "failure_rate_threshold": 50,
    "minimum_calls": 5,
    "sliding_window_size": 10,
    "open_wait": "30s",
    "open_wait_multiplier": 2,
    "open_wait_max": "5m",
}
"""The ``breaker`` variant's ``[mapping.breaker]``."""


def _base() -> dict[str, Any]:
    return {
        "seed": 1,
        "duration": "5m",
        "bucket": "10s",
        "queue": {"visibility_timeout": VISIBILITY_TIMEOUT,
                  "max_receive_count": MAX_RECEIVE_COUNT},
        "function": {
            "duration": "100ms",
            "timeout": 5,
            "errors": [{"start": f"{OUTAGE_START:g}s",
                        "stop": f"{OUTAGE_START + OUTAGE:g}s", "rate": 1.0}],
        },
        "producers": [{"kind": "constant", "rate": RATE, "stop": "4m"}],
    }


def breaker_presets(preset: type[Preset]) -> list[Preset]:
    """The breaker presets, built with the registry's :class:`Preset` class (passed in:
    this module is imported by the registry, not the other way round)."""
    short = {**BREAKER, "open_wait": "5s"}
    return [
        preset(
            "breaker-outage",
            f"downstream down {OUTAGE:g} s, max_receive_count {MAX_RECEIVE_COUNT}, "
            f"visibility {VISIBILITY_TIMEOUT} s: aws dead-letters; a breaker holds the "
            "messages (30 s and 5 s open waits)",
            _base(),
            (("aws", {}),
             ("breaker", {"mapping": {"breaker": BREAKER}}),
             ("breaker-short-wait", {"mapping": {"breaker": short}})),
        ),
    ]
