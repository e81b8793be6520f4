"""Run every benchmark and print its figures (`make benchmark`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["import_run.py"]

if __name__ == "__main__":
    failed = 0
    for name in BENCHMARKS:
        # Each in its own process: a fresh database and Django set-up, and memory figures of its own.
        failed += subprocess.call([sys.executable, str(HERE / name), *sys.argv[1:]], cwd=HERE) != 0
    sys.exit(1 if failed else 0)
