"""Server time per human label in the review queue: POST a label and get the next card back (what one key press
costs with HTMX), over LABELS labels of a 2,000-sample evaluation; then the evaluation page and the statistics
endpoint with those labels (the human_review block is computed when read). Target: 300 labels an hour is one label
every 12 s, so the server's share should be a few tens of ms. Usage: python review_queue.py [LABELS] [SAMPLES]
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time

from common import setup_django
from pages import build, timed

CARD_SAMPLE = re.compile(r'name="sample" value="([0-9a-f-]{36})"')


def main(labels: int = 300, samples: int = 2_000) -> None:
    setup_django()
    from django.conf import settings
    from django.test import Client
    from django_q.conf import Conf

    from companies.services import member_ensure

    settings.ALLOWED_HOSTS = ["testserver"]
    Conf.SYNC = True  # the finalize item runs inline, so the evaluation ends SUCCEEDED (only those are reviewed)
    membership = member_ensure(company_name=f"Review {time.time()}", email="review@example.test")
    client = Client()
    client.force_login(membership.user)
    evaluation = build(samples, membership.company, membership.user)
    assert evaluation.status == "SUCCEEDED", evaluation.status
    queue = f"/evaluations/{evaluation.code}/review/?property=sentiment"
    card = client.get(queue).content.decode()
    rng = random.Random(7)
    times = []
    for _ in range(labels):
        found = CARD_SAMPLE.search(card)
        assert found, "the queue ran out"
        body = {
            "sample": found.group(1),
            "property": "sentiment",
            "value": rng.choice(["positive", "negative", "neutral"]),
        }
        started = time.perf_counter()
        response = client.post(f"/evaluations/{evaluation.code}/review/label/", body, headers={"HX-Request": "true"})
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        card = response.content.decode()
    ms = [t * 1000 for t in times]
    print(
        f"review queue: {statistics.mean(ms):.1f} ms/label (median {statistics.median(ms):.1f}, "
        f"p95 {sorted(ms)[int(0.95 * len(ms))]:.1f}, max {max(ms):.1f}) over {labels} labels of a "
        f"{samples:,}-sample evaluation (POST label + next card); "
        f"{sum(times):.1f} s of server time for all of them"
    )
    page = timed(client, f"/evaluations/{evaluation.code}/", 5)
    api = timed(client, f"/api/dataframer/evaluations/{evaluation.code}/statistics/", 5)
    print(f"review queue: with {labels} labels, evaluation page {page:.1f} ms, statistics endpoint {api:.1f} ms")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
