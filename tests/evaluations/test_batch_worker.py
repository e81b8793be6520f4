"""Batch mode (issue #26) through real worker processes against the stand-in's batch APIs: every sample judged
once, a worker killed while the batch is in flight resumes it without a second submission, partial errors and an
expired batch end with every sample judged or failed with its reason, and cancel reaches the provider.

Runs on both CI legs: SQLite with the ORM broker, PostgreSQL with Redis.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count, Sum

from benchmarks.standin import StandIn
from companies.models import Company
from companies.quotas import month_spend
from evaluations import services
from evaluations.models import Evaluation, SampleClassification
from evaluations.trace import evaluation_trace
from llm.base import TransientError
from llm.models import JudgeCall
from tests.conftest import STANDIN_MODEL
from tests.test_worker import FAST, classified, evaluation_of, model_requests, status, wait_for
from work.models import WorkItem

BATCH_FAST = FAST | {"JUDGE_BATCH_POLL_SECONDS": "1", "JUDGE_BATCH_POLL_MAX_SECONDS": "2"}
PRICES = {"input": 3, "output": 15, "cache_read": "0.3", "cache_write": "3.75"}


@pytest.fixture
def batch_standin(standin: StandIn, settings: Any, tmp_path: Path) -> StandIn:
    """The stand-in's model, priced, with its batch API on (here and in the workers)."""
    entry = settings.JUDGE_MODELS[STANDIN_MODEL] | {"batch": True, "prices": PRICES}
    settings.JUDGE_MODELS = {**settings.JUDGE_MODELS, STANDIN_MODEL: entry}
    (tmp_path / "models.json").write_text(json.dumps({STANDIN_MODEL: entry}))
    return standin


def batch_evaluation_of(company: Company, samples: int) -> Evaluation:
    evaluation = evaluation_of(company, samples)  # by size: JUDGE_BATCH_MIN_SAMPLES is 10,000
    assert not evaluation.batch
    Evaluation.objects.filter(pk=evaluation.pk).update(batch=True)  # asked for (the API test asks through the client)
    return evaluation


def batch_item(evaluation: Evaluation) -> WorkItem:
    return WorkItem.objects.get(kind="evaluation.batch", subject_id=evaluation.id)


def submitted(evaluation: Evaluation) -> bool:
    """Whether a batch id is on the evaluation's batch item (which the start item creates)."""
    args = WorkItem.objects.filter(kind="evaluation.batch", subject_id=evaluation.id).values_list("args", flat=True)
    return bool((args.first() or {}).get("batches"))


def assert_every_sample_once(evaluation: Evaluation) -> None:
    rows = SampleClassification.objects.filter(evaluation=evaluation)
    assert rows.count() == evaluation.total_samples
    assert not rows.values("sample").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not rows.filter(status="failed", error="").exists()  # every failure says why


def test_a_2000_sample_batch_evaluation_judges_every_sample_once_at_half_price(
    start_worker: Any, batch_standin: StandIn, company_a: Company
) -> None:
    evaluation = batch_evaluation_of(company_a, 2000)
    start_worker(**BATCH_FAST, JUDGE_BATCH_MAX_REQUESTS="600")  # split: 600 + 600 + 600 + 200
    wait_for(lambda: status(evaluation) not in {"PENDING", "PROCESSING"}, timeout=120)
    evaluation.refresh_from_db()
    assert evaluation.status == "SUCCEEDED", evaluation.error_message
    assert_every_sample_once(evaluation)
    batches = batch_standin.stats()["batches"]
    assert (batches["created"], batches["requests"]) == (4, 2000)
    assert model_requests(batch_standin) == 1  # the explanation only: every sample went in a batch
    classify = JudgeCall.objects.filter(evaluation=evaluation, purpose="classify")
    assert classify.count() == 2000
    # Billed at the batch price: half of what the same tokens cost interactively.
    model = services.get_judge_model(STANDIN_MODEL)
    usage = classify.aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens"), r=Sum("cache_read_tokens"), w=Sum("cache_write_tokens")
    )
    interactive = model.prices.cost(
        input_tokens=usage["i"], output_tokens=usage["o"], cache_read=usage["r"], cache_write=usage["w"]
    )
    assert classify.aggregate(c=Sum("cost_usd"))["c"] == pytest.approx(interactive / 2, rel=Decimal("1e-4"))
    # Each batch's "sent" row was settled once read: no ceiling is left counting against the budget.
    assert not JudgeCall.objects.filter(evaluation=evaluation, outcome="sent").exists()
    summary = evaluation_trace(evaluation)["batch"]
    assert (summary["submitted"], summary["read"]) == (2000, 2000)
    assert summary["saved_usd"] == pytest.approx(summary["cost_usd"])


