"""The OpenAPI schema (drf-spectacular): it builds cleanly, documents every response body and the Bearer scheme,
and what it documents is what the API answers. The wire shapes are pinned key by key, in order (tests/
wire_shapes.json was captured before the responses moved to output serializers)."""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from rest_framework import serializers

from evaluations.api.serializers import DistributionAnalysisOutputSerializer, SampleClassificationOutputSerializer
from guardrails.api.serializers import MetricResultOutputSerializer, ModelInputOutputSerializer
from guardrails.metrics import MODEL_INPUT_FIELDS
from runs.api.serializers import GeneratedFileOutputSerializer, RunRuntimeParamsOutputSerializer
from tests.api_tour import api_tour
from tests.guardrails.test_scoring import install_judges

WIRE_SHAPES = Path(__file__).parent / "wire_shapes.json"
# Refused by design (always 400): no success body to document.
REFUSED_OPERATIONS: set[str] = set()
# Words of developer notes that must not reach the published descriptions.
INTERNAL_WORDS = re.compile(
    r"\.py\b|serializer|selector|values_list|jsonb|queryset|subclass|DESIGN\.md|STYLE\.md|tests/", re.IGNORECASE
)
# Values stored as JSON columns and answered as stored: PostgreSQL's jsonb orders their keys its own way, so only
# the key sets are pinned; their documentation may name fewer keys than they hold (judges add detail keys).
STORED_JSON = {
    "statistics",
    "distribution_analysis",
    "classifications",
    "evaluation_result",
    "runtime_params",
    "unavailable_judges",
}
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
UUID = re.compile(r"^(eval-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The schema as `manage.py spectacular --validate --fail-on-warn` writes it: any warning fails."""
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    GENERATOR_STATS.reset()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]


# --- The schema itself ---


