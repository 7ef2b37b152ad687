"""Table items with expiry: the store contract's rules for them, and the memory engine.

An *item* lives in a *table* (a namespace: ``"idempotency"``, ``"schedule"``) under
a *key*, and holds a ``status`` (free text: ``"INPROGRESS"``, ``"COMPLETED"``), ``data``
(free text, JSON by convention) and a ``version``. Two times, both epoch seconds of the
store's clock, end it:

- ``expires``: the item is gone after it;
- ``in_progress_expires`` (optional): the item is gone after it too. Work that claims a
  key (an invocation) sets it to when it would have timed out, and clears it when it
  finishes: a process that dies mid-way (``kill -9``) leaves a claim that lapses on its
  own, and the work can be claimed again.

An item past either time is *dead*: every operation treats it as absent (a read returns
nothing, a create replaces it). Backends drop dead items lazily.

Operations, each atomic (one lock, one script, one transaction) at one reading of the
store's clock:

- **create** writes an item unless a live one holds the key; it says whether it wrote,
  and returns the live item when it did not (the one that won);
- **put** writes an item whatever holds the key;
- **get** returns the live item, or nothing;
- **update** changes a live item, only if its version (and, optionally, its status) is
  the one given: a compare-and-set;
- **delete** removes the live item (only if its version is the one given, optionally).

Versions: every write (create, put, update) gives the item the next number of its
table's counter, so versions strictly increase per table for as long as the store lives,
across keys, deletions and expiries. A version names one write: it is a fencing token. A
run that lost its claim (its in-progress time lapsed, another run created the item
again) cannot update or delete the new item by mistake, as its version is older.

The memory engine below applies these rules in Python, the SQLite engine in one
``BEGIN IMMEDIATE`` transaction per write, and the Redis store in ``lua/items.lua``.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from sluicegate.errors import InputError

__all__ = [
    "KEEP",
    "MAX_ITEM_DATA",
    "MAX_ITEM_KEY",
    "MAX_TABLE_NAME",
    "ItemChange",
    "ItemWrite",
    "MemoryItems",
    "TableItem",
    "check_item_key",
    "check_item_ttl",
    "item_live",
]

MAX_TABLE_NAME: Final = 200
"""Longest table name, in characters."""

MAX_ITEM_KEY: Final = 1024
"""Longest key, in characters."""

MAX_ITEM_DATA: Final = 8 * 1024 * 1024
"""Largest ``data``, in characters (a Lambda response of 6 MB, and room for more)."""

MAX_STATUS: Final = 100
"""Longest status, in characters."""


class _Keep(enum.Enum):
    """The type of :data:`KEEP`."""

    KEEP = "KEEP"

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep.KEEP
"""An update's ``in_progress_ttl`` that leaves the item's in-progress expiry as it is."""


@dataclass(frozen=True, slots=True)
class TableItem:
    """A live item, as the store holds it.

    Attributes:
        table: its namespace.
        key: its key within the table.
        status: free text, non-empty.
        data: free text (JSON by convention); may be empty.
        expires: epoch seconds (store clock) after which the item is gone.
        in_progress_expires: epoch seconds after which the item is gone too; ``None``
            when it has none (the work it stands for finished, or never claimed one).
        version: the table's counter at the item's last write (a fencing token).
    """

    table: str
    key: str
    status: str
    data: str
    expires: float
    in_progress_expires: float | None
    version: int


@dataclass(frozen=True, slots=True)
class ItemWrite:
    """What a create or an update returns.

    Attributes:
        written: whether this call wrote.
        item: the live item now under the key: the one written, or (not written) the
            one that stopped the write; ``None`` when no live item holds the key (an
            update of an absent or dead item).
    """

    written: bool
    item: TableItem | None


@dataclass(frozen=True, slots=True)
class ItemChange:
    """What an update changes, as backends receive it (validated).

    Attributes:
        status, data: the new values; ``None`` keeps the item's.
        ttl: seconds from now to the new ``expires``; ``None`` keeps it.
        in_progress_ttl: seconds from now to the new ``in_progress_expires`` (> 0), or
            ``None`` to clear it, unless ``keep_in_progress``.
        keep_in_progress: leave ``in_progress_expires`` as it is.
    """

    status: str | None = None
    data: str | None = None
    ttl: float | None = None
    in_progress_ttl: float | None = None
    keep_in_progress: bool = True


def item_live(item: TableItem, now: float) -> bool:
    """Whether ``item`` is live at ``now``: before its expiry and, when it has one,
    before its in-progress expiry."""
    if item.expires <= now:
        return False
    ipe = item.in_progress_expires
    return ipe is None or ipe > now


def changed(item: TableItem, change: ItemChange, now: float, version: int) -> TableItem:
    """``item`` with ``change`` applied at ``now``, under ``version``."""
    if change.keep_in_progress:
        ipe = item.in_progress_expires
    else:
        ipe = None if change.in_progress_ttl is None else now + change.in_progress_ttl
    return replace(
        item,
        status=item.status if change.status is None else change.status,
        data=item.data if change.data is None else change.data,
        expires=item.expires if change.ttl is None else now + change.ttl,
        in_progress_expires=ipe,
        version=version,
    )


def matches(item: TableItem, if_version: int | None, if_status: str | None) -> bool:
    """Whether an update or delete conditioned on ``if_version``/``if_status`` may act on
    ``item`` (``None``: no condition)."""
    return (if_version is None or item.version == if_version) and (
        if_status is None or item.status == if_status)


# ---------------------------------------------------------------------- validation
def check_item_key(table: object, key: object) -> None:
    """Raise :class:`~sluicegate.errors.InputError` for a bad table name or key."""
    if not isinstance(table, str) or not table or len(table) > MAX_TABLE_NAME or (
        "{" in table or "}" in table
    ):
        raise InputError(f"item table {table!r} is invalid: need 1-{MAX_TABLE_NAME} "
                         "characters without braces")
    if not isinstance(key, str) or not key or len(key) > MAX_ITEM_KEY:
        raise InputError(f"item key {key!r} is invalid: need 1-{MAX_ITEM_KEY} characters")


def check_item_ttl(name: str, ttl: object) -> float:
    """``ttl`` as a float, or :class:`~sluicegate.errors.InputError` unless it is finite
    seconds > 0."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not (
        0 < ttl < math.inf
    ):
        raise InputError(f"{name}={ttl!r} is invalid: need finite seconds > 0")
    return float(ttl)


