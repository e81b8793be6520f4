"""The providers' SDKs are imported by the processes that call a provider, not by every Django process
(llm/providers.py import_sdks): a management command starts without them, the web process and a worker import them
at start, the worker before its cluster forks so that no claimed item pays for the import before its first heartbeat.
Each check runs in a fresh interpreter: this one has imported both long ago."""

from __future__ import annotations

import subprocess
import sys

import pytest

SDKS = "('anthropic' in sys.modules, 'openai' in sys.modules)"
WORKER = f"""
import sys, django
django.setup()
from work.management.commands import worker

class Forked(Exception):
    pass

class Cluster:  # stands in for django-q2's: records what the cluster would fork with, and stops there
    def __init__(self):
        print({SDKS})
        raise Forked

worker.Cluster = Cluster
try:
    worker.Command().handle()
except Forked:
    pass
"""


def imported(script: str) -> str:
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return shown.stdout.strip()


@pytest.mark.parametrize(
    ("process", "script", "expected"),
    [
        ("a management command", f"import sys, django; django.setup(); print({SDKS})", "(False, False)"),
        ("the web process", f"import sys, config.wsgi; print({SDKS})", "(True, True)"),
        ("a worker, before its cluster forks", WORKER, "(True, True)"),
    ],
)
def test_the_sdks_are_imported_by_the_processes_that_call_providers(process: str, script: str, expected: str) -> None:
    assert imported(script) == expected, process
