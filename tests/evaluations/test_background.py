"""Background execution: claims, chunks, duplicate deliveries, a worker stopped half-way, fatal errors."""

from __future__ import annotations

from typing import Any

import pytest

from evaluations import services
from evaluations.models import Evaluation, SampleClassification
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows
from tests.llm.fakes import first_values, sample_text

SONNET = "anthropic/claude-sonnet-4-6"


class WorkerStopped(BaseException):
    """What a killed worker looks like from inside: not an Exception, nothing catches it."""


def pending_evaluation(run: Run, model: str = SONNET) -> Evaluation:
    # Created without the on-commit enqueue, so the test drives each task step itself.
    return Evaluation.objects.create(
        company=run.company,
        run=run,
        requested_model=model,
        total_samples=run.samples.count(),
    )


def test_a_duplicate_start_is_a_no_op(fake_anthropic: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, SONNET)
    calls = fake_anthropic.calls
    services.start_evaluation(evaluation_id=evaluation.id)
    services.classify_chunk(evaluation_id=evaluation.id, first_position=1, last_position=12)
    assert fake_anthropic.calls == calls
    assert Evaluation.objects.get(pk=evaluation.pk).completed_at == evaluation.completed_at


def test_big_runs_are_split_into_chunks_and_the_last_one_aggregates(
    fake_anthropic: Any,
    alice: Any,
    company_a: Any,
    spec_a: Any,
    evaluate: Any,
    settings: Any,
) -> None:
    settings.EVALUATION_CHUNK_SIZE = 10
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(35))
    evaluation = evaluate(run, SONNET)
    assert evaluation.chunks_total == 4
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.classifications.count() == 35
    assert evaluation.judge_calls.filter(purpose="explain").count() == 1


def test_a_worker_stopped_half_way_loses_nothing_and_the_retry_skips_finished_samples(
    fake_anthropic: Any, run_a: Run, settings: Any
) -> None:
    settings.JUDGE_CONCURRENCY = 1
    evaluation = pending_evaluation(run_a)
    asked: list[str] = []
    calls = iter(range(1, 1000))

    def dies_on_the_fifth_call(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if "<sample>" in user:
            asked.append(sample_text(user))
            if next(calls) == 5:
                raise WorkerStopped
        return first_values(schema, user)

    fake_anthropic.answer = dies_on_the_fifth_call
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.PROCESSING)
    with pytest.raises(WorkerStopped):
        services.classify_chunk(evaluation_id=evaluation.id, first_position=1, last_position=12)
    saved = set(evaluation.classifications.values_list("sample__content", flat=True))
    # What was answered before the stop is saved; answers still in memory when it stopped are lost.
    assert set(asked[:4]) == saved
    assert Evaluation.objects.get(pk=evaluation.pk).status == "PROCESSING"

    # The queue re-delivers the chunk: only the unfinished samples are asked again.
    asked.clear()
    services.classify_chunk(evaluation_id=evaluation.id, first_position=1, last_position=12)
    assert len(asked) == 12 - len(saved)
    assert not set(asked) & saved
    assert evaluation.classifications.count() == 12
    assert SampleClassification.objects.filter(evaluation=evaluation).values("sample").distinct().count() == 12
    assert Evaluation.objects.get(pk=evaluation.pk).status == "SUCCEEDED"


def test_a_start_interrupted_before_fan_out_is_picked_up_again(fake_anthropic: Any, run_a: Run) -> None:
    evaluation = pending_evaluation(run_a)
    # Claimed, then the worker died before it enqueued any chunk.
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.PROCESSING)
    services.start_evaluation(evaluation_id=evaluation.id)
    assert Evaluation.objects.get(pk=evaluation.pk).status == "SUCCEEDED"


def test_two_finishing_chunks_aggregate_once(fake_anthropic: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, SONNET)
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.PROCESSING)
    # Holds the lease from the first aggregation: a second one does nothing.
    services.evaluation_finalize(evaluation_id=evaluation.id)
    assert evaluation.judge_calls.filter(purpose="explain").count() == 1


def test_bad_credentials_fail_the_evaluation_clearly(fake_anthropic: Any, run_a: Run, evaluate: Any) -> None:
    fake_anthropic.script.append(("status", 401, {}))
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "FAILED"
    assert evaluation.error_message.startswith("The judge failed: the provider rejected the credentials (HTTP 401")
    assert evaluation.completed_at is not None
    assert evaluation.judge_calls.filter(outcome="fatal").exists()


def test_an_unknown_provider_model_fails_the_evaluation(fake_openai: Any, run_a: Run, evaluate: Any) -> None:
    fake_openai.script.append(("status", 404, {}))
    evaluation = evaluate(run_a, "openai/gpt-5.4")
    assert evaluation.status == "FAILED"
    assert "does not know this model" in evaluation.error_message


def test_without_credentials_development_falls_back_to_offline(run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "SUCCEEDED"
    assert (evaluation.requested_model, evaluation.model_used) == (
        SONNET,
        "offline/heuristic",
    )
    assert evaluation.fallback_reason.startswith("ANTHROPIC_API_KEY is not set")
    assert evaluation.statistics["explanation_source"] == "template"
    assert evaluation.judge_calls.filter(outcome="ok").count() == 12
    assert evaluation.ledger_totals()["cost_usd"] == 0


def test_without_credentials_production_fails(run_a: Run, evaluate: Any, settings: Any) -> None:
    settings.JUDGE_OFFLINE_FALLBACK = False
    evaluation = evaluate(run_a, "openai/gpt-5.4")
    assert evaluation.status == "FAILED"
    assert evaluation.error_message == (
        "No credentials for openai/gpt-5.4: set OPENAI_API_KEY (or choose another evaluation model)."
    )


def test_an_openai_compatible_server_needs_only_a_base_url(
    fake_openai: Any,
    run_a: Run,
    evaluate: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    settings.JUDGE_MODELS = {
        **settings.JUDGE_MODELS,
        "local/qwen3-8b": {"provider": "openai", "model": "Qwen/Qwen3-8B", "base_url": "http://gpu.internal:8000/v1",
                           "temperature": 0},
    }  # fmt: skip
    evaluation = evaluate(run_a, "local/qwen3-8b")
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.model_used == "local/qwen3-8b"
    assert fake_openai.requests[0]["model"] == "Qwen/Qwen3-8B"
    assert fake_openai.requests[0]["temperature"] == 0
