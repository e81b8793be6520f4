from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from guardrails.models import GuardrailEvaluation
from guardrails.services import guardrail_evaluation_create

HX = {"HX-Request": "true"}
INPUT = {"user_prompt": "What is the capital of France?", "ground_truth": "Paris is the capital of France."}


@pytest.fixture
def graded(alice: Any, company_a: Any, django_capture_on_commit_callbacks: Any) -> Any:
    def make(**kwargs: Any) -> GuardrailEvaluation:
        options = {"model_input": INPUT, "model_output": "The capital of France is Paris.", **kwargs}
        with django_capture_on_commit_callbacks(execute=True):
            evaluation = guardrail_evaluation_create(company=company_a, created_by=alice, **options)
        return GuardrailEvaluation.objects.get(pk=evaluation.pk)

    return make


def test_list_shows_scores_and_filters(client: Client, alice: Any, graded: Any, django_assert_num_queries: Any) -> None:
    first = graded(nametag="qa-set", run_mode="economy")
    graded(nametag="other", run_mode="precision")
    client.force_login(alice)
    # session, user, active membership, count, page (with ledger sums), header companies
    with django_assert_num_queries(6):
        page = client.get("/guardrails/").content.decode()
    assert f"/guardrails/{first.eval_id}/" in page
    assert 'title="Sort by ground_truth_adherence"' in page
    filtered = client.get("/guardrails/?run_mode=economy", headers=HX)
    assert filtered.status_code == 286  # nothing running: stop polling
    assert "qa-set" in filtered.content.decode()
    assert "other" not in filtered.content.decode()
    assert "qa-set" not in client.get("/guardrails/?nametag=other").content.decode()


def test_the_list_polls_while_something_runs(client: Client, alice: Any, graded: Any) -> None:
    evaluation = graded()
    GuardrailEvaluation.objects.filter(pk=evaluation.pk).update(status="in_progress", progress=40)
    client.force_login(alice)
    response = client.get("/guardrails/", headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert 'hx-trigger="every 2s"' in response.content.decode()
    assert "40%" in response.content.decode()


def test_detail_shows_chart_rationales_and_escaped_io(
    client: Client, alice: Any, graded: Any, django_assert_num_queries: Any
) -> None:
    evaluation = graded(model_output="<script>alert(1)</script> Paris.")
    client.force_login(alice)
    # session, user, evaluation (+ company, ledger cost and call count), membership, header membership + companies
    with django_assert_num_queries(6):
        response = client.get(f"/guardrails/{evaluation.eval_id}/")
    page = response.content.decode()
    assert 'data-chart="chart-guardrail-scores"' in page
    assert "Offline heuristic judge." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    for metric in evaluation.guardrail_metrics:
        assert f"<td>{metric}</td>" in page
    # Metrics the offline heuristic declined (`judged: false`) get no bar.
    judged = [m for m in evaluation.guardrail_metrics if evaluation.evaluation_result[m].get("judged", True)]
    assert "instruction_adherence" not in judged  # "What is the capital of France?" has nothing it can check
    assert response.context["chart"]["data"][0]["x"] == judged
    done = client.get(f"/guardrails/{evaluation.eval_id}/", headers=HX)
    assert done.status_code == 286


def test_it_checks_ownership(client: Client, charlie: Any, graded: Any) -> None:
    evaluation = graded(nametag="secret-set")
    client.force_login(charlie)
    assert client.get(f"/guardrails/{evaluation.eval_id}/").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/guardrails/nonsense/").status_code == HTTPStatus.NOT_FOUND
    assert "secret-set" not in client.get("/guardrails/").content.decode()


def test_a_viewer_can_read(client: Client, bob: Any, graded: Any) -> None:
    evaluation = graded()
    client.force_login(bob)
    assert client.get(f"/guardrails/{evaluation.eval_id}/").status_code == HTTPStatus.OK
    assert client.get("/guardrails/").status_code == HTTPStatus.OK
