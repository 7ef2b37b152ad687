"""The table-item part of the store contract, on every backend (see conftest.py): create
if absent, get, put, conditional update and delete, expiry and in-progress expiry on the
store's clock, versions as fencing tokens, one winner among concurrent creates.

Time moves only through the injected ``clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sluicegate.errors import InputError
from sluicegate.store import Store
from sluicegate.store.items import KEEP, ItemWrite, TableItem
from sluicegate.testing import VirtualClock

from .conftest import START


def _item(write: ItemWrite) -> TableItem:
    assert write.item is not None
    return write.item


async def test_create_writes_once_and_returns_the_holder(store: Store) -> None:
    # Given no item, a create writes one
    first = await store.create_item("idem", "k", status="INPROGRESS", data="{}", ttl=60,
                                    in_progress_ttl=5)
    item = _item(first)
    assert first.written
    assert (item.table, item.key, item.status, item.data) == ("idem", "k", "INPROGRESS", "{}")
    assert (item.expires, item.in_progress_expires) == (START + 60, START + 5)
    # When another create of the key comes, it does not write and gets the holder
    second = await store.create_item("idem", "k", status="OTHER", ttl=60)
    assert not second.written and second.item == item
    # Then get returns the same item; another key or table holds nothing
    assert await store.get_item("idem", "k") == item
    assert await store.get_item("idem", "other") is None
    assert await store.get_item("other", "k") is None


async def test_an_item_is_gone_after_its_expiry(store: Store, clock: VirtualClock) -> None:
    first = _item(await store.create_item("t", "k", status="DONE", data="a", ttl=10))
    clock.advance(9.5)
    assert await store.get_item("t", "k") == first
    clock.advance(0.5)  # at its expiry: gone
    assert await store.get_item("t", "k") is None
    assert (await store.update_item("t", "k", status="X")) == ItemWrite(False, None)
    assert not await store.delete_item("t", "k")
    # a create takes the key again, with a later version
    again = await store.create_item("t", "k", status="DONE", data="b", ttl=10)
    assert again.written and _item(again).version > first.version
    assert _item(again).data == "b"


async def test_in_progress_expiry_lets_another_claim_the_key(
    store: Store, clock: VirtualClock
) -> None:
    # Given a claim whose worker dies: its in-progress time lapses before its expiry
    dead = _item(await store.create_item("t", "job", status="INPROGRESS", ttl=3600,
                                         in_progress_ttl=5))
    clock.advance(4)
    assert not (await store.create_item("t", "job", status="INPROGRESS", ttl=3600,
                                        in_progress_ttl=5)).written
    clock.advance(1)
    # Then the item is gone, and a new claim wins, with a later version
    assert await store.get_item("t", "job") is None
    claim = await store.create_item("t", "job", status="INPROGRESS", ttl=3600,
                                    in_progress_ttl=5)
    assert claim.written and _item(claim).version > dead.version
    # The dead worker's late completion is refused: its version is not the item's
    late = await store.update_item("t", "job", status="COMPLETED", in_progress_ttl=None,
                                   if_version=dead.version)
    assert not late.written and late.item == _item(claim)
    assert not await store.delete_item("t", "job", if_version=dead.version)


async def test_an_update_that_clears_the_in_progress_time_keeps_the_item(
    store: Store, clock: VirtualClock
) -> None:
    claim = _item(await store.create_item("t", "k", status="INPROGRESS", ttl=100,
                                          in_progress_ttl=5))
    done = await store.update_item("t", "k", status="COMPLETED", data='{"r": 1}', ttl=50,
                                   in_progress_ttl=None, if_version=claim.version,
                                   if_status="INPROGRESS")
    item = _item(done)
    assert done.written and item.version > claim.version
    assert (item.status, item.data, item.expires, item.in_progress_expires) == (
        "COMPLETED", '{"r": 1}', START + 50, None)
    clock.advance(10)  # past the old in-progress time: still there
    assert await store.get_item("t", "k") == item
    clock.advance(40)
    assert await store.get_item("t", "k") is None


async def test_update_changes_only_what_it_names(store: Store, clock: VirtualClock) -> None:
    first = _item(await store.create_item("t", "k", status="A", data="d", ttl=100,
                                          in_progress_ttl=50))
    clock.advance(1)
    # status alone: data, expiry and in-progress expiry are kept
    one = _item(await store.update_item("t", "k", status="B"))
    assert (one.status, one.data, one.expires, one.in_progress_expires) == (
        "B", "d", first.expires, first.in_progress_expires)
    # data alone (empty data is a value, not "keep"), then a new in-progress time
    two = _item(await store.update_item("t", "k", data=""))
    assert (two.status, two.data) == ("B", "")
    three = _item(await store.update_item("t", "k", in_progress_ttl=20, ttl=30))
    assert (three.expires, three.in_progress_expires) == (START + 31, START + 21)
    four = _item(await store.update_item("t", "k", in_progress_ttl=KEEP))
    assert four.in_progress_expires == START + 21
    assert first.version < one.version < two.version < three.version < four.version


async def test_update_compares_version_and_status(store: Store) -> None:
    item = _item(await store.create_item("t", "k", status="INPROGRESS", ttl=100))
    stale = await store.update_item("t", "k", status="X", if_version=item.version + 1)
    assert stale == ItemWrite(False, item)
    other = await store.update_item("t", "k", status="X", if_status="COMPLETED")
    assert other == ItemWrite(False, item)
    both = await store.update_item("t", "k", status="COMPLETED", if_version=item.version,
                                   if_status="INPROGRESS")
    assert both.written
    # the version moved on: the same condition fails the second time
    assert not (await store.update_item("t", "k", status="Y", if_version=item.version)).written
    assert (await store.update_item("t", "absent", status="Y")) == ItemWrite(False, None)


async def test_put_writes_whatever_holds_the_key(store: Store, clock: VirtualClock) -> None:
    first = _item(await store.create_item("t", "k", status="INPROGRESS", ttl=100))
    put = await store.put_item("t", "k", status="COMPLETED", data="r", ttl=10)
    assert put.version > first.version
    assert (put.status, put.data, put.expires, put.in_progress_expires) == (
        "COMPLETED", "r", START + 10, None)
    assert await store.get_item("t", "k") == put
    # on an absent key too
    fresh = await store.put_item("t", "new", status="S", ttl=1, in_progress_ttl=0.5)
    assert fresh.in_progress_expires == START + 0.5
    clock.advance(0.5)
    assert await store.get_item("t", "new") is None


async def test_delete_removes_the_live_item_if_its_version_matches(store: Store) -> None:
    item = _item(await store.create_item("t", "k", status="S", ttl=100))
    assert not await store.delete_item("t", "k", if_version=item.version + 1)
    assert await store.get_item("t", "k") == item
    assert await store.delete_item("t", "k", if_version=item.version)
    assert await store.get_item("t", "k") is None
    assert not await store.delete_item("t", "k")
    # deleted: a create writes again, and an unconditional delete removes it
    again = _item(await store.create_item("t", "k", status="S", ttl=100))
    assert again.version > item.version
    assert await store.delete_item("t", "k")


async def test_versions_increase_per_table_across_keys_and_deletions(
    store: Store, clock: VirtualClock
) -> None:
    versions = []
    for i in range(6):
        write = await store.create_item("t", f"k{i % 2}", status="S", ttl=5)
        versions.append(_item(write).version)
        if i % 3 == 0:
            await store.delete_item("t", f"k{i % 2}")
        else:
            clock.advance(5)
    assert versions == sorted(set(versions)) and versions[0] >= 1


async def test_one_of_many_concurrent_creates_wins(
    store: Store, new_store: Callable[..., Store], backend: str
) -> None:
    # Given several store objects on one backend (the memory store is one process's)
    stores = [store]
    if backend != "memory":
        for _ in range(2):
            other = new_store(backend)
            await other.open()
            stores.append(other)
    # When 30 creates of one key race
    writes = await asyncio.gather(*(
        stores[i % len(stores)].create_item("t", "race", status=f"w{i}", ttl=60)
        for i in range(30)))
    # Then exactly one wrote, and every other one was told about that one
    winners = [w for w in writes if w.written]
    assert len(winners) == 1
    assert all(w.item == winners[0].item for w in writes)


async def test_items_survive_reopening(store: Store, backend: str) -> None:
    item = _item(await store.create_item("t", "k", status="S", data="é ✓", ttl=60))
    await store.close()
    await store.open()
    assert await store.get_item("t", "k") == item


async def test_large_data_and_long_keys_round_trip(store: Store) -> None:
    data = "x" * 300_000
    key = "fn.module.handler#" + "a" * 900
    item = _item(await store.create_item("t", key, status="S", data=data, ttl=60))
    got = await store.get_item("t", key)
    assert got == item and got is not None and got.data == data


@pytest.mark.parametrize("call, message", [
    (lambda s: s.create_item("", "k", status="S", ttl=1), "table"),
    (lambda s: s.create_item("a{b}", "k", status="S", ttl=1), "table"),
    (lambda s: s.create_item("t", "", status="S", ttl=1), "key"),
    (lambda s: s.create_item("t", "k" * 1025, status="S", ttl=1), "key"),
    (lambda s: s.create_item("t", "k", status="", ttl=1), "status"),
    (lambda s: s.create_item("t", "k", status="S", ttl=0), "ttl"),
    (lambda s: s.create_item("t", "k", status="S", ttl=float("inf")), "ttl"),
    (lambda s: s.create_item("t", "k", status="S", ttl=1, in_progress_ttl=-1),
     "in_progress_ttl"),
    (lambda s: s.put_item("t", "k", status="S", data=b"x", ttl=1), "data"),
    (lambda s: s.update_item("t", "k", if_version=0), "if_version"),
    (lambda s: s.delete_item("t", "k", if_version=True), "if_version"),
    (lambda s: s.get_item("t", 7), "key"),
])
async def test_bad_arguments_are_refused(store: Store, call: Callable[[Store], object],
                                         message: str) -> None:
    with pytest.raises(InputError, match=message):
        await call(store)  # type: ignore[misc]
