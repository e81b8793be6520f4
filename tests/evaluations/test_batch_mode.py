"""Batch mode's request, form and page (issue #26): opt-in per request (our addition, in the schema), by size, a 400
for a model without a batch API or a bad value, the run page's form with the expected price of each mode, and the
evaluation page's batch progress and price saved."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evaluations.models import Evaluation
from runs.models import Run
from work.models import WorkItem

EVALUATIONS = "/api/dataframer/evaluations/"


@pytest.fixture
def alice_client(client: Client, alice: Any) -> Client:
    client.force_login(alice)
    return client


def create(client: APIClient, run: Run, **extra: Any) -> Any:
    return client.post(EVALUATIONS, {"run_id": str(run.code), **extra}, format="json")


@pytest.mark.parametrize(
    ("extra", "threshold", "batch"),
    [
        ({"batch": True}, 0, True),
        ({"batch": False}, 1, False),  # asked: interactive, whatever the size
        ({}, 12, True),  # by size: the run has 12 samples
        ({"batch": None}, 13, False),
        ({}, 0, False),  # 0: never by size
    ],
)
def test_batch_mode_is_asked_for_or_by_size(
    alice_api: APIClient, run_a: Run, settings: Any, extra: dict[str, Any], threshold: int, batch: bool
) -> None:
    settings.JUDGE_BATCH_MIN_SAMPLES = threshold
    response = create(alice_api, run_a, evaluation_model="anthropic/claude-sonnet-4-6", **extra)
    assert response.status_code == HTTPStatus.CREATED
    assert set(response.json()) >= {"id", "status", "trace"}  # the documented response, unchanged in shape
    assert Evaluation.objects.get(code=response.json()["id"]).batch is batch


def test_a_model_without_a_batch_api_or_a_bad_value_is_a_400(alice_api: APIClient, run_a: Run) -> None:
    response = create(alice_api, run_a, evaluation_model="local/embeddings", batch=True)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "no batch API" in response.json()["detail"]
    assert create(alice_api, run_a, batch="sometimes").status_code == HTTPStatus.BAD_REQUEST
    assert create(alice_api, run_a, batch=[1]).status_code == HTTPStatus.BAD_REQUEST
    assert not Evaluation.objects.exists()


def test_the_schema_documents_the_batch_field(alice_api: APIClient) -> None:
    schema = alice_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    request = schema["components"]["schemas"]["EvaluationCreate"]["properties"]
    assert request["batch"]["type"] == "boolean"
    assert "batch" not in schema["components"]["schemas"]["EvaluationCreate"].get("required", [])


def test_the_run_page_offers_batch_mode_with_the_expected_price(
    alice_client: Client, run_a: Run, settings: Any
) -> None:
    from evaluations.batch import price_estimate

    settings.JUDGE_DEFAULT_MODEL = "anthropic/claude-sonnet-4-6"
    estimate = price_estimate(run_a)
    assert estimate is not None
    interactive, batch = estimate
    assert batch == interactive / 2 > 0
    page = alice_client.get(f"/runs/{run_a.code}/").content.decode()
    assert f"Batch: half price, within 24 h (about ${batch:.2f})" in page
    assert f"Interactive: now (about ${interactive:.2f})" in page
    settings.JUDGE_DEFAULT_MODEL = "local/embeddings"  # no prices: no figure to show
    assert price_estimate(run_a) is None


def test_the_form_starts_a_batch_evaluation(alice_client: Client, run_a: Run) -> None:
    response = alice_client.post(
        f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "anthropic/claude-sonnet-4-6", "mode": "batch"}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert Evaluation.objects.get().batch is True


def test_the_evaluation_page_shows_batch_progress_and_the_price_saved(
    alice_client: Client, run_a: Run, alice: Any
) -> None:
    from evaluations.services import evaluation_create

    evaluation = evaluation_create(
        company=run_a.company, created_by=alice, run=run_a, model_name="anthropic/claude-sonnet-4-6", batch=True
    )
    WorkItem.objects.create(
        company=run_a.company,
        kind="evaluation.batch",
        subject_id=evaluation.id,
        key=f"evaluation.batch:{evaluation.id}",
        args={"batches": [
            {"id": "msgbatch_1", "status": "<b>in_progress</b>", "requests": 12, "read": 5, "cost": "0.0100"},
        ]},
    )  # fmt: skip
    page = alice_client.get(f"/evaluations/{evaluation.code}/").content.decode()
    assert "5 / 12 results read (&lt;b&gt;in_progress&lt;/b&gt;); saved $0.0100" in page
