"""What an idempotent function is configured with, and how its keys are made.

A key is ``NAME#HASH``: ``NAME`` is the function's ``module.qualname`` (or the
decorator's ``key_prefix``) and ``HASH`` the hex digest (MD5 by default) of the key data
as canonical JSON (sorted keys, no spaces), so the same data gives the same key in every
process, on every machine, as long as the code is loaded under the same module name.
The key data is the whole payload, or what ``event_key_jmespath`` selects from it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import uuid
from contextvars import ContextVar
from pathlib import PurePath
from typing import Any, Literal

from sluicegate.errors import ConfigError, IdempotencyKeyError

__all__ = [
    "DEFAULT_EXPIRES_AFTER",
    "DEFAULT_TABLE",
    "DEFAULT_WAIT_TIMEOUT",
    "IdempotencyConfig",
    "canonical_json",
    "prepare_payload",
]

DEFAULT_EXPIRES_AFTER = 3600.0
"""Seconds a completed record is kept (replayed to duplicates): one hour."""

DEFAULT_TABLE = "idempotency"
"""The store table idempotency records go to."""

DEFAULT_WAIT_TIMEOUT = 60.0
"""Seconds a duplicate waits for the first call (``on_in_progress="wait"``) when neither
``wait_timeout`` nor an invocation's remaining time bounds it."""

_context: ContextVar[Any] = ContextVar("sluicegate_idempotency_context", default=None)
"""The Lambda-style context registered for the current invocation (per task, per thread
of a sync handler)."""


class IdempotencyConfig:
    """How :func:`~sluicegate.idempotency.idempotent` and
    :func:`~sluicegate.idempotency.idempotent_function` recognise and treat duplicates.

    Parameters:
        event_key_jmespath: a JMESPath expression selecting the key data from the payload
            (``"messageId"``, ``"[order_id, customer]"``,
            ``"powertools_json(body).order_id"``); empty: the whole payload.
        payload_validation_jmespath: a JMESPath expression selecting what must not change
            under one key: a call whose selection differs from the stored record's raises
            :class:`~sluicegate.errors.IdempotencyValidationError`; empty: no check.
        raise_on_no_idempotency_key: when the key data is missing (``None``, empty, or all
            ``None`` values), raise :class:`~sluicegate.errors.IdempotencyKeyError`;
            otherwise the call runs without idempotency and a WARNING is logged.
        expires_after_seconds: how long a completed call's record (and so its replay)
            lasts, in seconds; one hour by default.
        on_in_progress: what a call does when another call with its key is running:
            ``"raise"``
            :class:`~sluicegate.errors.IdempotencyAlreadyInProgressError` at once, or
            ``"wait"`` for that call to end: its response is replayed; if it failed (its
            record is cleared) or died (its in-progress time lapsed), this call runs.
        wait_timeout: the longest wait (``"wait"``), in seconds; ``None``: the
            invocation's remaining time when a Lambda-style context is known, else
            :data:`DEFAULT_WAIT_TIMEOUT`. A wait that runs out raises
            :class:`~sluicegate.errors.IdempotencyAlreadyInProgressError`.
        in_progress_timeout: without a Lambda-style context (nothing tells the remaining
            time), seconds after which a running call's claim lapses, so that the key can
            run again if the call died; ``None``: the claim lasts until the record expires
            (``expires_after_seconds``), as in aws-lambda-powertools.
        table: the store table of the records.
        hash_function: a :mod:`hashlib` algorithm for keys and payload hashes.
        jmespath_options: passed to ``jmespath.Options`` (for instance
            ``{"custom_functions": ...}``); by default sluicegate's functions
            ``powertools_json``, ``powertools_base64`` and ``powertools_base64_gzip``
            (the names aws-lambda-powertools uses) are available.
        lambda_context: the context whose remaining time bounds in-progress records; see
            :meth:`register_lambda_context`.

    Raises:
        ConfigError: a value out of range, or an expression that does not compile.
    """

    def __init__(
        self,
        *,
        event_key_jmespath: str = "",
        payload_validation_jmespath: str = "",
        raise_on_no_idempotency_key: bool = False,
        expires_after_seconds: float = DEFAULT_EXPIRES_AFTER,
        on_in_progress: Literal["raise", "wait"] = "raise",
        wait_timeout: float | None = None,
        in_progress_timeout: float | None = None,
        table: str = DEFAULT_TABLE,
        hash_function: str = "md5",
        jmespath_options: dict[str, Any] | None = None,
        lambda_context: Any = None,
    ) -> None:
        import jmespath
        from jmespath.exceptions import JMESPathError

        where = "IdempotencyConfig"
        compiled = []
        for name, text in (("event_key_jmespath", event_key_jmespath),
                           ("payload_validation_jmespath", payload_validation_jmespath)):
            if not isinstance(text, str):
                raise ConfigError(name, text, "a JMESPath expression (str)", where)
            try:
                compiled.append(jmespath.compile(text) if text else None)
            except JMESPathError as exc:
                detail = " ".join(str(exc).split())
                raise ConfigError(name, text, f"a JMESPath expression ({detail})",
                                  where) from None
        self._key_expression, self._validation_expression = compiled
        self.event_key_jmespath = event_key_jmespath
        self.payload_validation_jmespath = payload_validation_jmespath
        if not isinstance(raise_on_no_idempotency_key, bool):
            raise ConfigError("raise_on_no_idempotency_key", raise_on_no_idempotency_key,
                              "a bool", where)
        self.raise_on_no_idempotency_key = raise_on_no_idempotency_key
        self.expires_after_seconds = _seconds("expires_after_seconds", expires_after_seconds,
                                              where)
        if on_in_progress not in ("raise", "wait"):
            raise ConfigError("on_in_progress", on_in_progress, '"raise" or "wait"', where)
        self.on_in_progress: Literal["raise", "wait"] = on_in_progress
        self.wait_timeout = None if wait_timeout is None else _seconds(
            "wait_timeout", wait_timeout, where, zero=True)
        self.in_progress_timeout = None if in_progress_timeout is None else _seconds(
            "in_progress_timeout", in_progress_timeout, where)
        from sluicegate.store.items import MAX_TABLE_NAME

        if not isinstance(table, str) or not table or len(table) > MAX_TABLE_NAME or (
            "{" in table or "}" in table
        ):
            raise ConfigError("table", table, f"1-{MAX_TABLE_NAME} characters without braces",
                              where)
        self.table = table
        if not isinstance(hash_function, str) or hash_function not in (
            hashlib.algorithms_available
        ):
            raise ConfigError("hash_function", hash_function, "a hashlib algorithm (md5, "
                              "sha256, ...)", where)
        self.hash_function = hash_function
        options = dict(jmespath_options or {})
        options.setdefault("custom_functions", _functions())
        self._options = jmespath.Options(**options)
        self._default_context = lambda_context

    def __repr__(self) -> str:
        return (f"IdempotencyConfig(event_key_jmespath={self.event_key_jmespath!r}, "
                f"on_in_progress={self.on_in_progress!r}, "
                f"expires_after_seconds={self.expires_after_seconds!r})")

    # ------------------------------------------------------------------ context
    def register_lambda_context(self, context: Any) -> None:
        """Remember ``context`` for the idempotent calls of the current invocation: their
        in-progress records lapse when the invocation would time out
        (``context.get_remaining_time_in_millis()``). Call it at the top of a handler that
        calls :func:`~sluicegate.idempotency.idempotent_function` functions;
        :func:`~sluicegate.idempotency.idempotent` handlers need not (they register their
        own context). The registration belongs to the calling task or thread, so
        concurrent invocations sharing this config do not see each other's context."""
        _context.set(context)

    @property
    def lambda_context(self) -> Any:
        """The context registered in this task or thread, else the one given to the
        constructor (``None``: none)."""
        registered = _context.get()
        return self._default_context if registered is None else registered

    # ------------------------------------------------------------------ keys
    def key_data(self, payload: Any) -> Any:
        """What the key is made from: ``payload`` (prepared, see :func:`prepare_payload`)
        or what ``event_key_jmespath`` selects from it."""
        if self._key_expression is None:
            return payload
        return self._key_expression.search(payload, options=self._options)

    def validation_hash(self, payload: Any) -> str:
        """The hash of what ``payload_validation_jmespath`` selects ("" without one)."""
        if self._validation_expression is None:
            return ""
        return self.digest(self._validation_expression.search(payload, options=self._options))

    def digest(self, data: Any) -> str:
        """The hex digest of ``data`` as canonical JSON.

        Raises:
            IdempotencyKeyError: data that has no JSON form.
        """
        try:
            text = canonical_json(data)
        except (TypeError, ValueError) as exc:
            raise IdempotencyKeyError(f"cannot make an idempotency key of {type(data).__name__}"
                                      f" data: {exc}") from None
        return hashlib.new(self.hash_function, text.encode("utf-8")).hexdigest()


