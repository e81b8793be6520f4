"""Does one company's flood slow another's requests? Company B's API latency alone, then while company A floods.

Two set-ups. `gunicorn`: the web server as README "Running at scale" starts it (gunicorn, 4 sync workers), the
default settings (per-company request quotas on), over SQLite or whatever DATABASE_URL and REDIS_URL say (the quotas
are counted per process without Redis); A runs 12 clients: four post 5,000-sample imports back to back (as many as
the web server has workers; each takes a worker for a second or more), eight hammer POST /evaluate and reads (most
get 429 once A's quota of API_REQUESTS_PER_MINUTE or API_CONCURRENT_REQUESTS_PER_COMPANY is reached).
`default`: what `make run` serves (runserver, one process, threads) on the default SQLite file and per-process
cache; A keeps two 20,000-sample imports in flight back to back (API_CONCURRENT_REQUESTS_PER_COMPANY allows two).
In both, B runs 2 clients: list runs, read an evaluation, create a guardrail evaluation (a write).
Prints B's p50 / p95 / max per phase (and of its POST /evaluate alone) and what A got. Nothing
consumes the queue: no worker runs.

    python noisy_neighbour.py [SECONDS] [gunicorn|default]      # per phase, default 20 and gunicorn
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import Counter

import httpx
from common import setup_django, web_server

EVALUATE_BODY = {"model_input": {"user_prompt": "Hi?"}, "model_output": "Hello.", "run_mode": "economy"}


def company(name: str) -> tuple[str, str, str]:
    """(API key secret, spec id, evaluation id) of a new company with a 20-sample run evaluated once."""
    from companies.models import ApiKey
    from companies.services import member_ensure
    from evaluations.models import Evaluation
    from runs.services import run_import, spec_create
    from tests.conftest import SPEC_YAML, make_rows

    membership = member_ensure(company_name=f"{name} {time.time()}", email=f"{name.lower()}@example.test")
    spec = spec_create(company=membership.company, created_by=None, name="bench", content_yaml=SPEC_YAML)
    run = run_import(company=membership.company, created_by=None, spec=spec, rows=make_rows(20))
    evaluation = Evaluation.objects.create(
        company=membership.company, run=run, requested_model="local/embeddings", total_samples=20
    )
    _key, secret = ApiKey.issue(company=membership.company, user=membership.user)
    return secret, str(spec.code), str(evaluation.code)


def b_client(url: str, secret: str, evaluation: str, until: float, latencies: list[float], writes: list[float]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as http:
        step = 0
        while time.monotonic() < until:
            started = time.perf_counter()
            if step % 3 == 0:
                response = http.get("/api/dataframer/runs/")
            elif step % 3 == 1:
                response = http.get(f"/api/dataframer/evaluations/{evaluation}/")
            else:
                response = http.post("/evaluate", json=EVALUATE_BODY)
                writes.append(time.perf_counter() - started)
            latencies.append(time.perf_counter() - started)
            assert response.status_code < 300, (response.status_code, response.text[:200])
            step += 1
            time.sleep(0.4)  # a program's pace: B stays inside its key's quota (300 a minute) over both phases


def a_client(url: str, secret: str, spec: str, number: int, until: float, statuses: Counter[int], setup: str) -> None:
    from tests.conftest import make_rows

    rows = make_rows(20_000 if setup == "default" else 5000)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=120) as http:
        while time.monotonic() < until:
            if number < 4:
                response = http.post("/api/dataframer/runs/import/", json={"spec_id": spec, "samples": rows})
            elif number % 2:
                response = http.post("/evaluate", json=EVALUATE_BODY)
            else:
                response = http.get("/api/dataframer/runs/")
            statuses[response.status_code] += 1


def phase(
    url: str, b: tuple[str, str, str], a: tuple[str, str, str] | None, seconds: float, setup: str
) -> tuple[list[float], list[float]]:
    until = time.monotonic() + seconds
    latencies: list[float] = []
    writes: list[float] = []
    a_statuses: Counter[int] = Counter()
    threads = [threading.Thread(target=b_client, args=(url, b[0], b[2], until, latencies, writes)) for _ in range(2)]
    if a is not None:
        clients = 2 if setup == "default" else 12  # default: two importers only
        threads += [
            threading.Thread(target=a_client, args=(url, a[0], a[1], n, until, a_statuses, setup))
            for n in range(clients)
        ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if a is not None:
        print(f"  A's answers: {dict(sorted(a_statuses.items()))}")
    return latencies, writes


def backend() -> str:
    from django.conf import settings
    from django.db import connection

    return f"{connection.vendor}, cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}"


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    return (
        statistics.median(ordered) * 1000,
        ordered[int(0.95 * (len(ordered) - 1))] * 1000,
        ordered[-1] * 1000,
    )


SERVERS = {
    "gunicorn": [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", "127.0.0.1:{port}", "--workers", "4"],
    # The Procfile's web process, which `make run` starts.
    "default": [sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"],
}


def main(seconds: float = 20.0, setup: str = "gunicorn") -> None:
    setup_django()
    b = company("B")
    a = company("A")
    with web_server(SERVERS[setup], {"LOG_LEVEL": "WARNING"}) as (url, _server):
        print(f"noisy_neighbour: {seconds:.0f} s per phase, {setup} ({' '.join(SERVERS[setup][1:3])}), {backend()}")
        for name, a_floods in (("B alone", None), ("B while A floods", a)):
            latencies, writes = phase(url, b, a_floods, seconds, setup)
            every, posts = summary(latencies), summary(writes)
            print(f"  {name}: p50 {every[0]:.0f} ms, p95 {every[1]:.0f} ms, max {every[2]:.0f} ms")
            print(f"    its POST /evaluate: p50 {posts[0]:.0f} ms, p95 {posts[1]:.0f} ms, max {posts[2]:.0f} ms")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0, sys.argv[2] if len(sys.argv) > 2 else "gunicorn")
