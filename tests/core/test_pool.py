from __future__ import annotations

import pytest

from sluicegate.core.config import AccountConfig, FunctionConfig
from sluicegate.core.pool import ConcurrencyPool, PoolStatistics
from sluicegate.errors import ConfigError


def test_defaults() -> None:
    pool = ConcurrencyPool()
    assert pool.account == AccountConfig()
    assert pool.unreserved_capacity == 1000
    assert pool.available("f") == 1000
    assert pool.capacity("f") == 1000
    assert pool.reserved_concurrency("f") is None


def test_reserved_concurrency_caps_and_guarantees() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=10, min_unreserved=2))
    pool.register(FunctionConfig("r", reserved_concurrency=3))
    assert pool.reserved_concurrency("r") == 3
    assert pool.unreserved_capacity == 7
    assert [pool.try_acquire("r") for _ in range(4)] == [True, True, True, False]
    assert pool.in_use("r") == 3
    assert pool.available("r") == 0
    assert pool.unreserved_in_use == 0
    # unreserved functions share the other 7 and cannot touch r's slots
    assert sum(pool.try_acquire("a") for _ in range(5)) == 5
    assert sum(pool.try_acquire("b") for _ in range(5)) == 2
    assert pool.unreserved_in_use == 7
    assert pool.available("a") == pool.available("b") == 0
    pool.release("r")
    assert pool.try_acquire("r")
    assert not pool.try_acquire("a")
    pool.release("b")
    assert pool.available("a") == 1
    stats = pool.statistics()
    assert stats == PoolStatistics(
        concurrency_limit=10, reserved=3, unreserved_capacity=7, unreserved_in_use=6,
        in_use=9, claimed=9, throttles=5,
    )


def test_reserved_zero_always_throttles() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("off", reserved_concurrency=0))
    assert not pool.try_acquire("off")
    assert pool.capacity("off") == 0
    assert pool.statistics().throttles == 1


def test_unreserved_minimum_is_enforced() -> None:
    pool = ConcurrencyPool()  # 1000, at least 100 unreserved
    pool.register(FunctionConfig("a", reserved_concurrency=600))
    pool.register(FunctionConfig("b", reserved_concurrency=300))
    with pytest.raises(ConfigError) as info:
        pool.register(FunctionConfig("c", reserved_concurrency=1))
    err = info.value
    assert err.parameter == "reserved_concurrency"
    assert err.value == 1
    assert "at most 0" in str(err)
    assert "minimum value of [100]" in str(err)
    assert "'c'" in str(err)
    # the failed registration changed nothing
    assert pool.statistics().reserved == 900
    assert pool.reserved_concurrency("c") is None


def test_error_names_allowed_max() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=200, min_unreserved=50))
    with pytest.raises(ConfigError, match=r"at most 150.*\[50\]"):
        pool.register(FunctionConfig("f", reserved_concurrency=151))
    pool.register(FunctionConfig("f", reserved_concurrency=150))


def test_reregistering_replaces() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("a", reserved_concurrency=900))
    # replacing a's own reservation is measured without its old value
    pool.register(FunctionConfig("a", reserved_concurrency=850))
    assert pool.statistics().reserved == 850
    pool.register(FunctionConfig("a"))
    assert pool.statistics().reserved == 0
    assert pool.reserved_concurrency("a") is None


def test_reregistering_moves_in_flight_between_pools() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=10, min_unreserved=2))
    assert pool.try_acquire("a") and pool.try_acquire("a")
    assert pool.unreserved_in_use == 2
    pool.register(FunctionConfig("a", reserved_concurrency=1))
    assert pool.unreserved_in_use == 0
    assert pool.in_use("a") == 2
    assert pool.available("a") == 0  # over-committed, never negative
    assert not pool.try_acquire("a")
    pool.release("a")
    pool.release("a")
    assert pool.try_acquire("a")
    pool.register(FunctionConfig("a"))
    assert pool.unreserved_in_use == 1
    pool.release("a")
    assert pool.statistics().in_use == 0


def test_release_without_acquire_is_a_bug() -> None:
    pool = ConcurrencyPool()
    with pytest.raises(RuntimeError):
        pool.release("never")
    assert pool.try_acquire("f")
    pool.release("f")
    with pytest.raises(RuntimeError):
        pool.release("f")


def test_account_total_is_never_exceeded() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=20, min_unreserved=5))
    pool.register(FunctionConfig("r1", reserved_concurrency=10))
    pool.register(FunctionConfig("r2", reserved_concurrency=5))
    taken = 0
    for name in ["r1", "r2", "u1", "u2"] * 30:
        taken += pool.try_acquire(name)
    assert taken == 20
    assert pool.statistics().in_use == 20
