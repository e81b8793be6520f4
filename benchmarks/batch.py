"""Batch mode against interactive mode (issue #26): the same N-sample evaluation judged both ways (KIND evaluation),
or the same N-sample run generated both ways (KIND generation), against the stand-in provider (standin.py, which
plays the OpenAI Batch API), each in its own company so that neither reads the other's result cache.

Prints the cost of each (the ledger's sum) and their ratio (target: batch ≤ 0.52 × interactive), and the worker's
CPU time and memory while the batch is in progress at the provider (target: flat: the item waits in the queue and
no worker holds it). The interactive job runs in this process; the batch one in a real `manage.py worker`.
Usage: python batch.py [N] [BATCH_SECONDS] [KIND]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import ROOT, STANDIN_MODEL, measure_against_standin, setup_django, standin_server
from judge_throughput import rows, spec_yaml  # type: ignore[import-not-found]

PRICES = {"input": 3, "output": 15, "cache_read": 0.3}  # USD per million tokens (a Sonnet-class judge)


def group_usage(pgid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and resident MB of every process in the group (the worker cluster)."""
    ticks, pages = 0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
            pages += int(fields[21])  # rss
    return ticks / os.sysconf("SC_CLK_TCK"), pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(n: int = 10_000, batch_seconds: float = 30.0, kind: str = "evaluation") -> dict[str, Any]:
    with standin_server(0.005) as url:
        return run(n, batch_seconds, url, kind)


def run(n: int, batch_seconds: float, url: str, kind: str = "evaluation") -> dict[str, Any]:
    setup_django()
    from django.conf import settings
    from django.db.models import Sum
    from django_q.conf import Conf

    from companies.services import member_ensure
    from evaluations import services
    from llm.models import JudgeCall
    from runs.generation import run_generate
    from runs.services import run_import, spec_create

    membership = measure_against_standin(url, 8)
    entry = settings.JUDGE_MODELS[STANDIN_MODEL] | {"prices": PRICES, "batch": True}
    settings.JUDGE_MODELS[STANDIN_MODEL] = entry
    data = rows(n) if kind == "evaluation" else []

    def evaluate(company: Any, *, batch: bool) -> Any:
        spec = spec_create(company=company, created_by=None, name="bench", content_yaml=spec_yaml())
        if kind == "generation":
            return run_generate(
                company=company, created_by=None, spec=spec, number_of_samples=n, generation_model=STANDIN_MODEL,
                batch=batch,
            )  # fmt: skip
        run_ = run_import(company=company, created_by=None, spec=spec, rows=data)
        return services.evaluation_create(
            company=company, created_by=None, run=run_, model_name=STANDIN_MODEL, batch=batch
        )

    def error(job: Any) -> str:
        return str(job.error_message if kind == "evaluation" else job.runtime_params.get("error", ""))

    # 1. Interactive, in this process (tasks run inline).
    started = time.perf_counter()
    interactive = evaluate(membership.company, batch=False)
    interactive_wall = time.perf_counter() - started
    interactive.refresh_from_db()
    assert interactive.status == "SUCCEEDED", error(interactive)

    # 2. Batch, in a real worker: the batch stays in progress at the provider for `batch_seconds`.
    httpx.post(f"{url}/_config", json={"batch_seconds": batch_seconds})
    models_file = Path(tempfile.mkdtemp(prefix="bench-models-")) / "models.json"
    models_file.write_text(json.dumps({STANDIN_MODEL: entry}))
    Conf.SYNC = False  # this process enqueues; the worker runs
    other = member_ensure(company_name=f"Bench batch {time.time()}", email="bench-batch@example.test").company
    batched = evaluate(other, batch=True)
    env = os.environ | {
        "JUDGE_MODELS_FILE": str(models_file),
        "Q_WORKERS": "1",
        "JUDGE_BATCH_POLL_SECONDS": "2",
        "JUDGE_BATCH_POLL_MAX_SECONDS": "4",
        "WORK_RECONCILE_SECONDS": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker"], cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = time.perf_counter()
    samples: list[tuple[float, float, float]] = []  # (time, cpu s, rss MB) while the batch is in progress
    try:
        while True:
            stats = httpx.get(f"{url}/_stats", timeout=120).json()["batches"]
            if stats.get("created") and not stats.get("ended"):
                samples.append((time.perf_counter(), *group_usage(worker.pid)))
            batched.refresh_from_db()
            if batched.status in {"SUCCEEDED", "FAILED"}:
                break
            time.sleep(1)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    batch_wall = time.perf_counter() - started
    assert batched.status == "SUCCEEDED", error(batched)

    def cost(job: Any) -> float:
        calls = JudgeCall.objects.filter(**{kind if kind == "evaluation" else "run": job})
        return float(calls.aggregate(c=Sum("cost_usd"))["c"] or 0)

    waited = samples[-1][0] - samples[0][0] if len(samples) > 1 else 0.0
    cpu = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0.0
    rss = [s[2] for s in samples]
    figures: dict[str, Any] = {
        "kind": kind,
        "samples": n,
        "interactive_cost_usd": cost(interactive),
        "batch_cost_usd": cost(batched),
        "batch_over_interactive": cost(batched) / cost(interactive),
        "interactive_wall_s": interactive_wall,
        "batch_wall_s": batch_wall,
        "batches_created": float(stats.get("created", 0)),
        "waited_s": waited,
        "worker_cpu_s_while_waiting": cpu,
        "worker_cpu_share_while_waiting": cpu / waited if waited else 0.0,
        "worker_rss_mb_min": min(rss, default=0.0),
        "worker_rss_mb_max": max(rss, default=0.0),
    }
    print(
        f"batch: {kind} N={n}: interactive ${figures['interactive_cost_usd']:.4f} ({interactive_wall:.1f} s), batch "
        f"${figures['batch_cost_usd']:.4f} ({batch_wall:.1f} s, {stats.get('created')} batch(es)): "
        f"x{figures['batch_over_interactive']:.3f}; while the batch ran ({waited:.0f} s) the worker used "
        f"{cpu:.2f} s of CPU ({100 * figures['worker_cpu_share_while_waiting']:.1f}%), RSS "
        f"{figures['worker_rss_mb_min']:.0f}-{figures['worker_rss_mb_max']:.0f} MB"
    )
    return figures


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 10_000, float(args[1]) if len(args) > 1 else 30.0, *args[2:3])
