"""The embedded judge as users meet it: the default without provider keys, abstaining rather than guessing, and
marked wherever its scores appear, with how to switch to an LLM judge."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from benchmarks.embedded_judge import FIXTURES, load_fixtures
from evaluations import services
from evaluations.models import Evaluation, Review
from evaluations.teaching import teaches
from evaluations.trace import evaluation_trace
from guardrails import services as guardrail_services
from guardrails.models import GuardrailEvaluation
from llm.catalog import SWITCH_TO_LLM
from llm.embedded_plan import DECLINED_REASON, MIN_TAUGHT
from runs.services import run_import, spec_create
from tests.conftest import make_rows
from tests.test_worker import FAST, wait_for


def fixture_run(alice: Any, company: Any, domain: str) -> Any:
    """A run of one fixture domain (every row, its hand labels as the assigned values) under its own spec."""
    spec = spec_create(
        company=company, created_by=alice, name=domain, content_yaml=(FIXTURES / domain / "spec.yaml").read_text()
    )
    fixture = next(f for f in load_fixtures() if f.domain == domain)
    rows = [{"identifier": r.identifier, "content": r.content, "properties": r.labels} for r in fixture.rows]
    return run_import(company=company, created_by=alice, spec=spec, rows=rows)


def test_a_declined_property_is_not_analysed_and_says_why(
    client: Client, alice: Any, company_a: Any, evaluate: Any
) -> None:
    """support_tickets: the topic is judged; the sentiment, told plainly, is declined on every sample."""
    evaluation = evaluate(fixture_run(alice, company_a, "support_tickets"))
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    assert evaluation.judge_plan["properties"]["sentiment"]["mode"] == "declined"
    rows = [c.classifications for c in evaluation.classifications.filter(status="ok")]
    assert not any("sentiment" in row for row in rows)
    assert sum("topic" in row for row in rows) > 0.8 * evaluation.total_samples
    stats = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    assert stats["sentiment"]["declined"].startswith(DECLINED_REASON)
    assert stats["sentiment"]["samples_analyzed"] == 0
    assert stats["sentiment"]["coverage"]["undecided"] == evaluation.total_samples
    assert stats["topic"]["declined"] is None
    assert "sentiment" in evaluation.statistics["properties_not_analysed"]
    assert f"sentiment, {DECLINED_REASON}" in evaluation.conformance_explanation
    # The score is the topic's alone: a declined property is not scored as if it were wrong.
    assert evaluation.conformance_score == round(100 - stats["topic"]["total_variation_distance"], 2)
    client.force_login(alice)
    page = client.get(reverse("evaluations:detail", args=[evaluation.code])).content.decode()
    assert 'data-property="sentiment" data-mode="declined"' in page
    assert f"not analysed: {DECLINED_REASON}" in page


def test_a_run_it_cannot_judge_at_all_fails_with_the_reasons(alice: Any, company_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(fixture_run(alice, company_a, "recipes"))
    assert evaluation.status == Evaluation.Status.FAILED
    assert "declined every property" in evaluation.error_message
    assert f"cuisine: {DECLINED_REASON}" in evaluation.error_message


def label(alice: Any, company: Any, sample: Any, value: str, **design: Any) -> Review:
    fields = {"selection": Review.Selection.RANDOM, "blind": True} | design
    return Review.objects.create(
        company=company, sample=sample, property_name="priority", value=value, reviewer=alice, **fields
    )


def test_it_learns_from_blind_random_labels_on_the_teaching_half(
    client: Client, alice: Any, bob: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    """The tests' spec: priority has no description, so the prototypes cannot place these texts and the judge
    declines it; reviewers' blind random labels on an earlier run of the spec teach it (cross-fitted)."""
    first = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(80))
    later = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(30, start=100))
    before = evaluate(later)
    assert before.judge_plan["properties"]["priority"]["mode"] == "declined"

    samples = list(first.samples.order_by("position"))
    teaching = [s for s in samples if teaches(s.code)]
    measuring = [s for s in samples if not teaches(s.code)]
    # Both halves are populated (random codes: about 40 each of 80, under 20 about once in 10^5 runs).
    assert len(teaching) >= MIN_TAUGHT
    assert measuring
    taught = [label(alice, company_a, s, s.properties["priority"]) for s in teaching]
    # Never teach: the measuring half; labels not drawn at random; labels given with the judge's answer in view.
    kept_out = [label(alice, company_a, s, s.properties["priority"]) for s in measuring]
    kept_out.append(label(bob, company_a, teaching[0], "low", selection=Review.Selection.DISAGREEMENT))
    kept_out.append(label(bob, company_a, teaching[1], "low", blind=False, stratum="high"))
    # A second reviewer's label on a sample already labelled: one label per sample teaches (the oldest).
    kept_out.append(label(bob, company_a, teaching[2], teaching[2].properties["priority"]))

    after = evaluate(later)
    plan = after.judge_plan["properties"]["priority"]
    assert plan["mode"] == "taught"
    assert after.judge_plan["taught_review_ids"] == sorted(r.id for r in taught)
    assert after.statistics["embedded_judge"]["taught_review_ids"] == sorted(r.id for r in taught)
    assert evaluation_trace(after)["embedded_plan"]["properties"] == [
        {
            "property_name": "sentiment",
            "mode": "lexicon",
            "reason": after.judge_plan["properties"]["sentiment"]["reason"],
            "labels": 0,
        },
        {"property_name": "priority", "mode": "taught", "reason": plan["reason"], "labels": len(taught)},
    ]
    stats = {p["property_name"]: p for p in after.statistics["properties"]}
    assert stats["priority"]["samples_analyzed"] == after.total_samples
    assert stats["priority"]["agreement"] == 100.0
    # The cache cannot answer a taught evaluation from an untaught one, nor from one taught differently.
    assert after.config_hash != before.config_hash
    taught[0].value = "low" if taught[0].value != "low" else "high"
    taught[0].save()
    assert evaluate(later).config_hash != after.config_hash
    client.force_login(alice)
    page = client.get(reverse("evaluations:detail", args=[after.code])).content.decode()
    assert 'data-property="priority" data-mode="taught"' in page
    assert f"{len(taught)} human labels" in page


