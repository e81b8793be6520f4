"""The run page's evaluations table: refreshes itself while an evaluation is unfinished, exact times, requested and
used model, an ETA and a cancel button for a running one."""

from __future__ import annotations

import datetime
from http import HTTPStatus
from typing import Any

from django.test import Client
from django.utils import timezone

from evaluations.models import Evaluation, SampleClassification
from evaluations.run_card import eta_text
from runs.models import Run

HX = {"HX-Request": "true"}


def _running(run: Run, done: int) -> Evaluation:
    evaluation = Evaluation.objects.create(
        company=run.company, run=run, requested_model="anthropic/claude-haiku-4-5", model_used="local/embeddings",
        status=Evaluation.Status.PROCESSING, total_samples=run.samples.count(),
        started_at=timezone.now() - datetime.timedelta(seconds=20),
    )  # fmt: skip
    SampleClassification.objects.bulk_create(
        SampleClassification(evaluation=evaluation, sample=s, classifications={}) for s in run.samples.all()[:done]
    )
    return evaluation


def test_eta_from_the_rate_so_far() -> None:
    assert eta_text(done=0, total=100, elapsed=None) == "estimating…"
    assert eta_text(done=4, total=100, elapsed=60) == "estimating…"  # too few samples to say
    assert eta_text(done=50, total=100, elapsed=1) == "estimating…"  # too soon
    assert eta_text(done=10, total=12, elapsed=20) == "about 4 s left"
    assert eta_text(done=10, total=100, elapsed=20) == "about 3 min left"
    assert eta_text(done=10, total=10_000, elapsed=60) == "about 16.6 h left"
    assert eta_text(done=12, total=12, elapsed=20) == "finishing…"


def test_the_table_polls_while_running_and_stops_once_done(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    finished = evaluate(run_a)
    running = _running(run_a, done=10)
    client.force_login(alice)
    page = client.get(f"/runs/{run_a.code}/").content.decode()
    table_url = f"/runs/{run_a.code}/evaluations/"
    assert f'hx-get="{table_url}"' in page
    assert 'hx-trigger="every 2s, evaluation-started from:body"' in page
    # session, user, run (+spec, version, company), membership, evaluations, in-flight counts (the partial has no
    # header)
    with django_assert_num_queries(6):
        response = client.get(table_url, headers=HX)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "<html" not in html
    assert "10 / 12" in html
    assert "about 4 s left" in html
    assert f'action="/evaluations/{running.code}/cancel/"' in html
    assert 'hx-confirm="Cancel this evaluation? Samples judged so far are kept."' in html
    # Requested and used model, exact times.
    assert "anthropic/claude-haiku-4-5" in html
    assert f'<time datetime="{timezone.localtime(finished.created_at).isoformat()}">' in html
    assert f'<time datetime="{timezone.localtime(finished.completed_at).isoformat()}">' in html
    # Once it ends: the final table, 286 (htmx swaps it in and stops), and no polling left in it.
    Evaluation.objects.filter(pk=running.pk).update(status=Evaluation.Status.FAILED, completed_at=timezone.now())
    response = client.get(table_url, headers=HX)
    assert response.status_code == 286
    html = response.content.decode()
    assert "every 2s" not in html
    assert 'hx-trigger="evaluation-started from:body"' in html
    assert "Cancel</button>" not in html


def test_a_pending_evaluation_is_estimating(client: Client, alice: Any, run_a: Run) -> None:
    Evaluation.objects.create(company=run_a.company, run=run_a, requested_model="local/embeddings", total_samples=12)
    client.force_login(alice)
    html = client.get(f"/runs/{run_a.code}/evaluations/", headers=HX).content.decode()
    assert "0 / 12" in html
    assert "estimating…" in html


def test_starting_an_evaluation_wakes_the_table(client: Client, alice: Any, run_a: Run) -> None:
    client.force_login(alice)
    response = client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "local/embeddings"}, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert response["HX-Trigger"] == '{"evaluation-started": {}}'


def test_tenancy_of_the_table(client: Client, bob: Any, charlie: Any, run_a: Run) -> None:
    running = _running(run_a, done=6)
    url = f"/runs/{run_a.code}/evaluations/"
    client.force_login(charlie)
    assert client.get(url, headers=HX).status_code == HTTPStatus.NOT_FOUND
    assert client.get("/runs/00000000-0000-0000-0000-000000000000/evaluations/").status_code == HTTPStatus.NOT_FOUND
    client.force_login(bob)  # a viewer sees it, without the cancel button, and cannot cancel
    response = client.get(url, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert "Cancel</button>" not in response.content.decode()
    assert client.post(f"/evaluations/{running.code}/cancel/").status_code == HTTPStatus.FORBIDDEN
    # Opened on its own (no HTMX), it is the run page's section.
    response = client.get(url)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/runs/{run_a.code}/#evaluations"
    client.logout()
    assert client.get(url, headers=HX).status_code == HTTPStatus.FOUND
    assert client.get(url, headers=HX)["Location"].startswith("/login/")