def test_a_worker_killed_while_the_batch_is_in_flight_resumes_it_without_a_second_submission(
    start_worker: Any, batch_standin: StandIn, company_a: Company
) -> None:
    batch_standin.configure(batch_seconds=6)  # a slow batch
    evaluation = batch_evaluation_of(company_a, 300)
    worker = start_worker(**BATCH_FAST)
    wait_for(lambda: batch_standin.stats()["batches"].get("created") == 1, timeout=60)
    # The id is on the item as soon as the provider gave it: the kill cannot lose it.
    wait_for(lambda: submitted(evaluation), timeout=10, every=0.05)
    worker.kill()
    assert status(evaluation) == "PROCESSING"
    assert classified(evaluation) == 0
    # The monthly budget counts the batch from its submission, at its ceiling (batch price)...
    [sent] = JudgeCall.objects.filter(evaluation=evaluation)
    assert (sent.purpose, sent.outcome) == ("batch", "sent")
    assert sent.cost_usd > 0
    assert month_spend(company_a) == sent.cost_usd
    start_worker(**BATCH_FAST)
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=90)
    evaluation.refresh_from_db()
    assert evaluation.status == "SUCCEEDED", evaluation.error_message
    assert_every_sample_once(evaluation)
    batches = batch_standin.stats()["batches"]
    assert (batches["created"], batches["requests"]) == (1, 300)  # polled again, never submitted again
    # ...and settles at the end: the ceiling gives way to what the requests cost, which is less.
    assert not JudgeCall.objects.filter(evaluation=evaluation, purpose="batch").exists()
    assert 0 < month_spend(company_a) < sent.cost_usd


def test_partial_errors_and_an_expired_batch_end_with_every_sample_judged_or_failed_with_its_reason(
    start_worker: Any, batch_standin: StandIn, company_a: Company
) -> None:
    batch_standin.configure(batch_errored=0.1, batch_expired=0.15)
    evaluation = batch_evaluation_of(company_a, 400)
    # The interactive retries meet faults too: some samples fail for good, each with its reason.
    start_worker(**BATCH_FAST, JUDGE_MAX_ATTEMPTS="2", JUDGE_BACKOFF_MAX_SECONDS="1")
    wait_for(lambda: batch_standin.stats()["batches"].get("ended") == 1, timeout=60)
    batch_standin.configure(faults={"refusal": 0.2})
    wait_for(lambda: status(evaluation) != "PROCESSING", timeout=120)
    evaluation.refresh_from_db()
    assert evaluation.status == "SUCCEEDED", evaluation.error_message
    assert_every_sample_once(evaluation)
    retried = model_requests(batch_standin) - 1  # the explanation aside
    assert 40 <= retried <= 160  # about a quarter of 400 errored or expired, asked again interactively
    assert SampleClassification.objects.filter(evaluation=evaluation, status="failed").exists()
    summary = evaluation_trace(evaluation)["batch"]
    assert summary["batches"][0]["status"] == "expired"
    # Unbilled batch requests (errored, expired) have no ledger row; every interactive request has one.
    assert JudgeCall.objects.filter(evaluation=evaluation).count() == (400 - retried) + model_requests(batch_standin)


