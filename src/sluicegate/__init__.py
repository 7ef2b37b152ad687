"""sluicegate: Lambda-style event source mappings for Python.

Queues (standard and FIFO) and partitioned streams feed handler functions in batches, under concurrency control, with AWS's
ordering, retry and partial-failure semantics, on an embedded SQLite store.
Delivery is at least once: handlers must tolerate a message twice.

Layout: ``sluicegate.core`` holds the pure mapping rules, ``sluicegate.store`` the
backends, ``sluicegate.runtime`` the asyncio driver, ``sluicegate.app`` the user API.
"""

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

__all__ = [
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
