"""The providers' SDKs are imported by the processes that call a provider, not by every Django process
(llm/providers.py import_sdks): a management command starts without them; the web process and a worker import, at
start, the SDK of each provider they have credentials for (a key, or a model with its own base_url), the worker
before its cluster forks so that no claimed item pays for the import before its first heartbeat; an SDK without
credentials is never imported. Each check runs in a fresh interpreter: this one has imported both long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SDKS = "('anthropic' in sys.modules, 'openai' in sys.modules)"
COMMAND = f"import sys, django; django.setup(); print({SDKS})"
WEB = f"import sys, config.wsgi; print({SDKS})"
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
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-test", "OPENAI_API_KEY": "sk-test"}
ANTHROPIC = {"ANTHROPIC_API_KEY": "sk-ant-test"}
LOCAL_SERVER = "local server"  # a JUDGE_MODELS_FILE with an OpenAI-compatible server's model, no key


def imported(script: str, env: dict[str, str]) -> str:
    # The base environment has no provider credentials (tests/conftest.py _no_real_providers removes them).
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return shown.stdout.strip()


@pytest.mark.parametrize(
    ("process", "script", "credentials", "expected"),
    [
        ("a management command", COMMAND, KEYS, "(False, False)"),
        ("the web process", WEB, KEYS, "(True, True)"),
        ("the web process", WEB, {}, "(False, False)"),
        ("a worker, before its cluster forks", WORKER, KEYS, "(True, True)"),
        ("a worker, before its cluster forks", WORKER, ANTHROPIC, "(True, False)"),
        ("a worker, before its cluster forks", WORKER, LOCAL_SERVER, "(False, True)"),
    ],
    ids=["command", "web-both-keys", "web-no-credentials", "worker-both-keys", "worker-anthropic", "worker-local"],
)
def test_a_process_imports_the_sdks_of_the_providers_it_can_call(
    process: str, script: str, credentials: dict[str, str] | str, expected: str, tmp_path: Path
) -> None:
    if credentials == LOCAL_SERVER:
        models = tmp_path / "models.json"
        entry = {"provider": "openai", "model": "qwen3", "base_url": "http://127.0.0.1:9/v1"}
        models.write_text(json.dumps({"local/qwen3": entry}))
        credentials = {"JUDGE_MODELS_FILE": str(models)}
    assert isinstance(credentials, dict)
    assert imported(script, os.environ | credentials) == expected, process
