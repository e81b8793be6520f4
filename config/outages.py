"""Which shared service an exception says is unreachable: the database, or the cache (Redis, also the broker).

One answer for the web (503 with Retry-After, config/errors.py) and the workers (a claim an outage interrupts is
handed back without counting as an attempt, work/runner.py).
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

DATABASE = "database"
CACHE = "cache"


def outage_of(exc: BaseException) -> str | None:
    """DATABASE, CACHE, or None when `exc` is not about a service being unreachable.

    Every OperationalError counts as the database's: a refused or dropped connection, and SQLite's lock held past
    its busy timeout, are all "try again in a moment", and the rest (a missing table) are deployment faults that a
    retry does not make worse.
    """
    if isinstance(exc, OperationalError | InterfaceError):
        return DATABASE
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return CACHE
    return None
