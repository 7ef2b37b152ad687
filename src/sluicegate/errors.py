"""Every exception sluicegate raises on purpose.

The tree::

    SluicegateError
    ├── ConfigError            a parameter out of its allowed range, or inconsistent settings
    ├── AppLoadError           an APP argument that cannot be imported or holds no App
    ├── InputError             malformed user input (a bad JSON line, a bad URL, ...)
    ├── SemaphoreTimeout       a handler's semaphore not taken within its timeout
    ├── IdempotencyError       sluicegate.idempotency refused or could not finish a call
    │   ├── IdempotencyAlreadyInProgressError  the same key is being processed elsewhere
    │   ├── IdempotencyValidationError  the same key came with a different payload
    │   ├── IdempotencyKeyError    no key in the payload (raise_on_no_idempotency_key)
    │   └── IdempotencyResponseError  a result that cannot be stored as JSON
    └── StoreError             anything a store refuses or cannot do
        ├── StoreUnavailable   the store cannot be opened or reached
        ├── StoreNotOpen       a store used before open() or after close()
        ├── QueueNotFound      the named queue does not exist
        ├── QueueExists        a queue with other attributes already has that name
        ├── MessageTooLarge    a body above the queue's maximum message size
        ├── InvalidReceiptHandle  a receipt handle that names no message in flight
        └── BatchRequestError  a batch call with no, too many or duplicate entries

The CLI turns every ``SluicegateError`` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppLoadError",
    "BatchRequestError",
    "ConfigError",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyResponseError",
    "IdempotencyValidationError",
    "InputError",
    "InvalidReceiptHandle",
    "MessageTooLarge",
    "QueueExists",
    "QueueNotFound",
    "SemaphoreTimeout",
    "SluicegateError",
    "StoreError",
    "StoreNotOpen",
    "StoreUnavailable",
    "StreamNotFound",
    "Throttled",
]


class SluicegateError(Exception):
    """Root of every error sluicegate raises on purpose."""


class ConfigError(SluicegateError, ValueError):
    """A configuration value outside its allowed range, or settings that contradict each other.

    Parameters:
        parameter: the name of the offending parameter, as the user spelled it.
        value: the value that was given.
        allowed: a human-readable description of what is allowed ("1-10,000", "a bool").
        context: what the parameter belongs to ("mapping orders->process").
    """

    def __init__(self, parameter: str, value: Any, allowed: str, context: str = "") -> None:
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        self.context = context
        where = f"{context}: " if context else ""
        super().__init__(f"{where}{parameter}={value!r} is invalid: allowed {allowed}")


class AppLoadError(SluicegateError):
    """The APP given to the CLI could not be imported or is not a ``sluicegate.App``."""


class InputError(SluicegateError, ValueError):
    """Malformed user input: a bad file line, a bad store URL, a bad duration."""


class StoreError(SluicegateError):
    """A store refused an operation or failed to perform it."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached (bad path, unreachable server, locked file)."""


class StoreNotOpen(StoreError):
    """A store used before :meth:`~sluicegate.store.base.Store.open` or after
    :meth:`~sluicegate.store.base.Store.close` (every backend raises it, the memory one
    too); its message says "not open" and names the store."""


class QueueNotFound(StoreError, KeyError):
    """No queue of that name exists in the store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"queue {name!r} does not exist")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class StreamNotFound(StoreError, KeyError):
    """No stream of that name exists in the store."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"stream {name!r} does not exist")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class QueueExists(StoreError):
    """A queue of that name already exists with different attributes."""


class MessageTooLarge(StoreError, ValueError):
    """A message body (with its attributes) above the queue's maximum message size."""


class InvalidReceiptHandle(StoreError):
    """A receipt handle that does not name a message currently in flight under that handle."""


class BatchRequestError(StoreError, ValueError):
    """A batch request with no entries, more than 10, or duplicate entry ids."""


class SemaphoreTimeout(SluicegateError, TimeoutError):
    """A handler's ``context.semaphore(name, timeout=...)`` was not granted in time (its
    timeout, or the invocation's remaining time, ran out first)."""


class Throttled(SluicegateError):
    """A synchronous invocation found no free concurrency for its function (AWS's
    ``TooManyRequestsException``, status 429).

    Attributes:
        reason: ``"ReservedFunctionConcurrentInvocationLimitExceeded"`` (the function's
            reservation is in use) or ``"ConcurrentInvocationLimitExceeded"`` (the
            account's unreserved pool is).
    """

    def __init__(self, function: str, reason: str) -> None:
        self.function = function
        self.reason = reason
        super().__init__(f"function {function!r} throttled (429 TooManyRequestsException: "
                         f"{reason})")


class IdempotencyError(SluicegateError):
    """Root of what :mod:`sluicegate.idempotency` raises about a call (not about its
    store, whose failures are :class:`StoreError`)."""


class IdempotencyAlreadyInProgressError(IdempotencyError):
    """A call whose key another call is processing now (in this process or another),
    raised at once (``on_in_progress="raise"``) or when waiting ran out of time."""


class IdempotencyValidationError(IdempotencyError):
    """A call whose key was seen with a different payload
    (``payload_validation_jmespath``)."""


class IdempotencyKeyError(IdempotencyError):
    """A payload in which the key expression found nothing, with
    ``raise_on_no_idempotency_key``."""


class IdempotencyResponseError(IdempotencyError):
    """A function returned what cannot be stored as JSON, so a duplicate could not
    replay it: the call fails and its record is cleared (a retry runs it again)."""
