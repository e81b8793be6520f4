"""Per-company quotas (issue 12): request rates, evaluations and samples in flight, the monthly LLM budget.

Over any limit the answer is 429 with Retry-After and a message naming the limit; the other company is unaffected.
"""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from companies.models import Company
from evaluations.models import Evaluation
from guardrails.models import GuardrailEvaluation
from llm.models import JudgeCall
from runs.api.views import SpecViewSet
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows

SPECS = "/api/dataframer/specs/"
EVALUATIONS = "/api/dataframer/evaluations/"
EVALUATE = "/evaluate"
BODY = {
    "model_input": {"system_prompt": "Answer briefly.", "user_prompt": "What color is the sky?"},
    "model_output": "The sky is blue.",
    "run_mode": "economy",
    "guardrail_metrics": ["correctness"],
}


@pytest.fixture
def run_b(charlie: Any, company_b: Company) -> Run:
    spec = spec_create(company=company_b, created_by=charlie, name="Support", content_yaml=SPEC_YAML)
    return run_import(company=company_b, created_by=charlie, spec=spec, rows=make_rows(12))


def _pending(company: Company, run: Run, count: int, samples: int = 12) -> None:
    Evaluation.objects.bulk_create(
        Evaluation(company=company, run=run, total_samples=samples, status=Evaluation.Status.PENDING)
        for _ in range(count)
    )


def _spend(company: Company, usd: str) -> None:
    JudgeCall.objects.create(company=company, provider="p", model="m", purpose="classify", outcome="ok", cost_usd=usd)


# --- API requests per minute ---


@override_settings(API_REQUESTS_PER_MINUTE=3, API_REQUESTS_PER_MINUTE_PER_KEY=100)
def test_it_throttles_one_company_and_not_the_other(
    alice_api: APIClient, bob_api: APIClient, charlie_api: APIClient
) -> None:
    # alice and bob share company A's 3 requests a minute, whichever key they use.
    for client in (alice_api, bob_api, alice_api):
        assert client.get(SPECS).status_code == HTTPStatus.OK
    response = bob_api.get(SPECS)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(response["Retry-After"]) <= 61
    assert "3 requests per minute for your company" in response.json()["detail"]
    assert "API_REQUESTS_PER_MINUTE" in response.json()["detail"]
    # The DeepRails paths too, with the same {"detail": str} body.
    response = alice_api.get(EVALUATE)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert set(response.json()) == {"detail"}
    # Company B has its own count.
    for _ in range(3):
        assert charlie_api.get(SPECS).status_code == HTTPStatus.OK


@override_settings(API_REQUESTS_PER_MINUTE=100, API_REQUESTS_PER_MINUTE_PER_KEY=2)
def test_it_throttles_per_key(alice_api: APIClient, bob_api: APIClient) -> None:
    for _ in range(2):
        assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    response = alice_api.get(SPECS)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "2 requests per minute for this API key" in response.json()["detail"]
    assert bob_api.get(SPECS).status_code == HTTPStatus.OK  # another key of the same company


@override_settings(API_REQUESTS_PER_MINUTE=0, API_REQUESTS_PER_MINUTE_PER_KEY=0)
def test_zero_turns_the_rate_limits_off(alice_api: APIClient) -> None:
    for _ in range(5):
        assert alice_api.get(SPECS).status_code == HTTPStatus.OK


# --- API requests in progress at once ---


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug")


