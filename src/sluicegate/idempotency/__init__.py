"""Idempotency for handlers and functions: a duplicate delivery runs once and replays.

Every source in sluicegate delivers at least once (a visibility timeout that runs out, a
retried batch, a producer that sends twice), so a handler whose effects must happen once
keeps a record per event: the first call of a key runs and stores its response, a later
call with the same key gets that response back without running, and a call while the
first still runs is refused or waits. The records live in the store the App runs on
(memory, SQLite or Redis), shared by every process of the App.

- :func:`idempotent` wraps a handler ``(event, context)``; the key comes from the event.
- :func:`idempotent_function` wraps any function; the key comes from one argument, named
  by ``data_keyword_argument`` (one record of a batch is the common case).
- :class:`IdempotencyConfig` says how: the key expression (JMESPath), payload
  validation, expiry, what a concurrent duplicate does (``on_in_progress``).
- :class:`~sluicegate.idempotency.powertools.SluicegatePersistenceLayer` stores
  aws-lambda-powertools' own ``@idempotent`` records in a sluicegate store.

Both decorators work on sync and async functions. The rules of a call (claim, run,
record, replay, wait) are in :mod:`sluicegate.idempotency.core`; where the store comes
from in :mod:`sluicegate.idempotency.stores`; keys in
:mod:`sluicegate.idempotency.config`. docs/idempotency.md has examples.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sluicegate.errors import (
    ConfigError,
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyResponseError,
    IdempotencyValidationError,
)
from sluicegate.idempotency.config import (
    DEFAULT_EXPIRES_AFTER,
    DEFAULT_TABLE,
    IdempotencyConfig,
    _context,
    prepare_payload,
)
from sluicegate.idempotency.core import COMPLETED, INPROGRESS, Call, arun, run
from sluicegate.idempotency.stores import close_stores, resolve_store
from sluicegate.runtime.current import bind_store

if TYPE_CHECKING:
    from sluicegate.idempotency.powertools import SluicegatePersistenceLayer
    from sluicegate.store.base import Store

__all__ = [
    "COMPLETED",
    "DEFAULT_EXPIRES_AFTER",
    "DEFAULT_TABLE",
    "INPROGRESS",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyConfig",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyResponseError",
    "IdempotencyValidationError",
    "SluicegatePersistenceLayer",
    "bind_store",
    "close_stores",
    "idempotent",
    "idempotent_function",
]

F = TypeVar("F", bound=Callable[..., Any])


def __getattr__(name: str) -> Any:
    if name == "SluicegatePersistenceLayer":
        from sluicegate.idempotency.powertools import SluicegatePersistenceLayer

        return SluicegatePersistenceLayer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _name(function: Callable[..., Any], key_prefix: str | None) -> str:
    if key_prefix is not None:
        if not isinstance(key_prefix, str) or not key_prefix or "#" in key_prefix:
            raise ConfigError("key_prefix", key_prefix, "a non-empty str without '#'",
                              "idempotency")
        return key_prefix
    module = function.__module__
    if module == "__mp_main__":  # an execution environment's copy of a script's __main__
        module = "__main__"
    return f"{module}.{function.__qualname__}"


def _check_store(store: object) -> None:
    from sluicegate.store.base import Store

    if store is not None and not isinstance(store, str | Store):
        raise ConfigError("store", store, "a store URL or a Store object", "idempotency")


@overload
def idempotent(handler: F, /) -> F: ...


@overload
def idempotent(
    *, config: IdempotencyConfig | None = None, store: Store | str | None = None,
    key_prefix: str | None = None,
) -> Callable[[F], F]: ...


def idempotent(
    handler: F | None = None, /, *, config: IdempotencyConfig | None = None,
    store: Store | str | None = None, key_prefix: str | None = None,
) -> F | Callable[[F], F]:
    """Make a handler ``(event, context)`` idempotent: the key comes from ``event``.

    Use it bare (``@idempotent``) or with arguments. The handler's in-progress record
    lapses when the invocation would time out (``context.get_remaining_time_in_millis()``),
    so an event whose invocation died runs again on its next delivery; idempotent
    functions the handler calls use the same context.

    Parameters:
        config: an :class:`IdempotencyConfig` (the default one: the whole event is the
            key, duplicates in progress raise).
        store: where the records go: a store URL or a
            :class:`~sluicegate.store.base.Store`; ``None``: the running App's store (see
            :mod:`sluicegate.idempotency.stores`).
        key_prefix: the keys' prefix instead of the handler's ``module.qualname``.

    Raises (on calls):
        IdempotencyAlreadyInProgressError, IdempotencyValidationError,
        IdempotencyKeyError, IdempotencyResponseError: see :class:`IdempotencyConfig`.
        StoreError: the store failed.
    """
    def decorate(function: F) -> F:
        cfg = config or IdempotencyConfig()
        _check_store(store)
        name = _name(function, key_prefix)

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def async_handler(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
                token = _context.set(context)
                try:
                    call = Call(name, prepare_payload(event), cfg, context)
                    return await arun(call, lambda: resolve_store(store, context),
                                      lambda: function(event, context, *args, **kwargs))
                finally:
                    _context.reset(token)

            return async_handler  # type: ignore[return-value]

        @functools.wraps(function)
        def sync_handler(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            token = _context.set(context)
            try:
                call = Call(name, prepare_payload(event), cfg, context)
                return run(call, lambda: resolve_store(store, context),
                           lambda: function(event, context, *args, **kwargs))
            finally:
                _context.reset(token)

        return sync_handler  # type: ignore[return-value]

    if handler is not None:
        return decorate(handler)
    return decorate


def idempotent_function(
    function: F | None = None, /, *, data_keyword_argument: str,
    config: IdempotencyConfig | None = None, store: Store | str | None = None,
    key_prefix: str | None = None,
) -> Any:
    """Make any function idempotent: the key comes from its argument named
    ``data_keyword_argument`` (passed by keyword or by position).

    The in-progress record lapses with the invocation whose context the calling handler
    registered (``config.register_lambda_context(context)``, or an :func:`idempotent`
    handler around it), else after ``config.in_progress_timeout``.

    Parameters:
        data_keyword_argument: the parameter holding the payload (a dict, a dataclass, a
            pydantic model, or any JSON-able value).
        config, store, key_prefix: as for :func:`idempotent`.

    Raises (on decorating):
        ConfigError: the function has no parameter of that name.
    """
    def decorate(fn: F) -> F:
        cfg = config or IdempotencyConfig()
        _check_store(store)
        name = _name(fn, key_prefix)
        signature = inspect.signature(fn)
        params = signature.parameters
        if data_keyword_argument not in params and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        ):
            raise ConfigError("data_keyword_argument", data_keyword_argument,
                              f"a parameter of {name} ({', '.join(params) or 'none'})",
                              "idempotent_function")

        def payload(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if data_keyword_argument in kwargs:
                return prepare_payload(kwargs[data_keyword_argument])
            try:
                bound = signature.bind_partial(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{name}(): {exc}") from None
            if data_keyword_argument not in bound.arguments:
                raise TypeError(f"{name}() missing the argument {data_keyword_argument!r} "
                                "that its idempotency key comes from")
            return prepare_payload(bound.arguments[data_keyword_argument])

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_function(*args: Any, **kwargs: Any) -> Any:
                call = Call(name, payload(args, kwargs), cfg)
                return await arun(call, lambda: resolve_store(store, cfg.lambda_context),
                                  lambda: fn(*args, **kwargs))

            return async_function  # type: ignore[return-value]

        @functools.wraps(fn)
        def sync_function(*args: Any, **kwargs: Any) -> Any:
            call = Call(name, payload(args, kwargs), cfg)
            return run(call, lambda: resolve_store(store, cfg.lambda_context),
                       lambda: fn(*args, **kwargs))

        return sync_function  # type: ignore[return-value]

    if not isinstance(data_keyword_argument, str) or not data_keyword_argument:
        raise ConfigError("data_keyword_argument", data_keyword_argument, "a parameter name",
                          "idempotent_function")
    if function is not None:
        return decorate(function)
    return decorate
