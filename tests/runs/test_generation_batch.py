"""Batch mode for run generation (issue #26): asked for per request (our addition, in the schema) or by size, a 400
for a model without a batch API, with the conformance filter or for a bad value, the spec page's form with the
expected price; and through real worker processes against the stand-in's batch APIs: every position written once
for its planned values, a worker killed while the batch is in flight resumes it without a second submission,
partial errors end with every position written or failed with its reason, and cancel reaches the provider.

The worker tests run on both CI legs: SQLite with the ORM broker, PostgreSQL with Redis.
"""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.db.models import Count, Sum
from django.test import Client
from rest_framework.test import APIClient

from benchmarks.standin import StandIn
from companies.models import Company
from companies.quotas import month_spend
from llm.catalog import get_judge_model
from llm.models import JudgeCall
from runs import assignment, generation
from runs.batch import price_estimate
from runs.models import GenerationFailure, Run, Spec
from tests.conftest import STANDIN_MODEL
from tests.evaluations.test_batch_worker import (  # noqa: F401 - fixtures among them
    BATCH_FAST,
    assert_settled,
    batch_standin,
    first_cancel_fails,
)
from tests.test_worker import model_requests, wait_for
from work.models import WorkItem

RUNS = "/api/dataframer/runs/"
SONNET = "anthropic/claude-sonnet-4-6"


def create(client: APIClient, spec: Spec, **extra: Any) -> Any:
    return client.post(RUNS, {"spec_id": str(spec.code), "number_of_samples": 12, **extra}, format="json")


@pytest.mark.parametrize(
    ("extra", "threshold", "batch"),
    [
        ({"batch": True}, 0, True),
        ({"batch": False}, 1, False),  # asked: interactive, whatever the size
        ({}, 12, True),  # by size: 12 samples
        ({"batch": None}, 13, False),
        ({}, 0, False),  # 0: never by size
        ({"filtering_types": ["conformance"]}, 1, False),  # by size, but the filter writes interactively
    ],
)
def test_batch_mode_is_asked_for_or_by_size(
    alice_api: APIClient,
    spec_a: Spec,
    fake_anthropic: Any,
    settings: Any,
    extra: dict[str, Any],
    threshold: int,
    batch: bool,
) -> None:
    settings.GENERATION_BATCH_MIN_SAMPLES = threshold
    response = create(alice_api, spec_a, generation_model=SONNET, **extra)
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert set(response.json()) == {"id"}  # the documented response, unchanged
    assert Run.objects.get(code=response.json()["id"]).runtime_params.get("batch", False) is batch


def test_a_model_without_a_batch_api_the_filter_or_a_bad_value_is_a_400(
    alice_api: APIClient, spec_a: Spec, fake_anthropic: Any, standin: StandIn
) -> None:
    response = create(alice_api, spec_a, generation_model=STANDIN_MODEL, batch=True)  # an OpenAI-compatible server
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "no batch API" in response.json()["detail"]
    response = create(alice_api, spec_a, generation_model=SONNET, batch=True, filtering_types=["conformance"])
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "conformance filter" in response.json()["detail"]
    assert create(alice_api, spec_a, batch="sometimes").status_code == HTTPStatus.BAD_REQUEST
    assert create(alice_api, spec_a, batch=1).status_code == HTTPStatus.BAD_REQUEST
    assert not Run.objects.exists()


def test_the_schema_documents_the_batch_field(alice_api: APIClient) -> None:
    schema = alice_api.get("/api/schema/", {"format": "json"}).json()
    run_create = schema["components"]["schemas"]["RunCreate"]
    assert run_create["properties"]["batch"]["type"] == "boolean"
    assert "batch" not in run_create.get("required", [])


def test_the_spec_page_offers_batch_mode_with_the_expected_price(
    client: Client, alice: Any, spec_a: Spec, fake_anthropic: Any
) -> None:
    estimate = price_estimate(spec_a)
    assert estimate is not None
    interactive, batch = estimate
    assert batch == interactive / 2 > 0
    client.force_login(alice)
    page = client.get(f"/specs/{spec_a.code}/").content.decode()
    assert f"Batch: half price, within 24 h (about ${batch:.2f} per 1,000 samples)" in page
    assert f"Interactive: now (about ${interactive:.2f} per 1,000 samples)" in page
    form = {"number_of_samples": 6, "generation_model": SONNET, "assignment_mode": "quota", "mode": "batch"}
    response = client.post(f"/specs/{spec_a.code}/generate/", form)
    assert response.status_code == HTTPStatus.FOUND
    assert Run.objects.get().runtime_params.get("batch") is True


