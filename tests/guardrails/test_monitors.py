"""DeepRails monitors (issue 23): the official client in strict mode against a live server, the sdist tests'
shapes, inactive monitors, stats and `limit`, the /evaluate filter, quotas and tenancy."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

import pytest
from deeprails import BadRequestError, Deeprails, NotFoundError, UnprocessableEntityError
from deeprails.types import MonitorDetailResponse
from django.test import override_settings
from rest_framework.test import APIClient

from companies.models import Company
from guardrails.models import GuardrailEvaluation, Monitor, MonitorEvent
from guardrails.monitors import monitor_create
from tests.guardrails.test_scoring import Judges, install_judges

INPUT: Any = {"system_prompt": "Answer briefly.", "user_prompt": "What color is the sky?"}
EVENT = {
    "model_input": INPUT,
    "model_output": "The sky is blue.",
    "guardrail_metrics": ["correctness", "completeness"],
    "run_mode": "economy",
}


@pytest.fixture
def judges(monkeypatch: pytest.MonkeyPatch) -> Judges:
    return install_judges(monkeypatch)


@pytest.fixture
def monitor_a(alice: Any, company_a: Company) -> Monitor:
    return monitor_create(company=company_a, created_by=alice, name="Support bot", description=None)


def strict(live_server: Any, key: str) -> Deeprails:
    return Deeprails(base_url=live_server.url, api_key=key, _strict_response_validation=True, max_retries=0)


def wait_done(client: Deeprails, eval_id: str) -> Any:
    evaluation = client.evaluate.retrieve(eval_id)
    deadline = time.monotonic() + 10
    while evaluation.evaluation_status in {"queued", "in_progress"} and time.monotonic() < deadline:
        time.sleep(0.1)  # tasks run inline in tests, so this normally never waits
        evaluation = client.evaluate.retrieve(eval_id)
    return evaluation


# --- The official client, strict, against a live server ---


@pytest.mark.django_db(transaction=True)
def test_the_official_client_drives_a_monitor(live_server: Any, alice_key: str, judges: Judges) -> None:
    client = strict(live_server, alice_key)
    created = client.monitor.create(name="Support bot", description="Production answers")
    assert created.monitor_id.startswith("mon-")
    assert (created.name, created.description, created.monitor_status) == (
        "Support bot",
        "Production answers",
        "active",
    )
    assert created.created_at is not None
    assert created.user_id is not None

    events = [
        client.monitor.submit_event(
            created.monitor_id,
            model_input=INPUT,
            model_output=f"The sky is blue ({n}).",
            guardrail_metrics=["correctness", "completeness"],
            model_used="gpt-4o",
            nametag=f"tag-{n}",
            run_mode="economy",
        )
        for n in range(3)
    ]
    for event in events:
        assert event.monitor_id == created.monitor_id
        assert event.event_id.startswith("mevt-")
        assert event.evaluation_id.startswith("eval-")
        assert event.created_at is not None
        evaluation = wait_done(client, event.evaluation_id)
        assert evaluation.evaluation_status == "completed", evaluation.error_message
        assert evaluation.evaluation_result is not None
        assert set(evaluation.evaluation_result) == {"correctness", "completeness"}
    assert judges.anthropic.calls == 3  # economy: one call per event

    detail = client.monitor.retrieve(created.monitor_id)
    assert isinstance(detail, MonitorDetailResponse)
    assert detail.stats is not None
    assert detail.stats.total_evaluations == 3
    assert detail.stats.completed_evaluations == 3
    assert (detail.stats.failed_evaluations, detail.stats.queued_evaluations) == (0, 0)
    assert detail.stats.in_progress_evaluations == 0
    assert [e.eval_id for e in detail.evaluations or []] == [e.evaluation_id for e in reversed(events)]
    assert [e.nametag for e in detail.evaluations or []] == ["tag-2", "tag-1", "tag-0"]
    limited = client.monitor.retrieve(created.monitor_id, limit=1)
    assert [e.eval_id for e in limited.evaluations or []] == [events[-1].evaluation_id]
    assert limited.stats is not None
    assert limited.stats.total_evaluations == 3  # the stats count every event, whatever the limit

    updated = client.monitor.update(created.monitor_id, monitor_status="inactive", name="Old bot")
    assert (updated.monitor_status, updated.name, updated.description) == ("inactive", "Old bot", "Production answers")
    with pytest.raises(BadRequestError) as refused:
        client.monitor.submit_event(
            created.monitor_id, model_input=INPUT, model_output="x", guardrail_metrics=["correctness"]
        )
    assert "inactive" in refused.value.message
    assert MonitorEvent.objects.count() == 3  # nothing recorded
    client.monitor.update(created.monitor_id, monitor_status="active")
    client.monitor.submit_event(
        created.monitor_id, model_input=INPUT, model_output="x", guardrail_metrics=["correctness"]
    )
    assert MonitorEvent.objects.count() == 4

    with pytest.raises(NotFoundError):
        client.monitor.retrieve("mon-00000000-0000-0000-0000-000000000000")
    with pytest.raises(UnprocessableEntityError):
        client.monitor.retrieve(created.monitor_id, limit=-1)


@pytest.mark.django_db(transaction=True)
def test_the_sdist_tests_shapes_get_answers_the_client_accepts(
    live_server: Any, alice_key: str, judges: Judges
) -> None:
    """The calls deeprails' own generated tests make, with their placeholder values."""
    client = strict(live_server, alice_key)
    monitor = client.monitor.create(name="name")
    assert monitor.description is None
    monitor = client.monitor.create(name="name", description="description")
    client.monitor.retrieve(monitor.monitor_id)
    assert client.monitor.retrieve(monitor.monitor_id, limit=0).evaluations == []
    client.monitor.update(monitor.monitor_id)
    client.monitor.update(monitor.monitor_id, description="description", monitor_status="active", name="name")
    # model_input={} has neither prompt: a clear 400, not a 500 the client would retry.
    with pytest.raises(BadRequestError) as refused:
        client.monitor.submit_event(
            monitor.monitor_id, guardrail_metrics=["correctness"], model_input={}, model_output="model_output"
        )
    assert "user_prompt or a system_prompt" in refused.value.message
    event = client.monitor.submit_event(
        monitor.monitor_id,
        guardrail_metrics=["correctness"],
        model_input={"ground_truth": "ground_truth", "system_prompt": "system_prompt", "user_prompt": "user_prompt"},
        model_output="model_output",
        model_used="model_used",
        nametag="nametag",
        run_mode="precision_plus",
    )
    assert event.monitor_id == monitor.monitor_id
    # Their placeholder id is simply not found.
    with pytest.raises(NotFoundError):
        client.monitor.retrieve("monitor_id")


