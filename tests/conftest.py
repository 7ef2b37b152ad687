"""Fixtures shared by the whole suite: a real redis-server for the Redis tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pure_python import stale_extensions
from redis_server import RedisServer, require_redis_binary


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled build older than its sources (the edit would not run)."""
    stale = stale_extensions()
    if stale:
        raise pytest.UsageError(
            f"the compiled build is older than {', '.join(stale)}: rebuild it with "
            "'make test' (or SLUICEGATE_COMPILE=1 pip install -e .)"
        )


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session, on a free 127.0.0.1 port, in its own directory.

    Without a ``redis-server`` binary: skipped, with the reason, on a developer's
    machine; a failure in CI (``CI=true``), which must run these tests
    (:func:`redis_server.require_redis_binary`; ``make test`` installs one through apt).
    """
    require_redis_binary()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database on the session's server (flushed before each test)."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with persistence on: for tests that restart it
    (skipped or failed without a binary as :func:`redis_server` is)."""
    require_redis_binary()
    server = RedisServer(tmp_path / "redis", persistence=True)
    server.start()
    yield server
    server.stop()
