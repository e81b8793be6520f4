from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "false", "ALLOWED_HOSTS": "example.com"}, "set SECRET_KEY"),
        ({"DEBUG": "false", "SECRET_KEY": "x" * 50}, "set ALLOWED_HOSTS"),
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
    ],
)
def test_it_refuses_to_start_misconfigured(env: dict[str, str], message: str) -> None:
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_it_starts_in_production_when_configured() -> None:
    result = start({"DEBUG": "false", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "example.com"})
    assert result.returncode == 0, result.stderr
