"""Shared set-up for benchmarks: a throwaway database (SQLite file unless DATABASE_URL says otherwise)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


@contextmanager
def standin_server(latency: float) -> Iterator[str]:
    """The stand-in provider (standin.py) with fixed latency, in its own process so that its threads do not share
    the GIL with the worker being measured. Yields its URL."""
    standin = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "standin.py"), "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert standin.stdout is not None
        url = standin.stdout.readline().strip()  # the stand-in prints its URL once it is listening
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        standin.terminate()
        standin.wait()


@contextmanager
def web_server(command: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the web server `command` (with `{port}` in it) on a free port, wait until it answers, yield its URL and
    process, and stop it at the end."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [part.format(port=port) for part in command],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/schema/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=10)


STANDIN_MODEL = "bench/standin"


def measure_against_standin(url: str, concurrency: int) -> Any:
    """Make this process the worker being measured (tasks run in it) and point the model STANDIN_MODEL at the
    stand-in at `url`; return a fresh benchmark company's membership. Call after setup_django()."""
    from django.conf import settings
    from django_q.conf import Conf

    from companies.services import member_ensure

    Conf.SYNC = True
    settings.JUDGE_CONCURRENCY = concurrency
    settings.JUDGE_MODELS[STANDIN_MODEL] = {
        "provider": "openai", "model": "standin", "base_url": f"{url}/v1",
        "prices": {"input": 2.5, "output": 15, "cache_read": 0.25},
    }  # fmt: skip
    return member_ensure(company_name=f"Bench {time.time()}", email="bench@example.test")
