from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from companies.models import ApiKey, Company, Membership


def test_create_shows_the_secret_once_and_it_works(client: Client, alice: Any, company_a: Company) -> None:
    client.force_login(alice)
    created = client.post("/api-keys/", {"name": "ci"})
    assert created.status_code == HTTPStatus.FOUND
    assert created["Location"] == "/api-keys/"
    response = client.get("/api-keys/")
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
    # Listed masked from now on; the secret is never shown again, and is gone from the session.
    listing = client.get("/api-keys/").content.decode()
    assert key.masked_key in listing
    assert secret not in listing
    assert secret not in str(dict(client.session))


def test_it_creates_one_key_however_often_the_page_is_reloaded(client: Client, alice: Any, company_a: Company) -> None:
    client.force_login(alice)
    page = client.post("/api-keys/", {"name": "ci"}, follow=True)
    assert 'id="new-key-secret"' in page.content.decode()
    for _ in range(2):
        reloaded = client.get("/api-keys/")  # a browser reload repeats the GET the redirect led to
        assert 'id="new-key-secret"' not in reloaded.content.decode()
    assert ApiKey.objects.filter(company=company_a).count() == 1


def test_it_answers_a_bad_form_in_place(client: Client, alice: Any, company_a: Company) -> None:
    client.force_login(alice)
    response = client.post("/api-keys/", {"name": "x" * 101})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not ApiKey.objects.exists()


def test_list_shows_masked_keys_last_use_and_expiry(
    client: Client, alice: Any, company_a: Company, django_assert_num_queries: Any
) -> None:
    for name in ("one", "two", "three"):
        ApiKey.issue(company=company_a, user=alice, name=name)
    client.force_login(alice)
    # session, user, active membership, keys (+ their users), header companies
    with django_assert_num_queries(5):
        page = client.get("/api-keys/").content.decode()
    assert len(re.findall(r"<code>\w{4}\*{4}\w{4}</code>", page)) == 3
    assert "never" in page


def test_it_asks_before_revoking(client: Client, alice: Any, company_a: Company) -> None:
    key, _secret = ApiKey.issue(company=company_a, user=alice, name="old")
    client.force_login(alice)
    listing = client.get("/api-keys/").content.decode()
    # The list's button opens the confirmation page without JavaScript, and asks in a dialog with htmx.
    assert f'method="get" action="/api-keys/{key.code}/revoke/"' in listing
    assert f'hx-post="/api-keys/{key.code}/revoke/"' in listing
    assert "hx-confirm=" in listing
    confirm = client.get(f"/api-keys/{key.code}/revoke/")
    assert confirm.status_code == HTTPStatus.OK
    page = confirm.content.decode()
    assert key.masked_key in page
    assert f'<form method="post" action="/api-keys/{key.code}/revoke/">' in page
    key.refresh_from_db()
    assert not key.is_revoked


def test_revoke(client: Client, alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice, name="old")
    client.force_login(alice)
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.FOUND
    key.refresh_from_db()
    assert key.is_revoked
    assert "revoked" in client.get("/api-keys/").content.decode()
    assert "already revoked" in client.get(f"/api-keys/{key.code}/revoke/").content.decode()


def test_it_revokes_from_htmx_with_a_client_redirect(client: Client, alice: Any, company_a: Company) -> None:
    key, _secret = ApiKey.issue(company=company_a, user=alice)
    client.force_login(alice)
    response = client.post(f"/api-keys/{key.code}/revoke/", headers={"HX-Request": "true"})
    assert response.status_code == HTTPStatus.OK
    assert response["HX-Redirect"] == "/api-keys/"
    key.refresh_from_db()
    assert key.is_revoked


def test_it_checks_ownership(client: Client, alice: Any, charlie: Any, company_a: Company) -> None:
    key, _ = ApiKey.issue(company=company_a, user=alice)
    client.force_login(charlie)
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.NOT_FOUND
    assert key.masked_key not in client.get("/api-keys/").content.decode()
    key.refresh_from_db()
    assert not key.is_revoked


def test_it_requires_rw_access(client: Client, bob: Any, alice: Any, company_a: Company) -> None:
    key, _ = ApiKey.issue(company=company_a, user=alice)
    client.force_login(bob)
    assert client.get("/api-keys/").status_code == HTTPStatus.FORBIDDEN
    assert client.post("/api-keys/", {"name": "x"}).status_code == HTTPStatus.FORBIDDEN
    assert client.post(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.FORBIDDEN
    assert client.get(f"/api-keys/{key.code}/revoke/").status_code == HTTPStatus.FORBIDDEN
    Membership.objects.filter(user=bob).update(role=Membership.Role.ADMIN)
    assert client.get("/api-keys/").status_code == HTTPStatus.OK
