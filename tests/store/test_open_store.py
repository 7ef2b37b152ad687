"""open_store: from a URL (or the environment) to an unopened store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluicegate.errors import InputError
from sluicegate.store import (
    DEFAULT_STORE_URL,
    STORE_ENV_VAR,
    MemoryStore,
    RedisStore,
    SqliteStore,
    open_store,
)
from sluicegate.testing import VirtualClock

from .conftest import START


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/q.db", "data/q.db"),
        ("sqlite:////var/lib/q.db", "/var/lib/q.db"),
        ("sqlite://", "sluicegate.db"),
        ("SQLITE:///q.db", "q.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


def test_memory_url_and_clock() -> None:
    clock = VirtualClock(START)
    store = open_store("memory://", clock=clock)
    assert isinstance(store, MemoryStore)
    assert store.clock is clock


def test_default_is_sluicegate_db_in_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_ENV_VAR, raising=False)
    store = open_store(None)
    assert DEFAULT_STORE_URL == "sqlite:///sluicegate.db"
    assert isinstance(store, SqliteStore) and store.path == "sluicegate.db"


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_ENV_VAR, "memory://")
    assert isinstance(open_store(), MemoryStore)
    assert isinstance(open_store("sqlite://"), SqliteStore)  # an explicit URL wins


def test_redis_urls_build_a_redis_store_without_connecting() -> None:
    store = open_store("redis://localhost:6379/0")
    assert isinstance(store, RedisStore)


@pytest.mark.parametrize("url", ["postgres://db/q", "sluicegate.db", "", "memory://x"])
def test_bad_urls_name_the_url(url: str) -> None:
    with pytest.raises(InputError) as info:
        open_store(url)
    assert repr(url) in str(info.value)


def test_unknown_scheme_lists_the_schemes() -> None:
    with pytest.raises(InputError, match=r"sqlite.*memory"):
        open_store("ftp://x")


async def test_opened_url_store_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_store("sqlite:///rel.db") as store:
        assert await store.list_queues() == []
    assert (tmp_path / "rel.db").exists()
