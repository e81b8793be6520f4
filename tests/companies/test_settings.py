from __future__ import annotations

import json
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


def secret_key_of(data_dir: Path) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-c", "from config import settings; print(settings.SECRET_KEY)"],
        cwd=ROOT,
        env={**clean, "DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_it_generates_one_secret_key_per_install(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    key = secret_key_of(first)
    assert len(key) >= 50
    assert key != secret_key_of(second)
    # The same install keeps its key across restarts, in a file only its owner can read.
    assert secret_key_of(first) == key
    assert (first / ".secret_key").read_text() == key
    assert (first / ".secret_key").stat().st_mode & 0o077 == 0
    assert "django-insecure" not in (ROOT / "config" / "settings.py").read_text()


def test_it_keeps_the_generated_key_out_of_git() -> None:
    result = subprocess.run(["git", "check-ignore", "-q", ".secret_key"], cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == 0


def production_settings(env: dict[str, str]) -> dict[str, object]:
    """The settings a production process would load with `env`, read in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}}
    names = ["SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "TRUSTED_PROXIES"]
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}} "
        "| {'NUM_PROXIES': settings.REST_FRAMEWORK['NUM_PROXIES']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false", "SECRET_KEY": "x" * 50,
             "ALLOWED_HOSTS": "example.com", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_it_reads_proxy_and_tls_settings_from_the_environment() -> None:
    assert production_settings({}) == {
        "SECURE_PROXY_SSL_HEADER": None,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "TRUSTED_PROXIES": 0,
        "NUM_PROXIES": 0,
    }
    behind_tls = {
        "BEHIND_TLS_PROXY": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "TRUSTED_PROXIES": "2",
    }
    assert production_settings(behind_tls) == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "TRUSTED_PROXIES": 2,
        "NUM_PROXIES": 2,
    }
