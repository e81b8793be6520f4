"""The schema documents the answers the service gives around every view (issue 22): 413 and 415 where a body is
sent, 429 and 503 everywhere; JSON bodies are advertised as JSON only (a form post of a nested body cannot work);
blanks the server refuses are `minLength: 1`. tests/test_fuzz.py then holds the server to it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def _operations(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m.upper()} {path}", op) for path, item in schema["paths"].items() for m, op in item.items()]


def test_every_operation_documents_429_and_503_and_a_body_413_and_415(schema: dict[str, Any]) -> None:
    missing = []
    for label, operation in _operations(schema):
        expected = {"429", "503"} | ({"413", "415"} if "requestBody" in operation else set())
        missing += [f"{label}: {code}" for code in sorted(expected - set(operation["responses"]))]
    assert missing == []


def test_json_bodies_are_not_advertised_as_forms(schema: dict[str, Any]) -> None:
    advertised = {
        label: sorted(operation["requestBody"]["content"])
        for label, operation in _operations(schema)
        if "requestBody" in operation and "application/json" in operation["requestBody"]["content"]
    }
    forms = {label: types for label, types in advertised.items() if types != ["application/json"]}
    # The run import takes a JSONL or ZIP `file` as multipart too.
    assert forms == {"POST /api/dataframer/runs/import/": ["application/json", "multipart/form-data"]}


@pytest.mark.parametrize(
    ("component", "field"),
    [("MonitorCreate", "name"), ("WorkflowCreate", "name"), ("SpecCreate", "name"), ("SpecCreate", "content_yaml")],
)
def test_refused_blanks_have_a_min_length(schema: dict[str, Any], component: str, field: str) -> None:
    assert schema["components"]["schemas"][component]["properties"][field].get("minLength") == 1


# What the fuzzer's every check (negative_data_rejection) found the server accepting against the schema:


@pytest.mark.parametrize("value", ["1", "yes", "null"])
def test_a_boolean_query_parameter_is_true_or_false(alice_api: Any, spec_a: Any, value: str) -> None:
    response = alice_api.get(f"/api/dataframer/specs/{spec_a.code}/?include_versions={value}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "include_versions must be true or false."}
    assert alice_api.get(f"/api/dataframer/specs/{spec_a.code}/?include_versions=TRUE").status_code == HTTPStatus.OK


def test_a_page_size_is_an_integer(alice_api: Any, company_a: Any) -> None:
    response = alice_api.get("/evaluate?page_size=null")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "page_size must be an integer."}
    assert alice_api.get("/evaluate?page_size=5").status_code == HTTPStatus.OK


def test_an_id_that_is_not_a_string_is_refused(alice_api: Any, run_a: Any) -> None:
    # DRF's UUIDField reads an integer (and so `true`) as UUID(int=...): the schemathesis negative checks found
    # `{"run_id": true}` creating an evaluation of the run 00000000-0000-0000-0000-000000000001.
    for value in (True, 1, 1.0, ["x"]):
        response = alice_api.post("/api/dataframer/evaluations/", {"run_id": value}, format="json")
        assert response.status_code == 400, (value, response.content)
        assert "run_id" in response.json()


def test_an_empty_or_non_numeric_page_is_refused(alice_api: Any) -> None:
    for page in ("", " ", "x", "-1", "1.5"):
        response = alice_api.get("/evaluate", {"page": page})  # a list paginated by ListPagination
        assert response.status_code == 400, (page, response.status_code)
    assert alice_api.get("/evaluate", {"page": "1"}).status_code == 200