def test_fewer_labels_than_needed_teach_nothing(alice: Any, company_a: Any, spec_a: Any, evaluate: Any) -> None:
    first = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(80))
    teaching = [s for s in first.samples.order_by("position") if teaches(s.code)][:19]  # MIN_TAUGHT - 1
    for s in teaching:
        label(alice, company_a, s, s.properties["priority"])
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(30, start=100)))
    assert evaluation.judge_plan["properties"]["priority"]["mode"] == "declined"
    assert evaluation.judge_plan["taught_review_ids"] == []


def test_an_undecided_property_is_left_out_never_null(run_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(run_a)  # no provider key: the embedded judge
    assert evaluation.model_used == "local/embeddings"
    rows = [c.classifications for c in evaluation.classifications.filter(status="ok")]
    assert all(None not in row.values() for row in rows)
    # The spec's priority has no description and the samples say nothing of urgency: it abstains somewhere,
    # and those samples count as not analysed on priority only (sentiment's coverage does not lose them).
    stats = {p["property_name"]: p for p in evaluation.statistics["properties"]}
    undecided = {name: sum(name not in row for row in rows) for name in stats}
    assert undecided["priority"] > 0
    assert undecided["sentiment"] < undecided["priority"]
    for name, left_out in undecided.items():
        assert stats[name]["coverage"]["undecided"] == left_out
        assert stats[name]["coverage"]["analysed"] == len(rows) - left_out


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


def test_real_workers_judge_every_part_under_the_plan_fixed_at_start(
    start_worker: Any, settings: Any, alice: Any, company_a: Any, spec_a: Any
) -> None:
    """Through real worker processes (two, the run split into parts): the plan is made once when the evaluation
    starts, and every classify part, whichever process runs it, judges under it."""
    first = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(80))
    taught = [label(alice, company_a, s, s.properties["priority"]) for s in first.samples.all() if teaches(s.code)]
    later = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(30, start=100))
    settings.EVALUATION_PARALLEL_ITEMS = 3  # here (the parts are made at start, in a worker) and in the workers
    start_worker(**FAST, Q_WORKERS="2", EVALUATION_PARALLEL_ITEMS="3")
    evaluation = services.evaluation_create(
        company=company_a, created_by=alice, run=later, model_name="local/embeddings"
    )
    wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).is_terminal, timeout=60)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.SUCCEEDED, evaluation.error_message
    assert evaluation.chunks_total > 1
    assert evaluation.judge_plan["taught_review_ids"] == sorted(r.id for r in taught)
    judged = dict(evaluation.classifications.values_list("sample__identifier", "classifications"))
    assigned = dict(later.samples.values_list("identifier", "properties"))
    assert len(judged) == 30
    assert all(judged[i]["priority"] == assigned[i]["priority"] for i in judged)
