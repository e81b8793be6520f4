from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client

from companies.models import Company, Membership
from tests.conftest import PASSWORD


def test_it_requires_sign_in(client: Client, db: None) -> None:
    response = client.get("/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/login/")


def test_it_signs_in_and_lists_the_users_companies(client: Client, alice: Any, charlie: Any) -> None:
    response = client.post("/login/", {"username": "alice@alpha.test", "password": PASSWORD})
    assert response.status_code == HTTPStatus.FOUND
    page = client.get("/").content.decode()
    assert "Alpha Corp" in page
    assert "Beta Inc" not in page


def test_the_sign_in_form_rejects_a_wrong_password(client: Client, alice: Any) -> None:
    response = client.post("/login/", {"username": "alice@alpha.test", "password": "nope"})
    assert response.status_code == HTTPStatus.OK
    assert "enter a correct username and password" in response.content.decode()


def test_home_page_query_count(client: Client, alice: Any, django_assert_num_queries: Any) -> None:
    client.force_login(alice)
    # session, user, active membership, the page's memberships, the dashboard's "any run?" and guardrail summary,
    # the monitors card (monitors, workflows), the anonymization card's latest run, the red-teaming card, the header's
    # company list
    with django_assert_num_queries(11):
        assert client.get("/").status_code == HTTPStatus.OK


def test_it_switches_the_active_company(client: Client, alice: Any, company_b: Company) -> None:
    Membership.objects.create(user=alice, company=company_b, role=Membership.Role.VIEWER)
    client.force_login(alice)
    response = client.post(f"/companies/{company_b.code}/switch/", {"next": "/"})
    assert response.status_code == HTTPStatus.FOUND
    assert client.session["active_company"] == str(company_b.code)
    page = client.get("/").content.decode()
    assert 'aria-current="true">Beta Inc' in page


def test_it_checks_ownership(client: Client, alice: Any, charlie: Any, company_b: Company) -> None:
    client.force_login(alice)
    assert client.post(f"/companies/{company_b.code}/switch/").status_code == HTTPStatus.NOT_FOUND
    assert "active_company" not in client.session


def test_switch_ignores_an_offsite_next(client: Client, alice: Any, company_a: Company) -> None:
    client.force_login(alice)
    response = client.post(f"/companies/{company_a.code}/switch/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_switch_needs_csrf(alice: Any, company_a: Company) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/companies/{company_a.code}/switch/").status_code == HTTPStatus.FORBIDDEN


def test_sign_out(client: Client, alice: Any) -> None:
    client.force_login(alice)
    assert client.post("/logout/").status_code == HTTPStatus.FOUND
    assert client.get("/").status_code == HTTPStatus.FOUND


def test_static_assets_are_served_locally(client: Client, db: None) -> None:
    for path in (
        "/static/vendor/plotly.min.js",
        "/static/django_htmx/htmx-2.min.js",
        "/static/js/charts.js",
    ):
        response = client.get(path)
        assert response.status_code == HTTPStatus.OK, path


def test_api_docs_need_no_cdn(client: Client, db: None) -> None:
    schema = client.get("/api/schema/")
    assert schema.status_code == HTTPStatus.OK
    assert b"/api/users/api-key/rotate" in schema.content
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower()
    assert "/static/drf_spectacular_sidecar/" in docs
