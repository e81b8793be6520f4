"""The database or the cache (Redis) unreachable: a 503 with Retry-After that says which, never a 500, and the
service recovers by itself once it is back (issue 28). The throttles fail closed: a counter that cannot be read
answers the 503.

The cache outage stops and restarts a private redis-server this test starts on a port of its own; the database
outage points this process's connection at a closed port (or, on SQLite, a file that cannot be opened). The
machine's shared PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

SPECS = "/api/dataframer/specs/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own, on a port of its own: stopped and started at will."""

    def __init__(self) -> None:
        path = shutil.which("redis-server")
        if path is None:
            pytest.skip("redis-server is not installed")
        self.path, self.port = path, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise TimeoutError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    try:
        with override_settings(
            CACHES={
                "default": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": f"redis://127.0.0.1:{redis.port}/0",
                    # A refused connection fails at once; a hung one within a second, not the request's whole life.
                    "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
                }
            }
        ):
            yield redis
    finally:
        redis.stop()


def assert_unavailable(response: Any, service: str) -> None:
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["unavailable"] == service
    assert body["detail"] == f"The {service} is unavailable; retry in a moment."


def test_a_cache_outage_answers_503_and_the_service_recovers_by_itself(
    private_redis: PrivateRedis, alice_api: APIClient, alice: Any
) -> None:
    assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    private_redis.stop()
    # The API: the throttles cannot count, and fail closed.
    assert_unavailable(alice_api.get(SPECS), "cache")
    assert_unavailable(alice_api.post(SPECS, {"name": "x", "content_yaml": "spec: {}"}, format="json"), "cache")
    # A page that counts in the cache (sign-in failures): a plain "try again" page.
    page = Client().post("/login/", {"username": "alice@alpha.test", "password": PASSWORD})
    assert page.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert page["Retry-After"] == "5"
    assert b"Try again in a moment" in page.content
    private_redis.start()  # back on the same port: nothing restarted on our side
    assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    assert Client().post("/login/", {"username": "alice@alpha.test", "password": PASSWORD}).status_code == 302


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    """This process's connection points at a database that cannot be reached, until the block ends."""
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent-directory/db.sqlite3"
    else:
        settings_dict["PORT"] = str(free_port())  # nothing listens there
    try:
        yield
    finally:
        connection.close()
        settings_dict.update(saved)


def test_a_database_outage_answers_503_and_the_service_recovers_by_itself(
    transactional_db: None, alice_api: APIClient, alice: Any
) -> None:
    browser = Client()
    browser.force_login(alice)
    assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    with database_unreachable():
        assert_unavailable(alice_api.get(SPECS), "database")
        page = browser.get("/")
        assert page.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert page["Retry-After"] == "5"
        assert b"Try again in a moment" in page.content
    assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    assert browser.get("/").status_code == HTTPStatus.OK
