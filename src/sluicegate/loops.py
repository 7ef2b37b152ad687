"""The event loop sluicegate runs an App on: uvloop where it is installed, else asyncio's.

``sluicegate run``, :func:`sluicegate.run` and :func:`sluicegate.start` run an App on an
event loop of their own; :func:`run` here makes it. uvloop (a dependency on Linux and
macOS) keeps timers closer to their deadlines and spends less time per turn of the loop
than asyncio's default loop, which is what a runtime whose handlers mostly wait is limited
by: at 50 ms handlers and concurrency 100, the drain on Redis went from about 96% to
97.0-97.5% of Little's law (``bench/redis_throughput.py``), and a bare program of
sleeping tasks from 98.3% to 99.4%.

``SLUICEGATE_LOOP=asyncio`` in the environment chooses asyncio's loop even where uvloop is
installed (to rule the loop out when chasing a problem); ``SLUICEGATE_LOOP=uvloop``
insists on uvloop; any other value is an error. A program that runs its own loop
and calls :func:`sluicegate.arun` or :func:`sluicegate.serve` keeps the loop it chose.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from sluicegate.errors import ConfigError

__all__ = ["LOOP_ENV", "loop_name", "run"]

T = TypeVar("T")

LOOP_ENV = "SLUICEGATE_LOOP"
"""The environment variable that chooses the loop: ``uvloop`` (the default where it is
installed) or ``asyncio``."""


def loop_name() -> str:
    """The loop :func:`run` uses here: ``"uvloop"`` or ``"asyncio"``.

    Raises:
        ConfigError: :data:`LOOP_ENV` names another loop, or asks for uvloop where it is
            not installed.
    """
    chosen = os.environ.get(LOOP_ENV, "").strip().lower()
    if chosen not in ("", "uvloop", "asyncio"):
        raise ConfigError(LOOP_ENV, os.environ[LOOP_ENV], "'uvloop' or 'asyncio'",
                          "the environment")
    if chosen == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if chosen == "uvloop":
            raise ConfigError(LOOP_ENV, "uvloop", "'asyncio' here (uvloop is not installed: "
                              "pip install uvloop)", "the environment") from None
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on a new event loop of :func:`loop_name`'s kind, as
    :func:`asyncio.run` does, and close the loop.

    Raises:
        ConfigError: as :func:`loop_name` (``main`` is closed unrun).
    """
    try:
        name = loop_name()
    except ConfigError:
        main.close()
        raise
    if name == "uvloop":
        import uvloop

        # what uvloop.run does on Python 3.11+, typed without uvloop's stubs (a build
        # without uvloop installed type-checks this module too)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
