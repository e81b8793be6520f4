from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.test import Client

from companies.api.base import CompanyScopedViewSet
from companies.models import ApiKey, Company


def test_a_viewset_cannot_bypass_company_scoping() -> None:
    with pytest.raises(TypeError, match="must not override get_queryset"):

        class Leaky(CompanyScopedViewSet):
            def get_queryset(self) -> Any:
                return ApiKey.objects.all()


def test_admin_never_shows_a_key_hash(admin_client: Client, alice: Any, company_a: Company) -> None:
    key, secret = ApiKey.issue(company=company_a, user=alice, name="ci")
    page = admin_client.get(f"/admin/companies/apikey/{key.pk}/change/").content.decode()
    assert key.masked_key in page
    assert key.key_hash not in page
    assert secret not in page


def test_admin_revokes_keys(admin_client: Client, alice: Any, company_a: Company) -> None:
    key, _ = ApiKey.issue(company=company_a, user=alice)
    response = admin_client.post(
        "/admin/companies/apikey/",
        {"action": "revoke", "_selected_action": [key.pk]},
        follow=True,
    )
    assert response.status_code == HTTPStatus.OK
    key.refresh_from_db()
    assert key.is_revoked
    assert ApiKey in site._registry
