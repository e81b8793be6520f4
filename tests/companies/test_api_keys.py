from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from dataframer import Dataframer
from django.utils import timezone
from rest_framework.test import APIClient

from companies.models import ApiKey, Company

ROTATE = "/api/users/api-key/rotate"


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_it_stores_only_a_hash(alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice)
    stored = ApiKey.objects.values().get(pk=key.pk)
    assert secret not in {str(v) for v in stored.values()}
    assert key.masked_key == f"{secret[:4]}****{secret[-4:]}"
    assert abs((key.expires_at - timezone.now()) - timedelta(days=365)) < timedelta(minutes=1)


def test_it_accepts_a_valid_key_and_records_use(alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice)
    response = bearer(secret).post(ROTATE)
    assert response.status_code == HTTPStatus.OK
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer 0123456789abcdef0123456789abcdef0123456789abcdef", "Invalid API key."),
        ("Bearer", "Invalid Authorization header: expected 'Bearer <api key>'."),
        ("Bearer a b", "Invalid Authorization header: expected 'Bearer <api key>'."),
    ],
)
def test_it_rejects_missing_and_wrong_keys(alice: Any, header: str | None, detail: str) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.post(ROTATE)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": detail}
    assert response["WWW-Authenticate"] == "Bearer"


def test_it_rejects_a_revoked_key(alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice)
    key.revoke()
    response = bearer(secret).post(ROTATE)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": "This API key has been revoked."}


