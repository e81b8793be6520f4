from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from companies.models import ApiKey, Company, Membership


def test_create_shows_the_secret_once_and_it_works(client: Client, alice: Any, company_a: Company) -> None:
    client.force_login(alice)
    response = client.post("/api-keys/", {"name": "ci"})
    assert response.status_code == HTTPStatus.OK
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-key-secret">([0-9a-f]{48})<', response.content.decode()).group(1)  # type: ignore[union-attr]
    key = ApiKey.find(secret)
    assert key is not None
    assert key.company == company_a
    assert key.name == "ci"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/dataframer/specs/").status_code == HTTPStatus.OK
    # Listed masked from now on; the secret is never shown again.
    listing = client.get("/api-keys/").content.decode()
    assert key.masked_key in listing
    assert secret not in listing


def test_list_shows_masked_keys_last_use_and_expiry(
    client: Client, alice: Any, company_a: Company, django_assert_num_queries: Any
) -> None:
    for name in ("one", "two", "three"):
        ApiKey.issue(company=company_a, user=alice, name=name)
    client.force_login(alice)
    # session, user, active membership, keys (+ their users), header companies
    with django_assert_num_queries(5):
        page = client.get("/api-keys/").content.decode()
    assert page.count("****") == 3
    assert "never" in page


def test_revoke(client: Client, alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice, name="old")
    client.force_login(alice)
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.FOUND
    key.refresh_from_db()
    assert key.is_revoked
    assert "revoked" in client.get("/api-keys/").content.decode()


def test_it_checks_ownership(client: Client, alice: Any, charlie: Any, company_a: Company) -> None:
    key, _ = ApiKey.issue(company=company_a, user=alice)
    client.force_login(charlie)
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.NOT_FOUND
    assert key.masked_key not in client.get("/api-keys/").content.decode()
    key.refresh_from_db()
    assert not key.is_revoked


def test_it_requires_rw_access(client: Client, bob: Any, alice: Any, company_a: Company) -> None:
    key, _ = ApiKey.issue(company=company_a, user=alice)
    client.force_login(bob)
    assert client.get("/api-keys/").status_code == HTTPStatus.FORBIDDEN
    assert client.post("/api-keys/", {"name": "x"}).status_code == HTTPStatus.FORBIDDEN
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.FORBIDDEN
    Membership.objects.filter(user=bob).update(role=Membership.Role.ADMIN)
    assert client.get("/api-keys/").status_code == HTTPStatus.OK