@pytest.fixture
def batch_in_flight(start_worker: Any, batch_standin: StandIn, company_a: Company, monkeypatch: Any) -> Evaluation:
    """A 100-sample evaluation whose batch a real worker submitted and the provider holds for ten minutes."""
    from llm import providers

    monkeypatch.setattr(providers, "http_client_for", None)  # this process cancels: the stand-in, not a refusal
    batch_standin.configure(batch_seconds=600)
    evaluation = batch_evaluation_of(company_a, 100)
    start_worker(**BATCH_FAST)
    wait_for(lambda: submitted(evaluation), timeout=60, every=0.05)
    return evaluation


def test_cancel_reaches_the_provider(batch_in_flight: Evaluation, batch_standin: StandIn, alice: Any) -> None:
    evaluation = batch_in_flight
    services.evaluation_cancel(evaluation=Evaluation.objects.get(pk=evaluation.pk), canceled_by=alice)
    assert batch_standin.stats()["batches"]["canceled"] == 1
    assert status(evaluation) == "FAILED"
    assert batch_item(evaluation).state == "canceled"


@pytest.mark.parametrize("deleted", ["run", "spec"])
def test_deleting_its_run_or_spec_cancels_an_evaluations_batch_at_the_provider(
    batch_in_flight: Evaluation, batch_standin: StandIn, deleted: str
) -> None:
    from runs.generation import run_delete
    from runs.services import spec_delete

    evaluation = batch_in_flight
    if deleted == "run":
        run_delete(run=evaluation.run)
    else:
        spec_delete(spec=evaluation.run.spec, force=True)
    assert not Evaluation.objects.filter(pk=evaluation.pk).exists()
    # Billed at completion otherwise, for samples nobody can see any more.
    assert batch_standin.stats()["batches"]["canceled"] == 1
    assert batch_item(evaluation).state == "canceled"


@pytest.fixture
def first_cancel_fails(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """This process (where the cancel hook runs) finds the provider's batch API down: its cancel fails before
    anything is sent. Returns the batches it tried to cancel."""
    from llm import batches

    tried: list[str] = []

    def down(self: Any, batch_id: str) -> None:
        tried.append(batch_id)
        raise TransientError("the batch API is down", outcome="server_error")

    monkeypatch.setattr(batches.OpenAIBatches, "cancel", down)
    return tried


def assert_settled(standin: StandIn, kind: str, subject_id: int, tried: list[str]) -> None:
    """Just canceled, its first cancel failed: the settle item sends it again, and reads the batch once it ends.

    The provider's count is read only at the end: the worker may have run the settle item, and sent the cancel,
    before this process gets to read it (it did once, on Redis); the first cancel, which failed here, sent nothing."""
    assert len(tried) == 1
    settle = WorkItem.objects.get(kind=kind, subject_id=subject_id)
    wait_for(lambda: WorkItem.objects.get(pk=settle.pk).state == "done", timeout=60)
    assert standin.stats()["batches"]["canceled"] == 1


def test_a_canceled_batch_is_read_once_it_ends_and_a_failed_cancel_is_sent_again(
    start_worker: Any, batch_standin: StandIn, company_a: Company, alice: Any, first_cancel_fails: list[str]
) -> None:
    batch_standin.configure(batch_seconds=600, batch_done_before_cancel=0.3)
    evaluation = batch_evaluation_of(company_a, 100)
    start_worker(**BATCH_FAST)
    wait_for(lambda: submitted(evaluation), timeout=60, every=0.05)
    services.evaluation_cancel(evaluation=Evaluation.objects.get(pk=evaluation.pk), canceled_by=alice)
    assert_settled(batch_standin, "evaluation.settle", evaluation.id, first_cancel_fails)
    # What succeeded before the cancel was billed: in the ledger at the batch price, its ceiling settled; the
    # canceled evaluation itself never changes.
    classify = JudgeCall.objects.filter(evaluation=evaluation, purpose="classify")
    assert 15 <= classify.count() <= 45  # about 30% of 100
    assert not JudgeCall.objects.filter(evaluation=evaluation, purpose="batch").exists()
    assert month_spend(company_a) == classify.aggregate(c=Sum("cost_usd"))["c"] > 0
    assert classified(evaluation) == 0
    assert status(evaluation) == "FAILED"
