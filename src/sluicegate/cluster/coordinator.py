"""One worker's part in a cluster: its leases, its heartbeat, its shards.

Every process that runs mappings against a shared store (SQLite or Redis) is a worker of
the cluster of that store: :class:`~sluicegate.runtime.driver.Runtime` builds a
:class:`Cluster` over its store by default, with no flag (a Redis coordinator beside an
SQLite file is possible too: ``sluicegate run --cluster redis://...``). The memory store
lives in one process, so a runtime on it has no cluster. While the runtime runs, one task
(:meth:`Cluster.run`) syncs with the store every :attr:`Cluster.interval` seconds
(``min(lease_ttl / 3, 0.25 s)``), in one :meth:`~sluicegate.store.base.Store.coordinate`
round (one transaction on SQLite):

1. **shared scaling** (mappings with the ``aws`` policy): push this worker's
   observations to the mapping's shared log, claim the mapping's leader lease; the
   leader takes every worker's observations, applies them and publishes the limit and the
   policy's state (written at its next round), the others read them
   (:mod:`sluicegate.cluster.scaling`);
2. **mapping leases** ``mapping:NAME``: limit = the mapping's cluster-wide limit
   (``maximum_concurrency``, the fixed policy's limit, or the published aws limit),
   want = that limit, in_use = invocations running here. The worker's share is a term
   of the mapping's limit (``cluster``, a :class:`~sluicegate.core.limit.Share` added to
   the core's :class:`~sluicegate.core.limit.ConcurrencyLimit`), so the core runs at most
   ``share`` pollers and invocations; the aws policy's level is the leader's published
   one (:class:`SharedScaling`);
3. **function and account leases** ``function:NAME`` / ``account``: want = what this
   worker's mappings of the function could run (as of the last round), checked by
   :class:`ClusterPool`;
4. **heartbeat**: this worker's registry entry (host, pid, leases, in-flight counts) with
   expiry ``lease_ttl``;
5. **live limits**: the store's settings revision is read with the shared values; when
   it moved, the settings written since are read and applied
   (:mod:`sluicegate.runtime.live`), so an operator's change reaches every worker
   within a round.

Adaptive limits stay each process's own (each observes its own invocations), but they
share their growth: every grant of a mapping's lease (``mapping:NAME``, for a stream
``shards:NAME``) says how many live workers hold it and this one's rank among them, and
the mapping's :class:`~sluicegate.core.adaptive.AdaptiveLimit` is told
(:meth:`~sluicegate.core.adaptive.AdaptiveLimit.share_with`): N workers each grow by 1/N
of the rule's increase, so together they grow as one limit would. When a worker dies
its entry expires (or is reaped) and the survivors grow at full speed again.

Then, in calls of their own, **shard leases** for stream mappings: ``shards:NAME`` (a
counted lease of limit = shard count: each worker's fair number of shards) and
``shard:NAME:I`` (limit 1: who owns shard I). A worker claims free shards up to its fair
number and gives up the ones above it; a change of the shards it owns is handed to its
stream mapping (:meth:`~sluicegate.cluster.runners.ShardedRunner.reassign`), which settles
and checkpoints what is in flight before a shard is released and resumes new shards
from the store's checkpoints. Lanes belong to their shard.

Whenever a share, the published limit or the owned shards change, the runner concerned is
woken. When the store cannot be reached, the sync logs one warning and keeps trying;
leases that lapse meanwhile (by this worker's own clock) count as zero, so the worker
starts nothing under them, and shards whose lease lapsed are dropped from the runner (they
may already be someone else's). A worker killed with ``kill -9`` gives nothing back: its
slots and shards return when its leases expire, ``lease_ttl`` seconds after its last sync
at most. See :mod:`sluicegate.cluster.leases` for the lease rules.
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

from sluicegate.cluster.leases import DEFAULT_LEASE_TTL, Lease, LeaseClient
from sluicegate.cluster.pool import ACCOUNT_LEASE, ClusterPool, function_lease
from sluicegate.cluster.runners import QueueRunner, ShardedRunner
from sluicegate.cluster.scaling import ScaleLeader, SharedScaling, decode
from sluicegate.core.adaptive import TERM_ADAPTIVE, AdaptiveLimit
from sluicegate.core.async_events import TERM_EVENTS
from sluicegate.core.breaker import TERM_BREAKER
from sluicegate.core.config import MappingConfig
from sluicegate.core.limit import NO_LIMIT, TERM_CLUSTER, ConcurrencyLimit, Share
from sluicegate.core.scaling import AwsScaling, ScalingPolicy
from sluicegate.errors import ConfigError, StoreError
from sluicegate.runtime.waiting import wait_event
from sluicegate.store.base import Store
from sluicegate.store.coordination import CoordinationReply, CoordinationRound, LeaseClaim
from sluicegate.store.live import SETTINGS_REVISION

if TYPE_CHECKING:
    from sluicegate.app import App
    from sluicegate.runtime.live import LiveLimits

__all__ = ["Cluster", "QueueRunner", "ShardedRunner", "default_worker_id", "list_workers"]

log = logging.getLogger("sluicegate.cluster")

MAX_SYNC_INTERVAL = 0.25
"""Longest time between two syncs, whatever the ttl: a worker that joins gets its share
within a second or so (the holders give back at their next sync, it takes at its next).
A sync is one store round (one transaction on SQLite) plus a few calls per stream
mapping."""


def scale_log(mapping: str) -> str:
    """The shared log of a mapping's scaling observations."""
    return f"scale:{mapping}:events"