def test_it_rejects_an_expired_key(alice: Any, company_a: Company) -> None:
    _key, secret = ApiKey.issue(company=company_a, user=alice, expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(secret).post(ROTATE)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": "This API key has expired."}


def test_it_rejects_a_key_whose_user_left_the_company(alice: Any, company_a: Company) -> None:
    _key, secret = ApiKey.issue(company=company_a, user=alice)
    alice.memberships.all().delete()
    assert bearer(secret).post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED


def test_it_rejects_a_key_with_the_right_prefix_but_wrong_secret(alice: Any, company_a: Company) -> None:
    _key, secret = ApiKey.issue(company=company_a, user=alice)
    forged = secret[:8] + ("0" if secret[8] != "0" else "1") + secret[9:]
    assert bearer(forged).post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED


def test_rotate_kills_the_old_key_and_the_new_one_works(alice: Any, company_a: Company) -> None:
    old, secret = ApiKey.issue(company=company_a, user=alice, name="ci")
    response = bearer(secret).post(ROTATE)
    body = response.json()
    assert set(body) == {"api_key", "masked_key", "expires_at"}
    new = ApiKey.find(body["api_key"])
    assert new is not None
    assert (new.company, new.user, new.name) == (company_a, alice, "ci")
    assert body["masked_key"] == new.masked_key
    old.refresh_from_db()
    assert old.is_revoked
    assert bearer(secret).post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED
    assert bearer(body["api_key"]).post(ROTATE).status_code == HTTPStatus.OK


def test_rotate_works_for_a_read_only_member(bob: Any, company_a: Company) -> None:
    _key, secret = ApiKey.issue(company=company_a, user=bob)
    assert bearer(secret).post(ROTATE).status_code == HTTPStatus.OK


def test_rotate_needs_the_key_itself_not_a_session(client: Any, alice: Any) -> None:
    client.force_login(alice)
    assert client.post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED


def test_rotate_is_throttled_to_five_an_hour_per_address(alice: Any, company_a: Company) -> None:
    secret = ApiKey.issue(company=company_a, user=alice)[1]
    for _ in range(5):
        response = bearer(secret).post(ROTATE)
        assert response.status_code == HTTPStatus.OK
        secret = response.json()["api_key"]
    response = bearer(secret).post(ROTATE)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "throttled" in response.json()["detail"]
    # The refused call revoked nothing: the newest key still works for other endpoints.
    assert ApiKey.find(secret).is_active  # type: ignore[union-attr]


def rotate_from(secret: str, *, remote: str, forwarded: str | None = None) -> tuple[int, str]:
    """Rotate as a client at `remote`, optionally sending X-Forwarded-For; returns (status, the key to use next)."""
    headers = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    response = bearer(secret).post(ROTATE, **headers)
    return response.status_code, response.json().get("api_key", secret)


def test_it_ignores_a_client_supplied_forwarded_for_without_trusted_proxies(alice: Any, company_a: Company) -> None:
    secret = ApiKey.issue(company=company_a, user=alice)[1]
    statuses = []
    for attempt in range(6):
        # A client inventing a new address each time is still one address: REMOTE_ADDR.
        status, secret = rotate_from(secret, remote="203.0.113.7", forwarded=f"198.51.100.{attempt}")
        statuses.append(status)
    assert statuses == [HTTPStatus.OK] * 5 + [HTTPStatus.TOO_MANY_REQUESTS]


def test_it_takes_the_client_address_from_the_trusted_proxies(alice: Any, company_a: Company, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # what TRUSTED_PROXIES=1 sets
    secret = ApiKey.issue(company=company_a, user=alice)[1]
    proxy = "10.0.0.2"
    for attempt in range(5):
        # The left part is the client's own claim; our proxy appended the address it saw, on the right.
        status, secret = rotate_from(secret, remote=proxy, forwarded=f"1.1.1.{attempt}, 198.51.100.9")
        assert status == HTTPStatus.OK
    status, secret = rotate_from(secret, remote=proxy, forwarded="9.9.9.9, 198.51.100.9")
    assert status == HTTPStatus.TOO_MANY_REQUESTS
    # Another client behind the same proxy has its own allowance.
    status, secret = rotate_from(secret, remote=proxy, forwarded="198.51.100.10")
    assert status == HTTPStatus.OK


def test_rotate_only_answers_post(alice_api: APIClient) -> None:
    assert alice_api.get(ROTATE).status_code == HTTPStatus.METHOD_NOT_ALLOWED


@pytest.mark.django_db(transaction=True)
def test_the_official_client_rotates_in_strict_mode(live_server: Any, alice: Any, company_a: Company) -> None:
    _key, secret = ApiKey.issue(company=company_a, user=alice)
    client = Dataframer(
        base_url=live_server.url,
        api_key=secret,
        _strict_response_validation=True,
        max_retries=0,
    )
    rotated = client.api_keys.rotate()
    assert rotated.api_key
    assert rotated.api_key != secret
    assert rotated.masked_key == f"{rotated.api_key[:4]}****{rotated.api_key[-4:]}"
    assert rotated.expires_at is not None
    assert rotated.expires_at > timezone.now()
    assert ApiKey.find(secret).is_revoked  # type: ignore[union-attr]
    again = Dataframer(
        base_url=live_server.url,
        api_key=rotated.api_key,
        _strict_response_validation=True,
    )
    assert again.api_keys.rotate().api_key


def test_only_successful_rotations_count_against_the_limit(alice: Any, company_a: Company, client: Any) -> None:
    # From one address: failed and refused requests of every kind, then still five real rotations.
    client.force_login(alice)
    secret = ApiKey.issue(company=company_a, user=alice)[1]
    for _ in range(5):
        assert bearer("not-a-key").post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED
        assert client.post(ROTATE).status_code == HTTPStatus.UNAUTHORIZED  # a session, not the key itself
        assert bearer(secret).get(ROTATE).status_code == HTTPStatus.METHOD_NOT_ALLOWED
        assert bearer(secret).options(ROTATE).status_code == HTTPStatus.OK
    for _ in range(5):
        response = bearer(secret).post(ROTATE)
        assert response.status_code == HTTPStatus.OK
        secret = response.json()["api_key"]
    assert bearer(secret).post(ROTATE).status_code == HTTPStatus.TOO_MANY_REQUESTS
