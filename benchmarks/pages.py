"""Server time of the evaluation page and its sample-table partial: a 20,000-sample evaluation vs a 100-sample one.

Pages aggregate in SQL and page the sample table, so the ratio should stay near 1.
The classifications are written directly (this measures pages, not judging). Usage: python pages.py [REPEATS]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid
from typing import Any

from common import setup_django


def build(n: int, company: Any, user: Any) -> Any:
    from evaluations import services
    from evaluations.models import Evaluation, SampleClassification
    from runs.services import run_import, spec_create
    from tests.conftest import SPEC_YAML, make_rows

    spec = spec_create(company=company, created_by=user, name=f"pages-{n}-{time.time()}", content_yaml=SPEC_YAML)
    run = run_import(company=company, created_by=user, spec=spec, rows=make_rows(n))
    evaluation = Evaluation.objects.create(
        company=company, run=run, requested_model="local/embeddings", model_used="local/embeddings",
        total_samples=n, status=Evaluation.Status.PROCESSING,
    )  # fmt: skip
    rng = random.Random(n)
    SampleClassification.objects.bulk_create(
        (
            SampleClassification(
                evaluation=evaluation,
                sample=sample,
                classifications={
                    "sentiment": rng.choice(["positive", "negative", "neutral"]),
                    "priority": rng.choice(["high", "medium", "low"]),
                },
            )
            for sample in run.samples.only("id").iterator()
        ),
        batch_size=1000,
    )
    services.evaluation_finalize_enqueue(evaluation=evaluation)  # runs inline: Conf.SYNC in main()
    evaluation = Evaluation.objects.get(pk=evaluation.pk)
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.error_message
    return evaluation


def rejudged(evaluation: Any, seed: int) -> Any:
    """A finished copy of `evaluation` (same run) whose judge gave another value to one sample in 50."""
    from evaluations.models import Evaluation, SampleClassification

    copy = Evaluation.objects.get(pk=evaluation.pk)
    copy.pk = copy.id = None
    copy.code = uuid.uuid4()
    copy.save()
    flip = {"positive": "negative", "negative": "neutral", "neutral": "positive"}
    rows = SampleClassification.objects.filter(evaluation=evaluation).values_list("sample_id", "classifications")
    SampleClassification.objects.bulk_create(
        (
            SampleClassification(
                evaluation=copy,
                sample_id=sample_id,
                classifications=(judged or {}) | {"sentiment": flip[(judged or {})["sentiment"]]}
                if (sample_id + seed) % 50 == 0
                else judged,
            )
            for sample_id, judged in rows.iterator()
        ),
        batch_size=1000,
    )
    return copy


def timed(client: object, url: str, repeats: int, **headers: str) -> float:
    client.get(url, headers=headers)  # type: ignore[attr-defined]  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url, headers=headers)  # type: ignore[attr-defined]
        if getattr(response, "streaming", False):  # a CSV export: the time to read it whole
            b"".join(response.streaming_content)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples) * 1000


def main(repeats: int = 15) -> None:
    setup_django()
    from django.conf import settings
    from django.test import Client

    from companies.services import member_ensure

    settings.ALLOWED_HOSTS = ["testserver"]
    from django_q.conf import Conf

    # Work items run inline (as in the tests), so the finalize below really finishes the evaluations: without it
    # they stayed PROCESSING and the pages measured were those of a running evaluation.
    Conf.SYNC = True
    membership = member_ensure(company_name=f"Pages {time.time()}", email="pages@example.test")
    client = Client()
    client.force_login(membership.user)
    results = {}
    for n in (100, 20_000):
        evaluation = build(n, membership.company, membership.user)
        url = f"/evaluations/{evaluation.code}/"
        results[n] = (
            timed(client, url, repeats),
            timed(client, f"{url}?property=sentiment&assigned=negative&page=3", repeats, HX_Request="true"),
            timed(client, f"{url}?mismatch=1&page=2", repeats, HX_Request="true"),
            # A text search matches a third of the samples (content) and is counted in SQL.
            timed(client, f"{url}?q=furious&page=2", repeats, HX_Request="true"),
            timed(client, f"{url}?q=no+such+words", repeats, HX_Request="true"),
            timed(client, f"{url}?sort=identifier&size=100", repeats, HX_Request="true"),
            timed(client, f"{url}?sort=agreement&size=100", repeats, HX_Request="true"),
        )
        if n == 20_000:
            # Compare: the same run judged again (copies of the rows, one value in 50 changed), 2 and 3 at once.
            others = [rejudged(evaluation, k) for k in (1, 2)]
            compare_url = "/evaluations/compare/?" + "&".join(f"e={e.code}" for e in [evaluation, *others])
            compare_times = (
                timed(client, compare_url.rsplit("&", 1)[0], max(3, repeats // 3)),
                timed(client, compare_url, max(3, repeats // 3)),
                # The per-sample diff of both against the baseline, every row, as CSV.
                timed(client, compare_url.replace("/compare/?", "/compare/diff.csv?"), max(3, repeats // 3)),
            )
    names = [
        "evaluation page",
        "sample-table partial (filtered)",
        "sample-table partial (mismatches)",
        "sample-table search (a third match)",
        "sample-table search (no match)",
        "sample-table sorted by identifier, 100 a page",
        "sample-table sorted by agreement, 100 a page",
    ]
    for i, name in enumerate(names):
        small, big = results[100][i], results[20_000][i]
        print(f"pages: {name}: {small:.1f} ms at 100 samples, {big:.1f} ms at 20,000 (ratio {big / small:.2f})")
    print(
        f"pages: compare 2 / 3 evaluations of a 20,000-sample run: {compare_times[0]:.0f} ms / {compare_times[1]:.0f} ms"
    )
    print(f"pages: the per-sample diff of 3 evaluations of a 20,000-sample run as CSV: {compare_times[2]:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
