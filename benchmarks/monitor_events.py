"""Monitor events per second through one worker process (`manage.py worker`, Q_WORKERS=1) with a stand-in judge at a
fixed latency L, against the ideal.

Each event is one guardrail evaluation graded in economy mode: one provider call for all its metrics. One worker runs
one work item at a time, so the ideal is 1/L events per second; the gap is our overhead per event (claim, lease,
ledger, result writes, dispatch). The events are created first (as POST /monitor/{id}/events does), then the worker
starts; the rate is measured from the first evaluation's start to the last one's end, as the database records them.
Usage: python monitor_events.py [N] [LATENCY_SECONDS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, STANDIN_MODEL, setup_django, standin_server

METRICS = ["correctness", "completeness", "instruction_adherence", "comprehensive_safety"]


def main(n: int = 200, latency: float = 0.1) -> dict[str, float]:
    with standin_server(latency) as url:
        return run(n, latency, url)


def run(n: int, latency: float, url: str) -> dict[str, float]:
    models = Path(tempfile.mkdtemp(prefix="bench-")) / "models.json"
    models.write_text(json.dumps({STANDIN_MODEL: {"provider": "openai", "model": "standin", "base_url": f"{url}/v1"}}))
    modes = {"economy": {"judges": [STANDIN_MODEL], "call_per_metric": False, "max_tokens": 4096}}
    os.environ["JUDGE_MODELS_FILE"] = str(models)
    os.environ["GUARDRAIL_RUN_MODES_JSON"] = json.dumps(modes)
    setup_django()
    from django.db.models import Max, Min

    from companies.services import member_ensure
    from guardrails.models import GuardrailEvaluation
    from guardrails.monitors import monitor_create, monitor_event_create

    membership = member_ensure(company_name=f"Bench {time.time()}", email="bench@example.test")
    monitor = monitor_create(company=membership.company, created_by=None, name="bench")
    for i in range(n):
        monitor_event_create(
            monitor=monitor,
            created_by=None,
            model_input={"system_prompt": "You are a support agent.", "user_prompt": f"Question {i}?"},
            model_output=f"Answer {i}.",
            guardrail_metrics=METRICS,
            run_mode="economy",
        )
    evaluations = GuardrailEvaluation.objects.filter(monitor_event__monitor=monitor)
    env = {**os.environ, "Q_WORKERS": "1", "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while evaluations.exclude(status="completed").exists():
            if time.perf_counter() - started > 600 + n * latency * 10:
                raise SystemExit("monitor_events: the worker did not finish in time")
            time.sleep(0.2)  # the worker's start-up (seconds on a loaded machine) is not counted: see below
    finally:
        worker.terminate()
        worker.wait()
    span = evaluations.aggregate(first=Min("start_timestamp"), last=Max("end_timestamp"))
    busy = (span["last"] - span["first"]).total_seconds()
    # Where the time goes: grading (claim to completion, the provider call included) against the rest (finishing
    # the item, dispatching the next, the broker handing it to the worker process).
    grading = 0.0
    for start, end in evaluations.values_list("start_timestamp", "end_timestamp"):
        assert start is not None  # every one completed
        assert end is not None
        grading += (end - start).total_seconds() / n
    figures = {
        "events": n,
        "latency_s": latency,
        "events_per_s": n / busy,
        "ideal_events_per_s": 1 / latency,
        "overhead_ms_per_event": (busy / n - latency) * 1000,
        "grading_ms_per_event": grading * 1000,
    }
    print(
        f"monitor_events: N={n} L={latency * 1000:.0f} ms, one worker: {figures['events_per_s']:.2f} events/s vs "
        f"ideal {figures['ideal_events_per_s']:.2f} ({figures['events_per_s'] * latency:.0%} of ideal; "
        f"{busy / n * 1000:.0f} ms per event: grading {figures['grading_ms_per_event']:.0f} ms from claim to completion, "
        f"the {latency * 1000:.0f} ms call included; between items "
        f"{busy / n * 1000 - figures['grading_ms_per_event']:.0f} ms)"
    )
    return figures


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 200, float(args[1]) if len(args) > 1 else 0.1)