def scale_state(mapping: str) -> str:
    """The shared value holding a mapping's published limit and policy state (JSON)."""
    return f"scale:{mapping}"


REAP_INTERVAL = 5.0
"""Seconds between two looks for workers of this machine whose process is gone (besides
the one at start): see :meth:`Cluster._reap_gone_workers`."""


def pid_space() -> str | None:
    """Where a pid names one process: this boot of the machine and this pid namespace
    (``boot_id:pid:[inode]``), or ``None`` where that cannot be told (no ``/proc``).
    Two workers with the same value can judge whether the other's process exists."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}:{namespace}"


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie still does; so does another user's)."""
    if pid <= 0:
        return True  # not a pid to judge: never reap on it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, as someone else's
    return True


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in ``sluicegate workers``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(eq=False)
class _QueueEntry:
    runner: QueueRunner | None
    config: MappingConfig
    lease: Lease
    policy: ScalingPolicy | SharedScaling
    """The policy the core was given: the mapping's own, or its shared aws scaling."""
    inner: ScalingPolicy
    clock: Callable[[], float]
    leader: Lease | None = None
    scale_leader: ScaleLeader | None = None
    publish: str | None = None
    """The state this worker, as leader, computed at its last round: written at the next
    one (if it still leads)."""

    def cluster_limit(self) -> int:
        """The mapping's limit for the whole cluster: its limit's value without this
        worker's share and without the terms of this process alone (every other term:
        ``maximum_concurrency``, the policy's level, reserved concurrency, ...). Read from
        the core's limit, never computed here.

        The adaptive limit and the breaker are this process's own (each observes its own
        invocations): as the cluster's limit, one worker's adaptive estimate would be
        split among all the workers, so none would use its own limit, none would grow
        it ("growth only while used") and every estimate would decay: two workers
        together ran at about one worker's share of the downstream. They bind here,
        after the share, as terms of this worker's core."""
        runner = self.runner
        if runner is None:
            return 0
        now = self.clock()
        return min((term.value(now) for term in runner.core.concurrency_limit.terms
                    if term.name not in _LOCAL_TERMS), default=NO_LIMIT)

    def in_use(self) -> int:
        """Invocations running here, and batches received here that wait for a slot:
        their slots stay stored for this worker (see :meth:`Cluster.queue_policy`)."""
        if self.runner is None:
            return 0
        core = self.runner.core
        return int(core.in_flight + core.statistics().held)


_LOCAL_TERMS = frozenset({TERM_CLUSTER, TERM_ADAPTIVE, TERM_BREAKER, TERM_EVENTS})
"""Terms of a queue mapping's limit that are not the cluster's (:meth:`cluster_limit`)."""


def share_growth(limit: ConcurrencyLimit, lease: Lease) -> None:
    """Tell ``limit``'s adaptive term, if it has one, how many workers hold ``lease``
    (the mapping's) and this one's rank among them: its increases are shared with them
    (:meth:`AdaptiveLimit.share_with`)."""
    term = limit.get(TERM_ADAPTIVE)
    if isinstance(term, AdaptiveLimit):
        term.share_with(lease.holders, lease.rank)


@dataclass(eq=False)
class _StreamEntry:
    runner: ShardedRunner
    count: Lease
    shards: dict[int, Lease] = field(default_factory=dict)
    """Shard leases this worker holds or claims."""
    owned: set[int] = field(default_factory=set)
    reassigning: asyncio.Task[None] | None = None
    target: set[int] | None = None
    """The shards a reassignment under way hands the runner (``None``: none under way)."""


