"""Django's SQLite backend, with the writes of one process taken in turn, short writes before bulk ones.

SQLite has one write lock, and a connection that finds it taken polls for it (the busy handler sleeps up to 100 ms
between tries): whoever polls at the right moment wins, not whoever asked first. With writers that keep the lock
busy (a burst of large imports), a short write from another request could poll unlucky for the whole busy timeout
and fail with "database is locked". Here the threads of one process wait for each other on a lock that wakes a
waiter as soon as it is free: before `BEGIN IMMEDIATE`, and around every write statement run outside a transaction
(an UPDATE by `QuerySet.update`, the ORM broker's INSERT, which would otherwise poll against the whole queue). The
busy handler is then left with the few writers of the other processes (the worker's short transactions).

The turns go in order of arrival, except that a bulk writer (inside `bulk_writes()`: an import writing batch after
batch) lets every short writer waiting go first, so a short write waits for at most the one transaction in
progress, not for the batches of every import queued before it. A bulk writer is passed over at most
BULK_PASSED_OVER_MAX times in a row, so a stream of short writes cannot starve it. PostgreSQL needs none of this.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError
from django.db.backends.sqlite3 import base

# As long as SQLite's own busy timeout (settings.py): a writer waits at most this long in turn, then fails as
# SQLite would.
WAIT_SECONDS = 20.0
# Short writes that may go before a waiting bulk writer in a row: each is one short transaction (tens of ms),
# so a bulk writer waits at most this many of them more than it would in order of arrival.
BULK_PASSED_OVER_MAX = 8
# What a write outside a transaction starts with; a read (SELECT, PRAGMA) never waits for the write lock in WAL mode.
WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")

_bulk = threading.local()


@contextmanager
def bulk_writes() -> Iterator[None]:
    """The transactions this thread begins inside are bulk: a waiting short write goes first. On any database
    (it only marks the thread; the SQLite backend alone reads the mark)."""
    before = getattr(_bulk, "on", False)
    _bulk.on = True
    try:
        yield
    finally:
        _bulk.on = before


class Turns:
    """A lock handed over in order of arrival (threading.Lock lets whoever wakes first take it), short writers
    before bulk ones."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()
        self._bulk_waiting: deque[threading.Lock] = deque()
        self._passed_over = 0  # short writers handed the turn in a row while a bulk writer waited

    def acquire(self, timeout: float, bulk: bool = False) -> bool:
        queue = self._bulk_waiting if bulk else self._waiting
        with self._guard:
            if not self._held:
                self._held = True
                return True
            handover = threading.Lock()
            handover.acquire()
            queue.append(handover)
        if handover.acquire(timeout=timeout):
            return True  # release() handed the turn to us
        with self._guard:
            if handover in queue:
                queue.remove(handover)
                return False
        return True  # handed over just as the wait ran out: the turn is ours, and ours to release

    def locked(self) -> bool:
        return self._held

    def release(self) -> None:
        with self._guard:
            if self._waiting and (not self._bulk_waiting or self._passed_over < BULK_PASSED_OVER_MAX):
                self._passed_over = self._passed_over + 1 if self._bulk_waiting else 0
                self._waiting.popleft().release()  # still held: now by the first short waiter
            elif self._bulk_waiting:
                self._passed_over = 0
                self._bulk_waiting.popleft().release()
            else:
                self._held = False


_writers = Turns()


def _take_turn() -> None:
    if not _writers.acquire(WAIT_SECONDS, bulk=getattr(_bulk, "on", False)):
        raise OperationalError("database is locked")


class TurnCursor(base.SQLiteCursorWrapper):
    """A write statement outside a transaction takes the turn for as long as it runs (SQLite makes it a transaction
    of its own); inside one, the transaction already holds it."""

    def execute(self, query: str, params: Any = None) -> Any:
        with self._turn_for(query):
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        with self._turn_for(query):
            return super().executemany(query, param_list)

    @contextmanager
    def _turn_for(self, query: str) -> Iterator[None]:
        if self.connection.in_transaction or not query.lstrip()[:7].upper().startswith(WRITE_STATEMENTS):
            yield
            return
        _take_turn()
        try:
            yield
        finally:
            _writers.release()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_turn = False

    @property
    def queries_logged(self) -> bool:
        """DEBUG (`make run`'s default) keeps every statement in connection.queries with its parameters quoted by
        one more query: for a bulk writer's batches of 250 rows that was 8% of an import's time, most of it while
        holding the write turn (issue #22). Its statements are left out; a capture (assertNumQueries) still has them."""
        return self.force_debug_cursor or (settings.DEBUG and not getattr(_bulk, "on", False))

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=TurnCursor)

    def _start_transaction_under_autocommit(self) -> None:
        _take_turn()
        self._holds_write_turn = True
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # django-stubs omit the private hooks
        except BaseException:
            self._end_write_turn()
            raise

    def _end_write_turn(self) -> None:
        if self._holds_write_turn:
            self._holds_write_turn = False
            _writers.release()

    # Every way a transaction ends: commit, rollback, or a connection closed in the middle of one.
    def _commit(self) -> None:
        try:
            super()._commit()  # type: ignore[misc]
        finally:
            self._end_write_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._end_write_turn()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            self._end_write_turn()
