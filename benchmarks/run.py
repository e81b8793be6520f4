"""Run every benchmark and print its figures (`make benchmark`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Each in its own process: a fresh database and Django set-up, and memory figures of its own.
BENCHMARKS = [
    ["import_run.py"],
    ["seed_upload.py"],
    ["spec_from_seed.py"],
    ["pages.py"],
    ["review_queue.py", "300", "2000"],
    ["judge_throughput.py", "1000", "0.1", "8"],
    ["judge_throughput.py", "10000", "0.1", "8"],
    ["judge_throughput.py", "20000", "0.1", "8"],
    ["fixed_costs.py", "200", "0.2", "5"],
    ["sdk_floor.py", "200", "0.2", "3"],
    ["run_generation.py", "2000", "0.1", "8"],
    ["batch.py", "10000", "30"],
    ["batch.py", "1000", "5", "generation"],
    ["guardrail_costs.py"],
    ["noisy_neighbour.py", "20"],
    ["embedded_judge.py"],
    ["estimator_coverage.py"],
    ["offline_guardrails.py"],
    ["anonymization.py"],
    ["monitor_events.py", "200", "0.1"],
    ["red_team.py", "3", "0.05", "8"],
]

if __name__ == "__main__":
    failed = sum(
        subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE) != 0 for args in BENCHMARKS
    )
    sys.exit(1 if failed else 0)
