"""The embedded judge as users meet it: the default without provider keys, abstaining rather than guessing, and
marked wherever its scores appear, with how to switch to an LLM judge."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from guardrails import services as guardrail_services
from guardrails.models import GuardrailEvaluation
from llm.catalog import SWITCH_TO_LLM


def test_an_undecided_property_is_left_out_never_null(run_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(run_a)  # no provider key: the embedded judge
    assert evaluation.model_used == "local/embeddings"
    rows = [c.classifications for c in evaluation.classifications.filter(status="ok")]
    assert all(None not in row.values() for row in rows)
    # The spec's priority has no description and the samples say nothing of urgency: it abstains somewhere,
    # and those samples count as not analysed on priority only.
    priority = next(p for p in evaluation.statistics["properties"] if p["property_name"] == "priority")
    undecided = sum("priority" not in row for row in rows)
    assert priority["coverage"]["undecided"] == undecided
    assert priority["coverage"]["analysed"] == len(rows) - undecided


def test_the_runs_list_marks_an_embedded_score(client: Client, alice: Any, run_a: Any, evaluate: Any) -> None:
    evaluate(run_a)
    client.force_login(alice)
    page = client.get(reverse("runs:list")).content.decode()
    assert "embedded judge" in page
    assert SWITCH_TO_LLM.split(",")[0] in page


def guardrail(alice: Any, company_a: Any, capture: Any, **kwargs: Any) -> GuardrailEvaluation:
    with capture(execute=True):
        evaluation = guardrail_services.guardrail_evaluation_create(company=company_a, created_by=alice, **kwargs)
    return GuardrailEvaluation.objects.get(pk=evaluation.pk)


def test_offline_correctness_without_a_reference_is_not_judged(
    client: Client, alice: Any, company_a: Any, django_capture_on_commit_callbacks: Any
) -> None:
    evaluation = guardrail(
        alice,
        company_a,
        django_capture_on_commit_callbacks,
        model_input={"user_prompt": "What is the capital of Australia?"},
        model_output="The capital of Australia is Sydney.",
        guardrail_metrics=["correctness"],
    )
    result = evaluation.evaluation_result["correctness"]
    assert result["judged"] is False
    assert "not judged offline" in result["rationale"]
    assert isinstance(result["score"], float)  # the wire type stays a number
    client.force_login(alice)
    page = client.get(reverse("guardrails:detail", args=[evaluation.eval_id])).content.decode()
    assert "not judged offline" in page
    assert 'id="chart-guardrail-scores"' not in page  # no bar for a score that means nothing


def test_offline_instruction_adherence_counts_a_sentence_limit(
    alice: Any, company_a: Any, django_capture_on_commit_callbacks: Any
) -> None:
    evaluation = guardrail(
        alice,
        company_a,
        django_capture_on_commit_callbacks,
        model_input={"system_prompt": "Answer in at most two sentences.", "user_prompt": "Why is the sky blue?"},
        model_output="Sunlight scatters. Blue scatters most. That is Rayleigh scattering. So the sky looks blue.",
        guardrail_metrics=["instruction_adherence"],
    )
    result = evaluation.evaluation_result["instruction_adherence"]
    assert result["score"] < 1
    assert any(v["verdict"] == "violated" and "2 sentences" in v["statement"] for v in result["verdicts"])
