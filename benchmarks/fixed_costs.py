"""The interactive path's fixed costs (issue #26): a small evaluation through a real `manage.py worker` (the default
settings: Q_WORKERS, broker, lease, concurrency) against the stand-in at latency L, several times.

Prints, per repetition and as medians: the total wall (the API's answer to SUCCEEDED) against N·L/c; the time from
the API's answer to the first provider request ("head"); the time from the last classification answer to SUCCEEDED
("tail", which holds the explanation's own provider call, printed apart). Target: wall within 0.5 s of N·L/c.
The work items' rows say where the head and the tail go: each broker hop (an item created to its claim) and each
handler's own time. Runs on SQLite + the ORM broker by default; with DATABASE_URL and REDIS_URL set, on those.

Usage: python fixed_costs.py [N] [LATENCY_SECONDS] [REPETITIONS]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, STANDIN_MODEL, measure_against_standin, setup_django
from judge_throughput import rows, spec_yaml  # type: ignore[import-not-found]
from standin import StandIn  # type: ignore[import-not-found]


def _s(moment: Any) -> float:
    return float(moment.timestamp())


def main(n: int = 200, latency: float = 0.2, repetitions: int = 5) -> dict[str, float]:
    with StandIn(latency=latency) as standin:  # in this process: its arrival times are ours to read
        return run(n, latency, repetitions, standin)


def run(n: int, latency: float, repetitions: int, standin: StandIn) -> dict[str, float]:
    setup_django()
    from django.conf import settings
    from django.db import transaction
    from django_q.conf import Conf

    from evaluations import services
    from evaluations.models import Evaluation
    from llm.models import JudgeCall
    from runs.services import run_import, spec_create
    from work.models import WorkItem

    concurrency = settings.JUDGE_CONCURRENCY  # the worker's, as deployed (the default unless the env says else)
    membership = measure_against_standin(standin.url, concurrency)
    company = membership.company
    Conf.SYNC = False  # this process is the API: it enqueues, the worker runs
    models_file = Path(tempfile.mkdtemp(prefix="bench-models-")) / "models.json"
    models_file.write_text(json.dumps({STANDIN_MODEL: settings.JUDGE_MODELS[STANDIN_MODEL]}))
    spec = spec_create(company=company, created_by=None, name="bench", content_yaml=spec_yaml())
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker"], cwd=ROOT, env=os.environ | {"JUDGE_MODELS_FILE": str(models_file)},
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    to_wall = time.time() - time.monotonic()  # the stand-in's arrival times are monotonic, in this process

    def evaluate(samples: int) -> tuple[Any, float]:
        # Distinct contents each time: no result cache hit, every sample is a provider call.
        data = [row | {"content": f"{row['content']} {time.time()}"} for row in rows(samples)]
        run_ = run_import(company=company, created_by=None, spec=spec, rows=data)
        standin.reset()
        with transaction.atomic():  # as the API's view: the start item is sent once this commits
            evaluation = services.evaluation_create(
                company=company, created_by=None, run=run_, model_name=STANDIN_MODEL
            )
        answered = time.time()
        deadline = time.monotonic() + 120
        while Evaluation.objects.filter(pk=evaluation.pk, status__in=["PENDING", "PROCESSING"]).exists():
            assert time.monotonic() < deadline, "the evaluation did not finish within 120 s"
            time.sleep(0.05)
        evaluation.refresh_from_db()
        assert evaluation.status == "SUCCEEDED", evaluation.error_message
        return evaluation, answered

    results: list[dict[str, float]] = []
    try:
        evaluate(16)  # warm-up: a deployed worker has imported everything and made its first call long ago
        for _ in range(repetitions):
            evaluation, answered = evaluate(n)
            first_request = min(standin.state.arrivals) + to_wall
            calls = JudgeCall.objects.filter(evaluation=evaluation)
            classified = list(calls.filter(purpose="classify"))
            last_answer = max(_s(c.created_at) + c.latency_ms / 1000 for c in classified)
            explain = calls.filter(purpose="explain").first()
            items = {i.kind.split(".")[1]: i for i in WorkItem.objects.for_subject("evaluation.", evaluation.id)}
            start, classify, finalize = items["start"], items["classify"], items["finalize"]
            succeeded = _s(evaluation.completed_at)
            figure = {
                "wall_s": succeeded - answered,
                "head_s": first_request - answered,
                "judging_s": last_answer - first_request,  # the window of c calls itself, for N·L/c
                # Each call as the worker timed it (SDK, HTTP and the stand-in included): judging over N·mean/c is
                # the time no call was in flight in a slot (our writes and hand-offs between calls).
                "call_mean_s": statistics.mean(c.latency_ms for c in classified) / 1000,
                "tail_s": succeeded - last_answer,
                "explain_call_s": explain.latency_ms / 1000 if explain else 0.0,
                "api_to_start_claimed_s": _s(start.started_at) - answered,
                "start_handler_s": _s(start.finished_at) - _s(start.started_at),
                "start_done_to_classify_claimed_s": _s(classify.started_at) - _s(start.finished_at),
                "classify_claimed_to_first_request_s": first_request - _s(classify.started_at),
                "last_answer_to_classify_done_s": _s(classify.finished_at) - last_answer,
                "classify_done_to_finalize_claimed_s": _s(finalize.started_at) - _s(classify.finished_at),
                "finalize_handler_s": _s(finalize.finished_at) - _s(finalize.started_at),
            }
            results.append(figure)
            print(
                "fixed_costs: " + ", ".join(f"{k.removesuffix('_s')} {v * 1000:.0f} ms" for k, v in figure.items()),
                flush=True,
            )
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    ideal = n * latency / concurrency
    medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
    broker = "Redis" if os.environ.get("REDIS_URL") else "the ORM broker"
    database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
    print(
        f"fixed_costs: N={n} L={latency * 1000:.0f} ms c={concurrency}, {database} + {broker}, median of "
        f"{repetitions}: wall {medians['wall_s']:.2f} s vs N·L/c {ideal:.2f} s (+{medians['wall_s'] - ideal:.2f} s, "
        f"max +{max(r['wall_s'] for r in results) - ideal:.2f} s); API answer to first provider request "
        f"{medians['head_s'] * 1000:.0f} ms; judging {medians['judging_s']:.2f} s; last answer to SUCCEEDED {medians['tail_s'] * 1000:.0f} ms (of which "
        f"the explanation's call {medians['explain_call_s'] * 1000:.0f} ms)"
    )
    return medians | {"ideal_s": ideal, "over_ideal_s": medians["wall_s"] - ideal}


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 200, float(args[1]) if len(args) > 1 else 0.2, int(args[2]) if len(args) > 2 else 5)
