"""The DeepRails-compatible /evaluate API: the official client in strict mode, error shapes, tenancy, lists, batch."""

from __future__ import annotations

import time
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from deeprails import AuthenticationError, BadRequestError, Deeprails, NotFoundError, UnprocessableEntityError
from deeprails.types import Evaluation as WireEvaluation
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from rest_framework.test import APIClient

from guardrails.models import GuardrailEvaluation
from tests.guardrails.test_scoring import Judges, install_judges

EVALUATE = "/evaluate"
WIRE_FIELDS = {field.alias or name for name, field in WireEvaluation.model_fields.items()}
BODY = {
    "model_input": {"system_prompt": "Answer briefly.", "user_prompt": "What color is the sky?"},
    "model_output": "The sky is blue.",
    "run_mode": "economy",
    "guardrail_metrics": ["correctness", "completeness"],
}


@pytest.fixture
def judges(monkeypatch: pytest.MonkeyPatch) -> Judges:
    return install_judges(monkeypatch)


def create(api: APIClient, body: dict[str, Any] | None = None, **changes: Any) -> Any:
    return api.post(EVALUATE, {**BODY, **changes} if body is None else body, format="json")


# --- The official client, strict, against a live server ---


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("run_mode", "anthropic_calls", "openai_calls", "score"),
    [
        ("economy", 1, 0, 0.8),
        ("smart", 1, 0, 0.8),
        ("precision", 3, 0, 0.8),
        ("precision_plus", 3, 3, 0.7),
    ],
)
def test_the_official_client_end_to_end(
    live_server: Any,
    alice_key: str,
    judges: Judges,
    run_mode: str,
    anthropic_calls: int,
    openai_calls: int,
    score: float,
) -> None:
    client = Deeprails(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    created = client.evaluate.create(
        model_input={
            "system_prompt": "You are a helpful assistant.",
            "user_prompt": "What color is the sky?",
            "ground_truth": "The sky is blue.",
        },
        model_output="The sky is blue.",
        run_mode=run_mode,  # type: ignore[arg-type]
        guardrail_metrics=["correctness", "completeness", "ground_truth_adherence"],
        model_used="gpt-4o",
        nametag="sky",
    )
    assert created.eval_id.startswith("eval-")
    assert created.evaluation_status == "queued"
    assert created.progress == 0
    assert created.run_mode == run_mode
    assert created.api_model_used == "gpt-4o"
    assert created.nametag == "sky"
    assert created.api_model_input.ground_truth == "The sky is blue."
    evaluation = client.evaluate.retrieve(created.eval_id)
    deadline = time.monotonic() + 10
    while evaluation.evaluation_status in {"queued", "in_progress"} and time.monotonic() < deadline:
        time.sleep(0.1)  # tasks run inline in tests, so this normally never waits
        evaluation = client.evaluate.retrieve(created.eval_id)
    assert evaluation.evaluation_status == "completed", evaluation.error_message
    assert evaluation.progress == 100
    assert evaluation.start_timestamp is not None
    assert evaluation.end_timestamp is not None
    assert evaluation.modified_at is not None
    assert evaluation.error_message is None
    assert evaluation.guardrail_metrics == ["correctness", "completeness", "ground_truth_adherence"]
    result = evaluation.evaluation_result or {}
    assert list(result) == ["correctness", "completeness", "ground_truth_adherence"]
    for metric in result.values():
        assert isinstance(metric, dict)
        assert metric["score"] == pytest.approx(score)
        assert isinstance(metric["rationale"], str)
    assert (judges.anthropic.calls, judges.openai.calls) == (anthropic_calls, openai_calls)
    assert evaluation.evaluation_total_cost is not None
    assert evaluation.evaluation_total_cost > 0
    with pytest.raises(NotFoundError):
        client.evaluate.retrieve("eval-00000000-0000-0000-0000-000000000000")
    with pytest.raises(UnprocessableEntityError):
        client.evaluate.create(model_input={"user_prompt": "q"}, model_output="a", run_mode="turbo")  # type: ignore[arg-type]
    with pytest.raises(BadRequestError):
        client.evaluate.create(model_input={"ground_truth": "g"}, model_output="a", run_mode="smart")
    bad_key = Deeprails(base_url=live_server.url, api_key="nope", _strict_response_validation=True, max_retries=0)
    with pytest.raises(AuthenticationError):
        bad_key.evaluate.retrieve(created.eval_id)


ALL_METRICS: list[Any] = [
    "correctness",
    "completeness",
    "instruction_adherence",
    "context_adherence",
    "ground_truth_adherence",
    "comprehensive_safety",
]
# Exactly the fields of deeprails 1.9.0's ModelInput: it has no `context`.
TYPED_INPUT: Any = {
    "system_prompt": "You are a support agent for Acme. Refunds take 5 business days.",
    "user_prompt": "How long does a refund take?",
    "ground_truth": "Refunds take 5 business days.",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("run_mode", ["economy", "smart", "precision", "precision_plus"])
def test_it_grades_every_metric_in_every_run_mode_from_the_typed_input(
    live_server: Any, alice_key: str, judges: Judges, run_mode: Any
) -> None:
    client = Deeprails(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    for metric in ALL_METRICS:
        created = client.evaluate.create(
            model_input=TYPED_INPUT,
            model_output="A refund takes 5 business days.",
            run_mode=run_mode,
            guardrail_metrics=[metric],
        )
        evaluation = client.evaluate.retrieve(created.eval_id)
        assert evaluation.evaluation_status == "completed", (metric, evaluation.error_message)
        assert list(evaluation.evaluation_result or {}) == [metric]
    everything = client.evaluate.create(
        model_input=TYPED_INPUT,
        model_output="A refund takes 5 business days.",
        run_mode=run_mode,
        guardrail_metrics=ALL_METRICS,
    )
    evaluation = client.evaluate.retrieve(everything.eval_id)
    assert evaluation.evaluation_status == "completed", evaluation.error_message
    assert list(evaluation.evaluation_result or {}) == ALL_METRICS


@pytest.mark.django_db(transaction=True)
def test_it_grades_context_adherence_offline_against_the_prompts(live_server: Any, alice_key: str) -> None:
    client = Deeprails(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    grounded = client.evaluate.create(
        model_input=TYPED_INPUT,
        model_output="A refund takes 5 business days.",
        run_mode="smart",
        guardrail_metrics=["context_adherence"],
    )
    invented = client.evaluate.create(
        model_input=TYPED_INPUT,
        model_output="A refund takes 30 business days.",
        run_mode="smart",
        guardrail_metrics=["context_adherence"],
    )
    scores = {}
    for name, created in (("grounded", grounded), ("invented", invented)):
        result = client.evaluate.retrieve(created.eval_id).evaluation_result or {}
        assert result["context_adherence"]["judge"] == "local/embeddings"  # type: ignore[index]
        scores[name] = result["context_adherence"]["score"]  # type: ignore[index]
    assert scores == {"grounded": 1.0, "invented": 0.0}


@pytest.mark.django_db(transaction=True)
def test_the_official_client_reads_an_offline_evaluation(live_server: Any, alice_key: str) -> None:
    client = Deeprails(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)
    created = client.evaluate.create(
        model_input={"user_prompt": "Summarise the context.", "context": "Paris is the capital of France."},  # type: ignore[typeddict-unknown-key]
        model_output="Paris is the capital of France.",
        run_mode="smart",
    )
    evaluation = client.evaluate.retrieve(created.eval_id)
    assert evaluation.evaluation_status == "completed"
    result = evaluation.evaluation_result or {}
    # No metrics named: the default set, with context_adherence because a context was given.
    assert list(result) == [
        "correctness",
        "completeness",
        "instruction_adherence",
        "context_adherence",
        "comprehensive_safety",
    ]
    assert {m["judge"] for m in result.values()} == {"local/embeddings"}  # type: ignore[index]
    assert result["context_adherence"]["score"] == 1.0  # type: ignore[index]
    assert evaluation.evaluation_total_cost == 0
    assert evaluation.to_dict()["trace"]["offline_judge"] is True


# --- Create ---


def test_create_returns_every_field_at_once(alice_api: APIClient) -> None:
    response = create(alice_api, nametag=None)
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert set(body) >= WIRE_FIELDS
    assert set(body) - WIRE_FIELDS == {"trace"}
    assert body["eval_id"] == f"eval-{GuardrailEvaluation.objects.get().code}"
    assert body["evaluation_status"] == "queued"
    assert body["progress"] == 0
    assert body["model_input"] == {
        "system_prompt": "Answer briefly.",
        "user_prompt": "What color is the sky?",
        "context": None,
        "ground_truth": None,
    }
    for key in ("evaluation_result", "model_used", "nametag", "start_timestamp", "end_timestamp", "error_message"):
        assert body[key] is None, key
    assert body["error_timestamp"] is None
    assert body["evaluation_total_cost"] == 0
    assert body["created_at"]
    assert body["modified_at"]
    assert body["trace"]["requested_judges"] == ["anthropic/claude-haiku-4-5"]


def test_create_defaults_to_smart_and_the_default_metrics(alice_api: APIClient) -> None:
    body = create(alice_api, {"model_input": {"user_prompt": "q", "ground_truth": "g"}, "model_output": "a"}).json()
    assert body["run_mode"] == "smart"
    assert body["guardrail_metrics"] == [
        "correctness",
        "completeness",
        "instruction_adherence",
        "ground_truth_adherence",
        "comprehensive_safety",
    ]


def test_create_enqueues_after_commit_and_the_worker_completes_it(
    alice_api: APIClient, judges: Judges, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        eval_id = create(alice_api).json()["eval_id"]
    assert len(callbacks) == 1
    body = alice_api.get(f"{EVALUATE}/{eval_id}").json()
    assert body["evaluation_status"] == "completed"
    assert body["progress"] == 100
    assert body["evaluation_result"]["correctness"]["judge"] == "anthropic/claude-haiku-4-5"
    assert body["trace"]["calls"] == 1
    assert body["evaluation_total_cost"] > 0


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"model_input": {"user_prompt": "q"}}, ["body", "model_output"], "missing"),
        ({**BODY, "model_output": None}, ["body", "model_output"], "none_forbidden"),
        ({**BODY, "model_output": 42}, ["body", "model_output"], "string_type"),
        ({**BODY, "model_input": "q"}, ["body", "model_input"], "dict_type"),
        ({**BODY, "model_input": {"user_prompt": ["q"]}}, ["body", "model_input", "user_prompt"], "string_type"),
        ({k: v for k, v in BODY.items() if k != "model_input"}, ["body", "model_input"], "missing"),
        ({**BODY, "run_mode": "turbo"}, ["body", "run_mode"], "enum"),
        ({**BODY, "guardrail_metrics": ["correctness", "vibes"]}, ["body", "guardrail_metrics", 1], "enum"),
        ({**BODY, "guardrail_metrics": "correctness"}, ["body", "guardrail_metrics"], "list_type"),
        ({**BODY, "nametag": "x" * 256}, ["body", "nametag"], "too_long"),
        (["not", "an", "object"], ["body"], "dict_type"),
    ],
)
def test_schema_errors_are_422_with_a_list_of_locations(
    alice_api: APIClient, body: Any, loc: list[Any], error_type: str
) -> None:
    response = create(alice_api, body)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert error["type"] == error_type
    assert isinstance(error["msg"], str)
    assert not GuardrailEvaluation.objects.exists()


def test_malformed_json_is_422(alice_api: APIClient) -> None:
    response = alice_api.generic("POST", EVALUATE, '{"model_output": ', content_type="application/json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body"], "json_invalid")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model_input": {"ground_truth": "g"}},
            "model_input must contain at least a user_prompt or a system_prompt.",
        ),
        (
            {"model_input": {"user_prompt": "  ", "system_prompt": None}},
            "model_input must contain at least a user_prompt or a system_prompt.",
        ),
        (
            {"guardrail_metrics": ["ground_truth_adherence"]},
            "ground_truth_adherence needs model_input.ground_truth, which is missing or empty.",
        ),
        (
            {"guardrail_metrics": []},
            "guardrail_metrics is empty: name at least one metric, or leave it out for the default set.",
        ),
    ],
)
def test_semantic_errors_are_400_with_a_message(alice_api: APIClient, changes: dict[str, Any], message: str) -> None:
    response = create(alice_api, **changes)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": message}
    assert not GuardrailEvaluation.objects.exists()


