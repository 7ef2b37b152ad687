"""Connections to Redis, shared by the Redis store and the cluster coordination.

Everything that talks to Redis gets its client from :func:`connect`, so URL checking,
timeouts, the hiredis parser and the translation of redis-py's exceptions into
sluicegate's own (:func:`store_error`) live in one place. redis-py is an optional
dependency (``pip install 'sluicegate[redis]'``); importing this module does not need it,
:func:`connect` does.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from sluicegate.errors import InputError, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "REDIS_SCHEMES",
    "RedisAddress",
    "awaitable",
    "connect",
    "parse_redis_url",
    "store_error",
]

REDIS_SCHEMES = ("redis", "rediss")
"""URL schemes naming a Redis server (``rediss`` for TLS)."""

SOCKET_TIMEOUT = 10.0
"""Seconds a command may wait for its reply before the call fails as unavailable; long
enough for a busy server, short enough that a dead one is noticed."""

CONNECT_TIMEOUT = 5.0
"""Seconds to establish a connection."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """A checked Redis URL: where the server is and which logical database to use."""

    url: str
    host: str
    port: int
    db: int
    tls: bool

    def __str__(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Check ``redis://[user:password@]host[:port][/db]`` and return its parts.

    Raises:
        InputError: another scheme, no host, a port or database that is not a number,
            a path with more than the database number, or a query string.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"store URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in REDIS_SCHEMES:
        raise InputError(f"store URL {url!r}: not a redis:// URL")
    if not parts.hostname:
        raise InputError(f"store URL {url!r}: write redis://HOST[:PORT][/DB]")
    if parts.query or parts.fragment:
        raise InputError(f"store URL {url!r}: query strings and fragments are not supported")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise InputError(f"store URL {url!r}: the path must be a database number, got {path!r}")
    return RedisAddress(
        url=url,
        host=parts.hostname,
        port=port if port is not None else 6379,
        db=int(path) if path else 0,
        tls=scheme == "rediss",
    )


def connect(url: str, **options: Any) -> Redis:
    """An asyncio redis-py client for ``url`` (not yet connected: the first command connects).

    Replies are decoded as UTF-8 strings unless ``decode_responses=False`` is passed.

    Raises:
        InputError: a malformed URL, or redis-py is not installed.
    """
    address = parse_redis_url(url)
    try:
        from redis.asyncio import Redis
    except ImportError:
        raise InputError(
            f"store URL {url!r} needs redis-py: pip install 'sluicegate[redis]'"
        ) from None
    options.setdefault("decode_responses", True)
    options.setdefault("socket_timeout", SOCKET_TIMEOUT)
    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    options.setdefault("health_check_interval", 15)
    client: Redis = Redis.from_url(url, **options)
    del address  # checked above; redis-py parses the same URL itself
    return client


def store_error(exc: BaseException, url: str = "") -> StoreError:
    """Translate a redis-py exception into sluicegate's: an unreachable or vanished server
    becomes :class:`StoreUnavailable`, anything else :class:`StoreError`, both naming the
    server and the cause in one line."""
    if isinstance(exc, StoreError):
        return exc
    where = f"redis store {url}: " if url else "redis store: "
    try:
        from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
    except ImportError:  # pragma: no cover - only reached with redis-py installed
        return StoreError(f"{where}{type(exc).__name__}: {exc}")
    if isinstance(exc, ConnectionError | TimeoutError | BusyLoadingError | OSError):
        return StoreUnavailable(f"{where}unreachable ({type(exc).__name__}: {exc})")
    return StoreError(f"{where}{type(exc).__name__}: {exc}")


def awaitable(result: Any) -> Awaitable[Any]:
    """A command's result as what it is on the asyncio client: an awaitable (redis-py 5's
    annotations also allow the synchronous client's plain value, redis-py 6's do not)."""
    return cast("Awaitable[Any]", result)
