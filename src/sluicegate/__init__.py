"""sluicegate: Lambda-style event source mappings for Python.

Queues (standard and FIFO) and partitioned streams feed handler functions in batches, under concurrency control, with AWS's
ordering, retry and partial-failure semantics, on an embedded SQLite store.
Delivery is at least once: handlers must tolerate a message twice.

Layout: ``sluicegate.core`` holds the pure mapping rules, ``sluicegate.store`` the
backends, ``sluicegate.runtime`` the asyncio driver, ``sluicegate.app`` the user API.
"""

import importlib.machinery

from sluicegate.app import App, Function
from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    TopicConfig,
)
from sluicegate.core.filters import FilterCriteria
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.errors import (
    AppLoadError,
    ConfigError,
    InputError,
    QueueNotFound,
    SluicegateError,
    StoreError,
    StoreUnavailable,
    StreamNotFound,
)

__version__ = "0.1.0"


def _build() -> str:
    from sluicegate.core import mapping

    loader = getattr(mapping, "__loader__", None)
    return "compiled" if isinstance(loader, importlib.machinery.ExtensionFileLoader) else "pure Python"


BUILD = _build()
"""``"compiled"`` when the core, the memory engine and the simulator's loop run as C
extensions (the compiled build: setup.py, ``SLUICEGATE_COMPILE=1``; what ``make``
installs), else ``"pure Python"``. Both behave the same; the compiled one simulates two to
four times as fast (docs/performance.md)."""

__all__ = [
    "BUILD",
    "AccountConfig",
    "App",
    "AppLoadError",
    "ConfigError",
    "FilterCriteria",
    "Function",
    "FunctionConfig",
    "InputError",
    "MappingConfig",
    "QueueConfig",
    "QueueNotFound",
    "SluicegateError",
    "StoreError",
    "StoreUnavailable",
    "StreamConfig",
    "StreamMappingConfig",
    "StreamNotFound",
    "TopicConfig",
    "__version__",
]
