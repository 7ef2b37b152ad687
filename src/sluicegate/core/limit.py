"""A mapping's concurrency limit: one object, the minimum of named terms.

How many invocations a mapping may have in flight is decided in one place, a
:class:`ConcurrencyLimit` that every mapping core object owns
(``mapping.concurrency_limit``). Its value is the minimum of its *terms*, each a bound
with a name; it says which term binds (:meth:`ConcurrencyLimit.reason`), for status
displays and metrics. The runtime, the simulator, the cluster and the reports read the
value from it and never cap on their own.

The terms sluicegate adds, in the order a mapping adds them (the limit's layers are
described in docs/architecture.md):

``maximum_concurrency``
    The mapping's ``MaximumConcurrency`` (queues); :data:`NO_LIMIT` when unset.
``shards``
    A stream mapping's ``shard_count x parallelization_factor``: one batch in flight per
    lane.
``reserved_concurrency``
    The function's reserved concurrency (it caps the function on AWS).
``pool``
    The most slots the function can ever hold in the account's
    :class:`~sluicegate.core.pool.ConcurrencyPool`: its reserved concurrency, or the
    size of the unreserved pool.
``scaling``
    The scaling policy's level (:class:`PolicyTerm`).
``cluster``
    This worker's share of the mapping's lease, added by the cluster.

Which terms a mapping gets is the mapping's choice, written in its docstring: the ``aws``
policy models AWS's pollers, which reserved concurrency and the pool do not bound (they
are throttled instead), so those two terms are added for sluicegate's own policies only
(and a reservation of 0, AWS's switch that throttles every invocation, binds neither).
New kinds of terms (an adaptive limit, a breaker, an operator override, a semaphore) are
classes that satisfy :class:`LimitTerm` and are plugged in with
:meth:`ConcurrencyLimit.add`; nothing else changes::

    mapping.concurrency_limit.add(Share("cluster", lease.held_share))
    mapping.concurrency_limit.add(Fixed("override", 20))       # an operator's cap
    mapping.limit_reason(now)                                   # -> "override"

Signals. A term may also watch how invocations end: one with an ``observe(now, sample)``
method is handed every :class:`~sluicegate.core.signals.Sample` the mapping reports
(:meth:`ConcurrencyLimit.observe`: an adaptive limit, a circuit breaker). Such a term is
dynamic (its value moves with what it observes). The mapping reports samples only when a
term observes (:attr:`ConcurrencyLimit.observers`), so a limit without one costs nothing.

A term takes effect at the mapping's next ``poll``: a driver that changes one wakes its
mapping. When several terms bind at the same value, :meth:`ConcurrencyLimit.reason`
names the one added first (a mapping adds its settings before its policy, so a fixed
policy at its ``maximum_concurrency`` reports ``"maximum_concurrency"``).

Static and dynamic terms. A :class:`Fixed` term, a :class:`PolicyTerm` over a
:class:`~sluicegate.core.scaling.FixedScaling`, and a :class:`Share` built with
``static=True`` change only when the limit is told (:meth:`ConcurrencyLimit.replace`,
:meth:`~ConcurrencyLimit.refresh`); their minimum is computed once. When every term is
static, :attr:`ConcurrencyLimit.fixed` holds the value, so the hot paths of the mappings
read one attribute instead of calling anything. Any other term is *dynamic*: asked at
every :meth:`~ConcurrencyLimit.value`.

"No limit" has one representation in the whole project: :data:`NO_LIMIT`.

Pure: every method that depends on time takes ``now`` (seconds) and none reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Protocol

from sluicegate.core.scaling import FixedScaling, ScalingPolicy
from sluicegate.core.signals import Sample

__all__ = [
    "NO_LIMIT",
    "TERM_CLUSTER",
    "TERM_MAXIMUM_CONCURRENCY",
    "TERM_POOL",
    "TERM_RESERVED_CONCURRENCY",
    "TERM_SCALING",
    "TERM_SHARDS",
    "ConcurrencyLimit",
    "Fixed",
    "LimitTerm",
    "ObservingTerm",
    "PolicyTerm",
    "Share",
]

NO_LIMIT: Final = 1 << 62
"""The value of an unbounded term, and of a limit without terms: the one "no limit" of
the project (larger than any concurrency, small enough to stay a machine integer)."""

TERM_MAXIMUM_CONCURRENCY: Final = "maximum_concurrency"
TERM_SHARDS: Final = "shards"
TERM_RESERVED_CONCURRENCY: Final = "reserved_concurrency"
TERM_POOL: Final = "pool"
TERM_SCALING: Final = "scaling"
TERM_CLUSTER: Final = "cluster"

_NONE: Final = "none"
""":meth:`ConcurrencyLimit.reason` of a limit without terms."""


class LimitTerm(Protocol):
    """One bound of a :class:`ConcurrencyLimit`.

    A static protocol (not ``runtime_checkable``: the compiled build cannot have that).
    A term may also have a ``static`` attribute: ``True`` when its value changes only
    when its limit is told (:meth:`ConcurrencyLimit.refresh`); without it a term is
    dynamic.
    """

    @property
    def name(self) -> str:
        """What :meth:`ConcurrencyLimit.reason` reports when this term binds."""
        ...

    def value(self, now: float) -> int:
        """The bound at ``now``: an integer >= 0, :data:`NO_LIMIT` when unbounded."""
        ...

    def next_change(self, now: float) -> float | None:
        """The earliest time after ``now`` when :meth:`value` may change by itself;
        ``None`` when it changes only on events."""
        ...


class ObservingTerm(LimitTerm, Protocol):
    """A term that also watches how invocations end (see the module docstring)."""

    def observe(self, now: float, sample: Sample) -> None:
        """One invocation ended (or was throttled) at ``now``: ``sample`` says how."""
        ...


class Fixed:
    """A constant bound.

    Parameters:
        name: the term's name.
        value: the bound, an integer >= 0; ``None`` for :data:`NO_LIMIT` (a setting left
            unset).

    Raises:
        ValueError: a value that is not an integer >= 0 or ``None`` (a bool included).
    """

    __slots__ = ("_value", "name")

    static: Final = True

    def __init__(self, name: str, value: object) -> None:
        # ``value`` is declared ``object`` so that the compiled build lets this check
        # refuse a bool or a float with its own error (docs/performance.md)
        if value is None:
            value = NO_LIMIT
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"limit term {name!r}: {value!r} is not an integer >= 0")
        self.name = name
        self._value: int = value

    def __repr__(self) -> str:
        shown = "NO_LIMIT" if self._value >= NO_LIMIT else str(self._value)
        return f"Fixed({self.name!r}, {shown})"

    def value(self, now: float) -> int:
        """The constant."""
        return self._value

    def next_change(self, now: float) -> float | None:
        """Always ``None``."""
        return None


class PolicyTerm:
    """The scaling policy's level as a term (named ``"scaling"`` unless told otherwise).

    Static when the policy is a :class:`~sluicegate.core.scaling.FixedScaling` (exactly:
    a subclass might change): its limit never changes and its hooks do nothing.

    Parameters:
        policy: the mapping's scaling policy.
        name: the term's name.
    """

    __slots__ = ("name", "policy", "static")

    def __init__(self, policy: ScalingPolicy, name: str = TERM_SCALING) -> None:
        self.name = name
        self.policy = policy
        self.static: bool = type(policy) is FixedScaling

    def __repr__(self) -> str:
        return f"PolicyTerm({self.policy!r})"

    def value(self, now: float) -> int:
        """The policy's limit at ``now``."""
        return self.policy.limit(now)

    def next_change(self, now: float) -> float | None:
        """When the policy's limit next changes by itself (its own prediction)."""
        return self.policy.next_change(now)


