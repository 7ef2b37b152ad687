"""The SQLite store: the embedded default, one file shared by any number of processes.

Durability. The database runs in WAL mode with ``synchronous=NORMAL``: a transaction is
in the write-ahead log (the operating system's page cache) when its call returns, so it
survives the crash or ``kill -9`` of any process; only a power loss or kernel crash may
lose the last transactions before a checkpoint. ``synchronous=FULL`` would also survive
those, at one fsync per transaction (a few hundred transactions per second on most disks
instead of tens of thousands).

Concurrency. Every state change is one transaction: a single statement where possible,
``BEGIN IMMEDIATE`` for a read-modify-write such as a receive, so two processes (or two
stores on one file) never claim the same message. Waiting for another process's lock is
bounded by ``busy_timeout``.

Threads. Blocking calls run on one worker thread that owns a connection, so the event
loop never waits for a lock. The small hot operations (send, receive, delete, change
visibility, a queue's attributes) first try a second connection directly on the loop's
thread with a lock wait of zero: when the file is free they take tens of microseconds
there, less than the hand-off to a thread costs (~95 us measured), and when another
connection holds the lock they give up at once and go to the worker. That connection
checkpoints the log itself, as any WAL writer does (SQLite's automatic checkpoint, every
1,000 pages of log): handing checkpoints to the worker thread instead was tried and made
writes queue behind them. Pass ``inline=False`` to run everything on the worker.

Schema (version :data:`SCHEMA_VERSION`, in table ``meta``): ``queues`` holds attributes and
the ``dead_lettered`` counter; ``messages`` holds every message, with ``hidden = 0`` for
visible ones, indexed by (queue, sent time) to claim the oldest, and ``hidden = 1`` for
delayed and in-flight ones, indexed by (queue, visible time) so a receive finds those whose
time has come. A receive moves those to visible (or to the dead-letter queue) first. Both
indexes are partial, so each message sits in exactly one.

Receipt handles are ``"{message_id}#{receive_count}#{seq}.{token}"``: ``seq`` is the row's
key and ``token`` (in hex) the random 63-bit integer the receive stored in the row's
``token`` column, one per receive call. Checking a handle is a primary-key lookup and an
integer compare, and a receive rewrites eight bytes per row, not a handle string. A later
receive stores a new token, so an earlier handle no longer matches (it is stale); moving a
message to or from a dead-letter queue clears the token.

FIFO queues (schema version 3) use the same table: a message's ``group_id`` and
``dedup_id`` columns are set, its ``seq`` is its sequence number, and a receive claims
visible messages of groups that have no message in flight (``hidden = 1`` with a receive
count and not past the retention period: an index on (queue, group) over hidden rows
answers that): the groups in the order of their oldest visible message, as many messages
of the first group as it has (in ``seq`` order, so a group never overtakes itself), then
of the next, as SQS does. The groups are found among the oldest :data:`FIFO_SCAN_WINDOW`
visible messages and, when those are not enough, through an index of visible messages by
group (version 4), so a backlog held up behind groups in flight costs a step per group,
not per message. ``fifo_dedup`` remembers deduplication ids for 5 minutes. Streams live
in ``streams`` (with the next sequence number), ``stream_shards`` (each shard's latest
sequence number) and ``stream_records`` (keyed by stream, shard and sequence); mappings'
checkpoints in ``checkpoints``.

Coordination (schema version 5): counted leases in ``leases`` (one row per lease and
holder: count, want, expiry, fencing token) and ``lease_names`` (each lease's last token),
the worker registry in ``workers``, shared logs in ``shared_events`` and values in
``shared_values`` (:mod:`sluicegate.store.coordination`). Every claim runs in a
``BEGIN IMMEDIATE`` transaction at one reading of the store's clock, and a worker's whole
sync round (:meth:`SqliteStore.coordinate`) is one transaction.

Live settings (schema version 6, :mod:`sluicegate.store.live`): one row per scope in
``live_settings`` (JSON values, version, the revision of its last write, when and by
whom) and the history in ``live_history``; a write is one ``BEGIN IMMEDIATE``
transaction that compares the version, writes the row and the history entry, and sets
the shared value of the revision. The store's revision is the highest of the rows'.

Semaphores (schema version 7): one row per semaphore in ``semaphores`` holding its whole
state (limit, fencing counter, holders, waiters in arrival order) as JSON, changed by one
``BEGIN IMMEDIATE`` transaction per attempt or release (rules in
:mod:`sluicegate.store.semaphores`); parked batches in ``parked`` (task token, expiry,
record). A waiter in another process is woken by a datagram on its store's socket
(:mod:`sluicegate.store.wake`), sent after the release commits.

Table items (schema version 8, :mod:`sluicegate.store.items`): one row per live or
dead item in ``items`` (table, key, status, data, expiry, in-progress expiry,
version), and each table's version counter in ``item_tables``; a write is one
``BEGIN IMMEDIATE`` transaction that reads the row, decides by the rules, writes it and
raises the counter, then drops a few dead rows (by the index on ``expires``).

Version 1 stored the whole handle string in a ``handle`` column. Opening an older file
upgrades it in place, version by version, in one transaction. From version 1, handles
issued before the upgrade are stale after it, so their messages are delivered again once
their visibility timeout ends.
Every process sharing a file must run the same schema version: an older one that still
has the file open fails on its next statement (the column it uses is gone).

Read-only (``read_only=True``, for commands that only look): one connection in SQLite's
``mode=ro`` with ``query_only`` set, no schema created or upgraded (a file of version
:data:`OLDEST_READABLE_VERSION` or later is read as it is), every write refused. It reads
a file another process is writing, through the WAL index, and one in a directory it
cannot write (see :func:`_connect_read_only`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import json
import os
import random
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from sluicegate.core.config import QueueConfig, is_fifo_queue
from sluicegate.core.streams import StreamConfig
from sluicegate.errors import (
    InvalidReceiptHandle,
    QueueNotFound,
    StoreError,
    StoreNotOpen,
    StoreUnavailable,
    StreamNotFound,
)
from sluicegate.store.base import check_store_error
from sluicegate.store.coordination import (
    MAX_EVENTS,
    CoordinationReply,
    CoordinationRound,
    LeaseClaim,
    LeaseEntry,
    LeaseGrant,
    LeaseHolder,
    claim_lease_in,
)
from sluicegate.store.engine import Engine, EngineStore
from sluicegate.store.items import ItemChange, ItemWrite, TableItem, item_live
from sluicegate.store.items import changed as item_changed
from sluicegate.store.items import matches as item_matches
from sluicegate.store.live import (
    MAX_SETTINGS_HISTORY,
    SETTINGS_REVISION,
    LiveSettings,
    SettingsChange,
    SettingsWrite,
    merge_settings,
)
from sluicegate.store.semaphores import (
    SemaphoreGrant,
    SemaphoreState,
    Wake,
    acquire_in,
    release_in,
    renew_in,
)
from sluicegate.store.values import (
    DEDUPLICATION_WINDOW,
    Clock,
    FifoSent,
    Message,
    NewMessage,
    PeekedMessage,
    QueueCounts,
    StreamMessage,
    new_message_id,
    peek_state,
)
from sluicegate.store.wake import DatagramWake, send_wake

__all__ = ["DEFAULT_BUSY_TIMEOUT", "DEFAULT_SQLITE_PATH", "SCHEMA_VERSION", "SqliteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 8
"""Version of the tables this module creates and reads, kept in ``meta.schema_version``."""

DEFAULT_SQLITE_PATH = "sluicegate.db"
"""Database file used when no path is given (relative to the working directory)."""

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds an operation waits for another connection's write lock before failing."""

FIFO_SCAN_WINDOW = 1000
"""Visible messages a FIFO receive first looks through, oldest first, for groups with
nothing in flight. When those groups hold fewer messages than it wants and the queue
holds more, the receive looks group by group instead (an index step per group): looking
message by message through a long backlog whose oldest groups are all in flight took
0.1 s per receive at 100,000 messages in 10 groups (1 ms this way)."""

YIELD_EVERY = 16
"""Operations done on the loop's thread between two yields to the event loop: such an
operation never suspends, so a task looping over them would otherwise starve the others."""

CACHED_STATEMENTS = 256
"""Prepared statements each connection keeps (sqlite3's own cache, keyed by SQL text)."""

DELETE_CHUNK = 400
"""Receipt handles above which a delete runs on the worker thread, not the loop's: a
delete's time grows with its size, and the loop must not stall."""

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14

