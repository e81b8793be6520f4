"""`make run` stops whole: Ctrl-C (SIGINT to the terminal's foreground group) or SIGTERM to make's group ends every
process the Procfile started, and `honcho` returns; a supervisor that stops the worker alone still gets the
graceful hand-back (work/management/commands/worker.py).

Each test marks the processes it starts with an environment variable and looks for it in /proc, so that a process
that left its group or lost its parent is found all the same.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks.standin import StandIn
from companies.models import Company
from tests.conftest import command_line, live_processes, proc_stat, subprocess_database_url
from tests.test_worker import FAST, classified, evaluation_of, wait_for
from work.models import WorkItem

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MARKER = "EVALSERVICE_TEST_MARKER"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")


def marked_processes(marker: str) -> dict[int, str]:
    """Live (not zombie) processes whose environment carries `marker`: pid -> command line."""
    found = {}
    needle = f"{MARKER}={marker}".encode()
    for pid, _ in live_processes():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found[pid] = command_line(pid)
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def parent(pid: int) -> int:
    return int(proc_stat(pid)[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(marker: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        MARKER: marker,
        **extra,
    }


@pytest.fixture
def reap() -> Any:
    """Whatever a test leaves behind is killed at the end, so that a failure does not leave orphans polling."""
    markers: list[str] = []
    yield markers.append
    for marker in markers:
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_make_run_s_group_stops_every_process_it_started(
    transactional_db: None, reap: Any, signum: int
) -> None:
    marker = uuid.uuid4().hex
    reap(marker)
    port = free_port()
    # What `make run` runs after migrating: honcho on the Procfile, with the venv first on the PATH. Its own session
    # stands for the terminal's foreground group (Ctrl-C) or make's group (a supervisor's SIGTERM).
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-p", str(port)],
        cwd=ROOT,
        env=environment(marker, PATH=f"{BIN}:{os.environ['PATH']}", Q_WORKERS="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(honcho.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    wait_for(lambda: any("Q Cluster" in line and "running" in line for line in output), timeout=180)
    wait_for(lambda: "Quit the server with" in "".join(output), timeout=60)
    started = marked_processes(marker)
    workers = [command for command in started.values() if command.endswith("manage.py worker")]
    assert len(workers) >= 6, started  # main, sentinel, 2 workers, monitor, pusher: the whole cluster is up

    signalled_at = time.monotonic()
    os.killpg(honcho.pid, signum)
    honcho.wait(timeout=10)  # `make run` returns
    wait_for(lambda: not marked_processes(marker), timeout=max(0.1, 10 - (time.monotonic() - signalled_at)))
    reader.join(timeout=5)
    assert not any("SIGKILL" in line for line in output), "".join(output)  # stopped by the first SIGTERM, not forced


def test_a_supervisor_stopping_the_worker_alone_gets_the_hand_back(
    start_worker: Any, standin: StandIn, company_a: Company, reap: Any
) -> None:
    # start_worker (unused to start one): the transactional database and the async queue that real workers need.
    standin.configure(latency=0.5)
    evaluation = evaluation_of(company_a, 200)
    marker = uuid.uuid4().hex
    reap(marker)
    # As honcho runs a Procfile line: a shell leads the group, the worker is only a member of it.
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f"{sys.executable} manage.py worker; true"],
        cwd=ROOT,
        env=environment(marker, Q_WORKERS="1", **FAST),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for(lambda: classified(evaluation) >= 16, timeout=60)
    main = next(pid for pid in marked_processes(marker) if parent(pid) == shell.pid)
    assert os.getpgid(main) == shell.pid  # still in the caller's group, where the caller's signals reach it

    os.kill(main, signal.SIGTERM)  # the worker alone, as systemd's KillMode=mixed or `kill PID` does
    wait_for(lambda: not marked_processes(marker), timeout=10)
    classify = WorkItem.objects.get(kind="evaluation.classify", subject_id=evaluation.id)
    assert (classify.state, classify.attempts) == ("queued", 0)  # handed back, not a failure