def test_the_schema_builds_without_warnings(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    assert {"/api/dataframer/runs/{id}/", "/api/users/api-key/rotate", "/evaluate/{eval_id}"} <= set(schema["paths"])


def test_the_schema_and_docs_are_served(client: Any, db: None) -> None:
    assert client.get("/api/schema/").status_code == HTTPStatus.OK
    docs = client.get("/api/docs/")
    assert docs.status_code == HTTPStatus.OK
    # The page embeds the CSRF token, 64 random letters and digits that spell "cdn" about once in 500 pages (CI's
    # PostgreSQL leg saw it): the token is left out of the check, and every URL the page loads must be our own.
    page = re.sub(r'"[A-Za-z0-9]{64}"', '""', docs.content.decode())
    assert "cdn" not in page.lower()
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert loaded
    assert all(url.startswith("/") and not url.startswith("//") for url in loaded), loaded


def test_every_operation_documents_its_success_body(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        if operation["operationId"] in REFUSED_OPERATIONS:
            assert not successes, (method, path)
            continue
        assert successes, (method, path)
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response, (method, path)
            else:
                assert response["content"]["application/json"]["schema"], (method, path, code)


def test_every_error_is_documented_with_its_body(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        assert "401" in operation["responses"], (method, path)
        for code, response in operation["responses"].items():
            if code[0] in "45":
                assert response["content"]["application/json"]["schema"], (method, path, code)


def test_the_bearer_scheme_lets_the_docs_send_an_api_key(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method, path, operation in operations(schema):
        assert {"ApiKeyAuth": []} in operation["security"], (method, path)


def test_descriptions_are_one_line_and_for_users(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        description = operation.get("description", "")
        assert description, (method, path)
        assert "\n" not in description.strip(), (method, path, description)
        assert not INTERNAL_WORDS.search(description), (method, path, description)
    for name, component in schema["components"]["schemas"].items():
        texts = [component.get("description", "")]
        texts += [p.get("description", "") for p in component.get("properties", {}).values()]
        for text in texts:
            assert not INTERNAL_WORDS.search(text), (name, text)


# --- What the API answers ---


# The tour's answers, taken once per process: the five tests below read only them (bodies, headers, the request),
# never the database, and the tour gives the same answers every time (frozen clock, fixed judges). Each test used to
# take its own tour, 12-24 s apiece on a loaded machine.
TOUR: dict[str, Any] = {}


@pytest.fixture
def tour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if not TOUR:
        install_judges(monkeypatch)
        alice_api, bob_api = request.getfixturevalue("alice_api"), request.getfixturevalue("bob_api")
        capture = request.getfixturevalue("django_capture_on_commit_callbacks")
        # Frozen with microseconds, so the datetime format is pinned too.
        with time_machine.travel("2026-01-02T03:04:05.678901Z", tick=False):
            TOUR.update(api_tour(alice_api, bob_api, capture))
    return TOUR


def shape(value: Any, *, ordered: bool = True) -> Any:
    """The value's structure: objects as [key, shape] pairs in wire order, a list as its first item, and scalars
    as their JSON type (strings that are datetimes or ids named as such)."""
    if isinstance(value, dict):
        pairs = [[key, shape(item, ordered=ordered and key not in STORED_JSON)] for key, item in value.items()]
        return pairs if ordered else sorted(pairs)
    if isinstance(value, list):
        # Every item's shape, merged: a nullable field counts by its type wherever one item has a value, so the
        # shape does not depend on which item comes first.
        shapes = [shape(item, ordered=ordered) for item in value]
        merged = shapes[0] if shapes else None
        for other in shapes[1:]:
            merged = _merge(merged, other)
        return ["list", *([merged] if shapes else [])]
    if isinstance(value, str):
        return "datetime" if DATETIME.match(value) else "uuid" if UUID.match(value) else "str"
    return {type(None): "null", bool: "bool", int: "int", float: "float"}[type(value)]


def _merge(a: Any, b: Any) -> Any:
    if a == "null":
        return b
    if b == "null" or a == b:
        return a
    if (
        isinstance(a, list)
        and isinstance(b, list)
        and a
        and b
        and all(isinstance(x, list) and len(x) == 2 for x in a + b)
    ):
        keys = dict(a) | {k: v for k, v in b if k not in dict(a)}
        return [[k, _merge(dict(a).get(k, "null"), dict(b).get(k, "null"))] for k in keys]
    return a


def wire_shapes(responses: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "status": response.status_code,
            "content_type": response.get("Content-Type"),
            "body": shape(json.loads(response.content)) if response.content else None,
        }
        for name, response in responses.items()
    }


def test_responses_keep_their_wire_shape(tour: dict[str, Any]) -> None:
    """Every endpoint answers the keys it answered before output serializers, in the same order, with the same
    JSON types, explicit nulls and datetime format."""
    expected = json.loads(WIRE_SHAPES.read_text())
    actual = wire_shapes(tour)
    assert list(actual) == list(expected)
    for name in expected:
        assert actual[name] == expected[name], name


def documented(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A schema node with its $ref / allOf wrapper resolved."""
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in node:
            node = node["allOf"][0]
        else:
            return node


def assert_documents(schema: dict[str, Any], node: dict[str, Any], value: Any, where: str, *, stored: bool) -> None:
    """The documented keys are the answered keys, in order (stored JSON: documented ⊆ answered)."""
    node = documented(schema, node)
    if isinstance(value, list) and value and "items" in node:
        assert_documents(schema, node["items"], value[0], f"{where}[0]", stored=stored)
    elif isinstance(value, dict) and "properties" in node:
        keys = list(node["properties"])
        if stored:
            assert set(keys) <= set(value), where
        else:
            assert keys == list(value), where
        for key in keys:
            child = node["properties"][key]
            assert_documents(schema, child, value[key], f"{where}.{key}", stored=stored or key in STORED_JSON)
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
        for key, item in value.items():
            assert_documents(schema, node["additionalProperties"], item, f"{where}.{key}", stored=stored)


def test_the_schema_documents_what_the_api_answers(schema: dict[str, Any], tour: dict[str, Any]) -> None:
    templates = sorted(schema["paths"], key=lambda p: p.count("{"))  # literal paths win: /evaluate/batch
    for name, response in tour.items():
        if not response.content or response.get("Content-Type") != "application/json":
            continue
        body = json.loads(response.content)
        method, path = response.request["REQUEST_METHOD"].lower(), response.request["PATH_INFO"]
        template = next(
            t
            for t in templates
            if method in schema["paths"][t] and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path)
        )
        responses = schema["paths"][template][method]["responses"]
        assert str(response.status_code) in responses, name
        if response.status_code == HTTPStatus.BAD_REQUEST and "detail" not in body:
            continue  # field errors: {"<field>": ["..."]}, as the 400's description says
        node = responses[str(response.status_code)]["content"]["application/json"]["schema"]
        assert_documents(schema, node, body, name, stored=False)


# --- Fast paths: built without a serializer, checked against the one that documents them ---


def assert_matches(serializer_class: type[serializers.Serializer[Any]], row: dict[str, Any]) -> None:
    """`row` has the serializer's fields in order, serializing it gives it back, and it validates."""
    assert list(row) == list(serializer_class().fields)
    assert serializer_class(row).data == row
    validator = serializer_class(data=row)
    assert validator.is_valid(), validator.errors


def test_generated_files_match_their_serializer(tour: dict[str, Any]) -> None:
    run = tour["run-retrieve"].json()
    assert len(run["generated_files"]) == 6
    for row in run["generated_files"]:
        assert_matches(GeneratedFileOutputSerializer, row)


def test_sample_classifications_match_their_serializer(tour: dict[str, Any]) -> None:
    evaluation = tour["evaluation-retrieve"].json()
    assert evaluation["status"] == "SUCCEEDED"
    assert len(evaluation["sample_classifications"]) == 6
    for row in evaluation["sample_classifications"]:
        assert_matches(SampleClassificationOutputSerializer, row)


def test_stored_json_matches_its_documentation(tour: dict[str, Any]) -> None:
    for item in tour["evaluation-retrieve"].json()["distribution_analysis"]:
        assert set(item) == set(DistributionAnalysisOutputSerializer().fields)
        assert DistributionAnalysisOutputSerializer(data=item).is_valid()
    params = tour["run-retrieve"].json()["runtime_params"]
    assert set(RunRuntimeParamsOutputSerializer().fields) <= set(params)
    assert RunRuntimeParamsOutputSerializer(data=params).is_valid()
    guardrail = tour["guardrail-retrieve"].json()
    for result in guardrail["evaluation_result"].values():
        assert set(MetricResultOutputSerializer().fields) <= set(result)
        assert MetricResultOutputSerializer(data=result).is_valid()
    assert list(guardrail["model_input"]) == list(ModelInputOutputSerializer().fields) == list(MODEL_INPUT_FIELDS)


def test_the_guardrail_posts_document_their_413(schema: dict[str, Any]) -> None:
    # A text over GUARDRAIL_MAX_TEXT_CHARS is a 413 naming the field (tests/test_hostile_input.py).
    for path in ("/evaluate", "/evaluate/batch"):
        refs = schema["paths"][path]["post"]["responses"]["413"]["content"]["application/json"]["schema"]["oneOf"]
        assert {ref["$ref"].rsplit("/", 1)[1] for ref in refs} == {"UnprocessableOutput", "DetailOutput"}
