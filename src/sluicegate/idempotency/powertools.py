"""A persistence layer for aws-lambda-powertools' own idempotency, on a sluicegate store.

Code written for AWS keeps its Powertools decorators and gets its records stored where
the App runs (memory, SQLite, Redis), shared by all its processes::

    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent
    from sluicegate.idempotency.powertools import SluicegatePersistenceLayer

    persistence = SluicegatePersistenceLayer()  # the running App's store

    @idempotent(persistence_store=persistence,
                config=IdempotencyConfig(event_key_jmespath="order_id"))
    def handler(event, context): ...

Powertools calls the four methods below; their semantics follow Powertools' own layers:

- ``_put_record``: create the record (status ``INPROGRESS``) unless a live one holds the
  key: a record counts as gone once past its expiry, or while ``INPROGRESS`` past its
  in-progress expiry (the invocation died: Powertools takes the key over). Otherwise
  check the payload against it (``IdempotencyValidationError``) and raise
  ``IdempotencyItemAlreadyExistsError`` carrying it, so Powertools need not read it
  again;
- ``_get_record``: the live record, or ``IdempotencyItemNotFoundError``;
- ``_update_record``: write the record whatever holds the key (Powertools writes the
  ``COMPLETED`` response this way);
- ``_delete_record``: delete it (the handler raised).

These are sluicegate's table items (:mod:`sluicegate.store.items`): the create is one
atomic step on every backend, across processes. The record's data holds Powertools'
response and payload hash as JSON. Powertools computes expiries from the wall clock
(``datetime.now()``); they go to the store as durations, so a store on an injected clock
(a test's) keeps them relative to its own time, and come back as wall-clock timestamps.

Powertools' methods are synchronous: a sync handler runs them on its worker thread,
which hands each store operation to the store's event loop and waits
(:mod:`sluicegate.idempotency.stores`). Powertools' decorators do not take async
handlers.

Importing this module does not need Powertools; building the layer does (with boto3,
which Powertools' idempotency imports), and without it fails with one line saying what to
install.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from sluicegate.errors import InputError
from sluicegate.idempotency.config import DEFAULT_TABLE
from sluicegate.idempotency.stores import Records, resolve_store

if TYPE_CHECKING:
    from sluicegate.store.base import Store
    from sluicegate.store.items import TableItem

__all__ = ["SluicegatePersistenceLayer"]

try:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # type: ignore[import-not-found, unused-ignore]
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.base import (  # type: ignore[import-not-found, unused-ignore]
        BasePersistenceLayer,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (  # type: ignore[import-not-found, unused-ignore]
        STATUS_CONSTANTS,
        DataRecord,
    )
except ImportError as exc:  # Powertools, or the AWS SDK its idempotency imports
    _MISSING = (exc.name or "aws_lambda_powertools").split(".")[0]
    BasePersistenceLayer = object  # type: ignore[assignment, misc, unused-ignore]
else:
    _MISSING = ""

MIN_TTL = 0.001
"""Shortest duration sent to the store (a record Powertools dates in the past)."""


class SluicegatePersistenceLayer(BasePersistenceLayer):  # type: ignore[misc, unused-ignore]
    """Powertools' ``BasePersistenceLayer`` storing records in a sluicegate store.

    Parameters:
        store: a store URL or a :class:`~sluicegate.store.base.Store`; ``None``: the
            running App's store (as for :func:`sluicegate.idempotency.idempotent`).
        table: the store table of the records.

    Raises:
        InputError: aws-lambda-powertools is not installed.
    """

    def __init__(self, store: Store | str | None = None, *,
                 table: str = DEFAULT_TABLE) -> None:
        if _MISSING:
            raise InputError(f"SluicegatePersistenceLayer needs aws-lambda-powertools' "
                             f"idempotency (module {_MISSING} is missing): pip install "
                             "'aws-lambda-powertools[aws-sdk]'")
        from sluicegate.store.items import check_item_key

        check_item_key(table, "-")
        super().__init__()  # type: ignore[no-untyped-call, unused-ignore]
        self._store_arg = store
        self.table = table

    def _records(self) -> Records:
        return resolve_store(self._store_arg)

    # ------------------------------------------------------------------ Powertools' four
    def _get_record(self, idempotency_key: str) -> Any:
        records = self._records()
        item = records.call(lambda s: s.get_item(self.table, idempotency_key))
        if item is None:
            raise IdempotencyItemNotFoundError
        return self._data_record(item, records.store)

    def _put_record(self, data_record: Any) -> None:
        records = self._records()
        status, data, ttl, in_progress = self._fields(data_record)
        write = records.call(lambda s: s.create_item(
            self.table, data_record.idempotency_key, status=status, data=data, ttl=ttl,
            in_progress_ttl=in_progress))
        if not write.written:
            assert write.item is not None
            old = self._data_record(write.item, records.store)
            # as Powertools' own layers do when they hand the old record back
            self._validate_payload(data_payload=data_record, stored_data_record=old)
            self._save_to_cache(data_record=old)  # type: ignore[no-untyped-call, unused-ignore]
            raise IdempotencyItemAlreadyExistsError(old_data_record=old)

    def _update_record(self, data_record: Any) -> None:
        status, data, ttl, in_progress = self._fields(data_record)
        self._records().call(lambda s: s.put_item(
            self.table, data_record.idempotency_key, status=status, data=data, ttl=ttl,
            in_progress_ttl=in_progress))

    def _delete_record(self, data_record: Any) -> None:
        self._records().call(lambda s: s.delete_item(self.table, data_record.idempotency_key))

    # ------------------------------------------------------------------ conversions
    @staticmethod
    def _fields(record: Any) -> tuple[str, str, float, float | None]:
        """Status, data, ttl and in-progress ttl of a ``DataRecord`` for the store."""
        now = time.time()
        expiry = record.expiry_timestamp
        ttl = 365 * 86400.0 if expiry is None else max(float(expiry) - now, MIN_TTL)
        in_progress = None
        millis = record.in_progress_expiry_timestamp
        if millis is not None and record._status == STATUS_CONSTANTS["INPROGRESS"]:
            in_progress = max(float(millis) / 1000 - now, MIN_TTL)
        data = json.dumps({"response": record.response_data or "",
                           "payload_hash": record.payload_hash or ""})
        return record._status or STATUS_CONSTANTS["INPROGRESS"], data, ttl, in_progress

    @staticmethod
    def _data_record(item: TableItem, store: Store) -> Any:
        """A ``DataRecord`` of a store item, its times back on the wall clock."""
        shift = time.time() - store.clock()
        fields = json.loads(item.data)
        in_progress = item.in_progress_expires
        return DataRecord(
            idempotency_key=item.key,
            status=item.status,
            expiry_timestamp=round(item.expires + shift),
            in_progress_expiry_timestamp=None if in_progress is None else round(
                (in_progress + shift) * 1000),
            response_data=fields.get("response", ""),
            payload_hash=fields.get("payload_hash", ""),
        )
