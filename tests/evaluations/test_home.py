"""The home dashboard: cards contributed by evaluations and guardrails through companies/extensions.py."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.dashboard import score_trend_chart
from evaluations.models import Evaluation
from guardrails.models import GuardrailEvaluation
from guardrails.selectors import guardrail_metric_summary
from guardrails.services import guardrail_evaluation_create
from runs.models import Run


def test_it_shows_getting_started_while_the_company_has_no_runs(client: Client, alice: Any) -> None:
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'id="getting-started"' in page
    assert 'id="recent-evaluations"' not in page
    assert "No completed guardrail evaluations yet" in page


def test_it_shows_recent_evaluations_and_the_trend(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    # session, user, active membership, memberships, any run?, recent evaluations (+run, spec), trend,
    # guardrail summary, monitors card (monitors, workflows), anonymization card, red-teaming card, header companies
    with django_assert_num_queries(13):
        response = client.get("/")
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert 'id="getting-started"' not in page
    assert f"/evaluations/{evaluation.code}/" in page
    assert f"{evaluation.conformance_score:.1f}" in page
    assert "embedded judge" in page
    assert "sentiment 100%" in page
    assert 'data-chart="chart-score-trend"' in page


def test_the_trend_has_a_line_per_spec(
    alice: Any, company_a: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    first, second = evaluate(run_a), evaluate(run_a)
    Evaluation.objects.filter(pk=first.pk).update(conformance_score=40)
    with django_assert_num_queries(1):
        figure = score_trend_chart(company=company_a)
    assert figure is not None
    [line] = figure["data"]
    assert line["name"] == "Support"
    assert line["y"] == [40, second.conformance_score]
    assert line["mode"] == "lines+markers"


def test_the_guardrail_summary_counts_and_averages_per_metric(
    client: Client, alice: Any, company_a: Any, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            guardrail_evaluation_create(
                company=company_a,
                created_by=alice,
                model_input={"user_prompt": "What is the capital of France?"},
                model_output="Paris.",
                guardrail_metrics=["correctness", "completeness"],
            )
    # The offline judge cannot judge correctness (`judged: false`): left out. Completeness it scores.
    [first, second] = GuardrailEvaluation.objects.all()
    GuardrailEvaluation.objects.filter(pk=first.pk).update(
        evaluation_result=first.evaluation_result | {"completeness": {"score": 0.25}}
    )
    GuardrailEvaluation.objects.filter(pk=second.pk).update(
        evaluation_result=second.evaluation_result | {"completeness": {"score": 0.75, "judged": True}}
    )
    with django_assert_num_queries(1):
        summary = guardrail_metric_summary(company=company_a)
    assert summary == [{"metric": "completeness", "count": 2, "average": 0.5}]
    client.force_login(alice)
    assert 'id="guardrail-summary"' in client.get("/").content.decode()


def test_it_checks_ownership(client: Client, charlie: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(charlie)
    page = client.get("/").content.decode()
    assert f"/evaluations/{evaluation.code}/" not in page
    assert 'id="getting-started"' in page  # company B has no runs


def test_a_viewer_sees_the_dashboard(client: Client, bob: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(bob)
    assert f"/evaluations/{evaluation.code}/" in client.get("/").content.decode()