class Cluster:
    """Coordination of one worker with the others through a shared store.

    Parameters:
        store: the store the workers share (an open one, or opened by :meth:`start`), or
            a ``redis://`` URL: a Redis store of its own, opened by :meth:`start` and
            closed by :meth:`stop`.
        worker_id: this worker's id (:func:`default_worker_id` by default).
        lease_ttl: seconds a worker's leases outlive its last renewal: how long a dead
            worker's slots and shards stay taken.
        clock: monotonic seconds, for lease deadlines.
    """

    def __init__(
        self,
        store: Store | str,
        *,
        worker_id: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_ttl > 0:
            raise ConfigError("lease_ttl", lease_ttl, "seconds > 0", "cluster")
        self._owns_store = isinstance(store, str)
        if isinstance(store, str):
            from sluicegate.store.redis import RedisStore

            store = RedisStore(store)
        self.store: Store = store
        self.url = store.url
        self.worker_id = worker_id or default_worker_id()
        self.ttl = float(lease_ttl)
        self.interval = min(self.ttl / 3.0, MAX_SYNC_INTERVAL)
        self.clock = clock
        self.leases = LeaseClient(store, self.worker_id, ttl=self.ttl)
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
        self.live: LiveLimits | None = None
        """The runtime's live limits: each round reads the settings revision and hands
        it over (:meth:`LiveLimits.seen`), so a change made anywhere is applied here
        within a round."""
        self.started = time.time()
        self._pid_space = pid_space()

    # ------------------------------------------------------------------ building
    def new_pool(self, app: App) -> ClusterPool:
        """The runtime's pool: the App's functions registered, leased shares checked."""
        self.app = app
        pool = ClusterPool(app.account, self.share)
        for fn in app.functions.values():
            pool.register(fn.config)
        self.pool = pool
        return pool

    def wake(self) -> None:
        """Sync now rather than at the end of the interval."""
        self._wakeup.set()

    def set_maximum_concurrency(self, mapping: str, value: int | None) -> None:
        """A live ``maximum_concurrency`` for ``mapping``: the aws policy this worker
        leads with (or would) takes it as its cap; the lease's limit follows the core's
        terms at the next round."""
        for q in self._queues:
            if q.config.name == mapping and isinstance(q.inner, AwsScaling):
                q.inner.set_maximum_concurrency(q.clock(), value)

    def share(self, name: str) -> int:
        lease = self._pool_leases.get(name)
        return 0 if lease is None else lease.share()

    def queue_policy(self, config: MappingConfig, inner: ScalingPolicy,
                     runtime_clock: Callable[[], float]) -> ScalingPolicy:
        """The policy to give the mapping's core: ``inner``, or for the aws policy the
        shared scaling whose level the cluster's leader publishes (see
        :mod:`sluicegate.cluster.scaling`). The worker's share joins the core's limit
        when the runner is attached (:meth:`attach_queue`)."""
        lease = Lease(f"mapping:{config.name}", self.ttl, self.clock)
        policy: ScalingPolicy | SharedScaling = inner
        if isinstance(inner, AwsScaling):
            policy = SharedScaling(inner.limit(runtime_clock()))
        entry = _QueueEntry(None, config, lease, policy, inner, runtime_clock)
        if isinstance(policy, SharedScaling):
            entry.leader = Lease(f"leader:{config.name}", self.ttl, self.clock)
        self._queues.append(entry)
        return policy

    def _queue_share(self, entry: _QueueEntry) -> Callable[[], int]:
        """This worker's share of a queue mapping's lease: the ``cluster`` term."""
        lease = entry.lease
        function = entry.config.function

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
            # a throttle (a batch waits for a slot instead). Reserved concurrency 0 is
            # left to the pool: every start is a throttle, as in one process
            pool = self.pool
            if pool is not None and pool.reserved_concurrency(function) != 0:
                mine = min(mine, self.share(pool.lease_of(function)))
            return mine

        return share

    def attach_queue(self, runner: QueueRunner) -> None:
        """Bind the runner built around the policy :meth:`queue_policy` returned last for
        its mapping, and add this worker's share to its limit (the term ``cluster``)."""
        for entry in self._queues:
            if entry.config.name == runner.config.name:
                entry.runner = runner
                runner.core.concurrency_limit.add(Share(TERM_CLUSTER, self._queue_share(entry)))
                runner.wake.set()

    def attach_stream(self, runner: ShardedRunner) -> None:
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
            StoreUnavailable: the store cannot be reached.
            ConfigError: a live worker already uses this worker id (leases are held by
                id: two workers sharing one would share their slots and break the limits).
        """
        if self._owns_store:
            await self.store.open()
        info = self._info()
        other = await self.store.register_worker(self.worker_id, info, ttl=self.ttl,
                                                 exclusive=True)
        mine = ("host", "pid", "started")
        if other is not None and all(other.get(k) == info[k] for k in mine):
            other = None  # this worker's own entry, from a start retried after a failure
        if other is not None:
            self._refused = True
            raise ConfigError(
                "worker_id", self.worker_id,
                f"an id no live worker uses (the worker on {other.get('host', '?')} with pid "
                f"{other.get('pid', '?')} has it; a stopped worker's id is free again "
                f"{self.ttl:g} s after it stops)", "cluster",
            )
        # Two rounds: the pool's leases want what the mappings' leases held at the round
        # before (nothing, at the first), and the registry shows the round before's
        # shares; after the second, the mappings start with every share in place.
        await self._reap_gone_workers()
        await self.sync()
        await self.sync()

    async def _reap_gone_workers(self) -> None:
        """Release the leases of workers whose process is gone (killed with ``kill -9``,
        say) and whose pid this process can judge: same machine boot, same pid namespace
        (:func:`pid_space`). Their slots and shards then come back now instead of when
        their leases expire, so a worker restarted after a crash does not wait out the
        ttl. A pid that exists (even one the system gave to another process since) is
        left alone, as is every worker of another machine or container: those still
        wait for their leases to expire. Store errors are logged and left to the ttl."""
        space = self._pid_space
        if space is None:
            return
        try:
            gone = [
                info for info in await self.store.list_workers()
                if info.get("worker") != self.worker_id and info.get("pid_space") == space
                and isinstance(info.get("pid"), int) and not _process_exists(info["pid"])
            ]
            if not gone:
                return
            ids = {str(info["worker"]) for info in gone}
            for name in await self.store.lease_names():
                for holder in await self.store.lease_holders(name):
                    if holder.holder in ids:
                        await self.store.release_lease(name, holder.holder)
            for info in gone:
                await self.store.unregister_worker(str(info["worker"]))
                log.warning("cluster: worker %s (pid %s) exited without giving its leases "
                            "back; released them", info["worker"], info["pid"])
        except StoreError as exc:
            log.info("cluster: could not check for exited workers: %s", exc)

    async def run(self) -> None:
        """Sync every :attr:`interval` seconds until cancelled."""
        next_reap = self.clock() + REAP_INTERVAL
        while not self.closing:
            await wait_event(self._wakeup, self.interval)
            self._wakeup.clear()
            if self.closing:
                return
            try:
                if self.clock() >= next_reap:
                    next_reap = self.clock() + REAP_INTERVAL
                    await self._reap_gone_workers()
                await self.sync()
                if self._failing:
                    log.warning("cluster: store reachable again; leases renewed")
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
            await self._close_store()
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
            await self.leases.claim_many([LeaseClaim(lease.name, 0, 0, in_use)
                                          for lease, in_use in give])
            await self.store.unregister_worker(self.worker_id)
        except StoreError as exc:
            log.warning("cluster: releasing leases failed: %s; they expire within %gs",
                        exc, self.ttl)
        await self._close_store()

    async def _close_store(self) -> None:
        if self._owns_store:
            with contextlib.suppress(Exception):
                await self.store.close()

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
        """One round: scaling, mapping and pool leases and the heartbeat in one store
        round (:meth:`Store.coordinate`), then the shard leases of stream mappings. When
        those hand a runner new shards, the pool's leases are claimed again at once for
        them: else their lanes would start before the account's share grew, and a lane
        refused a slot backs off a second, as after a throttle."""
        await self._sync_round()
        reassigned = False
        for s in self._streams:
            pending = s.reassigning
            await self._sync_stream(s)
            reassigned = reassigned or (s.reassigning is not None
                                        and s.reassigning is not pending)
        if reassigned and self.pool is not None:
            claims, frozen = self._slot_claims()
            await self._claim_slots(CoordinationRound(self.worker_id, self.ttl, claims=claims),
                                    frozen, leaders=0)

    async def _sync_round(self) -> None:
        """The store round of a sync. When its answers change what the slot leases
        should claim (the leader published a new limit; a mapping's share moved, which
        is what its function wants from the pool), those are claimed again at once, so a
        change costs one more transaction instead of a sync interval's delay."""
        append: dict[str, list[str]] = {}
        take: dict[str, str] = {}
        write: dict[str, tuple[str, str]] = {}
        read: list[str] = []
        leaders: list[LeaseClaim] = []
        outboxes: list[tuple[SharedScaling, list[list[Any]]]] = []
        for q in self._queues:
            policy = q.policy
            if isinstance(policy, SharedScaling):
                assert q.leader is not None
                name = q.config.name
                outbox = policy.take_outbox()
                if outbox:
                    outboxes.append((policy, outbox))
                    append[scale_log(name)] = [json.dumps(e) for e in outbox]
                leaders.append(LeaseClaim(q.leader.name, 1, 1, 0, fair=False))
                take[scale_log(name)] = q.leader.name
                if q.publish is not None:
                    write[scale_state(name)] = (q.publish, q.leader.name)
                read.append(scale_state(name))
        live = self.live
        if live is not None:
            read.append(SETTINGS_REVISION)
        claims, frozen = self._slot_claims()
        round_ = CoordinationRound(self.worker_id, self.ttl, claims=[*leaders, *claims],
                                   append=append, take=take, write=write, read=read,
                                   heartbeat=self._info())
        try:
            reply = await self._claim_slots(round_, frozen, leaders=len(leaders))
        except BaseException:
            for policy, outbox in outboxes:
                policy.outbox[:0] = outbox  # keep them for the next round
            raise
        if live is not None:
            await live.seen(reply.values.get(SETTINGS_REVISION))
        woken: set[int] = set()
        for q in self._queues:
            if isinstance(q.policy, SharedScaling) and self._scaling_reply(
                    q, q.policy, reply.taken, reply.values):
                woken.add(id(q))
        for _ in range(2):
            again, frozen_again = self._slot_claims()
            if again == claims:
                break
            claims = again
            await self._claim_slots(CoordinationRound(self.worker_id, self.ttl, claims=claims),
                                    frozen_again, leaders=0)
        for q in self._queues:
            if q.runner is not None:
                share_growth(q.runner.core.concurrency_limit, q.lease)
                if id(q) in woken:
                    q.runner.wake.set()

    def _slot_claims(self) -> tuple[list[LeaseClaim], list[tuple[Lease, int]]]:
        """The claims of the leases of concurrency slots (mappings, functions, account),
        each with its lease and the ``in_use`` it reports."""
        claims: list[LeaseClaim] = []
        frozen: list[tuple[Lease, int]] = []
        for q in self._queues:
            limit = q.cluster_limit()
            in_use = q.in_use()
            claims.append(LeaseClaim(q.lease.name, limit, limit, in_use))
            frozen.append((q.lease, in_use))
        pool, app = self.pool, self.app
        if pool is None or app is None:
            return claims, frozen
        wants = self._function_wants()
        unreserved_want = 0
        for fn, want in sorted(wants.items()):
            reserved = pool.reserved_concurrency(fn)
            if reserved is None:
                unreserved_want += want
                continue
            name = function_lease(fn)
            lease = self._pool_leases.setdefault(name, Lease(name, self.ttl, self.clock))
            in_use = pool.in_use(fn)
            claims.append(LeaseClaim(name, min(want, reserved), reserved, in_use))
            frozen.append((lease, in_use))
        lease = self._pool_leases.setdefault(ACCOUNT_LEASE,
                                             Lease(ACCOUNT_LEASE, self.ttl, self.clock))
        capacity = pool.unreserved_capacity
        in_use = pool.unreserved_in_use
        claims.append(LeaseClaim(ACCOUNT_LEASE, min(unreserved_want, capacity), capacity,
                                 in_use))
        frozen.append((lease, in_use))
        return claims, frozen

    async def _claim_slots(self, round_: CoordinationRound, frozen: list[tuple[Lease, int]],
                           *, leaders: int) -> CoordinationReply:
        """Run ``round_`` (its first ``leaders`` claims are leader leases, the others
        those of ``frozen``), record the grants, wake the runners whose share changed.

        While the round is on its way nothing more starts under a slot lease than the
        ``in_use`` it reports (:attr:`Lease.frozen`); if no answer comes, no more than the
        store may have kept (:meth:`Lease.unanswered`). A runner that held a batch back
        meanwhile must be woken when the answer gives the slots back, even if the grant
        itself did not change."""
        queue_leaders = [q.leader for q in self._queues if q.leader is not None]
        leases = [*queue_leaders[:leaders], *(lease for lease, _ in frozen)]
        before = [lease.share() for lease, _ in frozen]
        seen = [min(b, in_use) for b, (_, in_use) in zip(before, frozen, strict=True)]
        for lease, in_use in frozen:
            lease.frozen = in_use
        sent = self.clock()
        try:
            reply = await self.store.coordinate(round_)
            for lease, grant in zip(leases, reply.grants, strict=True):
                lease.update(grant, sent)
        except BaseException:
            for lease, in_use in frozen:
                lease.unanswered(in_use)
            raise
        finally:
            for lease, _ in frozen:
                lease.frozen = None
        changed = {id(lease) for (lease, _), b, s in zip(frozen, before, seen, strict=True)
                   if lease.share() != b or lease.share() > s}
        pool_changed = any(id(lease) in changed for lease in self._pool_leases.values())
        for q in self._queues:
            if (id(q.lease) in changed or pool_changed) and q.runner is not None:
                q.runner.wake.set()
        if pool_changed:
            for s in self._streams:
                s.runner.wake.set()
        return reply

    def _scaling_reply(self, q: _QueueEntry, policy: SharedScaling,
                       taken: dict[str, list[str]], values: dict[str, str | None]) -> bool:
        """Lead (this worker took the observations) or follow. Whether the published
        limit changed."""
        name = q.config.name
        before = policy.published
        raw = values.get(scale_state(name))
        stored = json.loads(raw) if raw else None
        events = taken.get(scale_log(name))
        if events is not None:
            if q.scale_leader is None:
                inner = q.inner
                assert isinstance(inner, AwsScaling)
                q.scale_leader = ScaleLeader(inner, stored["state"] if stored else None)
                log.info("cluster: %s leads the scaling of %s", self.worker_id, name)
            q.scale_leader.apply(decode(e) for e in events)
            limit, state = q.scale_leader.publish(q.clock())
            q.publish = json.dumps({"limit": limit, "state": state, "leader": self.worker_id})
            policy.published = limit
        else:
            q.scale_leader = None  # a leader that lost its lease starts over from the store
            q.publish = None
            if stored is not None:
                policy.published = int(stored["limit"])
        return policy.published != before

    async def _claim(self, lease: Lease, *, want: int, limit: int, in_use: int,
                     fair: bool = True) -> bool:
        """Claim and record; whether the share changed from what the runners last saw."""
        before = lease.share()
        sent = self.clock()
        grant = await self.leases.claim(lease.name, want=want, limit=limit, in_use=in_use,
                                        fair=fair)
        lease.update(grant, sent)
        return lease.share() != before

    def _info(self) -> dict[str, Any]:
        """What the registry shows of this worker (``sluicegate workers``): the leases
        held as of the last round."""
        return {
            "worker": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_space": self._pid_space,
            "started": self.started,
            "seen": time.time(),
            "lease_ttl": self.ttl,
            "leases": self.held(),
            "in_flight": self.in_flight(),
            **({} if self.live is None else self.live.info()),
        }

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

    def _function_wants(self) -> dict[str, int]:
        """Function -> slots this worker's mappings of it could run now."""
        wants: dict[str, int] = {}
        for q in self._queues:
            fn = q.config.function
            wants[fn] = wants.get(fn, 0) + max(q.lease.held, q.in_use())
        for s in self._streams:
            fn = s.runner.config.function
            # during a reassignment both sets may run: the one handed over and the new one
            shards = max(len(s.owned), len(s.target)) if s.target is not None else len(s.owned)
            wants[fn] = wants.get(fn, 0) + shards * s.runner.config.parallelization_factor
        return wants

    # ------------------------------------------------------------------ shards
    async def _sync_stream(self, s: _StreamEntry) -> None:
        runner = s.runner
        count = runner.shard_count
        await self._claim(s.count, want=count, limit=count, in_use=len(s.owned))
        share_growth(runner.core.concurrency_limit, s.count)
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
                s.target = None
                self._wakeup.set()

        s.target = set(owned)
        s.reassigning = asyncio.get_running_loop().create_task(reassign())


async def list_workers(store: Store) -> list[dict[str, Any]]:
    """Every live worker's registry entry in ``store`` (expired ones are dropped)."""
    return await store.list_workers()
