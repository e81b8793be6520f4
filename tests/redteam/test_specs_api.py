"""Red team specs (red_team_specs create, list, retrieve, update, delete): the official client in strict mode,
snake_case names unique per company, bad input, tenancy."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import dataframer
import pytest
from dataframer import Dataframer
from rest_framework.test import APIClient

from redteam.models import RedTeamSpec, snake_case

SPECS = "/api/dataframer/red-team-specs/"
SPEC = {
    "name": "Clinic Helper",
    "app_description": "A chatbot that books appointments for a medical clinic.",
    "domain_description": "Healthcare",
    "concerns": "Should not provide medical diagnoses",
}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Clinic Helper", "clinic_helper"),
        ("clinicHelperBot", "clinic_helper_bot"),
        ("  Clinic -- Helper v2! ", "clinic_helper_v2"),
        ("already_snake", "already_snake"),
        ("HTTPServer", "httpserver"),
    ],
)
def test_names_become_snake_case(given: str, stored: str) -> None:
    assert snake_case(given) == stored


@pytest.mark.django_db(transaction=True)
def test_every_spec_call_works_through_the_official_client(live_server: Any, alice_key: str, alice: Any) -> None:
    client = Dataframer(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    specs = client.dataframer.red_team_specs
    created = specs.create(**SPEC)
    assert created.name == "clinic_helper"
    assert (created.concerns, created.domain_description) == (SPEC["concerns"], "Healthcare")
    assert created.created_by_email == alice.email
    assert created.company_name == "Alpha Corp"
    assert created.id
    fetched = specs.retrieve(created.id)
    assert fetched.app_description == SPEC["app_description"]
    assert fetched.created_at == created.created_at
    updated = specs.update(created.id, name="Clinic Helper Two", concerns="No prescriptions")
    assert (updated.name, updated.concerns, updated.domain_description) == (
        "clinic_helper_two",
        "No prescriptions",
        "Healthcare",
    )
    assert updated.updated_at
    assert created.updated_at
    assert updated.updated_at > created.updated_at
    [listed] = specs.list()
    assert (listed.id, listed.name, listed.created_by_email) == (created.id, "clinic_helper_two", alice.email)
    with pytest.raises(dataframer.BadRequestError, match="already exists"):
        specs.create(**{**SPEC, "name": "clinic helper two"})
    specs.delete(created.id)
    assert specs.list() == []
    with pytest.raises(dataframer.NotFoundError):
        specs.retrieve(created.id)


def test_a_name_clash_is_a_400_within_a_company_only(
    alice_api: APIClient, charlie_api: APIClient, red_spec: Any
) -> None:
    response = alice_api.post(SPECS, {**SPEC, "name": "CLINIC helper"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "A red team spec named 'clinic_helper' already exists."}
    assert charlie_api.post(SPECS, SPEC, format="json").status_code == HTTPStatus.CREATED
    other = alice_api.post(SPECS, {**SPEC, "name": "Other"}, format="json").json()
    renamed = alice_api.patch(f"{SPECS}{other['id']}/", {"name": "Clinic Helper"}, format="json")
    assert renamed.status_code == HTTPStatus.BAD_REQUEST
    assert RedTeamSpec.objects.get(code=other["id"]).name == "other"


@pytest.mark.parametrize(
    "body",
    [
        {**SPEC, "name": 5},
        {**SPEC, "name": "!!!"},
        {**SPEC, "app_description": None},
        {**SPEC, "concerns": ["a"]},
        {"name": "x"},
        ["not", "an", "object"],
        {**SPEC, "name": "x" * 201},
    ],
)
def test_bad_input_is_a_400_and_saves_nothing(alice_api: APIClient, body: Any) -> None:
    response = alice_api.post(SPECS, body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not RedTeamSpec.objects.exists()


def test_malformed_json_is_a_400(alice_api: APIClient, red_spec: Any) -> None:
    for method, url in (("POST", SPECS), ("PATCH", f"{SPECS}{red_spec.code}/")):
        response = alice_api.generic(method, url, "{not json", content_type="application/json")
        assert response.status_code == HTTPStatus.BAD_REQUEST
    response = alice_api.patch(f"{SPECS}{red_spec.code}/", {"domain_description": 3}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST


def test_it_checks_ownership(charlie_api: APIClient, red_spec: Any) -> None:
    url = f"{SPECS}{red_spec.code}/"
    assert charlie_api.get(url).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.patch(url, {"name": "mine"}, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.delete(url).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{SPECS}not-a-uuid/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(SPECS).json() == []
    red_spec.refresh_from_db()
    assert red_spec.name == "clinic_helper"


def test_it_requires_rw_access(bob_api: APIClient, red_spec: Any) -> None:
    url = f"{SPECS}{red_spec.code}/"
    assert bob_api.get(url).status_code == HTTPStatus.OK
    assert bob_api.post(SPECS, SPEC, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.patch(url, {"name": "x"}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.delete(url).status_code == HTTPStatus.FORBIDDEN
    assert RedTeamSpec.objects.filter(pk=red_spec.pk).exists()


def test_it_requires_a_key(db: None) -> None:
    assert APIClient().get(SPECS).status_code == HTTPStatus.UNAUTHORIZED