@override_settings(API_CONCURRENT_REQUESTS_PER_COMPANY=1)
def test_a_company_with_a_request_in_progress_waits_and_the_other_does_not(
    alice_api: APIClient,
    bob_api: APIClient,
    charlie_api: APIClient,
    company_a: Company,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from companies.api.throttles import concurrency_slot_give_back, concurrency_slot_take

    # Every answer gives its slot back, an error answer too, and a bug's 500.
    assert alice_api.get(f"{SPECS}00000000-0000-0000-0000-000000000000/").status_code == HTTPStatus.NOT_FOUND
    with monkeypatch.context() as patch:
        patch.setattr(SpecViewSet, "list", _explode)
        assert alice_api.get(SPECS).status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    for client in (alice_api, bob_api, alice_api):
        assert client.get(SPECS).status_code == HTTPStatus.OK
    in_progress = concurrency_slot_take(company_a.id)  # a slow request of company A, e.g. a large import
    assert in_progress is not None
    response = alice_api.post(EVALUATE, BODY, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response["Retry-After"] == "1"
    assert "at most 1 API requests of your company in progress at a time" in response.json()["detail"]
    assert "API_CONCURRENT_REQUESTS_PER_COMPANY" in response.json()["detail"]
    assert not GuardrailEvaluation.objects.exists()  # refused before the body was read
    assert charlie_api.get(SPECS).status_code == HTTPStatus.OK  # company B has slots of its own
    concurrency_slot_give_back(in_progress)
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED


@override_settings(API_CONCURRENT_REQUESTS_PER_COMPANY=0)
def test_zero_turns_the_concurrency_limit_off(company_a: Company) -> None:
    from companies.api.throttles import concurrency_slot_take

    assert concurrency_slot_take(company_a.id) is None


@override_settings(API_REQUESTS_PER_MINUTE=2)
def test_it_throttles_browser_sessions_by_company(client: Client, alice: Any) -> None:
    client.force_login(alice)
    assert client.get(SPECS).status_code == HTTPStatus.OK
    assert client.get(SPECS).status_code == HTTPStatus.OK
    assert client.get(SPECS).status_code == HTTPStatus.TOO_MANY_REQUESTS


# --- Evaluations and samples in flight ---


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=2)
def test_it_caps_evaluations_in_flight_per_company(
    alice_api: APIClient, charlie_api: APIClient, run_a: Run, run_b: Run, company_a: Company
) -> None:
    _pending(company_a, run_a, 1)
    GuardrailEvaluation.objects.create(company=company_a)  # queued: counts as well
    response = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(response["Retry-After"]) > 0
    detail = response.json()["detail"]
    assert "Evaluations in flight" in detail
    assert "the limit is 2 (MAX_EVALUATIONS_IN_FLIGHT)" in detail
    assert Evaluation.objects.filter(company=company_a).count() == 1  # nothing created
    # The DeepRails paths answer the same way.
    response = alice_api.post(EVALUATE, BODY, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert set(response.json()) == {"detail"}
    assert "MAX_EVALUATIONS_IN_FLIGHT" in response.json()["detail"]
    response = alice_api.post(f"{EVALUATE}/batch", {"items": [BODY]}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    # Company B is unaffected.
    assert charlie_api.post(EVALUATIONS, {"run_id": str(run_b.code)}, format="json").status_code == HTTPStatus.CREATED
    # Finished evaluations no longer count.
    Evaluation.objects.filter(company=company_a).update(status=Evaluation.Status.SUCCEEDED)
    assert alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").status_code == HTTPStatus.CREATED


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=10)
def test_a_batch_counts_every_item(alice_api: APIClient, company_a: Company) -> None:
    response = alice_api.post(f"{EVALUATE}/batch", {"items": [BODY] * 11}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "11 more asked" in response.json()["detail"]
    assert not GuardrailEvaluation.objects.filter(company=company_a).exists()


@override_settings(MAX_SAMPLES_IN_FLIGHT=20)
def test_it_caps_samples_in_flight(alice_api: APIClient, run_a: Run, company_a: Company) -> None:
    _pending(company_a, run_a, 1, samples=12)
    response = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")  # 12 more: 24 > 20
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "the limit is 20 (MAX_SAMPLES_IN_FLIGHT)" in response.json()["detail"]


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=1)
def test_the_evaluate_button_answers_429_naming_the_limit(
    client: Client, alice: Any, run_a: Run, company_a: Company
) -> None:
    _pending(company_a, run_a, 1)
    client.force_login(alice)
    response = client.post(
        f"/runs/{run_a.code}/evaluate/", {"evaluation_model": settings.JUDGE_DEFAULT_MODEL}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "MAX_EVALUATIONS_IN_FLIGHT" in response.content.decode()
    assert int(response["Retry-After"]) > 0


# --- Monthly budget ---


@override_settings(MONTHLY_BUDGET_USD=Decimal(5))
def test_it_refuses_new_evaluations_over_the_monthly_budget(
    alice_api: APIClient, charlie_api: APIClient, run_a: Run, run_b: Run, company_a: Company, time_machine: Any
) -> None:
    time_machine.move_to("2026-03-31T22:00:00Z", tick=False)
    _spend(company_a, "3")
    _spend(company_a, "2.5")
    response = alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Monthly LLM budget reached: $5.50 spent of $5.00" in response.json()["detail"]
    assert int(response["Retry-After"]) == 2 * 3600  # until April starts, UTC
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert charlie_api.post(EVALUATIONS, {"run_id": str(run_b.code)}, format="json").status_code == HTTPStatus.CREATED
    # A company's own budget wins over the setting; 0 is unlimited.
    Company.objects.filter(pk=company_a.pk).update(monthly_budget_usd=Decimal(0))
    assert alice_api.post(EVALUATIONS, {"run_id": str(run_a.code)}, format="json").status_code == HTTPStatus.CREATED
    # A new month starts from nothing.
    Company.objects.filter(pk=company_a.pk).update(monthly_budget_usd=Decimal("1.00"))
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.TOO_MANY_REQUESTS
    time_machine.move_to("2026-04-01T00:00:01Z", tick=False)
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED


def test_the_budget_is_unlimited_by_default(alice_api: APIClient, company_a: Company) -> None:
    for _ in range(11):  # $109,989: one ledger row holds at most $9,999.99999999 (PostgreSQL enforces it)
        _spend(company_a, "9999")
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED


# --- Usage: the owner's page and the admin ---


@override_settings(MONTHLY_BUDGET_USD=Decimal(50), MAX_EVALUATIONS_IN_FLIGHT=20)
def test_the_usage_page_shows_spend_and_work_in_flight(
    client: Client, alice: Any, run_a: Run, company_a: Company, company_b: Company
) -> None:
    _spend(company_a, "12.345")
    _spend(company_b, "99")  # another company's spend is not ours
    _pending(company_a, run_a, 3, samples=12)
    client.force_login(alice)
    response = client.get("/usage/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/companies/{company_a.code}/usage/"
    page = client.get(response["Location"]).content.decode()
    assert "$12.35" in page
    assert "$50.00" in page
    assert "<td>3</td>" in page
    assert "<td>36</td>" in page
    assert "<td>20</td>" in page
    assert 'href="/usage/"' in page  # the owner's nav links to it


def test_usage_checks_ownership(client: Client, charlie: Any, company_a: Company) -> None:
    client.force_login(charlie)
    assert client.get(f"/companies/{company_a.code}/usage/").status_code == HTTPStatus.NOT_FOUND


def test_usage_requires_an_owner_or_admin(client: Client, bob: Any, company_a: Company) -> None:
    client.force_login(bob)
    assert client.get(f"/companies/{company_a.code}/usage/").status_code == HTTPStatus.FORBIDDEN
    assert 'href="/usage/"' not in client.get("/").content.decode()


@override_settings(MONTHLY_BUDGET_USD=Decimal(5))
def test_staff_see_usage_in_the_admin(client: Client, company_a: Company, run_a: Run) -> None:
    from django.contrib.auth.models import User

    _spend(company_a, "7")
    _pending(company_a, run_a, 2, samples=12)
    client.force_login(User.objects.create_superuser("ops", "ops@example.test", "x"))
    page = client.get(f"/admin/companies/company/{company_a.pk}/change/").content.decode()
    assert "$7.00 of $5.00 (over budget: new evaluations refused)" in page
    assert "2 of 1000 evaluations, 24 of 100000 samples" in page
    assert client.get("/admin/companies/company/").status_code == HTTPStatus.OK
    assert client.get("/admin/companies/company/add/").status_code == HTTPStatus.OK
