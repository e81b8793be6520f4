"""Password and API-key guessing is slowed: failures are counted per username and per address (cache)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

LOGIN = "/login/"
SPECS = "/api/dataframer/specs/"


def sign_in(client: Client, username: str, password: str) -> Any:
    return client.post(LOGIN, {"username": username, "password": password})


@override_settings(LOGIN_MAX_FAILURES_PER_USERNAME=3, LOGIN_MAX_FAILURES_PER_ADDRESS=100)
def test_it_throttles_failed_logins_per_username(client: Client, alice: Any, time_machine: Any) -> None:
    for _ in range(3):
        assert sign_in(client, "alice@alpha.test", "guess").status_code == HTTPStatus.OK
    # Even the right password is refused now, and the password is not checked at all.
    response = sign_in(client, "Alice@alpha.test ", PASSWORD)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(response["Retry-After"]) <= 15 * 60 + 1
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not affected.
    assert sign_in(client, "bob@alpha.test", "guess").status_code == HTTPStatus.OK
    time_machine.move_to(timezone.now() + timedelta(minutes=16))
    assert sign_in(client, "alice@alpha.test", PASSWORD).status_code == HTTPStatus.FOUND


@override_settings(LOGIN_MAX_FAILURES_PER_USERNAME=100, LOGIN_MAX_FAILURES_PER_ADDRESS=4)
def test_it_throttles_failed_logins_per_address(alice: Any, db: None) -> None:
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for number in range(4):
        assert sign_in(attacker, f"user{number}@example.test", "guess").status_code == HTTPStatus.OK
    assert sign_in(attacker, "alice@alpha.test", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    # alice, elsewhere, signs in as usual.
    assert sign_in(Client(REMOTE_ADDR="198.51.100.1"), "alice@alpha.test", PASSWORD).status_code == HTTPStatus.FOUND


@override_settings(LOGIN_MAX_FAILURES_PER_USERNAME=3)
def test_it_starts_a_username_afresh_after_a_success(client: Client, alice: Any) -> None:
    for _ in range(2):
        sign_in(client, "alice@alpha.test", "typo")
    assert sign_in(client, "alice@alpha.test", PASSWORD).status_code == HTTPStatus.FOUND
    client.logout()
    for _ in range(2):
        sign_in(client, "alice@alpha.test", "typo")
    assert sign_in(client, "alice@alpha.test", PASSWORD).status_code == HTTPStatus.FOUND


@override_settings(API_KEY_MAX_FAILURES_PER_ADDRESS=3)
def test_it_throttles_failed_api_key_attempts_per_address(alice_api: APIClient, time_machine: Any) -> None:
    guesser = APIClient(REMOTE_ADDR="203.0.113.9")
    for number in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {number:048x}")
        assert guesser.get(SPECS).status_code == HTTPStatus.UNAUTHORIZED
    # Over the limit, a right key answers like a wrong one: the guesser learns nothing.
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_api.api_key}")  # type: ignore[attr-defined]
    response = guesser.get(SPECS)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert int(response["Retry-After"]) > 0
    assert "Too many failed API-key attempts" in response.json()["detail"]
    # Other addresses are unaffected; the window ends.
    assert alice_api.get(SPECS).status_code == HTTPStatus.OK
    time_machine.move_to(timezone.now() + timedelta(minutes=16))
    assert guesser.get(SPECS).status_code == HTTPStatus.OK


@override_settings(API_KEY_MAX_FAILURES_PER_ADDRESS=2)
def test_it_does_not_count_good_keys(alice_api: APIClient) -> None:
    for _ in range(5):
        assert alice_api.get(SPECS).status_code == HTTPStatus.OK


ADMIN_LOGIN = "/admin/login/"


@override_settings(LOGIN_MAX_FAILURES_PER_USERNAME=5, LOGIN_MAX_FAILURES_PER_ADDRESS=100)
def test_it_throttles_the_admin_sign_in_like_the_login_page(db: None, time_machine: Any) -> None:
    User.objects.create_superuser("ops", "ops@example.test", PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.8")
    # Failures on either page count together: three here, two on the admin's.
    for _ in range(3):
        assert sign_in(attacker, "ops", "guess").status_code == HTTPStatus.OK
    for _ in range(2):
        assert attacker.post(ADMIN_LOGIN, {"username": "ops", "password": "guess"}).status_code == HTTPStatus.OK
    response = attacker.post(ADMIN_LOGIN, {"username": "ops", "password": PASSWORD})
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert 0 < int(response["Retry-After"]) <= 15 * 60 + 1
    assert "_auth_user_id" not in attacker.session
    time_machine.move_to(timezone.now() + timedelta(minutes=16))
    assert attacker.post(ADMIN_LOGIN, {"username": "ops", "password": PASSWORD}).status_code == HTTPStatus.FOUND
    assert attacker.get("/admin/").status_code == HTTPStatus.OK


@override_settings(LOGIN_MAX_FAILURES_PER_USERNAME=100, LOGIN_MAX_FAILURES_PER_ADDRESS=3)
def test_it_counts_a_non_staff_sign_in_to_the_admin_as_a_failure(alice: Any) -> None:
    # alice's password is right, but the admin refuses her: a guesser learns nothing for free there either.
    attacker = Client(REMOTE_ADDR="203.0.113.10")
    for _ in range(3):
        assert (
            attacker.post(ADMIN_LOGIN, {"username": "alice@alpha.test", "password": PASSWORD}).status_code
            == HTTPStatus.OK
        )
    assert sign_in(attacker, "alice@alpha.test", PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