_SCHEMA = """
CREATE TABLE queues (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    visibility_timeout INTEGER NOT NULL,
    delay_seconds INTEGER NOT NULL,
    retention_period INTEGER NOT NULL,
    max_message_size INTEGER NOT NULL,
    receive_wait_time INTEGER NOT NULL,
    dead_letter_queue TEXT,
    max_receive_count INTEGER,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    redrive_check INTEGER NOT NULL DEFAULT 0,
    content_based_deduplication INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    hidden INTEGER NOT NULL,
    visible_at REAL NOT NULL,
    sent_ts REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_receive_ts REAL,
    token INTEGER,
    message_id TEXT NOT NULL,
    md5 TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    source_queue TEXT,
    attributes TEXT,
    body TEXT NOT NULL,
    group_id TEXT,
    dedup_id TEXT
);
CREATE INDEX messages_ready ON messages (queue, sent_ts) WHERE hidden = 0;
CREATE INDEX messages_hidden ON messages (queue, visible_at) WHERE hidden = 1;
""" + """
CREATE INDEX messages_fifo_ready ON messages (queue) WHERE hidden = 0 AND group_id IS NOT NULL;
CREATE INDEX messages_fifo_busy ON messages (queue, group_id) WHERE hidden = 1;
CREATE INDEX messages_fifo_groups ON messages (queue, group_id)
    WHERE hidden = 0 AND group_id IS NOT NULL;
CREATE TABLE fifo_dedup (
    queue INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,
    expires REAL NOT NULL,
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
CREATE INDEX fifo_dedup_expiry ON fifo_dedup (queue, expires);
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    shard_count INTEGER NOT NULL,
    retention_period INTEGER NOT NULL,
    next_sequence INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE stream_shards (
    stream INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    latest INTEGER NOT NULL DEFAULT -1,
    PRIMARY KEY (stream, shard)
) WITHOUT ROWID;
CREATE TABLE stream_records (
    stream INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    arrival REAL NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, shard, seq)
) WITHOUT ROWID;
CREATE INDEX stream_records_arrival ON stream_records (stream, arrival);
CREATE TABLE checkpoints (
    mapping TEXT NOT NULL,
    shard INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (mapping, shard)
) WITHOUT ROWID;
""" + """
CREATE TABLE lease_names (
    name TEXT PRIMARY KEY,
    token INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE leases (
    name TEXT NOT NULL,
    holder TEXT NOT NULL,
    count INTEGER NOT NULL,
    want INTEGER NOT NULL,
    expires REAL NOT NULL,
    token INTEGER NOT NULL,
    PRIMARY KEY (name, holder)
) WITHOUT ROWID;
CREATE TABLE workers (
    worker TEXT PRIMARY KEY,
    expires REAL NOT NULL,
    info TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE shared_events (
    id INTEGER PRIMARY KEY,
    log TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX shared_events_log ON shared_events (log, id);
CREATE TABLE shared_values (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
""" + """
CREATE TABLE live_settings (
    scope TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    changed_by TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX live_settings_revision ON live_settings (revision);
CREATE TABLE live_history (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX live_history_scope ON live_history (scope, id);
CREATE TABLE semaphores (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE parked (
    token TEXT PRIMARY KEY,
    expires REAL NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
""" + """
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    tbl TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL,
    expires REAL NOT NULL,
    in_progress REAL,
    version INTEGER NOT NULL,
    UNIQUE (tbl, key)
);
CREATE INDEX items_expires ON items (expires);
CREATE TABLE item_tables (
    tbl TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
"""
_SCHEMA_8 = _SCHEMA[_SCHEMA.index("CREATE TABLE items"):]
"""What version 8 added: table items and their tables' version counters."""
_SCHEMA_7 = _SCHEMA[_SCHEMA.index("CREATE TABLE semaphores"):
                    _SCHEMA.index("CREATE TABLE items")]
"""What version 7 added: semaphores (one row per semaphore, its state as JSON) and parked
batches."""
_SCHEMA_6 = _SCHEMA[_SCHEMA.index("CREATE TABLE live_settings"):
                    _SCHEMA.index("CREATE TABLE semaphores")]
"""What version 6 added: live settings and their history."""
_SCHEMA_5 = _SCHEMA[_SCHEMA.index("CREATE TABLE lease_names"):
                    _SCHEMA.index("CREATE TABLE live_settings")]
"""What version 5 added: counted leases, the worker registry, shared logs and values."""
_SCHEMA_4 = _SCHEMA[_SCHEMA.index("CREATE INDEX messages_fifo_groups"):
                    _SCHEMA.index("CREATE TABLE fifo_dedup")]
"""What version 4 added: an index of visible FIFO messages by group."""
_SCHEMA_3 = _SCHEMA[_SCHEMA.index("CREATE INDEX messages_fifo_ready"):
                    _SCHEMA.index("CREATE TABLE lease_names")].replace(_SCHEMA_4, "")
"""What version 3 added as new objects (the upgrade from 2 also adds three columns)."""

_QUEUE_COLUMNS = (
    "name, visibility_timeout, delay_seconds, retention_period, max_message_size, "
    "receive_wait_time, dead_letter_queue, max_receive_count, content_based_deduplication"
)
_SQL_ITEM_GET = """
SELECT status, data, expires, in_progress, version FROM items WHERE tbl = ? AND key = ?
"""
_SQL_ITEM_VERSION = """
INSERT INTO item_tables (tbl, version) VALUES (?, 1)
ON CONFLICT (tbl) DO UPDATE SET version = version + 1 RETURNING version
"""
_SQL_ITEM_PUT = """
INSERT INTO items (tbl, key, status, data, expires, in_progress, version)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tbl, key) DO UPDATE SET status = excluded.status, data = excluded.data,
    expires = excluded.expires, in_progress = excluded.in_progress, version = excluded.version
"""
_SQL_ITEM_SWEEP = """
DELETE FROM items WHERE id IN (
    SELECT id FROM items WHERE expires <= ?1 ORDER BY expires LIMIT 8)
"""
"""Drops a few items past their expiry (those past only their in-progress expiry wait
for it, or for the next write of their key)."""
_SQL_ITEM_DELETE = "DELETE FROM items WHERE tbl = ? AND key = ?"
_SQL_GET_QUEUE = f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?"
_SQL_QUEUE_ID = "SELECT id, retention_period FROM queues WHERE name = ?"

_SQL_RECEIVE_PROBE = """
SELECT q.id, q.retention_period, q.max_receive_count, d.id, q.redrive_check,
    (SELECT min(visible_at) FROM messages WHERE queue = q.id AND hidden = 1),
    (SELECT min(sent_ts) FROM messages WHERE queue = q.id AND hidden = 0)
FROM queues AS q LEFT JOIN queues AS d ON d.name = q.dead_letter_queue
WHERE q.name = ?
"""
_SQL_PROMOTE = """
UPDATE messages SET hidden = 0 WHERE queue = ? AND hidden = 1 AND visible_at <= ?
"""
# SET expressions all read the row as it was, so the CASEs agree on who is dead-lettered.
# A message past the retention period is not: it stays to be deleted as expired.
_DEAD = "receive_count >= :limit AND sent_ts > :cutoff"
_SQL_PROMOTE_OR_DEAD_LETTER = f"""
UPDATE messages SET
    hidden = 0,
    queue = CASE WHEN {_DEAD} THEN :dlq ELSE queue END,
    source_queue = CASE WHEN {_DEAD} THEN :name ELSE source_queue END,
    visible_at = CASE WHEN {_DEAD} THEN :now ELSE visible_at END,
    first_receive_ts = CASE WHEN {_DEAD} THEN NULL ELSE first_receive_ts END,
    token = CASE WHEN {_DEAD} THEN NULL ELSE token END,
    receive_count = CASE WHEN {_DEAD} THEN 0 ELSE receive_count END
WHERE queue = :queue AND hidden = 1 AND visible_at <= :now
RETURNING queue
"""
_SQL_DEAD_LETTER_VISIBLE = """
UPDATE messages SET queue = :dlq, source_queue = :name, visible_at = :now,
    first_receive_ts = NULL, token = NULL, receive_count = 0
WHERE queue = :queue AND hidden = 0 AND receive_count >= :limit AND sent_ts > :cutoff
"""
_SQL_EXPIRE_VISIBLE = "DELETE FROM messages WHERE queue = ? AND hidden = 0 AND sent_ts <= ?"
_SQL_EXPIRE_HIDDEN = "DELETE FROM messages WHERE queue = ? AND hidden = 1 AND sent_ts <= ?"
# Claiming is a SELECT then one UPDATE of the selected keys: faster than one
# UPDATE ... WHERE seq IN (SELECT ...) RETURNING, whose RETURNING is costly, and than
# an UPDATE per row.
_SQL_CLAIM_SELECT = """
SELECT seq, sent_ts, message_id, body, md5, attributes, first_receive_ts, receive_count,
    sender_id
FROM messages WHERE queue = ? AND hidden = 0 ORDER BY sent_ts, seq LIMIT ?
"""
_SQL_CLAIM = """
UPDATE messages SET hidden = 1, visible_at = ?1, receive_count = receive_count + 1,
    first_receive_ts = coalesce(first_receive_ts, ?2),
    token = ?3
WHERE {keys}
"""
_SQL_CLAIM_UPDATE = _SQL_CLAIM.format(keys="seq IN (SELECT value FROM json_each(?4))")
"""Claims the selected rows in one statement, all under the receive's one token."""
_SQL_CLAIM_RUN = _SQL_CLAIM.format(keys="seq BETWEEN ?4 AND ?5")
"""The same for keys that are one run of consecutive integers (every key from the lowest
to the highest is selected, so the range holds the selected rows and no other): a range
scan of the table, cheaper than a JSON list. Messages sent one after another and received
in that order usually have such keys."""
_SQL_SEND_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_SQL_SEND = """
INSERT INTO messages (queue, hidden, visible_at, sent_ts, message_id, md5, sender_id,
    attributes, body)
SELECT q.id, v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7,
    v.column8
FROM (VALUES {rows}) AS v, queues AS q WHERE q.name = ?
"""
_SQL_DELETE = """
DELETE FROM messages
WHERE seq IN ({seqs}) AND token = ?4
    AND queue = (SELECT id FROM queues WHERE name = ?1)
    AND sent_ts > ?2 - (SELECT retention_period FROM queues WHERE name = ?1)
"""
_SQL_DELETE_ONE = _SQL_DELETE.format(seqs="?3")
_SQL_DELETE_MANY = _SQL_DELETE.format(seqs="SELECT value FROM json_each(?3)")
"""Deletes the rows of one receive's token; the keys travel as a JSON array, so one
prepared statement serves every batch size."""
_SQL_DELETE_RUN = _SQL_DELETE.replace("seq IN ({seqs})", "seq BETWEEN ?3 AND ?5")
"""The same for keys that are one run of consecutive integers (see :data:`_SQL_CLAIM_RUN`)."""
_SQL_DELETE_MANY_RETURNING = _SQL_DELETE_MANY + "RETURNING seq"
"""The same, returning the keys it deleted: for a delete some of whose handles are stale
(RETURNING costs about as much again per row, so a delete tries without it first)."""
_SQL_CHANGE_VISIBILITY = """
UPDATE messages SET visible_at = :deadline
WHERE seq = :seq AND token = :token AND hidden = 1 AND visible_at > :now
    AND queue = (SELECT id FROM queues WHERE name = :name)
    AND sent_ts > :now - (SELECT retention_period FROM queues WHERE name = :name)
"""
_SQL_NEXT_VISIBLE = """
SELECT (SELECT min(visible_at) FROM messages WHERE queue = q.id AND hidden = 1)
FROM queues AS q WHERE q.name = ?
"""
_SQL_COUNT_VISIBLE = """
SELECT count(*), min(sent_ts) FROM messages WHERE queue = ? AND hidden = 0 AND sent_ts > ?
"""
_SQL_COUNT_HIDDEN = """
SELECT coalesce(sum(visible_at <= :now), 0),
    coalesce(sum(visible_at > :now AND receive_count > 0), 0),
    coalesce(sum(visible_at > :now AND receive_count = 0), 0),
    min(CASE WHEN visible_at <= :now OR receive_count > 0 THEN sent_ts END)
FROM messages WHERE queue = :queue AND hidden = 1 AND sent_ts > :cutoff
"""
_FIFO_COLUMNS = """seq, sent_ts, message_id, body, md5, attributes, first_receive_ts,
    receive_count, sender_id, group_id, dedup_id"""