# --- Tenancy ---


def test_it_checks_ownership(alice_api: APIClient, charlie_api: APIClient) -> None:
    eval_id = create(alice_api).json()["eval_id"]
    response = charlie_api.get(f"{EVALUATE}/{eval_id}")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "No evaluation with this id."}
    assert charlie_api.get(EVALUATE).json()["count"] == 0
    for bad in ("eval-nope", str(GuardrailEvaluation.objects.get().code), "eval-", "x"):
        assert alice_api.get(f"{EVALUATE}/{bad}").status_code == HTTPStatus.NOT_FOUND, bad


def test_it_requires_rw_access(alice_api: APIClient, bob_api: APIClient) -> None:
    eval_id = create(alice_api).json()["eval_id"]
    assert bob_api.get(f"{EVALUATE}/{eval_id}").status_code == HTTPStatus.OK
    assert bob_api.get(EVALUATE).json()["count"] == 1
    response = create(bob_api)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json() == {"detail": "Your role in this company is read-only."}
    assert bob_api.post(f"{EVALUATE}/batch", {"items": [BODY]}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert GuardrailEvaluation.objects.count() == 1


def test_it_requires_a_valid_key(db: None) -> None:
    client = APIClient()
    assert client.get(EVALUATE).status_code == HTTPStatus.UNAUTHORIZED
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    response = client.post(EVALUATE, BODY, format="json")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json() == {"detail": "Invalid API key."}


# --- Listing (our addition) ---


def test_list_is_newest_first_filtered_and_paginated(
    alice_api: APIClient, charlie_api: APIClient, django_assert_num_queries: Any
) -> None:
    ids = [create(alice_api, nametag="a" if i % 2 else "b", run_mode="economy").json()["eval_id"] for i in range(5)]
    create(alice_api, nametag="a", run_mode="precision")
    create(charlie_api, nametag="a")
    # The content type of the ledger's generic relation is cached per process, as in a running server; when this test
    # runs alone nothing has looked it up yet, so warm the cache rather than count a query no served request makes.
    ContentType.objects.get_for_model(GuardrailEvaluation)
    # Expect 4 queries: the API key (with its company), its user's membership in that company (the active one),
    # the count, and the page with each evaluation's cost and calls annotated.
    with django_assert_num_queries(4):
        page = alice_api.get(EVALUATE, {"page_size": 2}).json()
    assert page["count"] == 6
    assert len(page["results"]) == 2
    assert page["previous"] is None
    assert "page=2" in page["next"]
    assert page["results"][1]["eval_id"] == ids[-1]
    assert set(page["results"][0]) >= WIRE_FIELDS
    rest = alice_api.get(page["next"]).json()
    assert [e["eval_id"] for e in rest["results"]] == ids[::-1][1:3]
    assert alice_api.get(EVALUATE, {"nametag": "a"}).json()["count"] == 3
    assert alice_api.get(EVALUATE, {"nametag": "a", "run_mode": "economy"}).json()["count"] == 2
    assert alice_api.get(EVALUATE, {"status": "queued"}).json()["count"] == 6
    assert alice_api.get(EVALUATE, {"status": "completed"}).json()["count"] == 0
    assert alice_api.get(EVALUATE, {"page_size": 1000}).json()["count"] == 6


def test_list_filters_by_creation_time(alice_api: APIClient) -> None:
    old, new = (create(alice_api).json()["eval_id"] for _ in range(2))
    last_week = timezone.now() - timedelta(days=7)
    GuardrailEvaluation.objects.filter(code=GuardrailEvaluation.parse_eval_id(old)).update(created_at=last_week)
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    after = alice_api.get(EVALUATE, {"created_after": yesterday}).json()["results"]
    assert [e["eval_id"] for e in after] == [new]
    before = alice_api.get(EVALUATE, {"created_before": yesterday}).json()["results"]
    assert [e["eval_id"] for e in before] == [old]
    moment = (last_week + timedelta(seconds=1)).isoformat()
    assert [e["eval_id"] for e in alice_api.get(EVALUATE, {"created_before": moment}).json()["results"]] == [old]


def test_list_rejects_bad_filters(alice_api: APIClient) -> None:
    response = alice_api.get(EVALUATE, {"status": "done", "created_after": "last tuesday"})
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["query", "status"], "enum"),
        (["query", "created_after"], "datetime_parsing"),
    ]
    assert alice_api.get(EVALUATE, {"page": 9}).status_code == HTTPStatus.NOT_FOUND


