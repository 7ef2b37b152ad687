"""sluicegate: Lambda-style event source mappings for Python.

Queues (standard and FIFO) and partitioned streams feed handler functions in batches, under concurrency control, with AWS's
ordering, retry and partial-failure semantics, on an embedded SQLite store.
Delivery is at least once: handlers must tolerate a message twice.

Define an :class:`App`, then serve it with ``sluicegate run`` or from your own program:
:func:`run` (blocking), :func:`start` (in a thread: a :class:`BackgroundApp`), ``await``
:func:`arun`, or ``async with`` :func:`serve`, which gives a :class:`RunningApp` to send,
observe and stop through (:mod:`sluicegate.running`);
:class:`Runtime` is what all of them drive, :class:`RunSummary` what a run returns,
:class:`Metrics` its per-second metrics, :func:`open_store` the stores.

Layout: ``sluicegate.core`` holds the pure mapping rules, ``sluicegate.store`` the
backends, ``sluicegate.runtime`` the asyncio driver, ``sluicegate.app`` the user API.

The running side is imported on first use, so ``import sluicegate`` to define an App
does not load the runtime and the stores (asyncio, sqlite3, the Redis client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sluicegate.app import App, Function, Target
from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    SemaphoreConfig,
    TopicConfig,
)
from sluicegate.core.filters import FilterCriteria
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.errors import (
    AppLoadError,
    ConfigError,
    InputError,
    QueueNotFound,
    SemaphoreTimeout,
    SluicegateError,
    StoreError,
    StoreUnavailable,
    StreamNotFound,
    Throttled,
)

__version__ = "0.1.0"

_LAZY = {
    "BackgroundApp": "sluicegate.running",
    "Signals": "sluicegate.control",
    "health_check": "sluicegate.control",
    "schedule": "sluicegate.control",
    "store_key": "sluicegate.control",
    "InvokeResult": "sluicegate.invocation",
    "MappingSummary": "sluicegate.runtime.driver",
    "Metrics": "sluicegate.runtime.metrics",
    "MetricsSecond": "sluicegate.runtime.metrics",
    "MetricsTotals": "sluicegate.runtime.metrics",
    "RunSummary": "sluicegate.runtime.driver",
    "RunningApp": "sluicegate.running",
    "Runtime": "sluicegate.runtime.driver",
    "Store": "sluicegate.store",
    "arun": "sluicegate.running",
    "open_store": "sluicegate.store",
    "run": "sluicegate.running",
    "send_task_failure": "sluicegate.runtime.semaphores",
    "send_task_heartbeat": "sluicegate.runtime.semaphores",
    "send_task_success": "sluicegate.runtime.semaphores",
    "serve": "sluicegate.running",
    "start": "sluicegate.running",
}
"""Public names imported on first use, and the module each comes from."""

if TYPE_CHECKING:
    from sluicegate import control
    from sluicegate.control import Signals, health_check, schedule, store_key
    from sluicegate.invocation import InvokeResult
    from sluicegate.running import BackgroundApp, RunningApp, arun, run, serve, start
    from sluicegate.runtime.driver import MappingSummary, RunSummary, Runtime
    from sluicegate.runtime.metrics import Metrics, MetricsSecond, MetricsTotals
    from sluicegate.runtime.semaphores import (
        send_task_failure,
        send_task_heartbeat,
        send_task_success,
    )
    from sluicegate.store import Store, open_store


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        if name == "control":  # the module of controller rules (sluicegate.control)
            value = importlib.import_module("sluicegate.control")
            globals()[name] = value
            return value
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'sluicegate' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "control"})


__all__ = [
    "AccountConfig",
    "App",
    "AppLoadError",
    "BackgroundApp",
    "ConfigError",
    "FilterCriteria",
    "Function",
    "FunctionConfig",
    "InputError",
    "InvokeResult",
    "MappingConfig",
    "MappingSummary",
    "Metrics",
    "MetricsSecond",
    "MetricsTotals",
    "QueueConfig",
    "QueueNotFound",
    "RunSummary",
    "RunningApp",
    "Runtime",
    "SemaphoreConfig",
    "SemaphoreTimeout",
    "Signals",
    "SluicegateError",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StreamConfig",
    "StreamMappingConfig",
    "StreamNotFound",
    "Target",
    "Throttled",
    "TopicConfig",
    "__version__",
    "arun",
    "control",
    "health_check",
    "open_store",
    "run",
    "schedule",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "serve",
    "start",
    "store_key",
]
