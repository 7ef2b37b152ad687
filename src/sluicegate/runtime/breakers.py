"""The runtime's circuit breakers: each mapping's breaker as a term of its limit, the
wake-ups a state change owes the mappings, and the external probes.

The rules are the core's (:mod:`sluicegate.core.breaker`); this module only performs
what they need on the wall clock:

- a mapping with ``breaker=`` gets the breaker as its limit's ``"breaker"`` term (a
  stream mapping's core again whenever it is rebuilt);
- a state change wakes every mapping of that breaker (a shared breaker closed by one
  mapping's probe lets the others read at once; an operator's trip stops them at their
  next poll) and is logged;
- a breaker with a ``probe`` has it checked every ``probe_interval`` seconds while it is
  open; the probe's success turns it half-open (:meth:`Breaker.probe_result`).

:class:`RuntimeBreakers` is what ``Runtime.breakers()`` returns: the run's breakers by
label, for an operator or a controller (``trip``, ``reset``, ``snapshot``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from sluicegate.core.breaker import Breaker, BreakerConfig, Breakers

__all__ = ["RuntimeBreakers", "check_probe"]

log = logging.getLogger("sluicegate.runtime")


class _Changed:
    """A breaker's ``on_change`` callback: log the change, wake its mappings. A callable
    object rather than a closure (no reference cycle through a closure's cell)."""

    __slots__ = ("label", "wakes")

    def __init__(self, label: str) -> None:
        self.label = label
        self.wakes: list[Callable[[], None]] = []

    def __call__(self, old: str, new: str, reason: str, by: str) -> None:
        level = logging.WARNING if new == "open" else logging.INFO
        log.log(level, "breaker %s: %s -> %s (%s; by %s)", self.label, old, new, reason, by)
        for wake in self.wakes:
            wake()


class RuntimeBreakers:
    """The breakers of one runtime (see the module docstring).

    Parameters:
        shared: the App's breakers by name (``app.breakers``).
        clock: the runtime's clock (the ``now`` the cores are given).
    """

    def __init__(self, shared: dict[str, BreakerConfig], clock: Callable[[], float]) -> None:
        self.registry = Breakers(shared)
        self.clock = clock
        self._changed: dict[str, _Changed] = {}
        self.closing = False
        """Set by the runtime as it stops: ends the probe loops even if the cancel that
        follows is lost (a probe is the user's code, which may swallow one)."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry)

    def __len__(self) -> int:
        return len(self.registry)

    def __getitem__(self, label: str) -> Breaker:
        return self.registry[label]

    def get(self, label: str) -> Breaker | None:
        """The breaker labelled ``label`` (a shared breaker's name, or a mapping's name
        for its own), or ``None``."""
        return self.registry.get(label)

    def items(self) -> list[tuple[str, Breaker]]:
        """``(label, breaker)`` pairs."""
        return self.registry.items()

    def trip(self, label: str, reason: str = "tripped by hand", by: str = "operator") -> None:
        """Open breaker ``label`` and hold it open until :meth:`reset` (KeyError: none)."""
        self.registry[label].trip(self.clock(), reason, by)

    def reset(self, label: str, reason: str = "reset by hand", by: str = "operator") -> None:
        """Close breaker ``label`` (KeyError: none)."""
        self.registry[label].reset(self.clock(), reason, by)

    def states(self) -> dict[str, str]:
        """Every breaker's state now, by label."""
        now = self.clock()
        return {label: b.state(now) for label, b in self.registry.items()}

    # ------------------------------------------------------------------ wiring

    def attach(self, mapping: str, spec: Any, core: Any, wake: Callable[[], None] | None) -> None:
        """Give ``core`` (a mapping's core) the breaker its config's ``breaker=`` names
        (``spec``), as the ``"breaker"`` term of its limit; ``wake`` (the mapping
        runner's) is called on every state change. Nothing without a breaker."""
        breaker = self.registry.for_mapping(mapping, spec, self.clock())
        if breaker is None:
            return
        limit = core.concurrency_limit
        if limit.get(breaker.name) is None:
            limit.add(breaker)
        changed = self._changed.get(breaker.label)
        if changed is None:
            changed = self._changed[breaker.label] = _Changed(breaker.label)
            breaker.on_change(changed)
        if wake is not None and wake not in changed.wakes:
            changed.wakes.append(wake)

    # ------------------------------------------------------------------ probes

    async def run_probes(self) -> None:
        """Check the probes of the open breakers that have one, each every
        ``probe_interval`` seconds; runs until cancelled."""
        probed = [b for _, b in self.registry.items() if b.config.probe is not None]
        if not probed:
            return
        await asyncio.gather(*(self._probe_loop(b) for b in probed))

    async def _probe_loop(self, breaker: Breaker) -> None:
        probe = breaker.config.probe
        assert probe is not None
        interval = breaker.config.probe_interval
        while not self.closing:
            await asyncio.sleep(interval)
            if not breaker.probe_due(self.clock()):
                continue
            ok, detail = await check_probe(probe, timeout=interval)
            log.debug("breaker %s: probe %s (%s)", breaker.label, "up" if ok else "down",
                      detail)
            breaker.probe_result(self.clock(), ok, detail)


async def check_probe(probe: Callable[[], Any] | str, *, timeout: float) -> tuple[bool, str]:
    """Run one check of an external probe: ``(up, detail)``.

    A callable is called (and awaited when it returns an awaitable); a true answer means
    up, a false one or an exception down. A URL is fetched with GET; a 2xx status means
    up. Neither may take longer than ``timeout`` seconds (then: down).
    """
    try:
        if isinstance(probe, str):
            status = await asyncio.wait_for(
                asyncio.to_thread(_http_status, probe, timeout), timeout + 1.0
            )
            return 200 <= status < 300, f"HTTP {status}"
        answer = probe()
        if inspect.isawaitable(answer):
            answer = await asyncio.wait_for(answer, timeout)
        return bool(answer), repr(answer)[:80]
    except TimeoutError:
        return False, f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 (a probe that fails in any way says "down")
        return False, f"{type(exc).__name__}: {exc}"[:200]


def _http_status(url: str, timeout: float) -> int:
    """The status of a GET of ``url`` (an HTTP error status is returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(Exception):
            exc.close()
        return int(exc.code)
