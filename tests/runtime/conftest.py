"""Fixtures of the runtime's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sluicegate.store import MemoryStore, RedisStore, SqliteStore, Store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """A new, unopened store of each backend (Redis: the session's server)."""
    if request.param == "memory":
        return MemoryStore
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "s.db")
    url = str(request.getfixturevalue("redis_url"))
    return lambda: RedisStore(url)
