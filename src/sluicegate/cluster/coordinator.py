"""One worker's part in a cluster: its leases, its heartbeat, its shards.

A :class:`Cluster` is handed to :class:`~sluicegate.runtime.driver.Runtime` (the CLI does
so when the store URL is ``redis://``). While the runtime runs, one task
(:meth:`Cluster.run`) syncs with Redis every :attr:`Cluster.interval` seconds
(``min(lease_ttl / 3, 0.25 s)``):

1. **shared scaling** (mappings with the ``aws`` policy): push this worker's
   observations, claim the mapping's leader lease; the leader applies every worker's
   observations and publishes the limit and the policy's state, the others read them
   (:mod:`sluicegate.cluster.scaling`);
2. **mapping leases** ``mapping:NAME``: limit = the mapping's cluster-wide limit
   (``maximum_concurrency``, the fixed policy's limit, or the published aws limit),
   want = that limit, in_use = invocations running here. The worker's mapping policy
   answers ``min(its limit, share)`` (:class:`ClusterPolicy`, :class:`SharedScaling`), so
   the core runs at most ``share`` pollers and invocations;
3. **function and account leases** ``function:NAME`` / ``account``: want = what this
   worker's mappings of the function could run, checked by :class:`ClusterPool`;
4. **shard leases** for stream mappings: ``shards:NAME`` (a counted lease of limit =
   shard count: each worker's fair number of shards) and ``shard:NAME:I`` (limit 1: who
   owns shard I). A worker claims free shards up to its fair number and gives up the
   ones above it; a change of the shards it owns is handed to its
   :class:`~sluicegate.runtime.stream_runner.StreamRunner` (:meth:`reassign`), which
   settles and checkpoints what is in flight before a shard is released and resumes new
   shards from the store's checkpoints. Lanes belong to their shard;
5. **heartbeat**: key ``workers:ID`` (JSON: host, pid, leases, in-flight counts) with
   expiry ``lease_ttl``, and the id in set ``workers``.

Whenever a share, the published limit or the owned shards change, the runner concerned is
woken. When Redis cannot be reached, the sync logs one warning and keeps trying; leases
that lapse meanwhile (by this worker's own clock) count as zero, so the worker starts
nothing under them, and shards whose lease lapsed are dropped from the runner (they may
already be someone else's). See :mod:`sluicegate.cluster.leases` for the lease rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluicegate.cluster.leases import DEFAULT_LEASE_TTL, KEY_PREFIX, Lease, LeaseClient
from sluicegate.cluster.pool import ACCOUNT_LEASE, ClusterPool, function_lease
from sluicegate.cluster.scaling import ScaleLeader, SharedScaling, decode
from sluicegate.core.config import MappingConfig
from sluicegate.core.scaling import AwsScaling, ScalingPolicy, ScalingStatistics
from sluicegate.core.types import BatchOutcome
from sluicegate.errors import ConfigError, StoreError
from sluicegate.runtime.runner import wait_event
from sluicegate.store.redis_client import awaitable, connect, store_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from sluicegate.app import App
    from sluicegate.runtime.driver import _Runner
    from sluicegate.runtime.stream_runner import StreamRunner

__all__ = ["WORKERS_KEY", "Cluster", "ClusterPolicy", "default_worker_id"]

log = logging.getLogger("sluicegate.cluster")

WORKERS_KEY = f"{KEY_PREFIX}workers"
"""Set of the ids of workers that announced themselves (some may have expired)."""

MAX_SYNC_INTERVAL = 0.25
"""Longest time between two syncs, whatever the ttl: a worker that joins gets its share
within a second or so (the holders give back at their next sync, it takes at its next).
A sync costs a few Redis round trips per mapping."""

MAX_EVENTS = 10_000
"""Most unapplied scaling observations kept per mapping (while no leader reads them)."""


def worker_key(worker: str) -> str:
    return f"{KEY_PREFIX}workers:{worker}"


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in ``sluicegate workers``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ClusterPolicy:
    """A mapping's own policy, bounded by this worker's share of the mapping's lease.

    ``limit(now) = min(inner.limit(now), share)``; the hooks go to the inner policy.
    """

    def __init__(self, inner: ScalingPolicy, share: Callable[[], int]) -> None:
        self.inner = inner
        self._share = share
        self.observes_receive_wait = bool(getattr(inner, "observes_receive_wait", False))

    def limit(self, now: float) -> int:
        return min(self.inner.limit(now), self._share())

    def on_receive(self, now: float, count: int, waited: float = 0.0) -> None:
        if self.observes_receive_wait:
            self.inner.on_receive(now, count, waited)  # type: ignore[call-arg]
        else:
            self.inner.on_receive(now, count)

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        self.inner.on_outcome(now, outcome)

    def on_throttle(self, now: float) -> None:
        self.inner.on_throttle(now)

    def on_resume(self, now: float) -> None:
        hook = getattr(self.inner, "on_resume", None)
        if hook is not None:
            hook(now)

    def next_change(self, now: float) -> float | None:
        return self.inner.next_change(now)

    def statistics(self, now: float) -> ScalingStatistics:
        return self.inner.statistics(now)


@dataclass(eq=False)
class _QueueEntry:
    runner: _Runner | None
    config: MappingConfig
    lease: Lease
    policy: ClusterPolicy | SharedScaling
    inner: ScalingPolicy
    clock: Callable[[], float]
    leader: Lease | None = None
    scale_leader: ScaleLeader | None = None

    @property
    def maximum(self) -> int:
        m = self.config.maximum_concurrency
        return m if m is not None else 1 << 30

    def cluster_limit(self) -> int:
        """The mapping's limit for the whole cluster."""
        if isinstance(self.policy, SharedScaling):
            return min(self.policy.published, self.maximum)
        return min(self.inner.limit(self.clock()), self.maximum)

    def in_use(self) -> int:
        """Invocations running here, and batches received here that wait for a slot:
        their slots stay stored for this worker (see :meth:`Cluster.queue_policy`)."""
        if self.runner is None:
            return 0
        core = self.runner.core
        return int(core.in_flight + core.statistics().held)


