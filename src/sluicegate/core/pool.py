"""The account's concurrency pool: reserved and unreserved concurrency, as Lambda has it.

An account has ``concurrency_limit`` concurrent executions (default 1,000). A function with
reserved concurrency R owns R of them: they are guaranteed to it AND cap it (R = 0 throttles
every invocation). Every other function shares what is left, the unreserved pool
(``limit - sum(reserved)``), which reserved concurrency may not shrink below
``min_unreserved`` (default 100). Lambda developer guide, "Configuring reserved
concurrency"; lambda-semantics.md section 1.

The pool is shared by every mapping of an App (and by the simulator's every function); a
driver takes a slot before invoking and gives it back when the invocation ends. A failed
:meth:`ConcurrencyPool.try_acquire` is a throttle (AWS's 429).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sluicegate.core.config import AccountConfig, FunctionConfig
from sluicegate.errors import ConfigError

_T = TypeVar("_T")

try:
    from mypy_extensions import mypyc_attr
except ImportError:  # a pure-Python install need not have it; the decorator only matters
    # to the compiled build (see setup.py), which reads it at compile time

    def mypyc_attr(*args: str, **kwargs: object) -> Callable[[_T], _T]:
        return lambda cls: cls

__all__ = ["ConcurrencyPool", "PoolStatistics"]

_DEFAULT_ACCOUNT = AccountConfig()


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """A snapshot of the pool, for status displays and metrics.

    Attributes:
        concurrency_limit: the account's total concurrency.
        reserved: sum of every registered function's reserved concurrency.
        unreserved_capacity: ``concurrency_limit - reserved``.
        unreserved_in_use: slots of the unreserved pool held now.
        in_use: slots held now, by every function.
        claimed: ``unreserved_in_use + reserved`` (AWS's ClaimedAccountConcurrency).
        throttles: failed acquisitions since the pool was created.
    """

    concurrency_limit: int
    reserved: int
    unreserved_capacity: int
    unreserved_in_use: int
    in_use: int
    claimed: int
    throttles: int


class _Function:
    __slots__ = ("in_use", "reserved")

    def __init__(self, reserved: int | None) -> None:
        self.reserved = reserved
        self.in_use = 0


@mypyc_attr(allow_interpreted_subclasses=True)  # the cluster's pool subclasses it
class ConcurrencyPool:
    """Concurrency slots of one account, shared by all its functions.

    Functions are named by their ``FunctionConfig.name``. A name that was never
    :meth:`register`-ed is treated as a function without reserved concurrency (it uses the
    unreserved pool), so that a driver need not register functions that reserve nothing.

    Parameters:
        account: the account's limit and unreserved minimum.
    """

    __slots__ = ("_functions", "_in_use", "_reserved", "_throttles", "_unreserved_cap",
                 "_unreserved_in_use", "_watchers", "account")

    def __init__(self, account: AccountConfig = _DEFAULT_ACCOUNT) -> None:
        self.account = account
        self._functions: dict[str, _Function] = {}
        self._reserved = 0
        #: the unreserved pool's size, ``account.concurrency_limit - _reserved``, kept as
        #: ``_reserved`` changes: try_acquire reads it per invocation
        self._unreserved_cap = account.concurrency_limit
        self._unreserved_in_use = 0
        self._in_use = 0
        self._throttles = 0
        self._watchers: list[Callable[[ConcurrencyPool], None]] = []

    # ------------------------------------------------------------------ configuration

    def register(self, function: FunctionConfig) -> None:
        """Add ``function``, or replace the settings of a function of the same name.

        Replacing keeps the function's invocations in flight: they now count against its
        new pool (its reserved slots, or the unreserved pool), which may leave that pool
        over-committed until they end; nothing is revoked.

        Parameters:
            function: the function's configuration; only ``name`` and
                ``reserved_concurrency`` matter here.

        Raises:
            ConfigError: ``reserved_concurrency`` would leave fewer than
                ``account.min_unreserved`` unreserved; the message names the largest
                value allowed.
        """
        name = function.name
        reserved = function.reserved_concurrency
        entry = self._functions.get(name)
        previous = entry.reserved if entry is not None and entry.reserved is not None else 0
        if reserved is not None:
            others = self._reserved - previous
            allowed = self.account.concurrency_limit - self.account.min_unreserved - others
            if reserved > allowed:
                raise ConfigError(
                    "reserved_concurrency",
                    reserved,
                    f"at most {max(allowed, 0):,}: more would decrease the account's "
                    f"unreserved concurrency below its minimum value of "
                    f"[{self.account.min_unreserved}]",
                    f"function {name!r}",
                )
        if entry is None:
            self._functions[name] = _Function(reserved)
        else:
            if entry.reserved is None:
                self._unreserved_in_use -= entry.in_use
            entry.reserved = reserved
            if reserved is None:
                self._unreserved_in_use += entry.in_use
        self._reserved += (reserved or 0) - previous
        self._unreserved_cap = self.account.concurrency_limit - self._reserved
        for callback in self._watchers:
            callback(self)

    def watch(self, callback: Callable[[ConcurrencyPool], None]) -> None:
        """Call ``callback(pool)`` after every :meth:`register`: a function's reserved
        concurrency, and so every capacity (:meth:`capacity`), may have changed. A
        fixed-policy mapping puts its ``pool`` and ``reserved_concurrency`` limit terms
        right there.

        The pool holds ``callback`` for its own lifetime. It is given the pool rather
        than keeping a reference to it, so that what it refers to (a mapping's limit)
        refers to nothing that leads back to the pool: no reference cycle."""
        self._watchers.append(callback)

    def reserved_concurrency(self, function: str) -> int | None:
        """The reserved concurrency registered for ``function`` (``None``: none)."""
        entry = self._functions.get(function)
        return None if entry is None else entry.reserved

    # ------------------------------------------------------------------ slots

    def try_acquire(self, function: str) -> bool:
        """Take one slot for an invocation of ``function``.

        Parameters:
            function: the function's name.

        Returns:
            ``True`` when a slot was taken (give it back with :meth:`release`); ``False``
            when the function's pool is full: a throttle.
        """
        entry = self._functions.get(function)
        if entry is None:
            entry = self._functions[function] = _Function(None)
        reserved = entry.reserved
        if reserved is None:
            if self._unreserved_in_use >= self._unreserved_cap:
                self._throttles += 1
                return False
            self._unreserved_in_use += 1
        elif entry.in_use >= reserved:
            self._throttles += 1
            return False
        entry.in_use += 1
        self._in_use += 1
        return True

    def release(self, function: str) -> None:
        """Give back a slot taken by :meth:`try_acquire`.

        Raises:
            RuntimeError: ``function`` holds no slot (a driver bug).
        """
        entry = self._functions.get(function)
        if entry is None or entry.in_use <= 0:
            raise RuntimeError(f"release of {function!r} without a matching acquire")
        entry.in_use -= 1
        self._in_use -= 1
        if entry.reserved is None:
            self._unreserved_in_use -= 1

    # ------------------------------------------------------------------ introspection

    def in_use(self, function: str) -> int:
        """Slots ``function`` holds now."""
        entry = self._functions.get(function)
        return 0 if entry is None else entry.in_use

    @property
    def unreserved_in_use(self) -> int:
        """Slots of the unreserved pool held now, by every function without reservation."""
        return self._unreserved_in_use

    @property
    def unreserved_capacity(self) -> int:
        """Size of the unreserved pool: the account limit less all reserved concurrency."""
        return self.account.concurrency_limit - self._reserved

    def capacity(self, function: str) -> int:
        """The most slots ``function`` can ever hold at once: its reserved concurrency,
        or the unreserved pool's size."""
        entry = self._functions.get(function)
        if entry is None or entry.reserved is None:
            return self.account.concurrency_limit - self._reserved
        return entry.reserved

    def available(self, function: str) -> int:
        """Slots ``function`` could take now (never negative)."""
        entry = self._functions.get(function)
        if entry is None or entry.reserved is None:
            free = self.account.concurrency_limit - self._reserved - self._unreserved_in_use
        else:
            free = entry.reserved - entry.in_use
        return max(0, free)

    def statistics(self) -> PoolStatistics:
        """A snapshot of the pool's counters."""
        return PoolStatistics(
            concurrency_limit=self.account.concurrency_limit,
            reserved=self._reserved,
            unreserved_capacity=self.account.concurrency_limit - self._reserved,
            unreserved_in_use=self._unreserved_in_use,
            in_use=self._in_use,
            claimed=self._unreserved_in_use + self._reserved,
            throttles=self._throttles,
        )
