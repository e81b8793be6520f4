"""config/sqlite: one process's write transactions take turns, and every way a transaction ends gives the turn back
(a turn left behind would stop every later write of the process). Run on a database of its own, so both CI legs run
it; tests/test_load.py is the load it exists for."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.utils import ConnectionHandler

from config.sqlite import base


@pytest.fixture
def connect(tmp_path: Path, django_db_blocker: Any) -> Iterator[object]:
    handlers: list[ConnectionHandler] = []

    def connect() -> base.DatabaseWrapper:
        handler = ConnectionHandler(
            {
                "default": {
                    "ENGINE": "config.sqlite",
                    "NAME": str(tmp_path / "turns.sqlite3"),
                    "OPTIONS": {"transaction_mode": "IMMEDIATE"},
                }
            }
        )
        handlers.append(handler)
        return handler["default"]

    with django_db_blocker.unblock():  # a database of the test's own, not the test database
        yield connect
        for handler in handlers:
            handler.close_all()


def begin(connection: base.DatabaseWrapper) -> None:
    """What transaction.atomic does first on an autocommit connection."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_each_way_a_transaction_ends_gives_the_turn_back(connect, end: str) -> None:
    connection = connect()
    begin(connection)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    assert base._writers.locked()
    getattr(connection, end)()
    assert not base._writers.locked()


def test_a_second_writer_waits_for_the_turn_and_then_writes(connect) -> None:
    first = connect()
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    wrote = threading.Event()

    def second_writer() -> None:
        second = connect()
        begin(second)
        with second.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (2)")
        second.commit()
        second.close()
        wrote.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    assert not wrote.wait(0.3)  # in turn: not before the first transaction ends
    first.commit()
    thread.join(10)
    assert wrote.is_set()
    with first.cursor() as cursor:
        cursor.execute("SELECT x FROM t")
        assert cursor.fetchall() == [(2,)]


def test_a_writer_that_waits_too_long_fails_as_sqlite_would(connect, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "WAIT_SECONDS", 0.05)
    first = connect()
    begin(first)
    failure: list[Exception] = []

    def second_writer() -> None:
        second = connect()
        try:
            begin(second)
        except Exception as exc:  # noqa: BLE001 - the test reads it below
            failure.append(exc)
        second.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(10)
    first.rollback()
    assert [str(exc) for exc in failure] == ["database is locked"]
    assert not base._writers.locked()


def test_a_writer_that_begins_again_at_once_queues_behind_the_one_waiting(connect) -> None:
    # An import writing batch after batch ends one transaction and begins the next at once: the writer already
    # waiting must get the turn first, or a short write could wait for the whole import.
    first = connect()
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    order: list[str] = []

    def second_writer() -> None:
        second = connect()
        begin(second)
        order.append("second")
        second.commit()
        second.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)  # the second writer is waiting for the turn
    first.commit()
    begin(first)
    order.append("first")
    first.commit()
    thread.join(10)
    assert order == ["second", "first"]
    assert not base._writers.locked()


def test_a_write_outside_a_transaction_takes_its_turn_too(connect) -> None:
    # QuerySet.update and the ORM broker's INSERT run in autocommit, each statement a transaction of its own: left
    # to SQLite's busy handler, such a write polls (sleeping up to 100 ms between tries) and loses to an import that
    # ends a batch and begins the next at once. In turn, it goes between the two batches.
    first = connect()
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")

    def second_writer() -> None:
        second = connect()
        with second.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (2)")  # autocommit: no BEGIN
        second.close()

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)  # the second writer is waiting
    first.commit()
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("SELECT x FROM t")
        assert cursor.fetchall() == [(2,)]  # written before this transaction began
    first.commit()
    thread.join(10)
    assert not base._writers.locked()


def test_a_short_writer_goes_before_a_bulk_writer_that_waited_longer(connect) -> None:
    # Two imports writing batch after batch: a short write would wait for a batch of each in order of arrival;
    # it goes first, and waits for the one transaction in progress only.
    first = connect()
    begin(first)
    with first.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    order: list[str] = []

    def writer(name: str, bulk: bool) -> None:
        connection = connect()
        with base.bulk_writes() if bulk else contextlib.nullcontext():
            begin(connection)
        order.append(name)
        connection.commit()
        connection.close()

    threads = [threading.Thread(target=writer, args=(name, name == "bulk")) for name in ("bulk", "short")]
    for thread in threads:
        thread.start()
        time.sleep(0.2)  # each is waiting before the next starts: the bulk writer arrived first
    first.commit()
    for thread in threads:
        thread.join(10)
    assert order == ["short", "bulk"]
    assert not base._writers.locked()


def test_short_writers_pass_a_bulk_writer_only_so_many_times_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "BULK_PASSED_OVER_MAX", 2)
    turns = base.Turns()
    assert turns.acquire(1)
    order: list[str] = []

    def writer(name: str) -> None:
        assert turns.acquire(10, bulk=name == "bulk")
        order.append(name)
        turns.release()

    threads = []
    for number, name in enumerate(["bulk", "short 1", "short 2", "short 3"]):
        threads.append(threading.Thread(target=writer, args=(name,)))
        threads[-1].start()
        while len(turns._waiting) + len(turns._bulk_waiting) <= number:  # queued in this order
            time.sleep(0.01)
    turns.release()
    for thread in threads:
        thread.join(10)
    assert order == ["short 1", "short 2", "bulk", "short 3"]
    assert not turns.locked()


def test_under_debug_a_bulk_writers_statements_are_not_logged_unless_captured(connect, settings: Any) -> None:
    """DEBUG logs every statement with its parameters quoted by one more query; a bulk writer (an import's batches)
    is spared it, other writers and an explicit capture (assertNumQueries) are not."""
    from django.test.utils import CaptureQueriesContext

    settings.DEBUG = True
    connection = connect()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (x)")
    logged = len(connection.queries_log)
    with base.bulk_writes(), connection.cursor() as cursor:
        cursor.executemany("INSERT INTO t VALUES (%s)", [(i,) for i in range(250)])
    assert len(connection.queries_log) == logged
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (%s)", [1])
    assert len(connection.queries_log) == logged + 1
    with CaptureQueriesContext(connection) as captured, base.bulk_writes(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (%s)", [2])
    assert len(captured.captured_queries) == 1
