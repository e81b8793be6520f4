"""The guardrails list: a sortable, coloured column per metric, a nametag search, and the create form."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from guardrails.models import GuardrailEvaluation
from guardrails.services import guardrail_evaluation_create

HX = {"HX-Request": "true"}
INPUT = {"user_prompt": "What is the capital of France?"}


@pytest.fixture
def graded(alice: Any, company_a: Any, django_capture_on_commit_callbacks: Any) -> Any:
    def make(*, score: float | None = None, **kwargs: Any) -> GuardrailEvaluation:
        options = {"model_input": INPUT, "model_output": "Paris.", "guardrail_metrics": ["completeness"], **kwargs}
        with django_capture_on_commit_callbacks(execute=True):
            evaluation = guardrail_evaluation_create(company=company_a, created_by=alice, **options)
        if score is not None:
            GuardrailEvaluation.objects.filter(pk=evaluation.pk).update(
                evaluation_result={"completeness": {"score": score, "rationale": "set by the test"}}
            )
        return GuardrailEvaluation.objects.get(pk=evaluation.pk)

    return make


def test_it_sorts_by_a_metric_and_colours_scores(
    client: Client, alice: Any, graded: Any, django_assert_num_queries: Any
) -> None:
    low, high, mid = graded(score=0.2, nametag="low"), graded(score=0.9, nametag="high"), graded(score=0.6)
    client.force_login(alice)
    # session, user, active membership, count, page (with ledger sums)
    with django_assert_num_queries(5):
        response = client.get("/guardrails/?sort=-completeness", headers=HX)
    assert [row.pk for row in response.context["page"]] == [high.pk, mid.pk, low.pk]
    page = response.content.decode()
    assert '<td class="score-cell good">0.90</td>' in page
    assert '<td class="score-cell fair">0.60</td>' in page
    assert '<td class="score-cell poor">0.20</td>' in page
    # The sorted column links to the other direction, with an href as well as the hx-get.
    assert 'href="/guardrails/?sort=completeness"' in page
    ascending = client.get("/guardrails/?sort=completeness", headers=HX)
    assert [row.pk for row in ascending.context["page"]] == [low.pk, mid.pk, high.pk]


def test_the_nametag_search_matches_a_substring(client: Client, alice: Any, graded: Any) -> None:
    graded(nametag="Support-QA-2026")
    graded(nametag="billing")
    client.force_login(alice)
    page = client.get("/guardrails/?nametag=qa").content.decode()
    assert "Support-QA-2026" in page
    assert "billing" not in page


def test_it_creates_an_evaluation_from_the_form(client: Client, alice: Any, company_a: Any) -> None:
    client.force_login(alice)
    assert 'id="create-guardrail"' in client.get("/guardrails/").content.decode()
    response = client.post(
        "/guardrails/",
        {
            "user_prompt": "What is the capital of France?",
            "system_prompt": "Answer in one word.",
            "model_output": "<b>Paris</b>",
            "run_mode": "economy",
            "guardrail_metrics": ["completeness", "instruction_adherence"],
            "nametag": "from-the-form",
        },
    )
    evaluation = GuardrailEvaluation.objects.get(nametag="from-the-form")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/guardrails/{evaluation.eval_id}/"
    assert evaluation.company == company_a
    assert evaluation.run_mode == "economy"
    assert evaluation.guardrail_metrics == ["completeness", "instruction_adherence"]
    assert evaluation.model_input == {
        "system_prompt": "Answer in one word.",
        "user_prompt": "What is the capital of France?",
    }
    detail = client.get(response["Location"]).content.decode()
    assert "&lt;b&gt;Paris&lt;/b&gt;" in detail


def test_an_htmx_post_redirects_the_client(client: Client, alice: Any) -> None:
    client.force_login(alice)
    response = client.post(
        "/guardrails/", {"user_prompt": "Hi?", "model_output": "Hello.", "run_mode": "smart"}, headers=HX
    )
    evaluation = GuardrailEvaluation.objects.get()
    assert response["HX-Redirect"] == f"/guardrails/{evaluation.eval_id}/"


def test_the_form_shows_errors(client: Client, alice: Any) -> None:
    client.force_login(alice)
    response = client.post("/guardrails/", {"model_output": "Hello.", "run_mode": "smart"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "at least a user_prompt or a system_prompt" in response.content.decode()
    assert not GuardrailEvaluation.objects.exists()


def test_it_requires_rw_access(client: Client, bob: Any) -> None:
    client.force_login(bob)
    assert 'id="create-guardrail"' not in client.get("/guardrails/").content.decode()
    response = client.post("/guardrails/", {"user_prompt": "Hi?", "model_output": "Hello.", "run_mode": "smart"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not GuardrailEvaluation.objects.exists()


def test_it_checks_ownership(client: Client, charlie: Any, company_b: Any, graded: Any) -> None:
    graded(nametag="alpha-only", score=0.5)
    client.force_login(charlie)
    assert "alpha-only" not in client.get("/guardrails/?nametag=alpha").content.decode()
    client.post(
        "/guardrails/", {"user_prompt": "Hi?", "model_output": "Hello.", "run_mode": "smart", "nametag": "beta"}
    )
    assert GuardrailEvaluation.objects.get(nametag="beta").company == company_b
