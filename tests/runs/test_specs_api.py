from __future__ import annotations

from http import HTTPStatus
from typing import Any

from rest_framework.test import APIClient

from runs.models import Spec
from tests.conftest import SPEC_YAML

SPECS = "/api/dataframer/specs/"


def test_it_creates_a_spec_from_yaml(alice_api: APIClient, company_a: Any) -> None:
    response = alice_api.post(SPECS, {"name": "Support", "content_yaml": SPEC_YAML}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    spec = Spec.objects.get(code=response.json()["id"])
    assert spec.company == company_a
    assert spec.status == Spec.Status.SUCCEEDED
    assert spec.description == "Customer support conversations"
    assert [p.name for p in spec.latest_version.parsed_properties] == [
        "sentiment",
        "priority",
    ]


def test_it_refuses_spec_generation_clearly_without_a_provider(alice_api: APIClient) -> None:
    # tests/runs/test_spec_generation.py generates specs with a (fake) provider.
    response = alice_api.post(SPECS, {"name": "Gen", "generation_objectives": "make data"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "ANTHROPIC_API_KEY is not set. Generating data needs an LLM" in response.json()["detail"]
    assert not Spec.objects.exists()


def test_a_bad_spec_names_the_line_and_saves_nothing(alice_api: APIClient) -> None:
    bad = SPEC_YAML.replace("neutral: 30}", "neutral: 20}")
    response = alice_api.post(SPECS, {"name": "Support", "content_yaml": bad}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"content_yaml": ["line 7: base_distributions of 'sentiment' sums to 90, not 100"]}
    assert not Spec.objects.exists()


def test_names_are_unique_per_company(alice_api: APIClient, charlie_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(SPECS, {"name": "Support", "content_yaml": SPEC_YAML}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"name": ["A spec named 'Support' already exists."]}
    other = charlie_api.post(SPECS, {"name": "Support", "content_yaml": SPEC_YAML}, format="json")
    assert other.status_code == HTTPStatus.CREATED


def test_it_rejects_malformed_json_and_wrong_types(alice_api: APIClient) -> None:
    response = alice_api.generic("POST", SPECS, "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "JSON parse error" in response.json()["detail"]
    response = alice_api.post(SPECS, {"name": ["a"], "content_yaml": 5}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert set(response.json()) == {"name"}


def test_put_adds_a_version_and_include_versions_lists_them(alice_api: APIClient, spec_a: Spec) -> None:
    new_yaml = SPEC_YAML.replace(
        "{positive: 40, negative: 30, neutral: 30}",
        "{positive: 50, negative: 25, neutral: 25}",
    )
    response = alice_api.put(f"{SPECS}{spec_a.code}/", {"content_yaml": new_yaml}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["content_yaml"] == new_yaml
    assert response.json()["versions"] is None
    detail = alice_api.get(f"{SPECS}{spec_a.code}/?include_versions=true").json()
    assert [v["content_yaml"] for v in detail["versions"]] == [SPEC_YAML, new_yaml]
    bad = alice_api.put(f"{SPECS}{spec_a.code}/", {"content_yaml": "spec: ["}, format="json")
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert spec_a.versions.count() == 2


def test_delete_refuses_a_spec_with_runs_unless_forced(alice_api: APIClient, spec_a: Spec, run_a: Any) -> None:
    response = alice_api.delete(f"{SPECS}{spec_a.code}/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "force=true" in response.json()["detail"]
    assert alice_api.delete(f"{SPECS}{spec_a.code}/?force=true").status_code == HTTPStatus.NO_CONTENT
    assert not Spec.objects.exists()


def test_list_is_newest_first_and_scoped(
    alice_api: APIClient,
    spec_a: Spec,
    charlie_api: APIClient,
    django_assert_num_queries: Any,
) -> None:
    alice_api.post(SPECS, {"name": "Second", "content_yaml": SPEC_YAML}, format="json")
    charlie_api.post(SPECS, {"name": "Theirs", "content_yaml": SPEC_YAML}, format="json")
    # key lookup, its membership (the active one), the specs page (last use was recorded under a minute ago)
    with django_assert_num_queries(3):
        body = alice_api.get(SPECS).json()
    assert [s["name"] for s in body] == ["Second", "Support"]
    assert set(body[0]) == {
        "id",
        "name",
        "description",
        "status",
        "created_at",
        "dataset_id",
        "dataset_name",
        "dataset_type",
    }


def test_it_checks_ownership(charlie_api: APIClient, spec_a: Spec) -> None:
    url = f"{SPECS}{spec_a.code}/"
    assert charlie_api.get(url).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.put(url, {"content_yaml": SPEC_YAML}, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.delete(f"{url}?force=true").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{SPECS}not-a-uuid/").status_code == HTTPStatus.NOT_FOUND
    assert Spec.objects.filter(pk=spec_a.pk).exists()


def test_it_requires_rw_access(bob_api: APIClient, spec_a: Spec) -> None:
    assert bob_api.get(f"{SPECS}{spec_a.code}/").status_code == HTTPStatus.OK
    assert (
        bob_api.post(SPECS, {"name": "X", "content_yaml": SPEC_YAML}, format="json").status_code == HTTPStatus.FORBIDDEN
    )
    assert bob_api.delete(f"{SPECS}{spec_a.code}/?force=true").status_code == HTTPStatus.FORBIDDEN


def test_it_requires_a_key(db: None) -> None:
    assert APIClient().get(SPECS).status_code == HTTPStatus.UNAUTHORIZED