def check_status(status: object) -> str:
    if not isinstance(status, str) or not status or len(status) > MAX_STATUS:
        raise InputError(f"item status {status!r} is invalid: need 1-{MAX_STATUS} characters")
    return status


def check_data(data: object) -> str:
    if not isinstance(data, str):
        raise InputError(f"item data must be a str, got {type(data).__name__}")
    if len(data) > MAX_ITEM_DATA:
        raise InputError(f"item data of {len(data):,} characters is above the maximum, "
                         f"{MAX_ITEM_DATA:,}")
    return data


def check_version(if_version: object) -> int | None:
    if if_version is None:
        return None
    if isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1:
        raise InputError(f"if_version={if_version!r} is invalid: need an integer >= 1 or None")
    return if_version


# ---------------------------------------------------------------------- memory engine
class MemoryItems:
    """The table items of one memory store (a
    :class:`~sluicegate.store.engine.ItemEngine` of plain dicts), at ``clock``.

    Dead items are dropped when touched, and through a heap of expiries that every
    write pops a few due entries from, so a table of short-lived keys does not grow.
    """

    SWEEP: Final = 8
    """Due heap entries a write looks at."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.items: dict[tuple[str, str], TableItem] = {}
        self.versions: dict[str, int] = {}
        self._expiry: list[tuple[float, str, str, int]] = []

    def _live(self, table: str, key: str, now: float) -> TableItem | None:
        item = self.items.get((table, key))
        if item is None:
            return None
        if not item_live(item, now):
            del self.items[table, key]
            return None
        return item

    def _next_version(self, table: str) -> int:
        version = self.versions.get(table, 0) + 1
        self.versions[table] = version
        return version

    def _store(self, item: TableItem, now: float) -> TableItem:
        self.items[item.table, item.key] = item
        ends = item.expires if item.in_progress_expires is None else min(
            item.expires, item.in_progress_expires)
        heapq.heappush(self._expiry, (ends, item.table, item.key, item.version))
        expiry = self._expiry
        for _ in range(self.SWEEP):
            if not expiry or expiry[0][0] > now:
                break
            _, table, key, version = heapq.heappop(expiry)
            held = self.items.get((table, key))
            if held is not None and held.version == version and not item_live(held, now):
                del self.items[table, key]
        return item

    def _new(self, table: str, key: str, status: str, data: str, ttl: float,
             in_progress_ttl: float | None, now: float) -> TableItem:
        return self._store(TableItem(
            table, key, status, data, now + ttl,
            None if in_progress_ttl is None else now + in_progress_ttl,
            self._next_version(table)), now)

    def create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                    in_progress_ttl: float | None) -> ItemWrite:
        now = self.clock()
        held = self._live(table, key, now)
        if held is not None:
            return ItemWrite(False, held)
        return ItemWrite(True, self._new(table, key, status, data, ttl, in_progress_ttl, now))

    def put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                 in_progress_ttl: float | None) -> TableItem:
        return self._new(table, key, status, data, ttl, in_progress_ttl, self.clock())

    def get_item(self, table: str, key: str) -> TableItem | None:
        return self._live(table, key, self.clock())

    def update_item(self, table: str, key: str, change: ItemChange,
                    if_version: int | None, if_status: str | None) -> ItemWrite:
        now = self.clock()
        held = self._live(table, key, now)
        if held is None or not matches(held, if_version, if_status):
            return ItemWrite(False, held)
        return ItemWrite(True, self._store(
            changed(held, change, now, self._next_version(table)), now))

    def delete_item(self, table: str, key: str, if_version: int | None) -> bool:
        held = self._live(table, key, self.clock())
        if held is None or not matches(held, if_version, None):
            return False
        del self.items[table, key]
        return True
