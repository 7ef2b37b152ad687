"""A circuit breaker in front of a downstream, as a term of a mapping's limit.

A :class:`Breaker` watches the invocations of the mappings that call one downstream (the
:class:`~sluicegate.core.signals.Sample` each finished invocation gives their
:class:`~sluicegate.core.limit.ConcurrencyLimit`) and stops them from reading while the
downstream looks down, so that no message's receive count, and no stream retry, is
spent on a downstream that cannot answer.

States (the classic three of Nygard's *Release It!*, with the sliding windows, the
minimum number of calls and the slow-call rate of resilience4j's CircuitBreaker, whose
setting names sluicegate follows):

``closed``
    Calls go through; each finished call is recorded in a sliding window: the last
    ``sliding_window_size`` calls (``sliding_window_type="count"``) or the calls that
    ended in the last ``sliding_window_size`` seconds (``"time"``, in one-second
    buckets). Once the window holds ``minimum_calls`` calls, the breaker trips when the
    failure rate (errors and timeouts) reaches ``failure_rate_threshold`` percent, or
    the slow-call rate reaches ``slow_call_rate_threshold`` percent. A call is slow when
    its latency (what the handler reported with ``context.report(latency=...)``, else
    the invocation's duration) is at least ``slow_call_duration``, or when the handler
    reported an overload (``context.report(overload=True)``). Throttles are not calls:
    the pool refused them, the downstream never saw them.
``open``
    Nothing reads: as a term the breaker's value is 0. It stays open for ``open_wait``
    seconds; every trip that follows a failed probe without the breaker closing in
    between multiplies the wait by ``open_wait_multiplier``, up to ``open_wait_max``
    (exponential backoff). With an external probe (a callable or an HTTP URL, run by the
    runtime every ``probe_interval`` seconds while open: :meth:`Breaker.probe_result`),
    the wait does not end the open state: the probe's first success does, so no message
    is spent to learn that the downstream is still down.
``half_open``
    ``half_open_calls`` probe invocations may start (the term's value is the number of
    probes still to succeed, so a mapping never has more than that many probes in
    flight, nor starts more than ``half_open_calls`` in one half-open period); that many
    successes close the breaker (its window starts empty), and a failed or slow probe
    opens it again.

An operator (or a controller) may :meth:`~Breaker.trip` it by hand, which holds it open
until :meth:`~Breaker.reset` (resilience4j's forced-open state), and reset it, which
closes it whatever its state.

Only the calls that started in the current state count: a call that was in flight when
the breaker opened, or started before it turned half-open, ends without effect.

A breaker shared by several mappings (one downstream, ``app.breaker(name, ...)``) sees
the calls of all of them; each of them may have ``half_open_calls`` probes in flight.

Pure: every method that depends on time takes ``now`` (seconds) and none reads a clock.
State changes made by time (open to half-open when the wait ends) are seen by the first
call that takes a ``now`` past it; the callbacks given to :meth:`Breaker.on_change` run
then.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sluicegate.core.limit import NO_LIMIT
from sluicegate.core.settings import SETTINGS
from sluicegate.core.signals import Sample, SampleKind
from sluicegate.errors import ConfigError

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "TERM_BREAKER",
    "Breaker",
    "BreakerConfig",
    "BreakerStatistics",
    "Breakers",
    "ChangeCallback",
]

TERM_BREAKER: Final = "breaker"
"""The name of a breaker's term in a mapping's limit."""

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

BY_BREAKER: Final = "breaker"
"""Who made a change the breaker made by itself (its window, its wait, a probe)."""

ChangeCallback = Callable[[str, str, str, str], None]
"""``callback(old, new, reason, by)``: a state change (states are ``"closed"``,
``"open"``, ``"half_open"``; ``by`` is ``"breaker"`` for the breaker's own changes)."""

WindowType = Literal["count", "time"]

_FAILED: Final = (SampleKind.ERROR, SampleKind.TIMEOUT)
_THROTTLE: Final = SampleKind.THROTTLE


_S: Final = SETTINGS
"""Short name for the field defaults below."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """A breaker's settings (see the module docstring for what each does).

    Parameters:
        failure_rate_threshold: percent of failed calls (errors, timeouts) in the window
            that trips it, 1-100 (default 50).
        slow_call_rate_threshold: percent of slow calls that trips it, 1-100 (default
            100).
        slow_call_duration: seconds from which a call is slow, 0.001-900; ``None``
            (default): only calls whose handler reported an overload are slow.
        sliding_window_type: ``"count"`` (the last N calls, default) or ``"time"`` (the
            calls of the last N seconds).
        sliding_window_size: N, 1-10,000 (default 20).
        minimum_calls: calls the window must hold before the breaker may trip, 1-10,000
            (default 10); with a count window, at most ``sliding_window_size``.
        open_wait: seconds open before probes, 0.01-86,400 (default 30).
        open_wait_multiplier: the wait's growth per repeated trip, 1-100 (default 1: no
            growth).
        open_wait_max: the longest wait, seconds, at least ``open_wait`` (default 600).
        half_open_calls: probe invocations let through half-open, and successes needed
            to close, 1-1,000 (default 1).
        probe: an external check of the downstream while open: a callable (no argument;
            true, or an awaitable of true, means up) or an ``http://``/``https://`` URL
            (a 2xx answer means up); ``None`` (default): the wait alone ends the open
            state.
        probe_interval: seconds between two checks of ``probe``, 0.01-3,600 (default 5).

    Raises:
        ConfigError: a value out of its range, or settings that contradict each other.
    """

    failure_rate_threshold: float = _S["failure_rate_threshold"].default
    slow_call_rate_threshold: float = _S["slow_call_rate_threshold"].default
    slow_call_duration: float | None = _S["slow_call_duration"].default
    sliding_window_type: WindowType = _S["sliding_window_type"].default
    sliding_window_size: int = _S["sliding_window_size"].default
    minimum_calls: int = _S["minimum_calls"].default
    open_wait: float = _S["open_wait"].default
    open_wait_multiplier: float = _S["open_wait_multiplier"].default
    open_wait_max: float = _S["open_wait_max"].default
    half_open_calls: int = _S["half_open_calls"].default
    probe: Callable[[], Any] | str | None = None
    probe_interval: float = _S["probe_interval"].default

    def __post_init__(self) -> None:
        self.validate("breaker")

    def validate(self, context: str) -> None:
        """Check and normalise every field; ``context`` names the breaker in errors."""
        set_ = object.__setattr__
        for name in ("failure_rate_threshold", "slow_call_rate_threshold",
                     "slow_call_duration", "sliding_window_type", "sliding_window_size",
                     "minimum_calls", "open_wait", "open_wait_multiplier", "open_wait_max",
                     "half_open_calls", "probe_interval"):
            set_(self, name, SETTINGS[name].check(getattr(self, name), context))
        if self.sliding_window_type == "count" and self.minimum_calls > self.sliding_window_size:
            raise ConfigError(
                "minimum_calls", self.minimum_calls,
                f"at most sliding_window_size ({self.sliding_window_size}) with a count "
                "window", context,
            )
        if self.open_wait_max < self.open_wait:
            raise ConfigError(
                "open_wait_max", self.open_wait_max, f">= open_wait ({self.open_wait:g} s)",
                context,
            )
        probe = self.probe
        if probe is not None and not callable(probe):
            if not isinstance(probe, str) or not probe.startswith(("http://", "https://")):
                raise ConfigError(
                    "probe", probe, "a callable or an http:// or https:// URL", context
                )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], context: str) -> BreakerConfig:
        """A config from keyword settings (the App's ``app.breaker(name, **settings)``);
        an unknown name is a :class:`ConfigError` naming it."""
        known = cls.__dataclass_fields__
        for key in settings:
            if key not in known:
                raise ConfigError(
                    key, settings[key], "a breaker setting: " + ", ".join(known), context
                )
        try:
            return cls(**settings)
        except ConfigError as exc:
            raise ConfigError(exc.parameter, exc.value, exc.allowed, context) from None


@dataclass(frozen=True, slots=True)
class BreakerStatistics:
    """A snapshot of a breaker, for status displays and metrics.

    Attributes:
        state: ``"closed"``, ``"open"`` or ``"half_open"``.
        calls: calls in the window.
        failure_rate: percent of failed calls in the window (0 when empty).
        slow_call_rate: percent of slow calls in the window.
        trips: times it opened (by itself or by hand).
        consecutive_trips: trips since it last closed (the open wait's exponent + 1).
        open_until: when the open wait ends (``None``: not open, or held open by hand or
            waiting for its probe).
        reason: why it last changed state.
        by: who made the last change.
    """

    state: str
    calls: int
    failure_rate: float
    slow_call_rate: float
    trips: int
    consecutive_trips: int
    open_until: float | None
    reason: str
    by: str


class _CountWindow:
    """The last ``size`` calls, with running sums."""

    __slots__ = ("calls", "failed", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: deque[tuple[bool, bool]] = deque()
        self.failed = 0
        self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        calls = self.calls
        if len(calls) == self.size:
            old_failed, old_slow = calls.popleft()
            self.failed -= old_failed
            self.slow -= old_slow
        calls.append((failed, slow))
        self.failed += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return len(self.calls), self.failed, self.slow

    def clear(self) -> None:
        self.calls.clear()
        self.failed = self.slow = 0


class _TimeWindow:
    """The calls that ended in the last ``size`` seconds, in one-second buckets
    (``[second, calls, failed, slow]``), with running sums."""

    __slots__ = ("buckets", "calls", "failed", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self.buckets: deque[list[int]] = deque()
        self.calls = self.failed = self.slow = 0

    def _expire(self, now: float) -> None:
        oldest = math.floor(now) - self.size + 1
        buckets = self.buckets
        while buckets and buckets[0][0] < oldest:
            _, calls, failed, slow = buckets.popleft()
            self.calls -= calls
            self.failed -= failed
            self.slow -= slow

    def add(self, now: float, failed: bool, slow: bool) -> None:
        self._expire(now)
        second = math.floor(now)
        buckets = self.buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
        else:
            bucket = [second, 0, 0, 0]
            buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        self.calls += 1
        self.failed += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        self._expire(now)
        return self.calls, self.failed, self.slow

    def clear(self) -> None:
        self.buckets.clear()
        self.calls = self.failed = self.slow = 0


class Breaker:
    """One circuit breaker (see the module docstring); a term of every limit it is
    added to (named :data:`TERM_BREAKER`).

    Parameters:
        config: its settings.
        label: its name (a shared breaker's name in the App; a mapping's own breaker is
            named after the mapping), as status and the registry show it.
        now: when it is created (it starts closed).

    Attributes:
        name: :data:`TERM_BREAKER` (the term's name in a limit).
        label: see Parameters.
        config: see Parameters.
        trips: times it opened.
    """

    __slots__ = (
        "_by",
        "_callbacks",
        "_consecutive",
        "_half_open_since",
        "_held",
        "_open_until",
        "_reason",
        "_since",
        "_state",
        "_successes",
        "_window",
        "config",
        "label",
        "name",
        "trips",
    )

    def __init__(self, config: BreakerConfig, *, label: str = TERM_BREAKER,
                 now: float = 0.0) -> None:
        self.config = config
        self.label = label
        self.name = TERM_BREAKER
        self._window: _CountWindow | _TimeWindow = (
            _CountWindow(config.sliding_window_size)
            if config.sliding_window_type == "count"
            else _TimeWindow(config.sliding_window_size)
        )
        self._state = CLOSED
        self._since = now
        self._open_until: float | None = None
        self._held = False
        """Opened by hand: stays open until :meth:`reset`."""
        self._half_open_since = now
        self._successes = 0
        self._consecutive = 0
        self._reason = "created"
        self._by = BY_BREAKER
        self._callbacks: list[ChangeCallback] = []
        self.trips = 0

    def __repr__(self) -> str:
        return f"Breaker({self.label!r}, {self._state})"

    # ------------------------------------------------------------------ state

    def state(self, now: float) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` at ``now``."""
        if self._state == OPEN:
            until = self._open_until
            if until is not None and now >= until:
                self._half_open(until, "open wait ended", BY_BREAKER)
        return self._state

    @property
    def since(self) -> float:
        """When it entered its current state (as of the last call that took ``now``)."""
        return self._since

    def open_until(self, now: float) -> float | None:
        """When the open wait ends; ``None`` when not open, or open until a probe
        succeeds or an operator resets it."""
        return self._open_until if self.state(now) == OPEN else None

    # ------------------------------------------------------------------ as a term

    def value(self, now: float) -> int:
        """:data:`NO_LIMIT` closed, 0 open, the probes still to succeed half-open."""
        state = self._state
        if state == CLOSED:
            return NO_LIMIT
        state = self.state(now)
        if state == OPEN:
            return 0
        if state == HALF_OPEN:
            return self.config.half_open_calls - self._successes
        return NO_LIMIT

    def next_change(self, now: float) -> float | None:
        """When the open wait ends (``None`` in every other case: the breaker then
        changes on events, and whoever reports them wakes the mappings)."""
        if self._state == OPEN and self.state(now) == OPEN:
            return self._open_until
        return None

    # ------------------------------------------------------------------ events

    def observe(self, now: float, sample: Sample) -> None:
        """Record one finished invocation (a throttle is ignored)."""
        kind = sample.kind
        if kind is _THROTTLE:
            return
        state = self.state(now) if self._state != CLOSED else CLOSED
        if state == OPEN:
            return  # in flight when it opened: without effect
        failed = kind in _FAILED
        slow = sample.overload
        limit = self.config.slow_call_duration
        if not slow and limit is not None:
            latency = sample.latency
            if latency is None:
                latency = sample.end - sample.start
            slow = latency >= limit
        if state == HALF_OPEN:
            if sample.start < self._half_open_since:
                return  # started before the probes were let through
            if failed or slow:
                what = "failed" if failed else "was slow"
                self._open(now, f"a probe {what}", BY_BREAKER)
                return
            self._successes += 1
            if self._successes >= self.config.half_open_calls:
                self._close(now, f"{self._successes} probe(s) succeeded", BY_BREAKER)
            return
        if sample.start < self._since:
            return  # started while it was open or half-open
        window = self._window
        window.add(now, failed, slow)
        calls, failures, slows = window.totals(now)
        cfg = self.config
        if calls < cfg.minimum_calls:
            return
        if failures * 100.0 >= cfg.failure_rate_threshold * calls:
            self._open(now, f"failure rate {100.0 * failures / calls:.0f}% over "
                            f"{calls} calls", BY_BREAKER)
        elif slows * 100.0 >= cfg.slow_call_rate_threshold * calls:
            self._open(now, f"slow-call rate {100.0 * slows / calls:.0f}% over "
                            f"{calls} calls", BY_BREAKER)

    def probe_result(self, now: float, ok: bool, detail: str = "") -> None:
        """The external probe's answer at ``now``: a success while open (and not held
        open by hand) turns the breaker half-open; anything else changes nothing."""
        if ok and self.state(now) == OPEN and not self._held:
            reason = "probe succeeded" + (f": {detail}" if detail else "")
            self._half_open(now, reason, BY_BREAKER)

    def probe_due(self, now: float) -> bool:
        """Whether the external probe should be checked (open, not held by hand, and a
        probe configured)."""
        return self.config.probe is not None and not self._held and self.state(now) == OPEN

    def trip(self, now: float, reason: str = "tripped by hand", by: str = "operator") -> None:
        """Open it and hold it open until :meth:`reset` (no wait, no probe)."""
        self._open(now, reason, by, held=True)

    def reset(self, now: float, reason: str = "reset by hand", by: str = "operator") -> None:
        """Close it (whatever its state), with an empty window and no trip history."""
        self._close(now, reason, by)

    def on_change(self, callback: ChangeCallback) -> None:
        """Call ``callback(old, new, reason, by)`` after every state change."""
        self._callbacks.append(callback)

    # ------------------------------------------------------------------ snapshots

    def statistics(self, now: float) -> BreakerStatistics:
        """A snapshot at ``now``."""
        state = self.state(now)
        calls, failures, slows = self._window.totals(now)
        return BreakerStatistics(
            state=state,
            calls=calls,
            failure_rate=100.0 * failures / calls if calls else 0.0,
            slow_call_rate=100.0 * slows / calls if calls else 0.0,
            trips=self.trips,
            consecutive_trips=self._consecutive,
            open_until=self._open_until if state == OPEN else None,
            reason=self._reason,
            by=self._by,
        )

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """Its state as a JSON-able dict (for the store). With ``now``, ``remaining``
        holds the seconds left of the open wait, for a process whose clock differs."""
        state = self.state(now) if now is not None else self._state
        data: dict[str, Any] = {
            "label": self.label,
            "state": state,
            "since": self._since,
            "open_until": self._open_until,
            "held": self._held,
            "successes": self._successes,
            "consecutive_trips": self._consecutive,
            "trips": self.trips,
            "reason": self._reason,
            "by": self._by,
        }
        if now is not None and self._open_until is not None and state == OPEN:
            data["remaining"] = max(0.0, self._open_until - now)
        return data

    def restore(self, data: Mapping[str, Any], now: float | None = None) -> None:
        """Take the state of a :meth:`snapshot` (the window starts empty). With ``now``
        and a ``remaining`` in ``data``, the open wait ends ``remaining`` seconds after
        ``now``. Calls the :meth:`on_change` callbacks when the state differs.

        Raises:
            ValueError: ``data`` is not a snapshot.
        """
        state = data.get("state")
        if state not in (CLOSED, OPEN, HALF_OPEN):
            raise ValueError(f"breaker snapshot with state {state!r}")
        old = self._state
        self._state = state
        since = float(data.get("since", 0.0)) if now is None else now
        self._since = since
        until = data.get("open_until")
        if now is not None and "remaining" in data:
            until = now + float(data["remaining"])
        self._open_until = None if until is None else float(until)
        self._held = bool(data.get("held", False))
        self._successes = int(data.get("successes", 0))
        self._consecutive = int(data.get("consecutive_trips", 0))
        self.trips = int(data.get("trips", self.trips))
        self._reason = str(data.get("reason", "restored"))
        self._by = str(data.get("by", BY_BREAKER))
        self._half_open_since = since
        self._window.clear()
        if old != state:
            self._notify(old, state)

    # ------------------------------------------------------------------ internals

    def _open(self, now: float, reason: str, by: str, *, held: bool = False) -> None:
        old = self._state
        cfg = self.config
        self._consecutive += 1
        self.trips += 1
        self._held = held
        if held or cfg.probe is not None:
            self._open_until = None
        else:
            wait = cfg.open_wait * cfg.open_wait_multiplier ** (self._consecutive - 1)
            self._open_until = now + min(wait, cfg.open_wait_max)
        self._enter(OPEN, now, reason, by)
        self._window.clear()
        if old != OPEN or held:
            self._notify(old, OPEN)

    def _half_open(self, now: float, reason: str, by: str) -> None:
        old = self._state
        self._open_until = None
        self._successes = 0
        self._half_open_since = now
        self._enter(HALF_OPEN, now, reason, by)
        self._notify(old, HALF_OPEN)

    def _close(self, now: float, reason: str, by: str) -> None:
        old = self._state
        self._open_until = None
        self._held = False
        self._consecutive = 0
        self._successes = 0
        self._window.clear()
        self._enter(CLOSED, now, reason, by)
        if old != CLOSED:
            self._notify(old, CLOSED)

    def _enter(self, state: str, now: float, reason: str, by: str) -> None:
        self._state = state
        self._since = now
        self._reason = reason
        self._by = by

    def _notify(self, old: str, new: str) -> None:
        for callback in self._callbacks:
            callback(old, new, self._reason, self._by)


class Breakers:
    """The breakers of one run, by label: the App's shared breakers (created at the
    first mapping that names them) and each mapping's own (labelled with the mapping's
    name). The runtime exposes it (``Runtime.breakers()``) for operators and controllers
    (trip, reset, publish their state); the simulator builds one per run.

    Parameters:
        shared: the App's breakers by name (``app.breakers``).
    """

    __slots__ = ("_breakers", "_shared")

    def __init__(self, shared: Mapping[str, BreakerConfig]) -> None:
        self._shared = dict(shared)
        self._breakers: dict[str, Breaker] = {}

    def __repr__(self) -> str:
        return f"Breakers({list(self._breakers)})"

    def for_mapping(
        self, mapping: str, spec: str | BreakerConfig | None, now: float
    ) -> Breaker | None:
        """The breaker of mapping ``mapping`` whose ``breaker=`` is ``spec``: the shared
        one named ``spec`` (created once), its own (created once, labelled ``mapping``),
        or ``None``.

        Raises:
            ConfigError: ``spec`` names no breaker of the App.
        """
        if spec is None:
            return None
        if isinstance(spec, str):
            breaker = self._breakers.get(spec)
            if breaker is None:
                config = self._shared.get(spec)
                if config is None:
                    raise ConfigError("breaker", spec, "a breaker defined with app.breaker()",
                                      f"mapping {mapping}")
                breaker = self._breakers[spec] = Breaker(config, label=spec, now=now)
            return breaker
        breaker = self._breakers.get(mapping)
        if breaker is None or breaker.config is not spec:
            breaker = self._breakers[mapping] = Breaker(spec, label=mapping, now=now)
        return breaker

    def get(self, label: str) -> Breaker | None:
        """The breaker labelled ``label``, or ``None``."""
        return self._breakers.get(label)

    def __getitem__(self, label: str) -> Breaker:
        return self._breakers[label]

    def __contains__(self, label: object) -> bool:
        return label in self._breakers

    def __iter__(self) -> Iterator[str]:
        return iter(self._breakers)

    def __len__(self) -> int:
        return len(self._breakers)

    def items(self) -> list[tuple[str, Breaker]]:
        """``(label, breaker)`` pairs, in the order created."""
        return list(self._breakers.items())
