"""The Redis store: queues and streams on a Redis server shared by many processes.

Every state change is one Lua script (EVALSHA through redis-py's ``register_script``),
so it is atomic: two processes, or two store objects in one process, never claim the
same message, and a delete, a FIFO claim, a deduplication check or a dead-letter move
happens entirely or not at all. Scripts take the time from the store's ``clock`` as an
argument (never Redis ``TIME``), so tests and simulations with a fake clock work, and
processes sharing a server should share a clock (as with SQLite). The scripts ship as
files in ``sluicegate/store/lua/``: ``common.lua`` (and ``streams.lua`` for streams) is
prepended to each operation's own file.

Data model. Every key starts with the prefix (``sluicegate:`` by default, see
:data:`DEFAULT_PREFIX`); the keys of one queue share the hash tag ``{q:NAME}`` and those of
one stream ``{s:NAME}``. Per queue:

- ``meta`` (hash): the attributes (``vt delay ret size wait dlq mrc cbd``), ``ver`` (a
  random token replaced by every :meth:`ensure_queue`, see below), ``seq`` (the last
  sequence number given), ``dl`` (messages dead-lettered, ever) and ``rcheck`` (the
  redrive policy or its target changed: the next receive checks visible messages);
- ``m`` (hash): message key -> the message as sent (a JSON header of MD5, sender,
  attributes and deduplication id, a newline, the body), never changed;
- ``st`` (hash): message key -> ``"receive_count|first_receive|token|source_queue|group"``;
- ``sent`` (sorted set): every message by sent time, for retention and the oldest age;
- ``ready`` (sorted set, standard queues): visible messages by sent time; a message key is
  its 16-digit sequence number, ``:`` and its message id, so equal sent times sort by
  sequence and a receive pops the oldest first (``ZPOPMIN``);
- ``infl`` / ``dly`` (sorted sets): messages in flight (received) and delayed (never
  received) by the time they become visible; a receive first moves the due ones to
  ``ready`` (or to the dead-letter queue);
- FIFO queues keep their visible messages in ``gv`` (sorted set, all scores 0, members
  ``group NUL key``: one lexicographic range per group, in sequence order), list each
  group that is not in flight and has a visible message in ``offers`` (sorted set, scored
  by its first message's sent time, member ``key NUL group``; ``offer`` maps a group to
  its member), count in-flight messages per group in ``gbusy`` and held messages in
  ``gcount``, and remember deduplication ids in ``dedup`` (id -> ``message_id|sequence``)
  with their expiry in ``dedupx``.

Sequence numbers count per queue (a moved message keeps its key and its number, so in a
dead-letter queue FIFO sequence numbers may repeat between the messages it received from
its source and those sent to it directly; ordering ties between them break by key). Per
stream: ``meta`` (shard count, retention, next sequence number, per shard the latest
sequence and the last arrival), and per shard a Redis stream ``x:N`` (entry id
``SEQUENCE-0``, fields partition key, arrival and data) with ``a:N``, a sorted set of its
sequence numbers by arrival (retention and AT_TIMESTAMP). Registries: ``queues`` and
``streams`` (sets of names), ``mappings`` (set of mapping names with checkpoints) and
``cp:MAPPING`` (hash shard -> checkpoint).

Coordination (:mod:`sluicegate.store.coordination`): per lease ``lease:{NAME}:held``,
``:want``, ``:tok`` (hashes holder -> count, want, fencing token) and ``:exp`` (sorted
set holder -> expiry), which vanish one ttl after their last holder's expiry; ``leases``
(hash name -> last token given); the registry ``workers`` (id -> JSON) and
``workers:exp`` (id -> expiry); shared logs ``log:NAME`` (lists) and values ``shared``
(hash). ``lease.lua`` applies a worker's claims in one script. Live settings
(:mod:`sluicegate.store.live`): ``settings`` (hash scope -> JSON of values, time, writer),
``settings:ver`` (hash scope -> version), ``settings:rev`` (sorted set scope -> revision
of its last write), ``settings:revision`` (the store's revision) and
``settings:history`` (list) and ``settings:last`` (hash scope -> the last write's token
and revision); ``settings.lua`` compares the version the caller read and writes, so a
write merged in Python lands only on the state it was merged with, and a write run
twice (a retried command) answers the same both times. Expiries are epoch seconds
of the caller's clock, like every other time of this store: one time base for all the
store keeps, and leases follow an injected clock (tests, the simulator) as visibility
timeouts do.

Semaphores (:mod:`sluicegate.store.semaphores`): ``sem:{NAME}`` holds a semaphore's
whole state as JSON (limit, fencing counter, holders, waiters in arrival order) and
``semaphores`` the set of names; ``semaphore.lua`` applies one attempt, release or renewal.
A store that has waiters subscribes to a channel of its own, ``wake:ID``: a release
publishes each woken waiter's task token there, in the same script, and a publish that
reaches nobody (the waiter's process is gone, and its connection with it) drops that
waiter and wakes the next. Parked batches: ``parked:TOKEN`` (expiry and record).

Table items (:mod:`sluicegate.store.items`): ``item:{TABLE}:KEY`` (a hash of status,
data, expiry, in-progress expiry and version) and ``item:{TABLE}``, the table's version
counter; ``items.lua`` applies one create, put, get, update or delete. Redis drops an
item's key a minute after its expiry; until then the script treats a dead one as absent.

Redis Cluster: single-queue and single-stream scripts touch one hash slot. Moves between
a queue and its dead-letter queue, :meth:`ensure_queue` and the registries span slots, so
this store needs a single Redis server (or a primary with replicas), not a Cluster.

Receipt handles are ``"{message_id}#{receive_count}#{sequence}.{token}"``, ``token`` being
63 random bits (from :mod:`secrets`) drawn per receive call and stored with the message.
A later receive stores a new token and a move to or from a dead-letter queue clears it,
so an earlier handle is stale, exactly as in the SQLite store.

Round trips: a send, a receive (:meth:`receive_many` too) and a delete (:meth:`delete_many`
too) are one script call each, whatever the number of messages. A send validates against
attributes this store object cached; the script compares the cached ``ver`` with the
queue's and refuses a stale one, and the send is validated again with fresh attributes.

Long polling: the base class's, polling the queue every ``poll_interval`` seconds (0.05 by
default), so a send from another process is seen within that time; sends from this
object wake its own pollers at once. Redis pub/sub would save the polls but not the
need for them (a lost notification must not stall a poller), so it is not used.

Durability is the server's: with ``appendonly yes`` and ``appendfsync always`` an
acknowledged send survives a restart of the server. Connection errors raise
:class:`~sluicegate.errors.StoreUnavailable`; redis-py reconnects on the next call (it also
retries a failed command a few times, so a command whose reply was lost may run twice: a
send may store its messages twice, at-least-once delivery as everywhere in sluicegate).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sluicegate.core.config import QueueConfig, is_fifo_queue
from sluicegate.core.streams import StreamConfig
from sluicegate.errors import (
    InputError,
    InvalidReceiptHandle,
    QueueNotFound,
    StoreError,
    StoreNotOpen,
    StoreUnavailable,
    StreamNotFound,
)
from sluicegate.store.base import (
    DEDUPLICATION_WINDOW,
    Clock,
    FifoSent,
    Message,
    NewMessage,
    PeekedMessage,
    PutEntry,
    PutResult,
    QueueCounts,
    SendEntry,
    SendResult,
    Store,
    StreamMessage,
    new_message_id,
    peek_state,
)
from sluicegate.store.coordination import MAX_EVENTS, LeaseClaim, LeaseGrant, LeaseHolder
from sluicegate.store.items import ItemChange, ItemWrite, TableItem
from sluicegate.store.live import (
    MAX_SETTINGS_HISTORY,
    LiveSettings,
    SettingsChange,
    SettingsWrite,
    merge_settings,
)
from sluicegate.store.redis_client import awaitable, connect, parse_redis_url, store_error
from sluicegate.store.semaphores import WAITER_TTL_FACTOR, SemaphoreGrant, SemaphoreState, Wake

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

T = TypeVar("T")

DEFAULT_PREFIX = "sluicegate:"
"""What every key of a Redis store starts with, unless the store is given another."""

_SCRIPTS = (
    "ensure_queue", "list_queues", "delete_queue", "send", "send_fifo", "receive",
    "next_visible", "delete", "change_visibility", "purge", "counts", "redrive",
    "peek",
)
_STREAM_SCRIPTS = (
    "ensure_stream", "list_streams", "delete_stream", "put", "get_records", "shard_stats",
    "set_checkpoints", "stream_checkpoints",
)
_COORDINATION_SCRIPTS = ("lease", "worker", "semaphore", "items")
_SETTINGS_SCRIPTS = ("settings",)
_QUEUE_FIELDS = ("vt", "delay", "ret", "size", "wait", "dlq", "mrc", "cbd", "ver")
_MAX_SEQUENCE = 10**16 - 1
"""Message keys hold 16 decimal digits of sequence number."""
_MAX_STREAM_ID = 2**64 - 1

class _Stale(Exception):
    """A script found the queue's or stream's attributes changed since they were cached."""


def _lua(name: str) -> str:
    return resources.files("sluicegate.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


def _parse_handle(handle: Any) -> tuple[str, str]:
    """The message key and the token of a receipt handle. Raises InvalidReceiptHandle."""
    try:
        mid, count, tail = handle.split("#")
        seq, token = tail.split(".")
    except (AttributeError, TypeError, ValueError):
        raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}") from None
    if not (
        len(mid) == 36
        and mid.isascii()
        and count.isdigit()
        and seq.isdigit()
        and seq.isascii()
        and 0 < len(token) <= 16
        and token.isascii()
        and token.isalnum()
    ):
        raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}")
    number = int(seq)
    if number > _MAX_SEQUENCE:  # names no message this store made
        return f"{0:016d}:{mid}", token
    return f"{number:016d}:{mid}", token


def _one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class RedisStore(Store):
    """A :class:`Store` on a Redis server, shared by any number of processes and machines.

    Parameters:
        url: ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS).
        clock: where time is read (epoch seconds); ``time.time`` by default. Processes
            sharing a server should share a clock.
        prefix: what every key starts with; stores with different prefixes on one
            database do not see each other.
        poll_interval: seconds between checks of a long poll (another process may send).

    Raises (from :meth:`open`):
        StoreUnavailable: the server cannot be reached.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        prefix: str = DEFAULT_PREFIX,
        poll_interval: float = 0.05,
    ) -> None:
        super().__init__(clock=clock, poll_interval=poll_interval)
        #: the URL without credentials, for messages and logs
        self.address = str(parse_redis_url(url))  # raises InputError early
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise InputError(f"redis key prefix {prefix!r} must be a str without braces")
        self.url = url
        self.prefix = prefix
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._queues: dict[str, tuple[QueueConfig, str]] = {}
        self._streams: dict[str, StreamConfig] = {}
        self._headers: dict[bytes, tuple[str, str, dict[str, dict[str, str]], str | None]] = {}
        self._getrandbits = random.getrandbits
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._channel = ""

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        """Connect and check the server answers. Idempotent.

        Raises:
            StoreUnavailable: the server cannot be reached (one line naming the URL).
        """
        if self._client is not None:
            return
        from redis.exceptions import RedisError

        client = connect(self.url, decode_responses=False)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreUnavailable(
                f"cannot reach redis store {self.address}: {_one_line(exc)}"
            ) from None
        common = _lua("common")
        streams = _lua("streams")
        self._scripts = {name: client.register_script(common + _lua(name)) for name in _SCRIPTS}
        for name in _STREAM_SCRIPTS:
            self._scripts[name] = client.register_script(common + streams + _lua(name))
        for name in _COORDINATION_SCRIPTS:
            self._scripts[name] = client.register_script(common + _lua(name))
        for name in _SETTINGS_SCRIPTS:
            self._scripts[name] = client.register_script(common + _lua(name))
        self._client = client

    async def close(self) -> None:
        """Close the connections. Idempotent."""
        await self._stop_listening()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ plumbing
    def _redis(self) -> Redis:
        if self._client is None:
            raise StoreNotOpen(
                f"redis store {self.address} is not open (use 'async with' or open())"
            )
        return self._client

    async def _do(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        """Run one command or script; translate redis-py's errors into sluicegate's.

        On a connection error every idle pooled connection is dropped too: after a
        server restart they are all dead, and the next call should find a fresh one
        rather than fail again. The failed call itself is not retried (it may have run).
        """
        client = self._redis()
        try:
            return await call(client)
        except StoreError:
            raise
        except Exception as exc:
            from redis.exceptions import RedisError

            if isinstance(exc, RedisError | OSError):
                error = store_error(exc, self.address)
                if isinstance(error, StoreUnavailable):
                    await client.connection_pool.disconnect(inuse_connections=False)
                raise error from exc
            raise

    async def _run(
        self, name: str, tag: str, *args: Any, now: float | None = None
    ) -> list[Any]:
        """Run script ``name`` at ``now`` (the clock's time by default); ``tag`` is the
        hash-tagged key naming the slot it works on."""
        script = self._scripts.get(name)
        if script is None:
            self._redis()
            raise StoreError(f"redis store {self.address}: no script {name!r}")
        at = repr(float(self.clock() if now is None else now))
        result = await self._do(
            lambda _: script(keys=[tag], args=[self.prefix, at, *args])
        )
        assert isinstance(result, list)
        return result

    def _qtag(self, queue: str) -> str:
        return f"{self.prefix}{{q:{queue}}}"

    def _stag(self, stream: str) -> str:
        return f"{self.prefix}{{s:{stream}}}"

    # ------------------------------------------------------------------ queues
    async def _ensure_queue(self, config: QueueConfig) -> None:
        version = f"{secrets.randbits(63):x}"
        res = await self._run(
            "ensure_queue",
            self._qtag(config.name),
            config.name,
            config.visibility_timeout,
            config.delay_seconds,
            config.retention_period,
            config.max_message_size,
            config.receive_wait_time,
            config.dead_letter_queue or "",
            "" if config.max_receive_count is None else config.max_receive_count,
            int(config.content_based_deduplication),
            version,
        )
        if res[0] == 1:
            raise QueueNotFound(_text(res[1]))
        self._queues[config.name] = (config, version)

    @staticmethod
    def _config(name: str, values: Sequence[Any]) -> tuple[QueueConfig, str]:
        vt, delay, ret, size, wait, dlq, mrc, cbd, ver = (_text(v) for v in values)
        config = QueueConfig(
            name, int(vt), int(delay), int(ret), int(size), int(wait),
            dlq or None, int(mrc) if mrc else None, cbd == "1",
        )
        return config, ver

    async def _get_queue(self, name: str, *, cached: bool = False) -> QueueConfig:
        """With ``cached`` (the caller's script checks the version), what this object
        read last, if anything; else the server's attributes, which it caches."""
        if cached:
            known = self._queues.get(name)
            if known is not None:
                return known[0]
        key = f"{self._qtag(name)}:meta"
        values = await self._do(lambda r: awaitable(r.hmget(key, list(_QUEUE_FIELDS))))
        if values[0] is None:
            self._queues.pop(name, None)
            raise QueueNotFound(name)
        config, ver = self._config(name, values)
        self._queues[name] = (config, ver)
        return config

    async def _list_queues(self) -> list[QueueConfig]:
        res = await self._run("list_queues", f"{self.prefix}queues")
        width = 1 + len(_QUEUE_FIELDS)
        return [
            self._config(_text(res[i]), res[i + 1 : i + width])[0]
            for i in range(1, len(res), width)
        ]

    async def _delete_queue(self, name: str) -> None:
        self._queues.pop(name, None)
        res = await self._run("delete_queue", self._qtag(name), name)
        if res[0] == 1:
            raise QueueNotFound(name)

    # ------------------------------------------------------------------ messages
    async def send_batch(
        self, queue: str, entries: Sequence[SendEntry], *, sender_id: str = "sluicegate"
    ) -> list[SendResult]:
        """As :meth:`Store.send_batch`, one round trip when this object knows the queue:
        validated against cached attributes (the base class asks ``_get_queue`` with
        ``cached=True``), which the script checks are current; on a stale version the
        cache is dropped and the send validated again with fresh attributes."""
        for _ in range(5):
            try:
                return await super().send_batch(queue, entries, sender_id=sender_id)
            except _Stale:
                self._queues.pop(queue, None)
        raise StoreError(f"redis store {self.address}: queue {queue!r} keeps changing attributes")

    def _version(self, queue: str) -> str:
        known = self._queues.get(queue)
        return "" if known is None else known[1]

    @staticmethod
    def _blob(new: NewMessage) -> str:
        header = json.dumps(
            [new.md5_of_body, new.sender_id, new.attributes or None, new.deduplication_id],
            separators=(",", ":"),
        )
        return f"{header}\n{new.body}"

    async def _send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        now = self.clock()
        ids: list[str] = []
        args: list[Any] = [queue, self._version(queue)]
        for new in messages:
            mid = new_message_id(self._getrandbits)
            ids.append(mid)
            delay = new.delay_seconds
            args += (mid, self._blob(new), repr(now + delay) if delay > 0 else "")
        res = await self._run("send", self._qtag(queue), *args, now=now)
        if res[0] == 1:
            raise QueueNotFound(queue)
        if res[0] == 2:
            raise _Stale
        return ids

    async def _send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        args: list[Any] = [queue, self._version(queue), repr(float(DEDUPLICATION_WINDOW))]
        for new in messages:
            args += (
                new_message_id(self._getrandbits),
                self._blob(new),
                new.group_id,
                new.deduplication_id,
            )
        res = await self._run("send_fifo", self._qtag(queue), *args)
        if res[0] == 1:
            raise QueueNotFound(queue)
        if res[0] == 2:
            raise _Stale
        return [
            FifoSent(_text(res[i]), f"{int(res[i + 1]):020d}", bool(res[i + 2]))
            for i in range(1, len(res), 3)
        ]

    def _header(self, raw: bytes) -> tuple[str, str, dict[str, dict[str, str]], str | None]:
        parsed = self._headers.get(raw)
        if parsed is None:
            md5, sender, attributes, dedup = json.loads(raw)
            parsed = (md5, sender, attributes or {}, dedup)
            if len(self._headers) > 4096:
                self._headers.clear()
            self._headers[raw] = parsed
        return parsed

    async def _receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[Message]:
        now = self.clock()
        deadline = now + visibility_timeout
        token = f"{secrets.randbits(63):x}"
        script = self._scripts.get("receive")
        if script is None:
            self._redis()
            raise StoreError(f"redis store {self.address}: no script 'receive'")
        res = await self._do(
            lambda _: script(
                keys=[self._qtag(queue)],
                args=[self.prefix, repr(float(now)), queue, max_messages, repr(deadline), token],
            )
        )
        if res[0] == 1:
            raise QueueNotFound(queue)
        if res[1]:
            self._notify(_text(res[2]))
        fifo = is_fifo_queue(queue)
        out: list[Message] = []
        header = self._header
        for i in range(3, len(res), 6):
            key = res[i].decode("ascii")
            blob: bytes = res[i + 1]
            count = res[i + 2]
            cut = blob.index(b"\n")
            md5, sender, attributes, dedup = header(blob[:cut])
            mid = key[17:]
            seq = int(key[:16])
            out.append(
                Message(
                    mid,
                    f"{mid}#{count}#{seq}.{token}",
                    blob[cut + 1 :].decode("utf-8"),
                    md5,
                    attributes,
                    float(res[i + 4]),
                    float(res[i + 3]),
                    count,
                    sender,
                    deadline,
                    queue,
                    _text(res[i + 5]) if fifo else None,
                    dedup if fifo else None,
                    f"{seq:020d}" if fifo else None,
                )
            )
        return out

    async def _next_visible_at(self, queue: str) -> float | None:
        res = await self._run("next_visible", self._qtag(queue), queue)
        if res[0] == 1:
            raise QueueNotFound(queue)
        value = _text(res[1])
        return float(value) if value else None

    async def _delete(self, queue: str, receipt_handles: list[str]) -> list[bool]:
        self._redis()  # not open: say so before judging the handles
        args: list[Any] = [queue]
        for handle in receipt_handles:
            args += _parse_handle(handle)
        res = await self._run("delete", self._qtag(queue), *args)
        if res[0] == 1:
            raise QueueNotFound(queue)
        return [bool(flag) for flag in res[1:]]

    async def _change_visibility(
        self, queue: str, receipt_handle: str, visibility_timeout: float
    ) -> None:
        self._redis()  # not open: say so before judging the handle
        key, token = _parse_handle(receipt_handle)
        now = self.clock()
        deadline = repr(now + visibility_timeout)
        res = await self._run(
            "change_visibility", self._qtag(queue), queue, key, token, deadline, now=now
        )
        if res[0] == 1:
            raise QueueNotFound(queue)
        if res[0] == 2:
            raise InvalidReceiptHandle(
                f"receipt handle {receipt_handle!r} names no message in flight in {queue!r}"
            )

    async def _purge(self, queue: str) -> int:
        res = await self._run("purge", self._qtag(queue), queue)
        if res[0] == 1:
            raise QueueNotFound(queue)
        return int(res[1])

    async def _counts(self, queue: str) -> QueueCounts:
        now = self.clock()
        res = await self._run("counts", self._qtag(queue), queue, now=now)
        if res[0] == 1:
            raise QueueNotFound(queue)
        _, visible, in_flight, delayed, oldest, dead, groups, busy = res
        oldest_text = _text(oldest)
        age = max(0.0, now - float(oldest_text)) if oldest_text else 0.0
        return QueueCounts(
            int(visible), int(in_flight), int(delayed), age, int(dead), int(groups), int(busy)
        )

    async def _peek(self, queue: str, limit: int) -> list[PeekedMessage]:
        now = self.clock()
        res = await self._run("peek", self._qtag(queue), queue, limit, now=now)
        if res[0] == 1:
            raise QueueNotFound(queue)
        fifo = is_fifo_queue(queue)
        out: list[PeekedMessage] = []
        for i in range(1, len(res), 6):
            key = res[i].decode("ascii")
            blob: bytes = res[i + 1]
            count, first, _, source, group = _text(res[i + 2]).split("|", 4)
            in_flight, delayed = _text(res[i + 4]), _text(res[i + 5])
            hidden = in_flight or delayed
            state, until = peek_state(int(count), float(hidden) if hidden else None, now)
            cut = blob.index(b"\n")
            md5, sender, attributes, dedup = self._header(blob[:cut])
            out.append(PeekedMessage(
                key[17:], blob[cut + 1 :].decode("utf-8"), md5, dict(attributes), sender,
                float(res[i + 3]), float(first) if first and int(count) else None, int(count),
                state, until, source or None, group if fifo else None,
                dedup if fifo else None, f"{int(key[:16]):020d}" if fifo else None,
            ))
        return out

    async def _redrive(self, dead_letter_queue: str, to: str | None) -> list[str]:
        res = await self._run(
            "redrive", self._qtag(dead_letter_queue), dead_letter_queue, to or ""
        )
        if res[0] == 1:
            raise QueueNotFound(_text(res[1]))
        if res[0] == 3:
            raise StoreError(_text(res[1]))
        return [_text(name) for name in res[1:]]

    # ------------------------------------------------------------------ streams
    async def _ensure_stream(self, config: StreamConfig) -> None:
        self._streams.pop(config.name, None)
        await self._run(
            "ensure_stream",
            self._stag(config.name),
            config.name,
            config.shard_count,
            config.retention_period,
        )

    async def _get_stream(self, name: str, *, cached: bool = False) -> StreamConfig:
        if cached:
            known = self._streams.get(name)
            if known is not None:
                return known
        key = f"{self._stag(name)}:meta"
        values = await self._do(lambda r: awaitable(r.hmget(key, ["shards", "ret"])))
        if values[0] is None:
            self._streams.pop(name, None)
            raise StreamNotFound(name)
        config = StreamConfig(name, int(_text(values[0])), int(_text(values[1])))
        self._streams[name] = config
        return config

    async def _list_streams(self) -> list[StreamConfig]:
        res = await self._run("list_streams", f"{self.prefix}streams")
        return [
            StreamConfig(_text(res[i]), int(res[i + 1]), int(res[i + 2]))
            for i in range(1, len(res), 3)
        ]

    async def _delete_stream(self, name: str) -> None:
        self._streams.pop(name, None)
        res = await self._run("delete_stream", self._stag(name), name)
        if res[0] == 1:
            raise StreamNotFound(name)

    async def put_records(self, stream: str, entries: Sequence[PutEntry]) -> list[PutResult]:
        """As :meth:`Store.put_records`, one round trip when this object knows the stream
        (validated against the cached shard count, which the script checks)."""
        for _ in range(5):
            try:
                return await super().put_records(stream, entries)
            except _Stale:
                self._streams.pop(stream, None)
        raise StoreError(f"redis store {self.address}: stream {stream!r} keeps changing")

    async def _put(self, stream: str, records: list[tuple[int, str, bytes]]) -> list[int]:
        known = self._streams.get(stream)
        if known is None:
            known = await self._get_stream(stream)
        args: list[Any] = [stream, known.shard_count]
        for shard, key, data in records:
            args += (shard, key, data)
        res = await self._run("put", self._stag(stream), *args)
        if res[0] == 1:
            self._streams.pop(stream, None)
            raise StreamNotFound(stream)
        if res[0] == 2:
            raise _Stale
        first = int(res[1])
        return list(range(first, first + len(records)))

    async def _get_records(
        self, stream: str, shard: int, after: int | None, at_timestamp: float | None, limit: int
    ) -> list[StreamMessage]:
        if after is not None:
            start = "-" if after < 0 else f"{min(after + 1, _MAX_STREAM_ID)}-0"
            stamp = ""
        elif at_timestamp is not None:
            start, stamp = "ts", repr(float(at_timestamp))
        else:
            start, stamp = "-", ""
        res = await self._run(
            "get_records", self._stag(stream), stream, shard, start, stamp, limit
        )
        if res[0] == 1:
            self._streams.pop(stream, None)
            raise StreamNotFound(stream)
        if res[0] == 2:
            self._streams.pop(stream, None)
            raise InputError(f"shard={shard!r} is invalid for stream {stream!r}")
        out: list[StreamMessage] = []
        for entry_id, fields in res[1]:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            out.append(
                StreamMessage(
                    shard,
                    int(entry_id.split(b"-", 1)[0]),
                    values[b"k"].decode("utf-8"),
                    bytes(values[b"d"]),
                    float(values[b"a"]),
                )
            )
        return out

    async def _latest_sequence(self, stream: str, shard: int) -> int:
        key = f"{self._stag(stream)}:meta"
        shards, latest = await self._do(
            lambda r: awaitable(r.hmget(key, ["shards", f"latest:{shard}"]))
        )
        if shards is None:
            raise StreamNotFound(stream)
        return -1 if latest is None else int(_text(latest))

    async def _shard_stats(self, stream: str) -> list[tuple[int | None, int, int]]:
        res = await self._run("shard_stats", self._stag(stream), stream)
        if res[0] == 1:
            raise StreamNotFound(stream)
        return [
            (int(res[i]) if res[i] else None, int(res[i + 1]), int(res[i + 2]))
            for i in range(1, len(res), 3)
        ]

    async def _get_checkpoints(self, mapping: str) -> dict[int, int]:
        key = f"{self.prefix}cp:{mapping}"
        values = await self._do(lambda r: awaitable(r.hgetall(key)))
        return {int(shard): int(seq) for shard, seq in values.items()}

    async def _stream_checkpoints(self, stream: str) -> dict[str, dict[int, int]]:
        res = await self._run("stream_checkpoints", f"{self.prefix}mappings", stream)
        out: dict[str, dict[int, int]] = {}
        for i in range(1, len(res), 2):
            pairs = res[i + 1]
            out[_text(res[i])] = {
                int(pairs[j]): int(pairs[j + 1]) for j in range(0, len(pairs), 2)
            }
        return out

    async def _set_checkpoints(self, mapping: str, checkpoints: dict[int, int]) -> None:
        args: list[Any] = [mapping]
        for shard, seq in checkpoints.items():
            args += (shard, seq)
        await self._run("set_checkpoints", f"{self.prefix}cp:{mapping}", *args)


    # ------------------------------------------------------------------ coordination
    # Leases and the registry expire by the caller's clock, passed to the scripts like
    # every other time of this store: one time base for the whole store, and leases obey
    # an injected clock (tests, the simulator) as visibility timeouts do.
    async def _claim_leases(
        self, holder: str, claims: list[LeaseClaim], ttl: float
    ) -> list[LeaseGrant]:
        args: list[Any] = [holder, repr(float(ttl)), len(claims)]
        for c in claims:
            args += [c.name, max(0, int(c.want)), max(0, int(c.limit)), max(0, int(c.in_use)),
                     "1" if c.fair else "0"]
        res = await self._run("lease", f"{self.prefix}leases", *args)
        return [
            LeaseGrant(int(res[i]), int(res[i + 1]), int(res[i + 2]), int(res[i + 3]),
                       float(res[i + 4]), int(res[i + 5]), int(res[i + 6]))
            for i in range(0, len(res), 7)
        ]

    async def _lease_holders(self, name: str) -> list[LeaseHolder]:
        base = f"{self.prefix}lease:{{{name}}}:"
        now = self.clock()

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(base + "held")
                pipe.hgetall(base + "want")
                pipe.hgetall(base + "tok")
                pipe.zrange(base + "exp", 0, -1, withscores=True)
                replies: list[Any] = await pipe.execute()
                return replies

        held, wants, tokens, expiries = await self._do(read)
        return [
            LeaseHolder(_text(h), int(held.get(h, 0)), int(wants.get(h, 0)), float(exp),
                        int(tokens.get(h, 0)))
            for h, exp in expiries if float(exp) > now
        ]

    async def _lease_names(self) -> list[str]:
        names = await self._do(lambda r: awaitable(r.hkeys(f"{self.prefix}leases")))
        return [_text(n) for n in names]

    async def _register_worker(
        self, worker: str, info: str, ttl: float, exclusive: bool
    ) -> str | None:
        res = await self._run_raw("worker", "register", worker, info, repr(float(ttl)),
                                  "1" if exclusive else "0")
        return None if res is None else _text(res)

    async def _list_workers(self) -> list[tuple[str, str]]:
        res = await self._run("worker", f"{self.prefix}workers", "list")
        return [(_text(res[i]), _text(res[i + 1])) for i in range(0, len(res), 2)]

    async def _unregister_worker(self, worker: str) -> None:
        async def drop(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hdel(f"{self.prefix}workers", worker)
                pipe.zrem(f"{self.prefix}workers:exp", worker)
                await pipe.execute()

        await self._do(drop)

    async def _append_events(self, log: str, events: list[str]) -> None:
        key = f"{self.prefix}log:{log}"

        async def push(client: Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, *events)
                pipe.ltrim(key, -MAX_EVENTS, -1)
                await pipe.execute()

        await self._do(push)

    async def _take_events(self, log: str) -> list[str]:
        key = f"{self.prefix}log:{log}"

        async def take(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.lrange(key, 0, -1)
                pipe.delete(key)
                return cast(list[Any], (await pipe.execute())[0])

        return [_text(e) for e in await self._do(take)]

    async def _write_shared(self, key: str, value: str) -> None:
        await self._do(lambda r: awaitable(r.hset(f"{self.prefix}shared", key, value)))

    async def _read_shared(self, keys: list[str]) -> dict[str, str | None]:
        values = await self._do(lambda r: awaitable(r.hmget(f"{self.prefix}shared", keys)))
        return {k: None if v is None else _text(v) for k, v in zip(keys, values, strict=True)}

    # ------------------------------------------------------------------ semaphores
    # One script per attempt, release or renewal (lua/semaphore.lua); waiters are woken
    # by the release's PUBLISH on their store's channel, which this store listens to
    # (one pub/sub connection, opened with the first wait).
    async def _semaphore_op(self, op: str, name: str, *args: Any) -> list[Any]:
        return await self._run("semaphore", f"{self.prefix}sem:{{{name}}}", op, name, *args)

    async def _semaphore_acquire(
        self, name: str, holder: str, limit: int, ttl: float, queue: bool, address: str,
        info: str, yieldable: bool = False,
    ) -> SemaphoreGrant:
        res = await self._semaphore_op(
            "acquire", name, holder, limit, repr(float(ttl)), "1" if queue else "0", address,
            info, repr(WAITER_TTL_FACTOR), "1" if yieldable else "0")
        nudges = tuple(Wake(_text(res[i]), _text(res[i + 1])) for i in range(6, len(res), 2))
        return SemaphoreGrant(bool(int(res[0])), int(res[1]), float(res[2]), int(res[3]),
                              float(res[4]), int(res[5]), nudges)

    async def _semaphore_release(self, name: str, holder: str) -> list[Wake]:
        res = await self._semaphore_op("release", name, holder)
        return [Wake(_text(res[i]), _text(res[i + 1])) for i in range(0, len(res), 2)]

    async def _semaphore_renew(self, name: str, holders: list[str], ttl: float) -> list[int]:
        res = await self._semaphore_op("renew", name, repr(float(ttl)), *holders)
        return [int(t) for t in res]

    async def _semaphore_states(self, names: list[str] | None) -> list[SemaphoreState]:
        if names is None:
            names = sorted(_text(n) for n in await self._do(
                lambda r: awaitable(r.smembers(f"{self.prefix}semaphores"))))
        keys = [f"{self.prefix}sem:{{{n}}}" for n in names]
        if not keys:
            return []
        raws = await self._do(lambda r: awaitable(r.mget(keys)))
        now = self.clock()
        out = []
        for raw in raws:
            if raw is not None:
                state = SemaphoreState.from_json(_text(raw))
                state.holders = [h for h in state.holders if h.expires > now]
                state.waiters = [w for w in state.waiters if w.expires > now]
                out.append(state)
        return out

    async def _send_wakes(self, wakes: list[Wake]) -> list[str]:
        return []  # the release script has published them (and dropped the dead)

    async def _wake_address(self) -> str:
        """This store's wake channel, subscribed on first use."""
        if self._listener is not None:
            return self._channel
        client = self._redis()
        channel = f"{self.prefix}wake:{secrets.token_hex(8)}"
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
        except Exception as exc:
            await pubsub.aclose()
            raise store_error(exc, self.address) from exc
        self._pubsub, self._channel = pubsub, channel
        self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub))
        return channel

    async def _listen(self, pubsub: Any) -> None:
        """Hand every wake published on this store's channel to its waiter."""
        with contextlib.suppress(Exception):
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    self._wake_local(_text(message["data"]))

    async def _stop_listening(self) -> None:
        listener, pubsub = self._listener, self._pubsub
        self._listener = self._pubsub = None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _put_parked(self, token: str, record: str, ttl: float) -> None:
        key = f"{self.prefix}parked:{token}"
        value = f"{self.clock() + ttl!r}\n{record}"
        # expiry by the store's clock, as everywhere; Redis drops the key a minute later
        ms = int(ttl * 1000) + 60_000
        await self._do(lambda r: awaitable(r.set(key, value, px=ms)))

    async def _get_parked(self, token: str, take: bool) -> str | None:
        key = f"{self.prefix}parked:{token}"
        if take:
            raw = await self._do(lambda r: awaitable(r.getdel(key)))
        else:
            raw = await self._do(lambda r: awaitable(r.get(key)))
        if raw is None:
            return None
        expires, _, record = _text(raw).partition("\n")
        return record if float(expires) > self.clock() else None

    # ------------------------------------------------------------------ table items
    # One script per operation (lua/items.lua), on the item's key and its table's
    # version counter, which share the hash tag {TABLE}.
    async def _item_op(self, op: str, table: str, key: str, *args: Any) -> list[Any]:
        return await self._run("items", f"{self.prefix}item:{{{table}}}", op, table, key,
                               *args)

    async def _create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                           in_progress_ttl: float | None) -> ItemWrite:
        res = await self._item_op("create", table, key, status, data, repr(ttl),
                                  "" if in_progress_ttl is None else repr(in_progress_ttl))
        return ItemWrite(bool(int(res[0])), _item(table, key, res))

    async def _put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                        in_progress_ttl: float | None) -> TableItem:
        res = await self._item_op("put", table, key, status, data, repr(ttl),
                                  "" if in_progress_ttl is None else repr(in_progress_ttl))
        item = _item(table, key, res)
        assert item is not None
        return item

    async def _get_item(self, table: str, key: str) -> TableItem | None:
        return _item(table, key, await self._item_op("get", table, key))

    async def _update_item(self, table: str, key: str, change: ItemChange,
                           if_version: int | None, if_status: str | None) -> ItemWrite:
        if change.keep_in_progress:
            in_progress = "keep"
        else:
            in_progress = "" if change.in_progress_ttl is None else repr(change.in_progress_ttl)
        res = await self._item_op(
            "update", table, key, change.status or "", change.data or "",
            "1" if change.data is None else "0",
            "" if change.ttl is None else repr(change.ttl), in_progress,
            "" if if_version is None else str(if_version), if_status or "")
        return ItemWrite(bool(int(res[0])), _item(table, key, res))

    async def _delete_item(self, table: str, key: str, if_version: int | None) -> bool:
        res = await self._item_op("delete", table, key,
                                  "" if if_version is None else str(if_version))
        return bool(int(res[0]))

    async def _run_raw(self, name: str, *args: Any) -> Any:
        """Run script ``name`` at the clock's time; its reply as it is (not a list)."""
        script = self._scripts.get(name)
        if script is None:
            self._redis()
            raise StoreError(f"redis store {self.address}: no script {name!r}")
        at = repr(float(self.clock()))
        return await self._do(
            lambda _: script(keys=[f"{self.prefix}workers"], args=[self.prefix, at, *args])
        )

    # ------------------------------------------------------------------ live settings
    # The merge is Python's (sluicegate.store.live.merge_settings, as on the other
    # backends); settings.lua writes it only if the version is still the one read, so
    # a write is atomic; an unconditional write that lost the race merges again.
    async def _get_settings(self, scope: str) -> LiveSettings:
        p = self.prefix

        async def read(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hget(f"{p}settings", scope)
                pipe.hget(f"{p}settings:ver", scope)
                pipe.zscore(f"{p}settings:rev", scope)
                replies: list[Any] = await pipe.execute()
                return replies

        record, version, revision = await self._do(read)
        return _live(scope, record, version, revision)

    async def _list_settings(self, since: int) -> tuple[int, list[LiveSettings]]:
        p = self.prefix

        async def read(client: Redis) -> tuple[Any, list[Any], dict[Any, Any], dict[Any, Any]]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.get(f"{p}settings:revision")
                pipe.zrangebyscore(f"{p}settings:rev", f"({since}", "+inf", withscores=True)
                pipe.hgetall(f"{p}settings")
                pipe.hgetall(f"{p}settings:ver")
                revision, scopes, records, versions = await pipe.execute()
                return revision, scopes, records, versions

        revision, scopes, records, versions = await self._do(read)
        out = [_live(_text(scope), records.get(scope), versions.get(scope), rev)
               for scope, rev in scopes]
        return int(revision or 0), out

    async def _write_settings(
        self, scope: str, changes: dict[str, Any], expected_version: int | None, by: str,
        why: str,
    ) -> SettingsWrite:
        for _ in range(_SETTINGS_RETRIES):
            current = await self._get_settings(scope)
            if expected_version is not None and expected_version != current.version:
                return SettingsWrite(False, current)
            now = float(self.clock())
            stored, change = merge_settings(current, changes, by=by, why=why, now=now,
                                            revision=0)
            record = json.dumps({"values": stored.values, "at": now, "by": by},
                                sort_keys=True)
            res = await self._run("settings", f"{self.prefix}settings", scope,
                                  current.version, record, change.to_json(),
                                  MAX_SETTINGS_HISTORY, secrets.token_hex(8), now=now)
            if int(res[0]) == 1:
                return SettingsWrite(True, dataclasses.replace(stored, revision=int(res[1])))
        raise StoreError(f"redis store {self.address}: settings of {scope!r} kept changing "
                         f"under {_SETTINGS_RETRIES} writes in a row")

    async def _settings_history(self, scope: str | None, limit: int) -> list[SettingsChange]:
        if limit <= 0:
            return []
        key = f"{self.prefix}settings:history"
        start = -limit if scope is None else 0
        raw = await self._do(lambda r: awaitable(r.lrange(key, start, -1)))
        entries = [SettingsChange.from_json(_text(e)) for e in raw]
        if scope is not None:
            entries = [e for e in entries if e.scope == scope][-limit:]
        return entries


_SETTINGS_RETRIES = 50
"""Tries of an unconditional settings write whose scope others write meanwhile."""


def _item(table: str, key: str, res: list[Any]) -> TableItem | None:
    """The item of an ``items.lua`` reply (``None`` when it carries none)."""
    if len(res) < 6:
        return None
    ipe = _text(res[4])
    return TableItem(table, key, _text(res[1]), _text(res[2]), float(res[3]),
                     float(ipe) if ipe else None, int(res[5]))


def _live(scope: str, record: Any, version: Any, revision: Any) -> LiveSettings:
    if record is None:
        return LiveSettings(scope)
    d = json.loads(_text(record))
    return LiveSettings(scope, dict(d["values"]), int(version or 0), int(float(revision or 0)),
                        float(d["at"]), str(d["by"]))
