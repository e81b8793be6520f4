"""0 means off for every limit that counts: sign-in and key failures, rotations, request rates, concurrency, work in
flight and the budget. Each test sets one limit to 0 and goes well past where any limit would stop it; the right
password, the right key and new work all still go through (0 once answered 429 to everyone)."""

from __future__ import annotations

from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from companies.models import ApiKey
from tests.conftest import PASSWORD

SPECS = "/api/dataframer/specs/"
MANY = 25  # past every default: 5 and 20 failures, 5 rotations an hour


@pytest.mark.parametrize("setting", ["LOGIN_MAX_FAILURES_PER_USERNAME", "LOGIN_MAX_FAILURES_PER_ADDRESS"])
@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_zero_turns_the_sign_in_limits_off(alice: Any, setting: str, path: str) -> None:
    from django.contrib.auth.models import User

    User.objects.filter(pk=alice.pk).update(is_staff=True)  # so the admin lets her in
    other = "LOGIN_MAX_FAILURES_PER_ADDRESS" if setting.endswith("USERNAME") else "LOGIN_MAX_FAILURES_PER_USERNAME"
    client = Client()
    with override_settings(**{setting: 0, other: 1000}):
        for _ in range(MANY):
            assert client.post(path, {"username": "alice@alpha.test", "password": "guess"}).status_code == HTTPStatus.OK
        response = client.post(path, {"username": "alice@alpha.test", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND


@override_settings(API_KEY_MAX_FAILURES_PER_ADDRESS=0)
def test_zero_turns_the_api_key_failure_limit_off(alice_api: APIClient) -> None:
    guesser = APIClient()
    for number in range(MANY):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {number:048x}")
        assert guesser.get(SPECS).status_code == HTTPStatus.UNAUTHORIZED
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_api.api_key}")  # type: ignore[attr-defined]
    assert guesser.get(SPECS).status_code == HTTPStatus.OK


def test_zero_turns_the_rotation_limit_off(alice: Any, company_a: Any, settings: Any) -> None:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "api_key_rotate": "0/hour"},
    }
    secret = ApiKey.issue(company=company_a, user=alice)[1]
    for _ in range(MANY):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        response = client.post("/api/users/api-key/rotate")
        assert response.status_code == HTTPStatus.OK
        secret = response.json()["api_key"]


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=0, MAX_SAMPLES_IN_FLIGHT=0, MONTHLY_BUDGET_USD=Decimal(0))
def test_zero_turns_the_quotas_off(alice_api: APIClient, run_a: Any) -> None:
    for _ in range(3):
        response = alice_api.post("/api/dataframer/evaluations/", {"run_id": str(run_a.code)}, format="json")
        assert response.status_code == HTTPStatus.CREATED


@override_settings(WORK_MAX_IN_FLIGHT_PER_COMPANY=0)
def test_zero_turns_the_work_in_flight_cap_off(run_a: Any, evaluate: Any) -> None:
    # A cap of 0 once meant no work was ever sent to a worker: the evaluation stayed queued forever.
    assert evaluate(run_a).status == "SUCCEEDED"
