"""The live-settings part of the store contract, on every backend (see conftest.py):
versions, compare and set, merges and removals, the history, the store's revision and
its shared value, and a race between two store objects on one store.

Time moves only through the injected ``clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluicegate.errors import InputError
from sluicegate.store import Store
from sluicegate.store.coordination import CoordinationRound
from sluicegate.store.live import SETTINGS_REVISION
from sluicegate.testing import VirtualClock

from .conftest import START


async def test_a_scope_never_written_is_version_0_and_empty(store: Store) -> None:
    settings = await store.get_settings("mapping:orders")
    assert (settings.scope, settings.values, settings.version) == ("mapping:orders", {}, 0)
    assert settings.changed_at is None and settings.changed_by == ""
    assert await store.list_settings() == (0, [])
    assert await store.settings_history() == []


async def test_a_write_merges_raises_the_version_and_is_kept_in_the_history(
    store: Store, clock: VirtualClock
) -> None:
    # Given a first write
    first = await store.write_settings("mapping:orders", {"maximum_concurrency": 20},
                                       by="cli:ann", why="load test")
    assert first.won and first.settings.version == 1
    assert first.settings.values == {"maximum_concurrency": 20}
    assert first.settings.changed_at == START and first.settings.changed_by == "cli:ann"
    # When a second write gives another name, later
    clock.advance(5)
    second = await store.write_settings("mapping:orders", {"enabled": False}, by="cli:bob")
    # Then the names merge, the version is 2
    assert second.settings.values == {"maximum_concurrency": 20, "enabled": False}
    assert second.settings.version == 2
    assert await store.get_settings("mapping:orders") == second.settings
    # And the history has both writes, oldest first, with old and new values
    history = await store.settings_history()
    assert [(h.version, h.by, h.why, h.old, h.new, h.at) for h in history] == [
        (1, "cli:ann", "load test", {"maximum_concurrency": None},
         {"maximum_concurrency": 20}, START),
        (2, "cli:bob", "", {"enabled": None}, {"enabled": False}, START + 5),
    ]


async def test_none_removes_a_name(store: Store) -> None:
    await store.write_settings("mapping:m", {"maximum_concurrency": 20, "enabled": False},
                               by="t")
    write = await store.write_settings("mapping:m", {"maximum_concurrency": None}, by="t")
    assert write.settings.values == {"enabled": False}
    (_, last) = await store.settings_history("mapping:m")
    assert (last.old, last.new) == ({"maximum_concurrency": 20}, {"maximum_concurrency": None})


async def test_compare_and_set_wins_once_per_version(store: Store) -> None:
    # Given version 1
    await store.write_settings("function:f", {"reserved_concurrency": 10}, by="t")
    # When two writers that read version 1 both set, the same value even
    a = await store.write_settings("function:f", {"reserved_concurrency": 5}, by="a",
                                   expected_version=1)
    b = await store.write_settings("function:f", {"reserved_concurrency": 5}, by="b",
                                   expected_version=1)
    # Then only the first wins; the loser is told what is stored now
    assert (a.won, b.won) == (True, False)
    assert b.settings.version == 2 and b.settings.changed_by == "a"
    assert [h.by for h in await store.settings_history("function:f")] == ["t", "a"]
    # And a writer that expects version 0 of a scope never written wins
    assert (await store.write_settings("function:g", {"x": 1}, by="c",
                                       expected_version=0)).won


async def test_the_revision_counts_every_write_and_lists_what_changed_since(
    store: Store,
) -> None:
    await store.write_settings("mapping:a", {"enabled": False}, by="t")
    await store.write_settings("mapping:b", {"enabled": False}, by="t")
    revision, scopes = await store.list_settings()
    assert revision == 2 and [s.scope for s in scopes] == ["mapping:a", "mapping:b"]
    await store.write_settings("mapping:a", {"enabled": True}, by="t")
    revision, scopes = await store.list_settings(since=2)
    assert revision == 3
    assert [(s.scope, s.revision, s.values) for s in scopes] == [
        ("mapping:a", 3, {"enabled": True})]
    assert await store.list_settings(since=3) == (3, [])
    # the revision is also a shared value, read in a coordination round
    assert await store.read_shared(SETTINGS_REVISION) == "3"
    reply = await store.coordinate(CoordinationRound("w", 5.0, read=[SETTINGS_REVISION]))
    assert reply.values == {SETTINGS_REVISION: "3"}


async def test_history_by_scope_and_limit(store: Store) -> None:
    for i in range(5):
        await store.write_settings(f"mapping:{'ab'[i % 2]}", {"maximum_concurrency": 2 + i},
                                   by="t")
    assert [h.new["maximum_concurrency"] for h in await store.settings_history(limit=2)] == [
        5, 6]
    assert [h.new["maximum_concurrency"] for h in await store.settings_history("mapping:a")
            ] == [2, 4, 6]
    assert [h.version for h in await store.settings_history("mapping:b", limit=1)] == [2]
    assert await store.settings_history(limit=0) == []


@pytest.mark.parametrize("call", [
    lambda s: s.write_settings("", {"x": 1}, by="t"),
    lambda s: s.write_settings("m", {"x": 1}, by=""),
    lambda s: s.write_settings("m", {"": 1}, by="t"),
    lambda s: s.write_settings("m", {"x": object()}, by="t"),
    lambda s: s.write_settings("m", {"x": float("nan")}, by="t"),
    lambda s: s.write_settings("m", {"x": 1}, by="t", expected_version=-1),
    lambda s: s.write_settings("m", {"x": 1}, by="t", expected_version=True),
    lambda s: s.list_settings(since=-1),
    lambda s: s.settings_history(limit=-1),
    lambda s: s.get_settings(""),
])
async def test_bad_requests_are_refused_with_one_line(
    store: Store, call: Callable[[Store], object]
) -> None:
    with pytest.raises(InputError) as info:
        await call(store)  # type: ignore[misc]
    assert "\n" not in str(info.value)
    assert await store.list_settings() == (0, [])


async def test_two_store_objects_racing_on_one_version_give_one_winner(
    new_store: Callable[..., Store], backend: str
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is one object: nothing to race")
    a, b = new_store(backend), new_store(backend)
    await a.open()
    await b.open()
    await a.write_settings("mapping:m", {"maximum_concurrency": 10}, by="t")
    results = await asyncio.gather(*[
        (a if i % 2 else b).write_settings("mapping:m", {"maximum_concurrency": 11 + i},
                                           by=f"w{i}", expected_version=1)
        for i in range(8)])
    assert sum(r.won for r in results) == 1
    (winner,) = [i for i, r in enumerate(results) if r.won]
    assert (await b.get_settings("mapping:m")).values == {"maximum_concurrency": 11 + winner}
    # and unconditional writes from both all land
    await asyncio.gather(*[(a if i % 2 else b).write_settings("mapping:m", {f"k{i}": i},
                                                              by="t") for i in range(6)])
    settings = await a.get_settings("mapping:m")
    assert settings.version == 8 and all(settings.values[f"k{i}"] == i for i in range(6))


_WRITES = st.lists(st.tuples(
    st.sampled_from(["mapping:a", "mapping:b", "function:f"]),
    st.dictionaries(st.sampled_from(["x", "y"]), st.none() | st.integers(0, 9), min_size=1),
    st.none() | st.integers(0, 4)), max_size=30)


@given(_WRITES)
def test_writes_match_a_model_of_merges_and_versions(
    writes: list[tuple[str, dict[str, int | None], int | None]]
) -> None:
    """The write rule against a plain model: a write wins when it has no expected version
    or the right one; a win merges (None removes), raises the version by one and the
    revision by one, and adds one history entry; a loss changes nothing."""
    from sluicegate.store.live import MemorySettings

    engine = MemorySettings(lambda: START, {})
    model: dict[str, tuple[dict[str, int], int]] = {}
    wins = 0
    for scope, changes, expected in writes:
        values, version = model.get(scope, ({}, 0))
        write = engine.write_settings(scope, dict(changes), expected, "t", "")
        assert write.won == (expected is None or expected == version)
        if write.won:
            wins += 1
            merged = {k: v for k, v in {**values, **changes}.items() if v is not None}
            model[scope] = (merged, version + 1)
            assert write.settings.revision == wins
        assert (write.settings.values, write.settings.version) == model.get(scope, ({}, 0))
    assert engine.list_settings(0)[0] == wins
    assert len(engine.settings_history(None, 1000)) == wins
    assert engine.shared.get("settings:revision") == (str(wins) if wins else None)