# --- Batch (our addition) ---


def test_batch_creates_every_item(
    alice_api: APIClient, judges: Judges, django_capture_on_commit_callbacks: Any
) -> None:
    items = [{**BODY, "nametag": f"item-{i}"} for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = alice_api.post(f"{EVALUATE}/batch", {"items": items}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    eval_ids = response.json()["eval_ids"]
    assert len(eval_ids) == len(callbacks) == 3
    for i, eval_id in enumerate(eval_ids):
        body = alice_api.get(f"{EVALUATE}/{eval_id}").json()
        assert (body["nametag"], body["evaluation_status"]) == (f"item-{i}", "completed")
    assert judges.anthropic.calls == 3


def test_a_bad_batch_item_saves_nothing(alice_api: APIClient) -> None:
    items = [BODY, {**BODY, "run_mode": "turbo"}, BODY]
    response = alice_api.post(f"{EVALUATE}/batch", {"items": items}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "items", 1, "run_mode"]
    items = [BODY, BODY, {**BODY, "guardrail_metrics": ["ground_truth_adherence"]}]
    response = alice_api.post(f"{EVALUATE}/batch", {"items": items}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {
        "detail": "items[2]: ground_truth_adherence needs model_input.ground_truth, which is missing or empty."
    }
    assert not GuardrailEvaluation.objects.exists()


def test_a_batch_holds_one_to_a_thousand_items(alice_api: APIClient) -> None:
    small = {"model_input": {"user_prompt": "q"}, "model_output": "a"}
    response = alice_api.post(f"{EVALUATE}/batch", {"items": [small] * 1001}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "items"], "too_long")
    response = alice_api.post(f"{EVALUATE}/batch", {"items": []}, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert not GuardrailEvaluation.objects.exists()
    response = alice_api.post(f"{EVALUATE}/batch", {"items": [small] * 1000}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    assert len(set(response.json()["eval_ids"])) == GuardrailEvaluation.objects.count() == 1000


def test_the_schema_documents_the_evaluate_paths(client: Any, db: None) -> None:
    schema = client.get("/api/schema/").content.decode()
    for path in ("/evaluate:", "/evaluate/batch:", "/evaluate/{eval_id}:"):
        assert path in schema