_NO_END = 2**63 - 1
"""A ``seq`` above every other: the window's end when it holds every visible message."""
_FIFO_GROUP_FREE = """NOT EXISTS (
    SELECT 1 FROM messages AS x
    WHERE x.queue = :queue AND x.hidden = 1 AND x.group_id = {group}
        AND x.receive_count > 0 AND x.sent_ts > :cutoff
)"""
"""Whether group ``{group}`` has nothing in flight: a message sent before the retention
cutoff no longer holds its group."""
_SQL_FIFO_WINDOW_END = """
SELECT seq FROM messages WHERE queue = ? AND hidden = 0 AND group_id IS NOT NULL
ORDER BY seq LIMIT 1 OFFSET ?
"""
"""The first visible message beyond the oldest ``window`` ones; none when the window
holds them all."""
_SQL_FIFO_WINDOW_GROUPS = f"""
SELECT group_id FROM messages AS m
WHERE queue = :queue AND hidden = 0 AND group_id IS NOT NULL AND seq < :end
    AND {_FIFO_GROUP_FREE.format(group="m.group_id")}
ORDER BY seq LIMIT :max
"""
"""A FIFO receive, first try: the groups of the oldest ``:max`` visible messages of groups
with nothing in flight, looking no further than ``:end`` (see :data:`FIFO_SCAN_WINDOW`).
Those groups, in order of first appearance, are the free groups with the oldest heads,
and together they hold at least ``:max`` messages (see :meth:`_Engine._claim_fifo`). The
scan runs in ``seq`` order and stops at the ``:max``-th match."""
_SQL_FIFO_FREE_GROUPS = f"""
WITH RECURSIVE grp(gid) AS (
    SELECT (SELECT min(group_id) FROM messages
            WHERE queue = :queue AND hidden = 0 AND group_id IS NOT NULL)
    UNION ALL
    SELECT (SELECT min(group_id) FROM messages
            WHERE queue = :queue AND hidden = 0 AND group_id IS NOT NULL
                AND group_id > grp.gid)
    FROM grp WHERE grp.gid IS NOT NULL
)
SELECT gid FROM grp
WHERE gid IS NOT NULL AND {_FIFO_GROUP_FREE.format(group="grp.gid")}
ORDER BY (SELECT min(seq) FROM messages
          WHERE queue = :queue AND hidden = 0 AND group_id = grp.gid)
LIMIT :max
"""
"""The ``:max`` groups with visible messages and none in flight whose oldest visible
message is oldest, oldest first: one step of an index per group (``messages_fifo_groups``),
not per message. A receive of ``:max`` messages takes at least one from each group it
touches, so these groups are enough."""
_SQL_FIFO_GROUP_HEAD = f"""
SELECT {_FIFO_COLUMNS} FROM messages
WHERE queue = ?1 AND hidden = 0 AND group_id = ?2
ORDER BY seq LIMIT ?3
"""
"""A group's oldest ``?3`` visible messages."""
_SQL_FIFO_SEND = """
INSERT INTO messages (queue, hidden, visible_at, sent_ts, message_id, md5, sender_id,
    attributes, body, group_id, dedup_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq
"""
_SQL_COUNT_GROUPS = """
SELECT count(DISTINCT group_id),
    count(DISTINCT CASE WHEN hidden = 1 AND receive_count > 0 AND visible_at > :now
        THEN group_id END)
FROM messages WHERE queue = :queue AND group_id IS NOT NULL AND sent_ts > :cutoff
"""
_SQL_STREAM = "SELECT id, shard_count, retention_period FROM streams WHERE name = ?"
_SQL_PEEK = """
SELECT seq, sent_ts, hidden, visible_at, receive_count, first_receive_ts, message_id, body, md5,
    attributes, sender_id, source_queue, group_id, dedup_id
FROM messages WHERE queue = ? AND hidden = {hidden} AND sent_ts > ? ORDER BY sent_ts, seq LIMIT ?
"""
"""A peek's first ``limit`` visible (``{hidden}`` 0: the ``messages_ready`` index gives
them in order) or hidden (1: found through ``messages_hidden``, then sorted) messages."""
_SQL_REDRIVE = """
UPDATE messages SET
    queue = coalesce(:to, (SELECT id FROM queues AS q WHERE q.name = messages.source_queue)),
    hidden = 0, visible_at = :now, receive_count = 0, first_receive_ts = NULL,
    token = NULL, source_queue = NULL
WHERE queue = :dlq AND hidden = :hidden
RETURNING queue
"""


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


_NO_TOKEN = -1
"""What a well-formed handle whose token is out of a receive's range checks against:
tokens are never negative, so it matches no row (a handle of this store's version 1 is
such a handle half the time)."""

_TOKEN_LIMIT = 1 << 63


class _StaleHandles(Exception):
    """Raised inside a delete's transaction to roll it back: some handle did not match."""


def _parse_handles(handles: list[Any]) -> tuple[list[int], list[int]]:
    """The row keys and the tokens of receipt handles, in order.

    A handle is ``"{message_id}#{receive_count}#{seq}.{token}"``: three ``#``-separated
    parts, the last two decimal, the token 1-16 hex digits.

    Raises:
        InvalidReceiptHandle: the first malformed handle.
    """
    seqs: list[int] = []
    tokens: list[int] = []
    known: dict[str, int] = {}  # one receive's handles share their token
    for handle in handles:
        try:
            mid, count, tail = handle.split("#")
            seq, text = tail.split(".")
        except (AttributeError, TypeError, ValueError):
            raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}") from None
        token = known.get(text)
        if token is None:
            token = _parse_token(text)
            if token is None:
                raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}")
            known[text] = token
        if not (mid and count.isdigit() and seq.isdecimal() and seq.isascii()):
            raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}")
        seqs.append(int(seq))
        tokens.append(token)
    return seqs, tokens


def _parse_token(text: str) -> int | None:
    if not (0 < len(text) <= 16 and text.isascii() and text.isalnum()):
        return None
    try:
        token = int(text, 16)
    except ValueError:
        return None
    return token if token < _TOKEN_LIMIT else _NO_TOKEN


def _parse_handle(handle: Any) -> tuple[int, int]:
    """The row key and the token of one receipt handle. Raises :class:`InvalidReceiptHandle`."""
    (seq,), (token,) = _parse_handles([handle])
    return seq, token