@dataclass(eq=False)
class _StreamEntry:
    runner: StreamRunner
    count: Lease
    shards: dict[int, Lease] = field(default_factory=dict)
    """Shard leases this worker holds or claims."""
    owned: set[int] = field(default_factory=set)
    reassigning: asyncio.Task[None] | None = None


class Cluster:
    """Coordination of one worker with the others through Redis.

    Parameters:
        url: the Redis server (the store's URL).
        worker_id: this worker's id (:func:`default_worker_id` by default).
        lease_ttl: seconds a worker's leases outlive its last renewal: how long a dead
            worker's slots and shards stay taken.
        redis: an existing client (tests); a new one from
            :func:`~sluicegate.store.redis_client.connect` by default.
        clock: monotonic seconds, for lease deadlines.
    """

    def __init__(
        self,
        url: str,
        *,
        worker_id: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        redis: Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_ttl > 0:
            raise ConfigError("lease_ttl", lease_ttl, "seconds > 0", "cluster")
        self.url = url
        self.worker_id = worker_id or default_worker_id()
        self.ttl = float(lease_ttl)
        self.interval = min(self.ttl / 3.0, MAX_SYNC_INTERVAL)
        self.redis: Redis = redis if redis is not None else connect(url)
        self.clock = clock
        self.leases = LeaseClient(self.redis, self.worker_id, ttl=self.ttl, url=url)
        self._pool_leases: dict[str, Lease] = {}
        self._queues: list[_QueueEntry] = []
        self._streams: list[_StreamEntry] = []
        self.pool: ClusterPool | None = None
        self.app: App | None = None
        self._failing = False
        self._refused = False
        """Set when :meth:`start` found the worker id in use by a live worker."""
        self.closing = False
        """Set by the runtime before it cancels :meth:`run`: the loop ends at its next
        turn whatever happens to the cancellation."""
        self._wakeup = asyncio.Event()
        self.started = time.time()

    # ------------------------------------------------------------------ building
    def new_pool(self, app: App) -> ClusterPool:
        """The runtime's pool: the App's functions registered, leased shares checked."""
        self.app = app
        pool = ClusterPool(app.account, self.share)
        for fn in app.functions.values():
            pool.register(fn.config)
        self.pool = pool
        return pool

    def share(self, name: str) -> int:
        lease = self._pool_leases.get(name)
        return 0 if lease is None else lease.share()

    def queue_policy(self, config: MappingConfig, inner: ScalingPolicy,
                     runtime_clock: Callable[[], float]) -> ClusterPolicy | SharedScaling:
        """The policy to give the mapping's core (see the module docstring)."""
        lease = Lease(f"mapping:{config.name}", self.ttl, self.clock)
        function = config.function

        def share() -> int:
            mine = lease.share()
            if mine == 0 and lease.held_share() > 0 and entry.runner is not None:
                # A receive that was outstanding when the share went to zero brought a
                # batch that waits for a slot; with nothing in flight it would wait for
                # its whole visibility timeout. The slot it needs is still stored for
                # this worker (in_use counts held batches), so let one run.
                stats = entry.runner.core.statistics()
                if stats.held and not stats.in_flight:
                    mine = 1
            # and no more than the function may run here: above it every start would be
            # a throttle (a batch waits for a slot instead)
            pool = self.pool
            if pool is not None:
                mine = min(mine, self.share(pool.lease_of(function)))
            return mine

        policy: ClusterPolicy | SharedScaling
        if isinstance(inner, AwsScaling):
            policy = SharedScaling(inner.limit(runtime_clock()), share)
        else:
            policy = ClusterPolicy(inner, share)
        entry = _QueueEntry(None, config, lease, policy, inner, runtime_clock)
        if isinstance(policy, SharedScaling):
            entry.leader = Lease(f"leader:{config.name}", self.ttl, self.clock)
        self._queues.append(entry)
        return policy

    def attach_queue(self, runner: _Runner) -> None:
        """Bind the runner built around the policy :meth:`queue_policy` returned last for
        its mapping."""
        for entry in self._queues:
            if entry.config.name == runner.config.name:
                entry.runner = runner

    def attach_stream(self, runner: StreamRunner) -> None:
        """Serve ``runner``'s shards only as leased: it starts with none."""
        runner.owned = set()
        count = Lease(f"shards:{runner.name}", self.ttl, self.clock)
        entry = _StreamEntry(runner, count)

        def holds(shard: int) -> bool:
            lease = entry.shards.get(shard)
            return lease is not None and lease.share() > 0

        runner.holds = holds
        self._streams.append(entry)

    # ------------------------------------------------------------------ running
    async def start(self) -> None:
        """Announce the worker and take first shares before the mappings start.

        Raises:
            StoreUnavailable: Redis cannot be reached.
            ConfigError: a live worker already uses this worker id (leases are held by
                id: two workers sharing one would share their slots and break the limits).
        """
        try:
            await self.redis.ping()
            registered = await self.redis.set(worker_key(self.worker_id),
                                              json.dumps(self._info()),
                                              px=int(self.ttl * 1000), nx=True)
            other = None if registered else await self.redis.get(worker_key(self.worker_id))
        except Exception as exc:
            raise store_error(exc, self.url) from exc
        if not registered:
            self._refused = True
            owner = json.loads(other) if other else {}
            raise ConfigError(
                "worker_id", self.worker_id,
                f"an id no live worker uses (the worker on {owner.get('host', '?')} with pid "
                f"{owner.get('pid', '?')} has it; a stopped worker's id is free again "
                f"{self.ttl:g} s after it stops)", "cluster",
            )
        await self.sync()

    async def run(self) -> None:
        """Sync every :attr:`interval` seconds until cancelled."""
        while not self.closing:
            await wait_event(self._wakeup, self.interval)
            self._wakeup.clear()
            if self.closing:
                return
            try:
                await self.sync()
                if self._failing:
                    log.warning("cluster: Redis reachable again; leases renewed")
                    self._failing = False
            except StoreError as exc:
                if not self._failing:
                    log.warning("cluster: sync failed: %s; retrying every %gs", exc,
                                self.interval)
                    self._failing = True
                self._lapse()
            except Exception:
                # A bug of ours must not end the sync: the leases would lapse while the
                # runners go on believing in them. Log it and try again.
                log.exception("cluster: sync failed")
                self._lapse()

    async def stop(self) -> None:
        """Give back every lease and leave the worker registry (after the runners
        finished). Whatever still runs keeps what it uses, as a dead worker's would, until
        the ttl: a run cancelled from outside leaves its invocations to finish, so their
        slots stay counted, and the shards of a stream with batches in flight stay taken.
        Errors are logged: the leases then expire by themselves. A worker refused at
        :meth:`start` gives back nothing: the leases under its id are another's."""
        if self._refused:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
            return
        for entry in self._streams:
            if entry.reassigning is not None:
                entry.reassigning.cancel()
        give: list[tuple[Lease, int]] = []
        for q in self._queues:
            give.append((q.lease, q.runner.core.in_flight if q.runner is not None else 0))
            if q.leader is not None:
                give.append((q.leader, 0))
        pool = self.pool
        for name, lease in self._pool_leases.items():
            give.append((lease, pool.lease_in_use(name) if pool is not None else 0))
        for s in self._streams:
            give.append((s.count, 0))
            if not s.runner.core.in_flight:
                give += [(lease, 0) for lease in s.shards.values()]
        for lease, _ in give:
            lease.lost()  # nothing more starts here, whatever the answers
        try:
            for lease, in_use in give:
                await self.leases.release(lease.name, in_use=in_use)
            try:
                await self.redis.delete(worker_key(self.worker_id))
                await awaitable(self.redis.srem(WORKERS_KEY, self.worker_id))
            except Exception as exc:
                raise store_error(exc, self.url) from exc
        except StoreError as exc:
            log.warning("cluster: releasing leases failed: %s; they expire within %gs",
                        exc, self.ttl)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def _lapse(self) -> None:
        """After a failed sync: wake runners whose lease lapsed, drop lapsed shards."""
        for q in self._queues:
            if q.lease.expired() and q.runner is not None:
                q.runner.wake.set()
        for s in self._streams:
            lapsed = {i for i in s.owned if i not in s.shards or s.shards[i].expired()}
            if lapsed:
                self._reassign(s, s.owned - lapsed)

    # ------------------------------------------------------------------ one sync
    async def sync(self) -> None:
        """One round: scaling, mapping, pool and shard leases, then the heartbeat (which
        shows what this round holds)."""
        for q in self._queues:
            await self._sync_queue(q)
        await self._sync_pool()
        for s in self._streams:
            await self._sync_stream(s)
        await self._heartbeat()

    async def _claim(self, lease: Lease, *, want: int, limit: int, in_use: int,
                     fair: bool = True, freeze: bool = False) -> bool:
        """Claim and record; whether the share changed from what the runners last saw.

        ``freeze``: for a lease of concurrency slots, start nothing more under it until the
        answer is recorded (see :attr:`Lease.frozen`), and if no answer comes, no more
        than the server may have kept (:meth:`Lease.unanswered`). A runner that held a
        batch back meanwhile must be woken when the answer gives the slots back, even if
        the grant itself did not change."""
        before = lease.share()
        seen = min(before, in_use) if freeze else before
        sent = self.clock()
        if freeze:
            lease.frozen = in_use
        try:
            grant = await self.leases.claim(lease.name, want=want, limit=limit,
                                            in_use=in_use, fair=fair)
            lease.update(grant, sent)
        except BaseException:
            if freeze:
                lease.unanswered(in_use)
            raise
        finally:
            lease.frozen = None
        after = lease.share()
        return after != before or after > seen

    def _info(self) -> dict[str, Any]:
        """What the registry shows of this worker (``sluicegate workers``)."""
        return {
            "worker": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started,
            "seen": time.time(),
            "lease_ttl": self.ttl,
            "leases": self.held(),
            "in_flight": self.in_flight(),
        }

    async def _heartbeat(self) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(worker_key(self.worker_id), json.dumps(self._info()),
                         px=int(self.ttl * 1000))
                pipe.sadd(WORKERS_KEY, self.worker_id)
                await pipe.execute()
        except Exception as exc:
            raise store_error(exc, self.url) from exc

    def held(self) -> dict[str, int]:
        """Lease name -> slots held, for the registry."""
        out: dict[str, int] = {}
        for q in self._queues:
            out[q.lease.name] = q.lease.held
            if q.leader is not None and q.leader.share():
                out[q.leader.name] = 1
        for name, lease in self._pool_leases.items():
            out[name] = lease.held
        for s in self._streams:
            for i in sorted(s.owned):
                out[f"shard:{s.runner.name}:{i}"] = 1
        return out

    def in_flight(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for q in self._queues:
            out[q.config.name] = q.runner.core.in_flight if q.runner is not None else 0
        for s in self._streams:
            out[s.runner.name] = s.runner.core.in_flight
        return out

    async def _sync_queue(self, q: _QueueEntry) -> None:
        policy = q.policy
        changed = False
        if isinstance(policy, SharedScaling):
            changed = await self._sync_scaling(q, policy)
        limit = q.cluster_limit()
        if await self._claim(q.lease, want=limit, limit=limit, in_use=q.in_use(),
                             freeze=True):
            changed = True
        if changed and q.runner is not None:
            q.runner.wake.set()

    async def _sync_scaling(self, q: _QueueEntry, policy: SharedScaling) -> bool:
        """Report observations; lead or follow. Whether the published limit changed."""
        name = q.config.name
        events_key = f"{KEY_PREFIX}scale:{name}:events"
        state_key = f"{KEY_PREFIX}scale:{name}"
        redis = self.redis
        outbox = policy.take_outbox()
        try:
            if outbox:
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.rpush(events_key, *(json.dumps(e) for e in outbox))
                    pipe.ltrim(events_key, -MAX_EVENTS, -1)
                    await pipe.execute()
        except Exception as exc:
            policy.outbox[:0] = outbox  # keep them for the next sync
            raise store_error(exc, self.url) from exc
        assert q.leader is not None
        await self._claim(q.leader, want=1, limit=1, in_use=0, fair=False)
        before = policy.published
        try:
            if q.leader.share():
                if q.scale_leader is None:
                    raw = await awaitable(redis.hget(state_key, "state"))
                    inner = q.inner
                    assert isinstance(inner, AwsScaling)
                    q.scale_leader = ScaleLeader(inner, json.loads(raw) if raw else None)
                    log.info("cluster: %s leads the scaling of %s", self.worker_id, name)
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.lrange(events_key, 0, -1)
                    pipe.delete(events_key)
                    raw_events, _ = await pipe.execute()
                q.scale_leader.apply(decode(e) for e in raw_events)
                limit, state = q.scale_leader.publish(q.clock())
                await awaitable(redis.hset(state_key, mapping={
                    "limit": limit, "state": json.dumps(state), "leader": self.worker_id,
                }))
                policy.published = limit
            else:
                q.scale_leader = None  # a leader that lost its lease starts over from Redis
                raw_limit = await awaitable(redis.hget(state_key, "limit"))
                if raw_limit is not None:
                    policy.published = int(raw_limit)
        except Exception as exc:
            raise store_error(exc, self.url) from exc
        return policy.published != before

    def _function_wants(self) -> dict[str, int]:
        """Function -> slots this worker's mappings of it could run now."""
        wants: dict[str, int] = {}
        for q in self._queues:
            fn = q.config.function
            wants[fn] = wants.get(fn, 0) + max(q.lease.held, q.in_use())
        for s in self._streams:
            fn = s.runner.config.function
            wants[fn] = wants.get(fn, 0) + len(s.owned) * s.runner.config.parallelization_factor
        return wants

    async def _sync_pool(self) -> None:
        pool, app = self.pool, self.app
        if pool is None or app is None:
            return
        wants = self._function_wants()
        unreserved_want = 0
        changed = False
        for fn, want in sorted(wants.items()):
            reserved = pool.reserved_concurrency(fn)
            if reserved is None:
                unreserved_want += want
                continue
            name = function_lease(fn)
            lease = self._pool_leases.setdefault(name, Lease(name, self.ttl, self.clock))
            changed |= await self._claim(lease, want=min(want, reserved), limit=reserved,
                                         in_use=pool.in_use(fn), freeze=True)
        lease = self._pool_leases.setdefault(ACCOUNT_LEASE,
                                             Lease(ACCOUNT_LEASE, self.ttl, self.clock))
        capacity = pool.unreserved_capacity
        changed |= await self._claim(lease, want=min(unreserved_want, capacity),
                                     limit=capacity, in_use=pool.unreserved_in_use,
                                     freeze=True)
        if changed:
            for q in self._queues:
                if q.runner is not None:
                    q.runner.wake.set()
            for s in self._streams:
                s.runner.wake.set()

    # ------------------------------------------------------------------ shards
    async def _sync_stream(self, s: _StreamEntry) -> None:
        runner = s.runner
        count = runner.stream.shard_count
        await self._claim(s.count, want=count, limit=count, in_use=len(s.owned))
        fair = s.count.share()
        # renew what is owned; claim free shards up to the fair number
        keep: set[int] = set()
        for i in sorted(s.owned):
            lease = s.shards.setdefault(i, Lease(f"shard:{runner.name}:{i}", self.ttl,
                                                 self.clock))
            await self._claim(lease, want=1, limit=1, in_use=1, fair=False)
            if lease.share():
                keep.add(i)
        if len(keep) < fair and not runner.stopping:
            start = hash(self.worker_id) % count
            for k in range(count):
                i = (start + k) % count
                if i in keep:
                    continue
                lease = s.shards.setdefault(i, Lease(f"shard:{runner.name}:{i}", self.ttl,
                                                     self.clock))
                await self._claim(lease, want=1, limit=1, in_use=0, fair=False)
                if lease.share():
                    keep.add(i)
                    if len(keep) >= fair:
                        break
                elif i not in s.owned:
                    s.shards.pop(i, None)  # someone else's: nothing was stored for us
        if len(keep) > fair:
            keep = set(sorted(keep)[:fair])
        if keep != s.owned and s.reassigning is None:
            self._reassign(s, keep)

    def _reassign(self, s: _StreamEntry, owned: set[int]) -> None:
        """Hand the runner its new shard set; release dropped shards once it settled."""
        if s.reassigning is not None:
            return
        dropped = s.owned - owned
        log.info("cluster: %s serves shards %s of %s (was %s)", self.worker_id,
                 sorted(owned), s.runner.name, sorted(s.owned))

        async def reassign() -> None:
            try:
                await s.runner.reassign(owned)
                s.owned = set(owned)
                for i in sorted(dropped):
                    lease = s.shards.pop(i, None)
                    if lease is not None:
                        with contextlib.suppress(StoreError):
                            await self.leases.release(lease.name)
                        log.info("cluster: %s handed over shard %d of %s", self.worker_id,
                                 i, s.runner.name)
            finally:
                s.reassigning = None
                self._wakeup.set()

        s.reassigning = asyncio.get_running_loop().create_task(reassign())


async def list_workers(redis: Redis, url: str = "") -> list[dict[str, Any]]:
    """Every live worker's registry entry (expired ones are removed from the set)."""
    try:
        ids = sorted(str(i) for i in await awaitable(redis.smembers(WORKERS_KEY)))
        values = await redis.mget([worker_key(i) for i in ids]) if ids else []
        out = []
        gone = []
        for worker, raw in zip(ids, values, strict=True):
            if raw is None:
                gone.append(worker)
                continue
            out.append(json.loads(raw))
        if gone:
            await awaitable(redis.srem(WORKERS_KEY, *gone))
        return out
    except Exception as exc:
        raise store_error(exc, url) from exc
