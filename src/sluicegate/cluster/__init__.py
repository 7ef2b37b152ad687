"""Distributed execution: several ``sluicegate run`` processes serving the same mappings
through the store they share (SQLite or Redis), with every configured limit held
cluster-wide, with no flag.

Layout:

- :mod:`~sluicegate.cluster.leases`: a worker's view of the counted leases it holds (the
  leases themselves are part of the store contract: :mod:`sluicegate.store.coordination`);
- :mod:`~sluicegate.cluster.pool`: the concurrency pool bounded by leased shares;
- :mod:`~sluicegate.cluster.scaling`: the aws policy's state shared through a leader
  (pure);
- :mod:`~sluicegate.cluster.coordinator`: one worker's sync loop: heartbeat, leases,
  shared scaling, shard assignment; and the worker registry that ``sluicegate workers``
  reads.

docs/cluster.md describes the design and its guarantees.
"""

from sluicegate.cluster.coordinator import Cluster, default_worker_id, list_workers
from sluicegate.cluster.leases import DEFAULT_LEASE_TTL, Grant, Lease, LeaseClient

__all__ = [
    "DEFAULT_LEASE_TTL",
    "Cluster",
    "Grant",
    "Lease",
    "LeaseClient",
    "default_worker_id",
    "list_workers",
]
