"""Django's SQLite backend, with the write transactions of one process taken in turn.

SQLite has one write lock, and a connection that finds it taken polls for it (the busy handler sleeps up to 100 ms
between tries): whoever polls at the right moment wins, not whoever asked first. With writers that keep the lock
busy (a burst of large imports), a short write from another request could poll unlucky for the whole busy timeout
and fail with "database is locked". Here the threads of one process wait for each other on a lock that wakes a
waiter as soon as it is free, before `BEGIN IMMEDIATE`; the busy handler is then left with the few writers of the
other processes (the worker's short transactions). The turns go in order of arrival: a thread that ends a
transaction and at once begins the next (an import writing batch after batch) queues behind those already waiting,
so a short write waits for one batch, not for the whole import. PostgreSQL needs none of this.
"""

from __future__ import annotations

import threading
from collections import deque

from django.db import OperationalError
from django.db.backends.sqlite3 import base

# As long as SQLite's own busy timeout (settings.py): a writer waits at most this long in turn, then fails as
# SQLite would.
WAIT_SECONDS = 20.0


class Turns:
    """A lock handed over in order of arrival (threading.Lock lets whoever wakes first take it)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Lock] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held:
                self._held = True
                return True
            handover = threading.Lock()
            handover.acquire()
            self._waiting.append(handover)
        if handover.acquire(timeout=timeout):
            return True  # release() handed the turn to us
        with self._guard:
            if handover in self._waiting:
                self._waiting.remove(handover)
                return False
        return True  # handed over just as the wait ran out: the turn is ours, and ours to release

    def locked(self) -> bool:
        return self._held

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()  # still held: now by the first waiter
            else:
                self._held = False


_writers = Turns()


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_write_turn = False

    def _start_transaction_under_autocommit(self) -> None:
        if not _writers.acquire(WAIT_SECONDS):
            raise OperationalError("database is locked")
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