class _Engine:
    """One connection and the synchronous operations on it, each one transaction: an
    :class:`~sluicegate.store.engine.Engine` that is its own three parts.

    Parameters:
        conn: an open connection in autocommit mode (``isolation_level=None``).
        clock: where time is read, once per operation (inside the transaction for a
            receive, so claims and their timestamps follow the lock order).
    """

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], float]) -> None:
        self.conn = conn
        self.clock = clock
        self._configs: dict[tuple[Any, ...], QueueConfig] = {}
        self._getrandbits = random.getrandbits

    # ------------------------------------------------------------------ helpers
    def _config(self, row: tuple[Any, ...]) -> QueueConfig:
        config = self._configs.get(row)
        if config is None:
            if len(self._configs) > 4096:
                self._configs.clear()
            name, visibility, delay, retention, size, wait, dlq, receives, by_content = row
            config = self._configs[row] = QueueConfig(
                name, visibility, delay, retention, size, wait, dlq, receives, bool(by_content)
            )
        return config

    def _queue_row(self, name: str) -> tuple[int, int]:
        row = self.conn.execute(_SQL_QUEUE_ID, (name,)).fetchone()
        if row is None:
            raise QueueNotFound(name)
        return row[0], row[1]

    def _write(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` inside BEGIN IMMEDIATE ... COMMIT, rolling back on any error."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _read(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot)."""
        conn = self.conn
        conn.execute("BEGIN")
        try:
            return fn()
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    @property
    def queues(self) -> _Engine:
        return self

    @property
    def streams(self) -> _Engine:
        return self

    @property
    def coordination(self) -> _Engine:
        return self

    @property
    def settings(self) -> _Engine:
        return self

    # ------------------------------------------------------------------ queues
    def ensure_queue(self, config: QueueConfig) -> None:
        def run() -> None:
            conn = self.conn
            dlq = config.dead_letter_queue
            if dlq is not None and conn.execute(_SQL_QUEUE_ID, (dlq,)).fetchone() is None:
                raise QueueNotFound(dlq)
            old = conn.execute(
                "SELECT dead_letter_queue, max_receive_count FROM queues WHERE name = ?",
                (config.name,),
            ).fetchone()
            values = (
                config.visibility_timeout,
                config.delay_seconds,
                config.retention_period,
                config.max_message_size,
                config.receive_wait_time,
                dlq,
                config.max_receive_count,
                int(config.content_based_deduplication),
            )
            if old is None:
                conn.execute(
                    f"INSERT INTO queues ({_QUEUE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (config.name, *values),
                )
                # A re-created dead-letter queue: its sources check their visible messages.
                conn.execute(
                    "UPDATE queues SET redrive_check = 1 WHERE dead_letter_queue = ?",
                    (config.name,),
                )
                return
            changed = tuple(old) != (dlq, config.max_receive_count)
            conn.execute(
                "UPDATE queues SET visibility_timeout = ?, delay_seconds = ?, "
                "retention_period = ?, max_message_size = ?, receive_wait_time = ?, "
                "dead_letter_queue = ?, max_receive_count = ?, content_based_deduplication = ?, "
                "redrive_check = CASE WHEN ? THEN 1 ELSE redrive_check END WHERE name = ?",
                (*values, changed and dlq is not None, config.name),
            )

        self._write(run)

    def get_queue(self, name: str) -> QueueConfig:
        row = self.conn.execute(_SQL_GET_QUEUE, (name,)).fetchone()
        if row is None:
            raise QueueNotFound(name)
        return self._config(row)

    def list_queues(self) -> list[QueueConfig]:
        rows = self.conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues").fetchall()
        return [self._config(tuple(row)) for row in rows]

    def delete_queue(self, name: str) -> None:
        def run() -> None:
            qid, _ = self._queue_row(name)
            conn = self.conn
            conn.execute("DELETE FROM messages WHERE queue = ? AND hidden = 0", (qid,))
            conn.execute("DELETE FROM messages WHERE queue = ? AND hidden = 1", (qid,))
            conn.execute("DELETE FROM fifo_dedup WHERE queue = ?", (qid,))
            conn.execute("DELETE FROM queues WHERE id = ?", (qid,))

        self._write(run)

    # ------------------------------------------------------------------ messages
    def send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        now = self.clock()
        ids = []
        params: list[Any] = []
        for new in messages:
            mid = new_message_id(self._getrandbits)
            ids.append(mid)
            delay = new.delay_seconds
            params += (
                1 if delay > 0 else 0,
                now + delay,
                now,
                mid,
                new.md5_of_body,
                new.sender_id,
                json.dumps(new.attributes, separators=(",", ":")) if new.attributes else None,
                new.body,
            )
        params.append(queue)
        sql = _SQL_SEND.format(rows=", ".join([_SQL_SEND_ROW] * len(messages)))
        if self.conn.execute(sql, params).rowcount == 0:
            raise QueueNotFound(queue)
        return ids

    def send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        """Store a FIFO queue's messages, dropping those whose deduplication id was seen
        in the last :data:`DEDUPLICATION_WINDOW` seconds: one IMMEDIATE transaction."""

        def run() -> list[FifoSent]:
            conn = self.conn
            row = conn.execute(
                "SELECT id, delay_seconds FROM queues WHERE name = ?", (queue,)
            ).fetchone()
            if row is None:
                raise QueueNotFound(queue)
            qid, delay = row
            now = self.clock()
            conn.execute("DELETE FROM fifo_dedup WHERE queue = ? AND expires <= ?", (qid, now))
            out: list[FifoSent] = []
            for new in messages:
                seen = conn.execute(
                    "SELECT message_id, seq FROM fifo_dedup WHERE queue = ? AND dedup_id = ?",
                    (qid, new.deduplication_id),
                ).fetchone()
                if seen is not None:
                    out.append(FifoSent(seen[0], _sequence(seen[1]), True))
                    continue
                mid = new_message_id(self._getrandbits)
                attributes = (
                    json.dumps(new.attributes, separators=(",", ":")) if new.attributes else None
                )
                (seq,) = conn.execute(
                    _SQL_FIFO_SEND,
                    (qid, 1 if delay > 0 else 0, now + delay, now, mid, new.md5_of_body,
                     new.sender_id, attributes, new.body, new.group_id, new.deduplication_id),
                ).fetchone()
                conn.execute(
                    "INSERT INTO fifo_dedup (queue, dedup_id, expires, message_id, seq) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (qid, new.deduplication_id, now + DEDUPLICATION_WINDOW, mid, seq),
                )
                out.append(FifoSent(mid, _sequence(seq), False))
            return out

        return self._write(run)

    def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[Message]:
        """Expire, dead-letter, then claim up to ``max_messages``: one IMMEDIATE transaction."""
        return self._write(lambda: self._receive(queue, max_messages, visibility_timeout))

    def _receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[Message]:
        conn = self.conn
        row = conn.execute(_SQL_RECEIVE_PROBE, (queue,)).fetchone()
        if row is None:
            raise QueueNotFound(queue)
        qid, retention, limit, dlq, redrive_check, next_hidden, oldest_ready = row
        now = self.clock()
        cutoff = now - retention
        moved = 0
        expire = oldest_ready is not None and oldest_ready <= cutoff
        if redrive_check:
            if dlq is not None:
                moved += conn.execute(
                    _SQL_DEAD_LETTER_VISIBLE,
                    {"dlq": dlq, "name": queue, "now": now, "queue": qid, "limit": limit,
                     "cutoff": cutoff},
                ).rowcount
            conn.execute("UPDATE queues SET redrive_check = 0 WHERE id = ?", (qid,))
        if next_hidden is not None and next_hidden <= now:
            expire = True
            if dlq is None:
                conn.execute(_SQL_PROMOTE, (qid, now))
            else:
                rows = conn.execute(
                    _SQL_PROMOTE_OR_DEAD_LETTER,
                    {"limit": limit, "dlq": dlq, "name": queue, "now": now, "queue": qid,
                     "cutoff": cutoff},
                ).fetchall()
                moved += sum(1 for (q,) in rows if q == dlq)
        if moved:
            conn.execute(
                "UPDATE queues SET dead_lettered = dead_lettered + ? WHERE id = ?", (moved, qid)
            )
        if expire:
            conn.execute(_SQL_EXPIRE_VISIBLE, (qid, cutoff))
        if is_fifo_queue(queue):
            return self._claim_fifo(queue, qid, max_messages, now, visibility_timeout, cutoff)
        rows = conn.execute(_SQL_CLAIM_SELECT, (qid, max_messages)).fetchall()
        if not rows:
            return []
        token = self._getrandbits(63)
        hex_token = f"{token:x}"
        deadline = now + visibility_timeout
        seqs = []
        out = []
        for seq, sent, mid, body, md5, attrs, first, count, sender in rows:
            count += 1
            if first is None:
                first = now
            handle = f"{mid}#{count}#{seq}.{hex_token}"
            seqs.append(seq)
            out.append(
                Message(
                    mid,
                    handle,
                    body,
                    md5,
                    json.loads(attrs) if attrs else {},
                    sent,
                    first,
                    count,
                    sender,
                    deadline,
                    queue,
                )
            )
        low, high = min(seqs), max(seqs)
        if high - low + 1 == len(seqs):  # distinct keys: one run
            conn.execute(_SQL_CLAIM_RUN, (deadline, now, token, low, high))
        else:
            conn.execute(_SQL_CLAIM_UPDATE, (deadline, now, token, json.dumps(seqs)))
        return out

    def _claim_fifo(
        self, queue: str, qid: int, max_messages: int, now: float, visibility_timeout: float,
        cutoff: float,
    ) -> list[Message]:
        conn = self.conn
        end = conn.execute(_SQL_FIFO_WINDOW_END, (qid, FIFO_SCAN_WINDOW)).fetchone()
        params = {"queue": qid, "max": max_messages, "cutoff": cutoff,
                  "end": _NO_END if end is None else end[0]}
        groups = list(dict.fromkeys(g for (g,) in conn.execute(_SQL_FIFO_WINDOW_GROUPS, params)))
        rows = self._fifo_take(qid, groups, max_messages)
        if len(rows) < max_messages and end is not None:  # the window did not see all
            groups = [g for (g,) in conn.execute(_SQL_FIFO_FREE_GROUPS, params)]
            rows = self._fifo_take(qid, groups, max_messages)
        if not rows:
            return []
        token = self._getrandbits(63)
        hex_token = f"{token:x}"
        deadline = now + visibility_timeout
        seqs = []
        out = []
        for seq, sent, mid, body, md5, attrs, first, count, sender, group, dedup in rows:
            count += 1
            seqs.append(seq)
            out.append(
                Message(
                    mid, f"{mid}#{count}#{seq}.{hex_token}", body, md5,
                    json.loads(attrs) if attrs else {}, sent, now if first is None else first,
                    count, sender, deadline, queue, group, dedup, _sequence(seq),
                )
            )
        self.conn.execute(_SQL_CLAIM_UPDATE, (deadline, now, token, json.dumps(seqs)))
        return out

    def _fifo_take(self, qid: int, groups: list[str], max_messages: int) -> list[Any]:
        """Up to ``max_messages`` visible messages of ``groups``: as many of the first
        group as it has, in order, then of the next, and so on (SQS returns as many
        messages of one group as it can; the memory store does the same)."""
        rows: list[Any] = []
        for group in groups:
            rows += self.conn.execute(
                _SQL_FIFO_GROUP_HEAD, (qid, group, max_messages - len(rows))
            ).fetchall()
            if len(rows) >= max_messages:
                break
        return rows

    def next_visible_at(self, queue: str) -> float | None:
        row = self.conn.execute(_SQL_NEXT_VISIBLE, (queue,)).fetchone()
        if row is None:
            raise QueueNotFound(queue)
        value: float | None = row[0]
        return value

    def delete(self, queue: str, receipt_handles: list[str]) -> list[bool]:
        """Delete the messages whose handles are current, in one transaction; one flag
        per handle.

        Handles are grouped by token (by the receive that issued them), one statement per
        group. The statements first run without RETURNING, which costs about as much
        again per row: when every group deletes as many rows as it has keys, every handle
        was current. Otherwise that transaction is rolled back and the delete runs again,
        returning the keys it deleted.
        """
        seqs, tokens = _parse_handles(receipt_handles)
        now = self.clock()
        if len(seqs) == 1:  # one statement, and the row count says it all
            done = self.conn.execute(_SQL_DELETE_ONE, (queue, now, seqs[0], tokens[0])).rowcount
            if not done:
                self._queue_row(queue)
            return [bool(done)]
        groups: dict[int, list[int]] = {}
        for seq, token in zip(seqs, tokens, strict=True):
            group = groups.get(token)
            if group is None:
                groups[token] = [seq]
            else:
                group.append(seq)
        try:
            self._write(lambda: self._delete_all(queue, now, groups))
        except _StaleHandles:
            pass
        else:
            return [True] * len(seqs)
        deleted = self._write(
            lambda: {t: self._delete_returning(queue, now, t, g) for t, g in groups.items()}
        )
        flags = [seq in deleted[token] for seq, token in zip(seqs, tokens, strict=True)]
        if not all(flags):
            self._queue_row(queue)
        return flags

    def _delete_all(self, queue: str, now: float, groups: dict[int, list[int]]) -> None:
        """Delete every group; raise :class:`_StaleHandles` when one comes up short."""
        execute = self.conn.execute
        for token, seqs in groups.items():
            distinct = len(set(seqs))
            low, high = min(seqs), max(seqs)
            if high - low + 1 == distinct:  # one run of keys
                done = execute(_SQL_DELETE_RUN, (queue, now, low, token, high)).rowcount
            else:
                done = execute(_SQL_DELETE_MANY, (queue, now, json.dumps(seqs), token)).rowcount
            if done != distinct:
                raise _StaleHandles

    def _delete_returning(self, queue: str, now: float, token: int, seqs: list[int]) -> set[int]:
        """Delete the rows ``seqs`` still under ``token``; return the keys deleted."""
        rows = self.conn.execute(
            _SQL_DELETE_MANY_RETURNING, (queue, now, json.dumps(seqs), token)
        )
        return {seq for (seq,) in rows}

    def change_visibility(self, queue: str, receipt_handle: str, visibility_timeout: float) -> None:
        seq, token = _parse_handle(receipt_handle)
        now = self.clock()
        changed = self.conn.execute(
            _SQL_CHANGE_VISIBILITY,
            {
                "deadline": now + visibility_timeout,
                "seq": seq,
                "token": token,
                "now": now,
                "name": queue,
            },
        ).rowcount
        if not changed:
            self._queue_row(queue)
            raise InvalidReceiptHandle(
                f"receipt handle {receipt_handle!r} names no message in flight in {queue!r}"
            )

    def _expire_all(self, qid: int, cutoff: float) -> None:
        self.conn.execute(_SQL_EXPIRE_VISIBLE, (qid, cutoff))
        self.conn.execute(_SQL_EXPIRE_HIDDEN, (qid, cutoff))

    def purge(self, queue: str) -> int:
        def run() -> int:
            qid, retention = self._queue_row(queue)
            self._expire_all(qid, self.clock() - retention)
            conn = self.conn
            n = conn.execute("DELETE FROM messages WHERE queue = ? AND hidden = 0", (qid,)).rowcount
            n += conn.execute(
                "DELETE FROM messages WHERE queue = ? AND hidden = 1", (qid,)
            ).rowcount
            return n

        return self._write(run)

    def counts(self, queue: str) -> QueueCounts:
        def run() -> QueueCounts:
            conn = self.conn
            row = conn.execute(
                "SELECT id, retention_period, dead_lettered FROM queues WHERE name = ?", (queue,)
            ).fetchone()
            if row is None:
                raise QueueNotFound(queue)
            qid, retention, dead_lettered = row
            now = self.clock()
            cutoff = now - retention
            visible, oldest = conn.execute(_SQL_COUNT_VISIBLE, (qid, cutoff)).fetchone()
            due, in_flight, delayed, oldest_hidden = conn.execute(
                _SQL_COUNT_HIDDEN, {"now": now, "queue": qid, "cutoff": cutoff}
            ).fetchone()
            sents = [s for s in (oldest, oldest_hidden) if s is not None]
            age = max(0.0, now - min(sents)) if sents else 0.0
            groups = busy = 0
            if is_fifo_queue(queue):
                groups, busy = conn.execute(
                    _SQL_COUNT_GROUPS, {"now": now, "queue": qid, "cutoff": cutoff}
                ).fetchone()
            return QueueCounts(
                visible + due, in_flight, delayed, age, dead_lettered, groups, busy
            )

        return self._read(run)

    def peek(self, queue: str, limit: int) -> list[PeekedMessage]:
        """The first ``limit`` messages by sent time, then key, past retention left out:
        the visible and the hidden ones read in one transaction, merged. Writes nothing."""

        def run() -> list[PeekedMessage]:
            qid, retention = self._queue_row(queue)
            now = self.clock()
            cutoff = now - retention
            rows = [
                self.conn.execute(_SQL_PEEK.format(hidden=hidden), (qid, cutoff, limit)).fetchall()
                for hidden in (0, 1)
            ]
            out: list[PeekedMessage] = []
            for row in heapq.merge(*rows, key=lambda r: (r[1], r[0])):
                if len(out) >= limit:
                    break
                (seq, sent, hidden, visible_at, count, first, mid, body, md5, attrs, sender,
                 source, group, dedup) = row
                state, until = peek_state(count, visible_at if hidden else None, now)
                out.append(PeekedMessage(
                    mid, body, md5, json.loads(attrs) if attrs else {}, sender, sent,
                    first if count else None, count, state, until, source, group,
                    dedup if group is not None else None,
                    None if group is None else _sequence(seq),
                ))
            return out

        return self._read(run)

    def redrive(self, dead_letter_queue: str, to: str | None) -> list[str]:
        def run() -> list[str]:
            conn = self.conn
            qid, retention = self._queue_row(dead_letter_queue)
            now = self.clock()
            self._expire_all(qid, now - retention)
            to_id = None if to is None else self._queue_row(to)[0]
            if to_id is None:
                sources = conn.execute(
                    "SELECT DISTINCT source_queue FROM messages WHERE queue = ?1 AND hidden = 0 "
                    "UNION SELECT DISTINCT source_queue FROM messages WHERE queue = ?1 "
                    "AND hidden = 1",
                    (qid,),
                ).fetchall()
                for (source,) in sources:
                    if source is None:
                        raise StoreError(
                            f"a message in {dead_letter_queue!r} has no source queue; "
                            "name the destination queue"
                        )
                    self._queue_row(source)
            moved: list[int] = []
            for hidden in (0, 1):
                rows = conn.execute(
                    _SQL_REDRIVE, {"to": to_id, "now": now, "dlq": qid, "hidden": hidden}
                ).fetchall()
                moved += [r[0] for r in rows]
            names = dict(conn.execute("SELECT id, name FROM queues").fetchall())
            return [names[i] for i in moved]

        return self._write(run)


    # ------------------------------------------------------------------ streams
    def _stream_row(self, name: str) -> tuple[int, int, int]:
        row = self.conn.execute(_SQL_STREAM, (name,)).fetchone()
        if row is None:
            raise StreamNotFound(name)
        return row[0], row[1], row[2]

    def _trim(self, sid: int, retention: int) -> None:
        self.conn.execute(
            "DELETE FROM stream_records WHERE stream = ? AND arrival < ?",
            (sid, self.clock() - retention),
        )

    def ensure_stream(self, config: StreamConfig) -> None:
        def run() -> None:
            conn = self.conn
            row = conn.execute(_SQL_STREAM, (config.name,)).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE streams SET retention_period = ? WHERE id = ?",
                    (config.retention_period, row[0]),
                )
                return
            (sid,) = conn.execute(
                "INSERT INTO streams (name, shard_count, retention_period) VALUES (?, ?, ?) "
                "RETURNING id",
                (config.name, config.shard_count, config.retention_period),
            ).fetchone()
            conn.executemany(
                "INSERT INTO stream_shards (stream, shard) VALUES (?, ?)",
                [(sid, shard) for shard in range(config.shard_count)],
            )

        self._write(run)

    def get_stream(self, name: str) -> StreamConfig:
        _, shards, retention = self._stream_row(name)
        return StreamConfig(name, shards, retention)

    def list_streams(self) -> list[StreamConfig]:
        rows = self.conn.execute(
            "SELECT name, shard_count, retention_period FROM streams"
        ).fetchall()
        return [StreamConfig(*row) for row in rows]

    def delete_stream(self, name: str) -> None:
        def run() -> None:
            sid, _, _ = self._stream_row(name)
            conn = self.conn
            conn.execute("DELETE FROM stream_records WHERE stream = ?", (sid,))
            conn.execute("DELETE FROM stream_shards WHERE stream = ?", (sid,))
            conn.execute("DELETE FROM streams WHERE id = ?", (sid,))
            conn.execute(
                "DELETE FROM checkpoints WHERE substr(mapping, 1, ?) = ?",
                (len(name) + 2, f"{name}->"),
            )

        self._write(run)

    def put(self, name: str, records: list[tuple[int, str, bytes]]) -> list[int]:
        def run() -> list[int]:
            conn = self.conn
            sid, _, retention = self._stream_row(name)
            self._trim(sid, retention)
            (first,) = conn.execute(
                "UPDATE streams SET next_sequence = next_sequence + ? WHERE id = ? "
                "RETURNING next_sequence - ?",
                (len(records), sid, len(records)),
            ).fetchone()
            now = self.clock()
            sequences = list(range(first, first + len(records)))
            conn.executemany(
                "INSERT INTO stream_records (stream, shard, seq, partition_key, arrival, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(sid, shard, seq, key, now, data)
                 for (shard, key, data), seq in zip(records, sequences, strict=True)],
            )
            latest: dict[int, int] = {}
            for (shard, _, _), seq in zip(records, sequences, strict=True):
                latest[shard] = seq
            conn.executemany(
                "UPDATE stream_shards SET latest = ? WHERE stream = ? AND shard = ?",
                [(seq, sid, shard) for shard, seq in latest.items()],
            )
            return sequences

        return self._write(run)

    def get_records(
        self, name: str, shard: int, after: int | None, at_timestamp: float | None, limit: int
    ) -> list[StreamMessage]:
        def run() -> list[StreamMessage]:
            sid, _, retention = self._stream_row(name)
            horizon = self.clock() - retention
            sql = (
                "SELECT seq, partition_key, data, arrival FROM stream_records "
                "WHERE stream = ? AND shard = ? AND arrival >= ? AND {cond} ORDER BY seq LIMIT ?"
            )
            if after is not None:
                params: tuple[Any, ...] = (sid, shard, horizon, after, limit)
                sql = sql.format(cond="seq > ?")
            elif at_timestamp is not None:
                params = (sid, shard, horizon, at_timestamp, limit)
                sql = sql.format(cond="arrival >= ?")
            else:
                params = (sid, shard, horizon, limit)
                sql = sql.format(cond="1")
            return [
                StreamMessage(shard, seq, key, bytes(data), arrival)
                for seq, key, data, arrival in self.conn.execute(sql, params)
            ]

        return self._read(run)

    def latest_sequence(self, name: str, shard: int) -> int:
        sid, _, _ = self._stream_row(name)
        row = self.conn.execute(
            "SELECT latest FROM stream_shards WHERE stream = ? AND shard = ?", (sid, shard)
        ).fetchone()
        return -1 if row is None else int(row[0])

    def shard_stats(self, name: str) -> list[tuple[int | None, int, int]]:
        def run() -> list[tuple[int | None, int, int]]:
            sid, shards, retention = self._stream_row(name)
            horizon = self.clock() - retention
            stats = {
                shard: (first, count)
                for shard, first, count in self.conn.execute(
                    "SELECT shard, min(seq), count(*) FROM stream_records "
                    "WHERE stream = ? AND arrival >= ? GROUP BY shard",
                    (sid, horizon),
                )
            }
            latest = dict(
                self.conn.execute(
                    "SELECT shard, latest FROM stream_shards WHERE stream = ?", (sid,)
                ).fetchall()
            )
            return [
                (stats.get(i, (None, 0))[0], latest.get(i, -1), stats.get(i, (None, 0))[1])
                for i in range(shards)
            ]

        return self._read(run)

    def get_checkpoints(self, mapping: str) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT shard, seq FROM checkpoints WHERE mapping = ?", (mapping,)
        ).fetchall()
        return dict(rows)

    def stream_checkpoints(self, name: str) -> dict[str, dict[int, int]]:
        prefix = f"{name}->"
        out: dict[str, dict[int, int]] = {}
        for mapping, shard, seq in self.conn.execute(
            "SELECT mapping, shard, seq FROM checkpoints WHERE substr(mapping, 1, ?) = ?",
            (len(prefix), prefix),
        ):
            out.setdefault(mapping, {})[shard] = seq
        return out

    def set_checkpoints(self, mapping: str, checkpoints: dict[int, int]) -> None:
        self.conn.executemany(
            "INSERT INTO checkpoints (mapping, shard, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (mapping, shard) DO UPDATE SET seq = max(seq, excluded.seq)",
            [(mapping, shard, seq) for shard, seq in checkpoints.items()],
        )


    # ------------------------------------------------------------------ coordination
    def _claim_one(self, holder: str, claim: LeaseClaim, ttl: float, now: float) -> LeaseGrant:
        """One claim inside the caller's transaction (rules: claim_lease_in)."""
        conn = self.conn
        name = claim.name
        conn.execute("DELETE FROM leases WHERE name = ? AND expires <= ?", (name, now))
        entries = {
            h: LeaseEntry(c, w, e, t) for h, c, w, e, t in conn.execute(
                "SELECT holder, count, want, expires, token FROM leases WHERE name = ?", (name,))
        }
        before = entries.get(holder)
        before_state = None if before is None else (before.count, before.want, before.token)

        def next_token() -> int:
            conn.execute("INSERT INTO lease_names (name, token) VALUES (?, 1) "
                         "ON CONFLICT (name) DO UPDATE SET token = token + 1", (name,))
            row = conn.execute("SELECT token FROM lease_names WHERE name = ?", (name,)).fetchone()
            return int(row[0])

        grant = claim_lease_in(entries, holder, claim, now=now, ttl=ttl, next_token=next_token)
        mine = entries.get(holder)
        if mine is None:
            if before_state is not None:
                conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO leases (name, holder, count, want, expires, token) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, holder, mine.count, mine.want, mine.expires, mine.token),
            )
            conn.execute("INSERT OR IGNORE INTO lease_names (name, token) VALUES (?, 0)", (name,))
        return grant

    def claim_leases(self, holder: str, claims: list[LeaseClaim], ttl: float) -> list[LeaseGrant]:
        def run() -> list[LeaseGrant]:
            now = self.clock()
            return [self._claim_one(holder, c, ttl, now) for c in claims]

        return self._write(run)

    def lease_holders(self, name: str) -> list[LeaseHolder]:
        now = self.clock()
        return [LeaseHolder(*row) for row in self.conn.execute(
            "SELECT holder, count, want, expires, token FROM leases "
            "WHERE name = ? AND expires > ?", (name, now))]

    def lease_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM lease_names")]

    def _register(self, worker: str, info: str, ttl: float, exclusive: bool,
                  now: float) -> str | None:
        conn = self.conn
        if exclusive:  # a worker starting: clear out the entries of dead ones
            conn.execute("DELETE FROM workers WHERE expires <= ?", (now,))
            row = conn.execute("SELECT info FROM workers WHERE worker = ? AND expires > ?",
                               (worker, now)).fetchone()
            if row is not None:
                return str(row[0])
        conn.execute("INSERT OR REPLACE INTO workers (worker, expires, info) VALUES (?, ?, ?)",
                     (worker, now + ttl, info))
        return None

    def register_worker(self, worker: str, info: str, ttl: float, exclusive: bool) -> str | None:
        return self._write(lambda: self._register(worker, info, ttl, exclusive, self.clock()))

    def list_workers(self) -> list[tuple[str, str]]:
        """Live entries only, in one read transaction."""
        return self._read(self._live_workers)

    def _live_workers(self) -> list[tuple[str, str]]:
        """Live entries only; a read (expired rows go when a worker registers), so a
        read-only file can be listed. A file of schema 4 or older, which a read-only open
        reads as it is, has no registry: no worker of this version has run on it."""
        conn = self.conn
        if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workers'"
        ).fetchone() is None:
            return []
        return [(str(w), str(i)) for w, i in conn.execute(
            "SELECT worker, info FROM workers WHERE expires > ?", (self.clock(),))]

    def unregister_worker(self, worker: str) -> None:
        self.conn.execute("DELETE FROM workers WHERE worker = ?", (worker,))

    def _append(self, log: str, events: list[str]) -> None:
        conn = self.conn
        conn.executemany("INSERT INTO shared_events (log, event) VALUES (?, ?)",
                         [(log, e) for e in events])
        conn.execute(
            "DELETE FROM shared_events WHERE log = ? AND id <= (SELECT id FROM shared_events "
            "WHERE log = ? ORDER BY id DESC LIMIT 1 OFFSET ?)", (log, log, MAX_EVENTS))

    def append_events(self, log: str, events: list[str]) -> None:
        self._write(lambda: self._append(log, events))

    def _take(self, log: str) -> list[str]:
        rows = self.conn.execute(
            "DELETE FROM shared_events WHERE log = ? RETURNING id, event", (log,)).fetchall()
        return [str(e) for _, e in sorted(rows)]

    def take_events(self, log: str) -> list[str]:
        return self._write(lambda: self._take(log))

    def write_shared(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO shared_values (key, value) VALUES (?, ?)",
                          (key, value))

    def read_shared(self, keys: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = dict.fromkeys(keys)
        for k in keys:
            row = self.conn.execute("SELECT value FROM shared_values WHERE key = ?",
                                    (k,)).fetchone()
            if row is not None:
                out[k] = str(row[0])
        return out

    def coordinate(self, round: CoordinationRound) -> CoordinationReply:
        """The whole round in one BEGIN IMMEDIATE transaction, at one clock reading."""

        def run() -> CoordinationReply:
            now = self.clock()
            holder = round.holder
            grants = [self._claim_one(holder, c, round.ttl, now) for c in round.claims]
            held = {c.name: g.held > 0 for c, g in zip(round.claims, grants, strict=True)}

            def holds(lease: str) -> bool:
                if lease not in held:
                    held[lease] = self.conn.execute(
                        "SELECT 1 FROM leases WHERE name = ? AND holder = ? AND count > 0 "
                        "AND expires > ?", (lease, holder, now)).fetchone() is not None
                return held[lease]

            reply = CoordinationReply(grants)
            for log, events in round.append.items():
                if events:
                    self._append(log, list(events))
            for log, lease in round.take.items():
                if holds(lease):
                    reply.taken[log] = self._take(log)
            for key, (value, lease) in round.write.items():
                if holds(lease):
                    self.write_shared(key, value)
            if round.read:
                reply.values = self.read_shared(list(round.read))
            if round.heartbeat is not None:
                self._register(holder, json.dumps(dict(round.heartbeat)), round.ttl, False, now)
            return reply

        return self._write(run)

    # ------------------------------------------------------------------ semaphores
    @property
    def semaphores(self) -> _Engine:
        return self

    def _semaphore(self, name: str, apply: Callable[[SemaphoreState], T]) -> T:
        """``apply`` to semaphore ``name``'s state in one BEGIN IMMEDIATE transaction."""

        def run() -> T:
            row = self.conn.execute("SELECT state FROM semaphores WHERE name = ?",
                                    (name,)).fetchone()
            state = SemaphoreState(name) if row is None else SemaphoreState.from_json(row[0])
            result = apply(state)
            self.conn.execute("INSERT OR REPLACE INTO semaphores (name, state) VALUES (?, ?)",
                              (name, state.to_json()))
            return result

        return self._write(run)

    def semaphore_acquire(self, name: str, holder: str, limit: int, ttl: float, queue: bool,
                          address: str, info: str, yieldable: bool) -> SemaphoreGrant:
        return self._semaphore(name, lambda state: acquire_in(
            state, holder, limit=limit, ttl=ttl, now=self.clock(), queue=queue,
            address=address, info=info, yieldable=yieldable))

    def semaphore_release(self, name: str, holder: str) -> list[Wake]:
        return self._semaphore(name, lambda state: release_in(state, holder, now=self.clock()))

    def semaphore_renew(self, name: str, holders: list[str], ttl: float) -> list[int]:
        return self._semaphore(name, lambda state: renew_in(state, holders, ttl=ttl,
                                                            now=self.clock()))

    def semaphore_states(self, names: list[str] | None) -> list[SemaphoreState]:
        now = self.clock()
        try:
            if names is None:
                rows = self.conn.execute("SELECT state FROM semaphores").fetchall()
            else:
                rows = [r for n in names for r in self.conn.execute(
                    "SELECT state FROM semaphores WHERE name = ?", (n,))]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a read-only look at a version 5 or 6 file
                return []
            raise
        out = []
        for (text,) in rows:
            state = SemaphoreState.from_json(text)
            state.holders = [h for h in state.holders if h.expires > now]
            state.waiters = [w for w in state.waiters if w.expires > now]
            out.append(state)
        return out

    def put_parked(self, token: str, record: str, ttl: float) -> None:
        now = self.clock()

        def run() -> None:
            self.conn.execute("DELETE FROM parked WHERE expires <= ?", (now,))
            self.conn.execute(
                "INSERT OR REPLACE INTO parked (token, expires, record) VALUES (?, ?, ?)",
                (token, now + ttl, record))

        self._write(run)

    def get_parked(self, token: str, take: bool) -> str | None:
        now = self.clock()
        if take:
            row = self.conn.execute(
                "DELETE FROM parked WHERE token = ? RETURNING expires, record", (token,)
            ).fetchone()
        else:
            row = self.conn.execute("SELECT expires, record FROM parked WHERE token = ?",
                                    (token,)).fetchone()
        if row is None or row[0] <= now:
            return None
        return str(row[1])


    # ------------------------------------------------------------------ table items
    def _item_row(self, table: str, key: str) -> TableItem | None:
        row = self.conn.execute(_SQL_ITEM_GET, (table, key)).fetchone()
        if row is None:
            return None
        return TableItem(table, key, row[0], row[1], row[2], row[3], row[4])

    def _item_write(self, table: str, key: str, status: str, data: str, expires: float,
                    in_progress: float | None, now: float) -> TableItem:
        conn = self.conn
        (version,) = conn.execute(_SQL_ITEM_VERSION, (table,)).fetchone()
        conn.execute(_SQL_ITEM_PUT, (table, key, status, data, expires, in_progress, version))
        conn.execute(_SQL_ITEM_SWEEP, (now,))
        return TableItem(table, key, status, data, expires, in_progress, int(version))

    def _item_live(self, table: str, key: str, now: float) -> TableItem | None:
        item = self._item_row(table, key)
        return item if item is not None and item_live(item, now) else None

    def create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                    in_progress_ttl: float | None) -> ItemWrite:
        def run() -> ItemWrite:
            now = self.clock()
            held = self._item_live(table, key, now)
            if held is not None:
                return ItemWrite(False, held)
            return ItemWrite(True, self._item_write(
                table, key, status, data, now + ttl,
                None if in_progress_ttl is None else now + in_progress_ttl, now))

        return self._write(run)

    def put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                 in_progress_ttl: float | None) -> TableItem:
        def run() -> TableItem:
            now = self.clock()
            return self._item_write(
                table, key, status, data, now + ttl,
                None if in_progress_ttl is None else now + in_progress_ttl, now)

        return self._write(run)

    def get_item(self, table: str, key: str) -> TableItem | None:
        try:
            return self._item_live(table, key, self.clock())
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # a read-only look at a file before version 8
                return None
            raise

    def update_item(self, table: str, key: str, change: ItemChange,
                    if_version: int | None, if_status: str | None) -> ItemWrite:
        def run() -> ItemWrite:
            now = self.clock()
            held = self._item_live(table, key, now)
            if held is None or not item_matches(held, if_version, if_status):
                return ItemWrite(False, held)
            new = item_changed(held, change, now, 0)
            return ItemWrite(True, self._item_write(
                table, key, new.status, new.data, new.expires, new.in_progress_expires, now))

        return self._write(run)

    def delete_item(self, table: str, key: str, if_version: int | None) -> bool:
        def run() -> bool:
            held = self._item_live(table, key, self.clock())
            if held is None or not item_matches(held, if_version, None):
                return False
            self.conn.execute(_SQL_ITEM_DELETE, (table, key))
            return True

        return self._write(run)

    @property
    def items(self) -> _Engine:
        return self

    # ------------------------------------------------------------------ live settings
    def _settings_row(self, scope: str) -> LiveSettings:
        row = self.conn.execute(
            "SELECT body, version, revision, changed_at, changed_by FROM live_settings "
            "WHERE scope = ?", (scope,)).fetchone()
        if row is None:
            return LiveSettings(scope)
        return LiveSettings(scope, json.loads(row[0]), int(row[1]), int(row[2]),
                            float(row[3]), str(row[4]))

    def get_settings(self, scope: str) -> LiveSettings:
        try:
            return self._settings_row(scope)
        except sqlite3.OperationalError as exc:
            if _no_settings_tables(exc):
                return LiveSettings(scope)
            raise

    def list_settings(self, since: int) -> tuple[int, list[LiveSettings]]:
        def run() -> tuple[int, list[LiveSettings]]:
            rows = self.conn.execute(
                "SELECT scope, body, version, revision, changed_at, changed_by "
                "FROM live_settings WHERE revision > ?", (since,)).fetchall()
            latest = self.conn.execute(
                "SELECT coalesce(max(revision), 0) FROM live_settings").fetchone()[0]
            return int(latest), [LiveSettings(str(r[0]), json.loads(r[1]), int(r[2]),
                                              int(r[3]), float(r[4]), str(r[5])) for r in rows]

        try:
            return self._read(run)
        except sqlite3.OperationalError as exc:
            if _no_settings_tables(exc):  # a read-only open of a version 5 file
                return 0, []
            raise

    def write_settings(self, scope: str, changes: dict[str, Any], expected_version: int | None,
                       by: str, why: str) -> SettingsWrite:
        def run() -> SettingsWrite:
            conn = self.conn
            current = self._settings_row(scope)
            if expected_version is not None and expected_version != current.version:
                return SettingsWrite(False, current)
            revision = int(conn.execute(
                "SELECT coalesce(max(revision), 0) FROM live_settings").fetchone()[0]) + 1
            stored, change = merge_settings(current, changes, by=by, why=why,
                                            now=self.clock(), revision=revision)
            conn.execute(
                "INSERT OR REPLACE INTO live_settings (scope, body, version, revision, "
                "changed_at, changed_by) VALUES (?, ?, ?, ?, ?, ?)",
                (scope, json.dumps(stored.values, sort_keys=True), stored.version, revision,
                 stored.changed_at, by))
            conn.execute("INSERT INTO live_history (scope, entry) VALUES (?, ?)",
                         (scope, change.to_json()))
            conn.execute(
                "DELETE FROM live_history WHERE id <= (SELECT id FROM live_history "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)", (MAX_SETTINGS_HISTORY,))
            self.write_shared(SETTINGS_REVISION, str(revision))
            return SettingsWrite(True, stored)

        return self._write(run)

    def settings_history(self, scope: str | None, limit: int) -> list[SettingsChange]:
        try:
            if scope is None:
                rows = self.conn.execute(
                    "SELECT entry FROM live_history ORDER BY id DESC LIMIT ?",
                    (limit,)).fetchall()
            else:
                rows = self.conn.execute(
                    "SELECT entry FROM live_history WHERE scope = ? ORDER BY id DESC LIMIT ?",
                    (scope, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            if _no_settings_tables(exc):
                return []
            raise
        return [SettingsChange.from_json(r[0]) for r in reversed(rows)]


def _no_settings_tables(exc: sqlite3.OperationalError) -> bool:
    """A read-only store on a file older than version 6 has no live settings: none set."""
    return "no such table: live_" in str(exc)


if TYPE_CHECKING:  # mypy checks that the engine has every primitive of the protocol
    _as_engine: Callable[[sqlite3.Connection, Clock], Engine] = _Engine


def _sequence(seq: int) -> str:
    """A FIFO message's sequence number as SQS writes it: decimal digits, padded to 20
    so that text order is numeric order (as the memory store writes it)."""
    return f"{seq:020d}"


def _connect(path: str, *, busy_timeout: float, loop_side: bool) -> sqlite3.Connection:
    """Open ``path`` and set the pragmas. Raises :class:`StoreUnavailable`."""
    where = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(where):
        raise StoreUnavailable(f"cannot open sqlite store {path}: directory {where} does not exist")
    try:
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=CACHED_STATEMENTS,
        )
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open sqlite store {path}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StoreUnavailable(
                f"cannot open sqlite store {path}: WAL mode unavailable (journal mode {mode})"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -16384")
        if loop_side:
            pass
    except sqlite3.DatabaseError as exc:
        conn.close()
        if "not a database" in str(exc):
            raise StoreUnavailable(
                f"cannot open sqlite store {path}: the file is not a sqlite database"
            ) from None
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY:
            raise StoreUnavailable(
                f"cannot open sqlite store {path} for writing: {exc} (this process cannot "
                "write the file or its directory; queues, streams and peek only read)"
            ) from None
        raise StoreUnavailable(f"cannot open sqlite store {path}: {exc}") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _create_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the tables on a new file, or check the version of an existing one."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            if tables:
                raise StoreUnavailable(
                    f"cannot open sqlite store {path}: it holds another application's tables"
                )
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        else:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = None if row is None else row[0]
            if version == "1":
                _upgrade_from_1(conn)
                version = "2"
            if version == "2":
                _upgrade_from_2(conn)
                version = "3"
            if version == "3":
                _upgrade_from_3(conn)
                version = "4"
            if version == "4":
                _upgrade_from_4(conn)
                version = "5"
            if version == "5":
                _upgrade_from_5(conn)
                version = "6"
            if version == "6":
                _upgrade_from_6(conn)
                version = "7"
            if version == "7":
                _upgrade_from_7(conn)
                version = str(SCHEMA_VERSION)
            if version != str(SCHEMA_VERSION):
                raise StoreUnavailable(
                    f"cannot open sqlite store {path}: schema version {version}, this version "
                    f"of sluicegate reads {SCHEMA_VERSION}"
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    """Turn a version 1 file into version 2, inside the caller's transaction.

    The ``handle`` strings give way to integer tokens. In-flight messages get no token,
    so their outstanding handles are stale: those messages are delivered again when
    their visibility timeout ends (at least once, never lost).
    """
    conn.execute("ALTER TABLE messages ADD COLUMN token INTEGER")
    conn.execute("ALTER TABLE messages DROP COLUMN handle")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def _upgrade_from_2(conn: sqlite3.Connection) -> None:
    """Turn a version 2 file into version 3 (FIFO queues, streams), inside the caller's
    transaction: three columns and the new tables; existing rows are untouched."""
    conn.execute(
        "ALTER TABLE queues ADD COLUMN content_based_deduplication INTEGER NOT NULL DEFAULT 0"
    )
    conn.execute("ALTER TABLE messages ADD COLUMN group_id TEXT")
    conn.execute("ALTER TABLE messages ADD COLUMN dedup_id TEXT")
    for statement in _SCHEMA_3.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def _upgrade_from_3(conn: sqlite3.Connection) -> None:
    """Turn a version 3 file into version 4, inside the caller's transaction: the index of
    visible FIFO messages by group that keeps a FIFO receive fast when the oldest
    messages all belong to groups in flight."""
    for statement in _SCHEMA_4.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")


def _upgrade_from_4(conn: sqlite3.Connection) -> None:
    """Turn a version 4 file into version 5, inside the caller's transaction: the tables
    of counted leases, the worker registry and shared logs and values (new tables only)."""
    for statement in _SCHEMA_5.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")


def _upgrade_from_5(conn: sqlite3.Connection) -> None:
    """Turn a version 5 file into version 6, inside the caller's transaction: the tables
    of live settings and their history (new tables only)."""
    for statement in _SCHEMA_6.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def _upgrade_from_6(conn: sqlite3.Connection) -> None:
    """Turn a version 6 file into version 7, inside the caller's transaction: the tables
    of semaphores and parked batches (new tables only)."""
    for statement in _SCHEMA_7.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")


def _upgrade_from_7(conn: sqlite3.Connection) -> None:
    """Turn a version 7 file into version 8, inside the caller's transaction: the tables
    of keyed records (new tables only)."""
    for statement in _SCHEMA_8.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")


# ---------------------------------------------------------------------- read-only open
OLDEST_READABLE_VERSION = 3
"""The oldest schema version a read-only store reads as it is (it cannot upgrade a file):
version 4 only added an index. Versions 1 and 2 lack columns and tables it reads."""



def _connect_read_only(path: str, *, busy_timeout: float) -> sqlite3.Connection:
    """Open ``path`` for reading only: SQLite's ``mode=ro``, and ``query_only`` on top.

    A WAL database is read through its WAL index (the ``-shm`` file), which SQLite
    creates (with an empty ``-wal``) if missing, and leaves behind, when the directory is
    writable; the database file itself is never written. When it cannot create them (a
    directory this process cannot write), the file is read with ``immutable=1`` (no
    locks, no WAL index) if no ``-wal`` file holds transactions: then the database file
    alone holds every committed one (no process has it open, as one that had would have
    a ``-wal`` file). A ``-wal`` file with content and no way to make a WAL index is an
    error: reading the database file alone would miss committed messages.

    Raises:
        StoreUnavailable: the file or its directory does not exist, it cannot be read,
            or only in part (see above); one line naming the file.
    """
    where = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(where):
        raise StoreUnavailable(f"cannot open sqlite store {path}: directory {where} does not exist")
    if not os.path.isfile(path):
        raise StoreUnavailable(
            f"cannot open sqlite store {path}: the file does not exist (a command that writes, "
            "such as send or run, creates it)"
        )
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    try:
        return _open_uri(uri, busy_timeout)
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (_SQLITE_READONLY, _SQLITE_CANTOPEN):
            raise _unavailable(exc, path) from None
    wal = f"{path}-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise StoreUnavailable(
            f"cannot read sqlite store {path}: {wal} holds transactions, and reading them needs "
            f"{path}-shm, which this process cannot create in {where}; run a sluicegate command "
            "there as a user who can write the directory"
        )
    try:
        return _open_uri(uri + "&immutable=1", busy_timeout)
    except sqlite3.Error as exc:
        raise _unavailable(exc, path) from None


def _open_uri(uri: str, busy_timeout: float) -> sqlite3.Connection:
    """Connect to ``uri`` and read the schema once (where a WAL database fails when its
    WAL index cannot be made). Raises :class:`sqlite3.Error`."""
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False,
        cached_statements=CACHED_STATEMENTS,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _unavailable(exc: sqlite3.Error, path: str) -> StoreUnavailable:
    if "not a database" in str(exc):
        return StoreUnavailable(f"cannot open sqlite store {path}: the file is not a sqlite database")
    return StoreUnavailable(f"cannot open sqlite store {path}: {exc}")


def _check_schema(conn: sqlite3.Connection, path: str) -> None:
    """Check, without writing, that ``conn`` holds sluicegate tables this module reads.

    Raises:
        StoreUnavailable: no sluicegate tables, or a schema version older than
            :data:`OLDEST_READABLE_VERSION` (a writing command upgrades it) or newer than
            :data:`SCHEMA_VERSION`.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        if tables:
            raise StoreUnavailable(
                f"cannot open sqlite store {path}: it holds another application's tables"
            )
        raise StoreUnavailable(
            f"cannot open sqlite store {path}: it holds no sluicegate tables yet (a command "
            "that writes, such as send or run, creates them)"
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = None if row is None else row[0]
    if isinstance(version, str) and version.isdigit() and (
        OLDEST_READABLE_VERSION <= int(version) <= SCHEMA_VERSION
    ):
        return
    if isinstance(version, str) and version.isdigit() and int(version) < OLDEST_READABLE_VERSION:
        raise StoreUnavailable(
            f"cannot read sqlite store {path}: schema version {version} predates this "
            f"sluicegate's {SCHEMA_VERSION}; run a command that writes (such as send, run or "
            "redrive) once to upgrade it"
        )
    raise StoreUnavailable(
        f"cannot open sqlite store {path}: schema version {version}, this version of "
        f"sluicegate reads {SCHEMA_VERSION}"
    )


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY:
        return StoreError(f"sqlite store {path} cannot be written (opened read-only, or the "
                          f"file or its directory is not writable): {exc}")
    if _is_busy(exc):
        return StoreUnavailable(f"sqlite store {path} is locked by another connection: {exc}")
    return check_store_error(exc)


class SqliteStore(EngineStore):
    """A :class:`Store` in one SQLite file, shared safely by threads and processes.

    Parameters:
        path: the database file; created if missing (its directory must exist).
        clock: where time is read (epoch seconds); ``time.time`` by default. Processes
            sharing a file should share a clock, or ordering and timeouts drift apart.
        busy_timeout: seconds to wait for another connection's write lock.
        inline: try small operations on the event loop's thread first (see the module
            docstring); ``False`` runs every call on the worker thread.
        poll_interval: seconds between checks of a long poll (another process may send).
        read_only: open the file for reading only (inspection commands): no file is
            created, no schema created or upgraded, every write refused; it works on a
            file and directory this process cannot write (see :func:`_connect_read_only`).

    Raises (from :meth:`open`):
        StoreUnavailable: the directory does not exist, the file is not a sluicegate
            database, or its schema version is not this module's; read-only: the file
            does not exist, or its schema version is older than
            :data:`OLDEST_READABLE_VERSION`.
    """

    shared = True

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_SQLITE_PATH,
        *,
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        inline: bool = True,
        poll_interval: float = 0.05,
        read_only: bool = False,
    ) -> None:
        super().__init__(clock=clock, poll_interval=poll_interval)
        self.read_only = read_only
        self.path = os.fspath(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout = busy_timeout
        self.inline = inline
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._worker: _Engine | None = None
        self._loop_engine: _Engine | None = None
        self._ops = 0
        self._wake: DatagramWake | None = None

    def _now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        """Open the file (creating the schema on a new one) and start the worker thread.

        Raises:
            StoreUnavailable: see the class docstring.
        """
        if self._worker is not None:
            return
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sluicegate-sqlite")
        loop = asyncio.get_running_loop()

        def start() -> tuple[_Engine, _Engine | None]:
            if self.read_only:
                return _Engine(self._open_read_only(), self._now), None
            conn = _connect(self.path, busy_timeout=self.busy_timeout, loop_side=False)
            try:
                _create_schema(conn, self.path)
            except sqlite3.Error as exc:
                conn.close()
                raise StoreUnavailable(f"cannot open sqlite store {self.path}: {exc}") from None
            except BaseException:
                conn.close()
                raise
            worker = _Engine(conn, self._now)
            side = None
            if self.inline:
                side_conn = _connect(self.path, busy_timeout=self.busy_timeout, loop_side=True)
                side_conn.execute("PRAGMA busy_timeout = 0")  # never wait on the loop
                side = _Engine(side_conn, self._now)
            return worker, side

        try:
            self._worker, self._loop_engine = await loop.run_in_executor(executor, start)
        except BaseException:
            executor.shutdown(wait=True)
            raise
        self._executor = executor

    def _open_read_only(self) -> sqlite3.Connection:
        """The one connection of a read-only store (no second one on the loop's thread:
        reads gain little from it), its schema checked."""
        conn = _connect_read_only(self.path, busy_timeout=self.busy_timeout)
        try:
            _check_schema(conn, self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise _unavailable(exc, self.path) from None
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Close both connections and stop the thread."""
        executor, worker, side = self._executor, self._worker, self._loop_engine
        if self._wake is not None:
            self._wake.close()
            self._wake = None
        if executor is None or worker is None:
            return
        self._executor = self._worker = self._loop_engine = None
        if side is not None:
            side.close()
        await asyncio.get_running_loop().run_in_executor(executor, worker.close)
        executor.shutdown(wait=True)

    # ------------------------------------------------------------------ dispatch
    def _engines(self) -> tuple[concurrent.futures.ThreadPoolExecutor, _Engine]:
        if self._executor is None or self._worker is None:
            raise StoreNotOpen(
                f"sqlite store {self.path} is not open (use 'async with' or open())"
            )
        return self._executor, self._worker

    async def _slow(self, method: Callable[[_Engine], T]) -> T:
        """Run ``method`` on the worker thread's connection."""
        executor, worker = self._engines()
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, method, worker)
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    async def _quick(self, method: Callable[[_Engine], T]) -> T:
        """Run ``method`` on the loop's connection if the file is free, else on the worker."""
        side = self._loop_engine
        if side is not None:
            self._ops += 1
            if self._ops >= YIELD_EVERY:
                self._ops = 0
                await asyncio.sleep(0)
            try:
                result = method(side)
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise _translate(exc, self.path) from exc
            else:
                return result
        return await self._slow(method)

    async def _delete(self, queue: str, receipt_handles: list[str]) -> list[bool]:
        if len(receipt_handles) > DELETE_CHUNK:  # a long transaction: off the loop
            return await self._slow(lambda e: e.delete(queue, receipt_handles))
        return await self._quick(lambda e: e.delete(queue, receipt_handles))

    # ------------------------------------------------------------------ semaphores
    async def _wake_address(self) -> str:
        """This store's datagram socket (see :mod:`sluicegate.store.wake`)."""
        if self._wake is None:
            self._wake = DatagramWake(self._wake_local)
        return self._wake.start()

    async def _send_wakes(self, wakes: list[Wake]) -> list[str]:
        return [w.waiter for w in wakes if not send_wake(w.address, w.waiter)]

    async def coordinate(self, round: CoordinationRound) -> CoordinationReply:
        """One transaction for the whole round (see :class:`CoordinationRound`)."""
        if not round.ttl > 0:
            return await super().coordinate(round)  # raises the ttl's InputError
        return await self._quick(lambda e: e.coordinate(round))