# --- Through the API client: errors, filters, quotas ---


def test_a_schema_error_is_a_422_naming_the_field(alice_api: APIClient, monitor_a: Monitor) -> None:
    response = alice_api.post(
        f"/monitor/{monitor_a.monitor_id}/events", {**EVENT, "guardrail_metrics": None}, format="json"
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["detail"][0]["loc"] == ["body", "guardrail_metrics"]
    response = alice_api.post("/monitor", {"description": "no name"}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["detail"][0] == {
        "loc": ["body", "name"],
        "msg": "This field is required.",
        "type": "missing",
    }
    response = alice_api.put(f"/monitor/{monitor_a.monitor_id}", {"monitor_status": "paused"}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not GuardrailEvaluation.objects.exists()


def test_evaluate_lists_filter_by_monitor(
    alice_api: APIClient, alice: Any, company_a: Company, monitor_a: Monitor, judges: Judges
) -> None:
    other = monitor_create(company=company_a, created_by=alice, name="Other")
    mine = alice_api.post(f"/monitor/{monitor_a.monitor_id}/events", EVENT, format="json").json()
    alice_api.post(f"/monitor/{other.monitor_id}/events", EVENT, format="json")
    alice_api.post("/evaluate", EVENT, format="json")  # no monitor
    response = alice_api.get("/evaluate", {"monitor_id": monitor_a.monitor_id})
    assert response.status_code == HTTPStatus.OK
    assert [e["eval_id"] for e in response.json()["results"]] == [mine["evaluation_id"]]
    assert alice_api.get("/evaluate").json()["count"] == 3
    response = alice_api.get("/evaluate", {"monitor_id": "not-a-monitor"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["detail"][0]["loc"] == ["query", "monitor_id"]


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=1)
def test_events_count_in_the_in_flight_quota(alice_api: APIClient, company_a: Company, monitor_a: Monitor) -> None:
    GuardrailEvaluation.objects.create(company=company_a)  # queued: the one allowed
    response = alice_api.post(f"/monitor/{monitor_a.monitor_id}/events", EVENT, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "MAX_EVALUATIONS_IN_FLIGHT" in response.json()["detail"]
    assert not MonitorEvent.objects.exists()


# --- Tenancy ---


def test_it_checks_ownership(charlie_api: APIClient, monitor_a: Monitor) -> None:
    url = f"/monitor/{monitor_a.monitor_id}"
    assert charlie_api.get(url).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.put(url, {"name": "mine"}, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.post(f"{url}/events", EVENT, format="json").status_code == HTTPStatus.NOT_FOUND
    monitor_a.refresh_from_db()
    assert monitor_a.name == "Support bot"
    assert not MonitorEvent.objects.exists()
    # Filtering /evaluate by another company's monitor lists nothing of it.
    assert charlie_api.get("/evaluate", {"monitor_id": monitor_a.monitor_id}).json()["count"] == 0


def test_it_requires_rw_access(bob_api: APIClient, monitor_a: Monitor) -> None:
    url = f"/monitor/{monitor_a.monitor_id}"
    assert bob_api.get(url).status_code == HTTPStatus.OK  # a viewer reads
    assert bob_api.post("/monitor", {"name": "x"}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.put(url, {"name": "x"}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.post(f"{url}/events", EVENT, format="json").status_code == HTTPStatus.FORBIDDEN
    assert Monitor.objects.count() == 1
    assert not MonitorEvent.objects.exists()


def test_stats_count_each_status_and_limit_defaults_to_10(alice_api: APIClient, monitor_a: Monitor) -> None:
    # Not a transactional test: the work is never sent, so every event stays queued until set below.
    for _ in range(12):
        assert (
            alice_api.post(f"/monitor/{monitor_a.monitor_id}/events", EVENT, format="json").status_code
            == HTTPStatus.CREATED
        )
    rows = GuardrailEvaluation.objects.order_by("id")
    Status = GuardrailEvaluation.Status
    for status, ids in ((Status.COMPLETED, rows[:5]), (Status.FAILED, rows[5:7]), (Status.IN_PROGRESS, rows[7:8])):
        GuardrailEvaluation.objects.filter(id__in=[r.id for r in ids]).update(status=status)
    body = alice_api.get(f"/monitor/{monitor_a.monitor_id}").json()
    assert body["stats"] == {
        "total_evaluations": 12,
        "completed_evaluations": 5,
        "failed_evaluations": 2,
        "in_progress_evaluations": 1,
        "queued_evaluations": 4,
    }
    assert len(body["evaluations"]) == 10