def missing(data: Any) -> bool:
    """Whether key data counts as absent: ``None``, an empty string or container, or a
    container of ``None`` values only (numbers and booleans, 0 and ``False`` included,
    are keys)."""
    if isinstance(data, bool | int | float):
        return False
    if isinstance(data, dict):
        return all(v is None for v in data.values())
    if isinstance(data, list | tuple):
        return all(v is None for v in data)
    return not data


def prepare_payload(payload: Any) -> Any:
    """A payload as plain data: a dataclass as a dict, a pydantic model dumped, an event
    wrapper's ``raw_event``; anything else as it is."""
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        return dataclasses.asdict(payload)
    dump = getattr(payload, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return getattr(payload, "raw_event", payload)


def canonical_json(data: Any) -> str:
    """``data`` as JSON with sorted keys and no spaces; decimals, dates and times, UUIDs,
    paths, enums, sets (sorted), bytes (base64) and dataclasses are encoded too.

    Raises:
        TypeError: a value of another type.
        ValueError: a NaN or infinity.
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_encode,
                      allow_nan=False, ensure_ascii=False)


def _encode(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical_json)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _seconds(name: str, value: Any, where: str, *, zero: bool = False) -> float:
    low = 0 if zero else 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
        value
    ) or value < low or (not zero and value == 0):
        allowed = "finite seconds >= 0" if zero else "finite seconds > 0"
        raise ConfigError(name, value, allowed, where)
    return float(value)


_FUNCTIONS: Any = None


def _functions() -> Any:
    """JMESPath functions for keys in events: ``powertools_json(text)`` parses JSON
    (an SQS body), ``powertools_base64(text)`` decodes base64 to text (a Kinesis record's
    data), ``powertools_base64_gzip(text)`` decodes base64 and gunzips."""
    global _FUNCTIONS
    if _FUNCTIONS is None:
        import gzip

        from jmespath import functions

        class Functions(functions.Functions):  # type: ignore[misc]
            @functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
            def _func_powertools_json(self, value: str) -> Any:
                return json.loads(value)

            @functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
            def _func_powertools_base64(self, value: str) -> str:
                return base64.b64decode(value).decode("utf-8")

            @functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
            def _func_powertools_base64_gzip(self, value: str) -> str:
                return gzip.decompress(base64.b64decode(value)).decode("utf-8")

        _FUNCTIONS = Functions()
    return _FUNCTIONS
