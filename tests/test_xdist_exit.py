"""`make test`'s xdist processes end with os._exit once they have reported (tests/conftest.py pytest_unconfigure): a
failing test must still be reported and fail the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_failing_test_still_fails_a_run_whose_processes_end_with_os_exit(tmp_path: Path) -> None:
    tests = tmp_path / "test_one.py"
    tests.write_text("def test_fails():\n    assert 1 == 2\n\n\ndef test_passes():\n    pass\n")
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_unconfigure  # noqa: F401\n")
    # Not this process's xdist identity: the run below is a run of its own, with one worker process.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "pyproject.toml", "-n", "1", "-p", "no:cacheprovider", str(tests)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout
    assert "FAILED" in run.stdout
    assert "test_fails" in run.stdout
    assert "crashed" not in run.stdout, run.stdout
    assert "Not properly terminated" not in run.stdout, run.stdout
