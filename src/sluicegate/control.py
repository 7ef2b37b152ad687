"""Controller rules: live limits set by the App's own rules (``app.control(...)``).

A rule names a target (a mapping, a function or a breaker), a live setting and where its
value comes from::

    app.control(orders, maximum_concurrency=schedule({"09:00-17:00": 50}, default=10))
    app.control(orders, enabled=health_check("http://db:8080/health"))
    app.control("db", state=health_check("http://db:8080/health"))        # a breaker
    app.control(orders, maximum_concurrency=store_key("ops:orders-cap"))
    app.control(orders, maximum_concurrency=lambda s: 5 if s.queue.oldest_age > 60 else 50)

Sources:

- a constant;
- :func:`schedule` (:class:`~sluicegate.core.live.Schedule`): a value by time of day;
- :func:`health_check`: an HTTP GET of a URL; a 2xx answer within ``timeout`` is
  healthy. Its values default by setting (``enabled``: ``True``/``False``; a breaker's
  ``state``: ``"closed"``/``"open"``); give ``healthy=`` and ``unhealthy=`` for a number;
- :func:`store_key`: a shared value of the store (``store.write_shared(key, text)``, or
  ``HSET sluicegate:shared KEY VALUE`` on Redis), parsed by ``parse`` (``int`` by
  default); unset leaves the setting alone;
- a callable ``fn(signals) -> value`` (``async def`` too) given :class:`Signals`: the
  time, the current and configured values, the mapping's queue counts, its invocations in
  flight across the cluster and this process's metrics of it. ``None`` leaves the
  setting alone.

A rule is evaluated every ``every`` seconds (1 by default) by exactly one process: the
holder of the store lease ``controller:APP`` (:class:`~sluicegate.runtime.controller.
Controller`, run inside ``sluicegate run`` or alone by ``sluicegate control APP``). It
writes only when the value it computes differs from the live one, through the store's
compare-and-set and history, as ``controller:RULE``. A setting a rule controls is the
rule's: an operator's change to it lasts until the rule's next evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluicegate.core.live import Schedule, schedule
from sluicegate.errors import ConfigError

__all__ = ["ControlRule", "HealthCheck", "Signals", "StoreKey", "health_check", "schedule",
           "store_key"]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An HTTP health probe as a rule's source (see :func:`health_check`)."""

    url: str
    healthy: Any = None
    unhealthy: Any = None
    timeout: float = 2.0


def health_check(url: str, *, healthy: Any = None, unhealthy: Any = None,
                 timeout: float = 2.0) -> HealthCheck:
    """A source that GETs ``url``: ``healthy`` on a 2xx answer within ``timeout`` seconds,
    ``unhealthy`` otherwise (defaults by setting: ``enabled`` ``True``/``False``, a
    breaker's ``state`` ``"closed"``/``"open"``).

    Raises:
        ConfigError: a URL that is not http(s), a timeout that is not > 0.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError("url", url, "an http:// or https:// URL", "health_check")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError("timeout", timeout, "seconds > 0", "health_check")
    return HealthCheck(url, healthy, unhealthy, float(timeout))


@dataclass(frozen=True, slots=True)
class StoreKey:
    """A shared value of the store as a rule's source (see :func:`store_key`)."""

    key: str
    parse: Callable[[str], Any] = int


def store_key(key: str, *, parse: Callable[[str], Any] = int) -> StoreKey:
    """A source reading the store's shared value ``key``, parsed by ``parse``.

    Raises:
        ConfigError: an empty key.
    """
    if not isinstance(key, str) or not key:
        raise ConfigError("key", key, "a non-empty str", "store_key")
    return StoreKey(key, parse)


@dataclass(frozen=True, slots=True)
class Signals:
    """What a callable rule is given.

    Attributes:
        now: epoch seconds.
        rule: the rule's name.
        target: the mapping, function or breaker the rule sets.
        setting: the setting it sets.
        current: the live value (``None``: unset, the App's applies).
        configured: the App's value.
        queue: the mapping's queue counts (visible, in flight, delayed, oldest age) from
            the store; ``None`` for a function, a breaker or a stream mapping.
        in_flight: the mapping's invocations in flight across the cluster (the workers'
            registry, as of their last sync); ``None`` when not a mapping.
        metrics: this process's metric totals of the mapping (invocations, errors,
            throttles, ...) when the controller runs inside ``sluicegate run``, else
            ``None``.
    """

    now: float
    rule: str
    target: str
    setting: str
    current: Any
    configured: Any
    queue: Any = None
    in_flight: int | None = None
    metrics: Any = None


@dataclass(frozen=True, slots=True)
class ControlRule:
    """One rule of ``app.control``: ``setting`` of ``target`` from ``source``.

    Attributes:
        name: the rule's name (``controller:NAME`` in the history).
        kind: ``"mapping"``, ``"function"`` or ``"breaker"``.
        target: the mapping's, function's or breaker's name.
        setting: the live setting.
        source: a constant, :class:`Schedule`, :class:`HealthCheck`, :class:`StoreKey` or
            a callable of :class:`Signals`.
        every: seconds between evaluations.
        why: the reason written in the history (a description of the source by default).
    """

    name: str
    kind: str
    target: str
    setting: str
    source: Any
    every: float = 1.0
    why: str = ""

    def describe(self) -> str:
        """The source in a few words (the default reason in the history)."""
        if self.why:
            return self.why
        source = self.source
        if isinstance(source, Schedule):
            windows = ", ".join(f"{v} {w}" for w, v in source.windows.items())
            return f"schedule: {windows}, {source.default} otherwise"
        if isinstance(source, HealthCheck):
            return f"health of {source.url}"
        if isinstance(source, StoreKey):
            return f"store key {source.key}"
        if callable(source):
            return f"rule {getattr(source, '__name__', 'callable')}"
        return f"constant {source!r}"
