"""Stores: where queues and their messages live.

Layout: :mod:`~sluicegate.store.base` is the contract (the :class:`Store` base class,
which validates; it re-exports the values it exchanges, defined in
:mod:`~sluicegate.store.values`). :mod:`~sluicegate.store.engine` declares the shape of a
synchronous engine and adapts one to the contract once; on it,
:mod:`~sluicegate.store.memory` keeps everything in this process and
:mod:`~sluicegate.store.sqlite` in one file that several processes may share.
:mod:`~sluicegate.store.redis` implements the contract directly, on a Redis server that
processes on many machines share. :mod:`~sluicegate.store.coordination` holds the rules
of leases and the values of coordination.
:func:`open_store` builds the store a URL names.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from sluicegate.errors import InputError
from sluicegate.store.base import (
    MAX_BATCH_ENTRIES,
    MAX_RECEIVE_WAIT,
    Clock,
    Message,
    NewMessage,
    QueueCounts,
    SendEntry,
    SendResult,
    Store,
)
from sluicegate.store.memory import MemoryQueues, MemoryStore
from sluicegate.store.redis import RedisStore
from sluicegate.store.sqlite import DEFAULT_SQLITE_PATH, SqliteStore

__all__ = [
    "DEFAULT_STORE_URL",
    "MAX_BATCH_ENTRIES",
    "MAX_RECEIVE_WAIT",
    "STORE_ENV_VAR",
    "STORE_SCHEMES",
    "Clock",
    "MemoryQueues",
    "MemoryStore",
    "Message",
    "NewMessage",
    "QueueCounts",
    "RedisStore",
    "SendEntry",
    "SendResult",
    "SqliteStore",
    "Store",
    "open_store",
]

STORE_ENV_VAR = "SLUICEGATE_STORE"
"""Environment variable holding the store URL when none is given."""

DEFAULT_STORE_URL = f"sqlite:///{DEFAULT_SQLITE_PATH}"
"""The store used when neither a URL nor :data:`STORE_ENV_VAR` is given: ./sluicegate.db."""

STORE_SCHEMES = ("sqlite", "memory", "redis", "rediss")
"""URL schemes :func:`open_store` accepts."""


def open_store(
    url: str | None = None, *, clock: Clock | None = None, read_only: bool = False
) -> Store:
    """Build the store ``url`` names; open it with ``async with`` or ``await store.open()``.

    URLs:
        ``sqlite:///relative/path.db`` (relative to the working directory),
        ``sqlite:////absolute/path.db``, ``sqlite://`` alone for ./sluicegate.db;
        ``memory://`` for a store in this process only;
        ``redis://[user:password@]host[:port][/db]`` (port 6379 and database 0 by
        default; ``rediss://`` for TLS) for a Redis server, keys prefixed ``sluicegate:``
        (needs ``pip install 'sluicegate[redis]'``).

    Parameters:
        url: the store URL; ``None`` reads :data:`STORE_ENV_VAR`, else uses
            :data:`DEFAULT_STORE_URL`.
        clock: where the store reads time (epoch seconds); ``time.time`` by default.
        read_only: for commands that only look: a SQLite store is opened for reading
            only (no file or schema created, nothing written; see :class:`SqliteStore`);
            memory and Redis stores ignore it.

    Returns:
        An unopened :class:`Store`.

    Raises:
        InputError: an unknown scheme or a malformed URL.
    """
    if url is None:
        url = os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE_URL
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in STORE_SCHEMES:
        raise InputError(
            f"unknown store URL {url!r}: use sqlite:///PATH (a file), memory:// or "
            f"redis://HOST:PORT/DB (schemes: {', '.join(STORE_SCHEMES)})"
        )
    if scheme in ("redis", "rediss"):
        return RedisStore(url, clock=clock)
    if "?" in rest or "#" in rest:
        raise InputError(f"store URL {url!r}: query strings and fragments are not supported")
    if scheme == "memory":
        if rest not in ("", "/"):
            raise InputError(f"store URL {url!r}: memory:// takes no path")
        return MemoryStore(clock=clock)
    if rest == "":
        path = DEFAULT_SQLITE_PATH
    else:
        host = urlsplit(url).netloc
        if host or not rest.startswith("/") or rest == "/":
            raise InputError(
                f"store URL {url!r}: write sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        path = rest[1:]
    return SqliteStore(path, clock=clock, read_only=read_only)
