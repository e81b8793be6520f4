from __future__ import annotations

from http import HTTPStatus
from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from companies.models import ApiKey, Company, Membership


def test_create_api_key_prints_a_working_key_on_its_last_line(db: None) -> None:
    out = StringIO()
    call_command(
        "create_api_key",
        "--company",
        "Acme",
        "--email",
        "ops@acme.test",
        "--name",
        "deploy",
        stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.find(secret)
    assert key is not None
    assert (key.company.name, key.user.email, key.name) == (
        "Acme",
        "ops@acme.test",
        "deploy",
    )
    assert Membership.objects.get(user=key.user, company=key.company).role == Membership.Role.OWNER
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.post("/api/users/api-key/rotate").status_code == HTTPStatus.OK


def test_create_api_key_reuses_company_user_and_membership(db: None) -> None:
    # The company and the user are matched ignoring case (and the spaces around a company name).
    for company, email in (("Acme", "ops@acme.test"), (" ACME ", "Ops@Acme.test")):
        call_command("create_api_key", "--company", company, "--email", email, stdout=StringIO())
    assert list(Company.objects.values_list("name", flat=True)) == ["Acme"]
    assert Membership.objects.count() == 1
    assert ApiKey.objects.count() == 2


def test_load_demo_is_idempotent_and_prints_working_credentials(db: None, client: object) -> None:
    for _ in range(2):
        out = StringIO()
        call_command("load_demo", stdout=out)
    text = out.getvalue()
    password = text.split("with password: ")[1].split()[0]
    secret = text.split("Bearer ...): ")[1].split()[0]
    assert Company.objects.filter(name="Demo Company").count() == 1
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert ApiKey.find(secret).is_active  # type: ignore[union-attr]
    assert client.login(username="demo@example.com", password=password)  # type: ignore[attr-defined]
