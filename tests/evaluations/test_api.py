from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from dataframer import BadRequestError, Dataframer, NotFoundError
from rest_framework.test import APIClient

from evaluations.models import Evaluation
from runs.models import Run

EVALUATIONS = "/api/dataframer/evaluations/"
DOCUMENTED_FIELDS = {
    "id", "run_id", "status", "conformance_score", "conformance_explanation", "distribution_analysis",
    "sample_classifications", "started_at", "completed_at", "error_message", "created_by_email", "created_at",
    "duration_seconds", "company_id", "status_display", "conformant_areas", "non_conformant_areas", "trace",
    "created_by", "updated_at",
}  # fmt: skip


def test_create_returns_the_full_object_pending(alice_api: APIClient, run_a: Run, alice: Any) -> None:
    response = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) == DOCUMENTED_FIELDS
    assert body["status"] == "PENDING"
    assert body["status_display"] == "Pending"
    assert body["conformance_score"] is None
    assert body["distribution_analysis"] is None
    assert body["sample_classifications"] == []
    assert body["created_by"] == alice.id
    assert body["created_by_email"] == "alice@alpha.test"
    assert body["trace"]["requested_model"] == "anthropic/claude-sonnet-4-6-thinking"
    assert body["trace"]["progress"] == {"classified": 0, "failed": 0, "total": 12}


def test_create_then_poll_to_succeeded(
    alice_api: APIClient, run_a: Run, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = alice_api.post(
            EVALUATIONS,
            {"run_id": str(run_a.code), "evaluation_model": "openai/gpt-5.4"},
            format="json",
        )
    body = alice_api.get(f"{EVALUATIONS}{created.json()['id']}/").json()
    assert body["status"] == "SUCCEEDED"
    assert len(body["sample_classifications"]) == 12
    assert body["trace"]["model_used"] == "local/embeddings"
    assert body["trace"]["offline_judge"] is True
    assert "OPENAI_API_KEY is not set" in body["trace"]["fallback_reason"]
    assert body["trace"]["progress"] == {"classified": 12, "failed": 0, "total": 12}
    [sentiment, priority] = body["distribution_analysis"]
    assert sentiment["requested_distributions"] == {
        "positive": 40,
        "negative": 30,
        "neutral": 30,
    }
    assert sentiment["evaluated_distributions"] == sentiment["observed_distributions"]
    assert sum(sentiment["evaluated_distributions"].values()) == pytest.approx(100, abs=0.05)
    # The texts say nothing of urgency: the embedded judge declines priority (issue #20), so it is not analysed.
    assert priority["total_samples_analyzed"] == 0
    stats = alice_api.get(f"{EVALUATIONS}{body['id']}/statistics/").json()["statistics"]
    assert [p["property_name"] for p in stats["properties"]] == [
        "sentiment",
        "priority",
    ]
    assert stats["properties"][1]["declined"].startswith("this property needs an LLM judge or human reviews")
    listed = alice_api.get(f"/api/dataframer/runs/{run_a.code}/evaluations/").json()
    assert [e["id"] for e in listed] == [body["id"]]


def test_create_validates(alice_api: APIClient, run_a: Run) -> None:
    response = alice_api.post(
        EVALUATIONS,
        {"run_id": str(run_a.code), "evaluation_model": "gpt-2"},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    [message] = response.json()["evaluation_model"]
    assert message.startswith("Unknown evaluation model 'gpt-2'. Allowed: anthropic/claude-haiku-4-5,")
    assert "local/embeddings" in message
    assert alice_api.post(EVALUATIONS, {"run_id": "x"}, format="json").json() == {"run_id": ["Must be a valid UUID."]}
    assert alice_api.post(EVALUATIONS, {}, format="json").status_code == HTTPStatus.BAD_REQUEST
    malformed = alice_api.generic("POST", EVALUATIONS, "{", content_type="application/json")
    assert malformed.status_code == HTTPStatus.BAD_REQUEST
    Run.objects.filter(pk=run_a.pk).update(status=Run.Status.PROCESSING)
    response = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")
    assert response.json() == {"detail": "Only SUCCEEDED runs can be evaluated; this run is PROCESSING."}
    assert not Evaluation.objects.exists()


def test_it_checks_ownership(charlie_api: APIClient, alice_api: APIClient, run_a: Run) -> None:
    evaluation_id = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").json()["id"]
    assert charlie_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{EVALUATIONS}{evaluation_id}/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{EVALUATIONS}{evaluation_id}/statistics/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"/api/dataframer/runs/{run_a.code}/evaluations/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(EVALUATIONS).json() == []


def test_it_requires_rw_access(bob_api: APIClient, alice_api: APIClient, run_a: Run) -> None:
    evaluation_id = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").json()["id"]
    assert bob_api.get(f"{EVALUATIONS}{evaluation_id}/").status_code == HTTPStatus.OK
    assert bob_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").status_code == HTTPStatus.FORBIDDEN


def test_deleting_a_run_removes_its_evaluations(alice_api: APIClient, run_a: Run) -> None:
    alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")
    assert alice_api.delete(f"/api/dataframer/runs/{run_a.code}/").status_code == HTTPStatus.NO_CONTENT
    assert not Evaluation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_official_client_end_to_end(live_server: Any, alice_key: str, run_a: Run, fake_anthropic: Any) -> None:
    client = Dataframer(
        base_url=live_server.url,
        api_key=alice_key,
        _strict_response_validation=True,
        max_retries=0,
    )
    created = client.dataframer.evaluations.create(run_id=str(run_a.code))
    assert created.status in {
        "PENDING",
        "SUCCEEDED",
    }  # tasks run inline in tests, right after the commit
    evaluation = client.dataframer.evaluations.retrieve(created.id or "")
    assert evaluation.status == "SUCCEEDED", evaluation.error_message
    assert evaluation.run_id == str(run_a.code)
    assert evaluation.conformance_score is not None
    assert 0 <= evaluation.conformance_score <= 100
    assert evaluation.conformance_explanation == "Fake conformance_explanation."
    assert evaluation.conformant_areas
    assert evaluation.non_conformant_areas
    assert evaluation.duration_seconds is not None
    assert evaluation.started_at
    assert evaluation.completed_at
    assert evaluation.company_id == str(run_a.company.code)
    assert evaluation.trace
    assert evaluation.trace["model_used"] == "anthropic/claude-sonnet-4-6-thinking"
    assert evaluation.trace["calls"] == 13
    [sentiment, _priority] = evaluation.distribution_analysis or []
    assert sentiment.total_samples == 12
    assert sentiment.total_samples_analyzed == 12
    # The fake judge always picks the first value.
    assert sentiment.evaluated_distributions == {
        "positive": 100.0,
        "negative": 0.0,
        "neutral": 0.0,
    }
    classifications = evaluation.sample_classifications or []
    assert len(classifications) == 12
    assert classifications[0].sample_identifier == "sample_1"
    assert classifications[0].classifications == {
        "sentiment": "positive",
        "priority": "high",
    }
    [listed] = client.dataframer.runs.evaluations.list(str(run_a.code))
    assert listed.id == created.id
    assert listed.status == "SUCCEEDED"
    with pytest.raises(BadRequestError):
        client.dataframer.evaluations.create(run_id=str(run_a.code), evaluation_model="nope")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        client.dataframer.evaluations.retrieve("00000000-0000-0000-0000-000000000000")