# --- Through real workers, against the stand-in's batch APIs ---


def status(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def batch_generation(company: Company, spec: Spec, n: int) -> Run:
    return generation.run_generate(
        company=company, created_by=None, spec=spec, number_of_samples=n, generation_model=STANDIN_MODEL, batch=True
    )


def submitted(run: Run) -> bool:
    """Whether a batch id is on the run's batch item (which the start item creates)."""
    args = WorkItem.objects.filter(kind="run.batch", subject_id=run.id).values_list("args", flat=True)
    return bool((args.first() or {}).get("batches"))


def assert_every_position_once(run: Run) -> None:
    """Each position has one sample, for its planned values, or one failure that says why; never both."""
    run.refresh_from_db()
    samples = run.samples.order_by("position")
    failures = GenerationFailure.objects.filter(run=run)
    positions = list(samples.values_list("position", flat=True)) + list(failures.values_list("position", flat=True))
    assert sorted(positions) == list(range(run.samples_requested))
    assert not failures.filter(reason="").exists()
    plan = assignment.plan(
        run.spec_version.parsed_properties, run.samples_requested, seed=run.runtime_params["assignment_seed"]
    )
    assert all(sample.properties == plan[sample.position] for sample in samples)
    assert (run.samples_completed, run.samples_failed) == (samples.count(), failures.count())


@pytest.mark.usefixtures("batch_standin")
def test_a_batch_generation_writes_every_position_once_at_half_price(
    start_worker: Any, standin: StandIn, company_a: Company, spec_a: Spec
) -> None:
    run = batch_generation(company_a, spec_a, 120)
    start_worker(**BATCH_FAST, JUDGE_BATCH_MAX_REQUESTS="50")  # split: 50 + 50 + 20
    wait_for(lambda: status(run) not in {"PENDING", "PROCESSING"}, timeout=90)
    run.refresh_from_db()
    assert run.status == "SUCCEEDED", run.runtime_params.get("error")
    assert_every_position_once(run)
    assert run.samples_completed == 120
    batches = standin.stats()["batches"]
    assert (batches["created"], batches["requests"]) == (3, 120)
    assert model_requests(standin) == 0  # every sample came from a batch
    generate = JudgeCall.objects.filter(run=run, purpose="generate")
    assert generate.count() == 120
    usage = generate.aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens"), r=Sum("cache_read_tokens"), w=Sum("cache_write_tokens")
    )
    interactive = get_judge_model(STANDIN_MODEL).prices.cost(
        input_tokens=usage["i"], output_tokens=usage["o"], cache_read=usage["r"], cache_write=usage["w"]
    )
    assert generate.aggregate(c=Sum("cost_usd"))["c"] == pytest.approx(interactive / 2, rel=Decimal("1e-4"))
    # Each batch's "sent" row was settled once read, and the run's cost is its ledger's.
    assert not JudgeCall.objects.filter(run=run).exclude(purpose="generate").exists()
    assert run.total_cost == pytest.approx(
        generate.aggregate(c=Sum("cost_usd"))["c"], abs=Decimal("1e-6")
    )  # kept to 6 places


@pytest.mark.usefixtures("batch_standin")
def test_a_worker_killed_while_the_batch_is_in_flight_resumes_it_without_a_second_submission(
    start_worker: Any, standin: StandIn, company_a: Company, spec_a: Spec
) -> None:
    standin.configure(batch_seconds=5)  # a slow batch
    run = batch_generation(company_a, spec_a, 60)
    worker = start_worker(**BATCH_FAST)
    wait_for(lambda: standin.stats()["batches"].get("created") == 1, timeout=60)
    # The id is on the item as soon as the provider gave it: the kill cannot lose it.
    wait_for(lambda: submitted(run), timeout=10, every=0.05)
    worker.kill()
    assert status(run) == "PROCESSING"
    assert run.samples.count() == 0
    # The monthly budget counts the batch from its submission, at its ceiling (batch price)...
    [sent] = JudgeCall.objects.filter(run=run)
    assert (sent.purpose, sent.outcome) == ("batch", "sent")
    assert month_spend(company_a) == sent.cost_usd > 0
    start_worker(**BATCH_FAST)
    wait_for(lambda: status(run) != "PROCESSING", timeout=90)
    run.refresh_from_db()
    assert run.status == "SUCCEEDED", run.runtime_params.get("error")
    assert_every_position_once(run)
    assert run.samples_completed == 60
    batches = standin.stats()["batches"]
    assert (batches["created"], batches["requests"]) == (1, 60)  # polled again, never submitted again
    # ...and settles at the end: the ceiling gives way to what the requests cost, which is less.
    assert not JudgeCall.objects.filter(run=run, purpose="batch").exists()
    assert 0 < month_spend(company_a) < sent.cost_usd