class Share:
    """A bound read from a callable at every :meth:`value`: a share of something owned
    elsewhere (the cluster's share of a mapping's lease).

    Parameters:
        name: the term's name.
        fn: called with no argument; returns the bound (an integer; :data:`NO_LIMIT` for
            none).
        static: ``True`` when ``fn``'s answer changes only at moments whose owner then
            calls :meth:`ConcurrencyLimit.refresh` (the limit then reads it once per
            refresh, and may keep its fast path); ``False`` (default): read every time.
    """

    __slots__ = ("fn", "name", "static")

    def __init__(self, name: str, fn: Callable[[], int], *, static: bool = False) -> None:
        self.name = name
        self.fn = fn
        self.static = static

    def __repr__(self) -> str:
        return f"Share({self.name!r}, static={self.static})"

    def value(self, now: float) -> int:
        """``fn()``."""
        return self.fn()

    def next_change(self, now: float) -> float | None:
        """``None``: a share changes on events (its owner wakes the mapping)."""
        return None


def _is_static(term: LimitTerm) -> bool:
    return bool(getattr(term, "static", False))


class ConcurrencyLimit:
    """The minimum of named terms; see the module docstring.

    Parameters:
        terms: the initial terms, in order (ties in :meth:`reason` go to the earlier).

    Raises:
        ValueError: two terms with one name.

    Attributes:
        fixed: the value when every term is static (computed when terms change or
            :meth:`refresh` is called), else ``None``: the mappings' fast path.
        observers: the ``observe`` methods of the terms that have one, in the order
            added (rebuilt when terms change); empty: no term observes, and a mapping
            builds no :class:`~sluicegate.core.signals.Sample`.
    """

    __slots__ = ("_dynamic", "_static", "_terms", "_watchers", "fixed", "observers")

    def __init__(self, terms: Iterable[LimitTerm] = ()) -> None:
        self._terms: list[LimitTerm] = []
        self._dynamic: list[LimitTerm] = []
        self._static = NO_LIMIT
        self._watchers: list[Callable[[], None]] = []
        self.fixed: int | None = NO_LIMIT
        self.observers: tuple[Callable[[float, Sample], None], ...] = ()
        for term in terms:
            if self._index(term.name) >= 0:
                raise ValueError(f"limit term {term.name!r} given twice")
            self._terms.append(term)
        self._rebuild()

    def __repr__(self) -> str:
        names = ", ".join(repr(t) for t in self._terms)
        return f"ConcurrencyLimit([{names}])"

    # ------------------------------------------------------------------ terms

    @property
    def terms(self) -> tuple[LimitTerm, ...]:
        """The terms, in the order they were added."""
        return tuple(self._terms)

    def get(self, name: str) -> LimitTerm | None:
        """The term named ``name``, or ``None``."""
        i = self._index(name)
        return self._terms[i] if i >= 0 else None

    def add(self, term: LimitTerm) -> None:
        """Add a term (after the others).

        Raises:
            ValueError: a term of that name is there already (use :meth:`replace`).
        """
        if self._index(term.name) >= 0:
            raise ValueError(f"limit term {term.name!r} is there already; replace it")
        self._terms.append(term)
        self._changed()

    def replace(self, term: LimitTerm) -> None:
        """Put ``term`` in place of the term of the same name, keeping its position.

        Raises:
            KeyError: no term of that name.
        """
        i = self._index(term.name)
        if i < 0:
            raise KeyError(term.name)
        self._terms[i] = term
        self._changed()

    def remove(self, name: str) -> LimitTerm:
        """Take out the term named ``name`` and return it.

        Raises:
            KeyError: no term of that name.
        """
        i = self._index(name)
        if i < 0:
            raise KeyError(name)
        term = self._terms.pop(i)
        self._changed()
        return term

    def refresh(self) -> None:
        """Read the static terms again (their owner says their value changed)."""
        self._changed()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of the terms and every :meth:`refresh`
        (for a driver that shows the limit). Held strongly: a callback that refers back
        to the limit's owner makes a reference cycle."""
        self._watchers.append(callback)

    # ------------------------------------------------------------------ value

    def value(self, now: float) -> int:
        """The limit at ``now``: ``max(0, min(term values))``; :data:`NO_LIMIT` without
        terms."""
        v = self._static
        for term in self._dynamic:
            x = term.value(now)
            if x < v:  # noqa: PLR1730 (cheaper than min() on this hot path)
                v = x
        return v if v > 0 else 0

    def reason(self, now: float) -> str:
        """The name of the term that binds at ``now``: the first (in the order added)
        whose value is the minimum; ``"none"`` without terms."""
        best = _NONE
        low = NO_LIMIT + 1
        for term in self._terms:
            x = term.value(now)
            if x < low:
                low = x
                best = term.name
        return best

    def next_change(self, now: float) -> float | None:
        """The earliest time after ``now`` when a term says its value may change by
        itself; ``None`` when none will (the limit then changes only on events)."""
        when: float | None = None
        for term in self._dynamic:
            change = term.next_change(now)
            if change is not None and (when is None or change < when):
                when = change
        return when

    @property
    def ceiling(self) -> int:
        """The most the limit can be whatever its dynamic terms do: the minimum of the
        static terms (:data:`NO_LIMIT` without one); what a driver sizes its workers by."""
        return self._static if self._static > 0 else 0

    def observe(self, now: float, sample: Sample) -> None:
        """Hand ``sample`` (an invocation that ended, or a throttle, at ``now``) to every
        term that observes, in the order added. A mapping calls it only when
        :attr:`observers` is not empty."""
        for observe in self.observers:
            observe(now, sample)

    def describe(self, now: float) -> dict[str, int]:
        """Every term's value at ``now``, by name, in the order added."""
        return {term.name: term.value(now) for term in self._terms}

    # ------------------------------------------------------------------ internals

    def _index(self, name: str) -> int:
        for i, term in enumerate(self._terms):
            if term.name == name:
                return i
        return -1

    def _rebuild(self) -> None:
        static = NO_LIMIT
        dynamic: list[LimitTerm] = []
        observers: list[Callable[[float, Sample], None]] = []
        for term in self._terms:
            observe = getattr(term, "observe", None)
            if observe is not None:
                observers.append(observe)
            if _is_static(term):
                static = min(static, term.value(0.0))
            else:
                dynamic.append(term)
        self._static = static
        self._dynamic = dynamic
        self.observers = tuple(observers)
        self.fixed = None if dynamic else (static if static > 0 else 0)

    def _changed(self) -> None:
        self._rebuild()
        for callback in self._watchers:
            callback()
