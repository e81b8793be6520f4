"""Load while background work runs (issue 11): 20 API clients for 30 s, a burst of large imports and a real worker
writing results, all against one live server. On SQLite (CI's first leg) this is the "database is locked" test:
short write transactions and IMMEDIATE mode must keep every answer out of the 5xx range."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
from django.test import override_settings

from companies.models import ApiKey, Company
from evaluations.models import Evaluation
from tests.conftest import SPEC_YAML, make_rows
from tests.test_worker import FAST, evaluation_of, wait_for

CLIENTS = 20
SECONDS = 30


# The per-company request rate (600/min by default) and requests at once (2) would answer most of this load 429:
# turned off here, so the database takes the whole load (tests/companies/test_quotas.py tests the throttles).
@override_settings(
    API_REQUESTS_PER_MINUTE=0,
    API_REQUESTS_PER_MINUTE_PER_KEY=0,
    API_CONCURRENT_REQUESTS_PER_COMPANY=0,
    MAX_EVALUATIONS_IN_FLIGHT=0,
)
def test_twenty_clients_and_big_imports_during_an_evaluation_get_no_5xx(
    live_server: Any, start_worker: Any, standin: Any, company_a: Company, alice: Any
) -> None:
    standin.configure(latency=0.05)
    _key, secret = ApiKey.issue(company=company_a, user=alice, name="load")
    headers = {"Authorization": f"Bearer {secret}"}
    evaluation = evaluation_of(company_a, 2000)  # writes results the whole time
    start_worker(**FAST)
    wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).status == "PROCESSING", timeout=30)
    spec_id = httpx.post(
        f"{live_server.url}/api/dataframer/specs/",
        headers=headers,
        json={"name": "load", "content_yaml": SPEC_YAML},
        timeout=30,
    ).json()["id"]
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def client(number: int) -> None:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as http:
            while time.monotonic() < stop:
                if number < 3:  # a burst of large imports, one after the other
                    response = http.post(
                        "/api/dataframer/runs/import/",
                        json={"name": f"big {number}", "spec_id": spec_id, "samples": make_rows(2000)},
                    )
                elif number % 3 == 0:
                    response = http.post(
                        "/evaluate",
                        json={"model_input": {"user_prompt": "Hi?"}, "model_output": "Hello.", "run_mode": "economy"},
                    )
                elif number % 3 == 1:
                    response = http.get(f"/api/dataframer/evaluations/{evaluation.code}/")
                else:
                    response = http.get("/api/dataframer/runs/")
                with lock:
                    statuses[response.status_code] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server_errors = {status: n for status, n in statuses.items() if status >= 500}
    assert sum(statuses.values()) > 200, statuses  # the load was real
    assert not server_errors, statuses
    print(f"\nload: {sum(statuses.values())} requests in {SECONDS} s by {CLIENTS} clients: {dict(statuses)}")