@pytest.mark.usefixtures("batch_standin")
def test_partial_errors_end_with_every_position_written_or_failed_with_its_reason(
    start_worker: Any, standin: StandIn, company_a: Company, spec_a: Spec
) -> None:
    standin.configure(batch_errored=0.15, batch_expired=0.1)
    run = batch_generation(company_a, spec_a, 120)
    # The interactive retries meet faults too: some positions fail for good, each with its reason.
    start_worker(**BATCH_FAST, JUDGE_MAX_ATTEMPTS="2", JUDGE_BACKOFF_MAX_SECONDS="1")
    wait_for(lambda: standin.stats()["batches"].get("ended") == 1, timeout=60)
    standin.configure(faults={"refusal": 0.3})
    wait_for(lambda: status(run) != "PROCESSING", timeout=90)
    run.refresh_from_db()
    assert run.status == "SUCCEEDED", run.runtime_params.get("error")
    assert_every_position_once(run)
    [batch] = WorkItem.objects.get(kind="run.batch", subject_id=run.id).args["batches"]
    assert batch["status"] == "expired"
    retried = 120 - batch["counts"]["completed"]  # errored or expired: written again interactively
    assert 10 <= retried <= 60  # about a quarter of 120
    assert model_requests(standin) >= retried
    assert run.samples_failed > 0
    # Unbilled batch requests (errored, expired) have no ledger row; every billed one and every interactive
    # request has one.
    assert JudgeCall.objects.filter(run=run).count() == (120 - retried) + model_requests(standin)
    assert not JudgeCall.objects.filter(run=run, outcome="sent").exists()
    assert not run.samples.values("position").annotate(n=Count("id")).filter(n__gt=1).exists()


@pytest.mark.usefixtures("batch_standin")
def test_cancel_reaches_the_provider(
    start_worker: Any, standin: StandIn, company_a: Company, spec_a: Spec, monkeypatch: Any
) -> None:
    from llm import providers

    monkeypatch.setattr(providers, "http_client_for", None)  # this process cancels: the stand-in, not a refusal
    standin.configure(batch_seconds=600)
    run = batch_generation(company_a, spec_a, 40)
    start_worker(**BATCH_FAST)
    wait_for(lambda: submitted(run), timeout=60, every=0.05)
    assert generation.run_cancel(run=Run.objects.get(pk=run.pk))
    assert standin.stats()["batches"]["canceled"] == 1
    assert status(run) == "CANCELED"
    assert WorkItem.objects.get(kind="run.batch", subject_id=run.id).state == "canceled"


@pytest.mark.usefixtures("batch_standin")
def test_a_canceled_runs_batch_is_read_once_it_ends_and_a_failed_cancel_is_sent_again(
    start_worker: Any,
    standin: StandIn,
    company_a: Company,
    spec_a: Spec,
    first_cancel_fails: list[str],  # noqa: F811  # the fixture imported above, by its name
) -> None:
    standin.configure(batch_seconds=600, batch_done_before_cancel=0.3)
    run = batch_generation(company_a, spec_a, 60)
    start_worker(**BATCH_FAST)
    wait_for(lambda: submitted(run), timeout=60, every=0.05)
    assert generation.run_cancel(run=Run.objects.get(pk=run.pk))
    assert_settled(standin, "run.settle", run.id, first_cancel_fails)
    # What succeeded before the cancel was billed: in the ledger and total_cost, its ceiling settled; the canceled
    # run gets no sample.
    generate = JudgeCall.objects.filter(run=run, purpose="generate")
    assert 6 <= generate.count() <= 30  # about 30% of 60
    assert not JudgeCall.objects.filter(run=run, purpose="batch").exists()
    run.refresh_from_db()
    assert (run.status, run.samples.count()) == ("CANCELED", 0)
    spent = generate.aggregate(c=Sum("cost_usd"))["c"]
    assert month_spend(company_a) == spent > 0
    assert run.total_cost == pytest.approx(spent, abs=Decimal("1e-6"))
