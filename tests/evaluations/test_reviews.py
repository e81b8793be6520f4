"""Human reviews: the API (one or a list, atomic), validation, the alice/bob/charlie triad on every endpoint and page,
the statistics block once enough labels exist, the queue, exports."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evaluations import agreement
from evaluations.models import Evaluation, Review, SampleClassification
from evaluations.selectors import QueueMode, combined_label, review_queue, run_labels
from runs.models import Run
from tests.conftest import make_rows

EVALUATIONS = "/api/dataframer/evaluations/"
HX = {"HX-Request": "true"}


def reviews_url(evaluation: Evaluation) -> str:
    return f"{EVALUATIONS}{evaluation.code}/reviews/"


def label(identifier: str, value: str = "positive", prop: str = "sentiment", **extra: str) -> dict[str, str]:
    return {"sample_identifier": identifier, "property_name": prop, "value": value, **extra}


@pytest.fixture
def done(run_a: Run, evaluate: Any) -> Evaluation:
    """A finished evaluation of run_a's 12 samples by the embedded judge."""
    return evaluate(run_a, "local/embeddings")


def signed_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


# --- API ---


def test_it_stores_one_label(alice_api: APIClient, done: Evaluation, alice: Any) -> None:
    response = alice_api.post(reviews_url(done), label("sample_1", "neutral"), format="json")
    assert response.status_code == HTTPStatus.CREATED
    body = response.json()
    assert list(body) == [
        "id", "sample_identifier", "property_name", "value", "selection", "reviewer_email", "evaluation_id",
        "created_at", "updated_at",
    ]  # fmt: skip
    assert (body["sample_identifier"], body["value"], body["selection"]) == ("sample_1", "neutral", "random")
    assert body["reviewer_email"] == "alice@alpha.test"
    assert body["evaluation_id"] == str(done.code)
    review = Review.objects.get()
    assert (review.company_id, review.reviewer_id, review.sample.identifier) == (done.company_id, alice.id, "sample_1")


def test_relabelling_updates_the_reviewers_label(alice_api: APIClient, done: Evaluation) -> None:
    first = alice_api.post(reviews_url(done), label("sample_1", "neutral"), format="json").json()
    second = alice_api.post(reviews_url(done), label("sample_1", "negative"), format="json").json()
    assert second["id"] == first["id"]
    assert Review.objects.get().value == "negative"


def test_a_random_label_stays_random_when_corrected(alice_api: APIClient, done: Evaluation) -> None:
    alice_api.post(reviews_url(done), label("sample_1", "neutral"), format="json")
    body = alice_api.post(reviews_url(done), label("sample_1", "negative", selection="manual"), format="json").json()
    assert (body["value"], body["selection"]) == ("negative", "random")


def test_a_list_is_stored_at_once(alice_api: APIClient, done: Evaluation) -> None:
    items = [label("sample_1"), label("sample_2", "high", "priority"), label("sample_3", "neutral")]
    response = alice_api.post(reviews_url(done), items, format="json")
    assert response.status_code == HTTPStatus.CREATED
    assert [r["sample_identifier"] for r in response.json()] == ["sample_1", "sample_2", "sample_3"]
    assert Review.objects.count() == 3


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (label("sample_2", "ecstatic"), "Item 1: value: 'ecstatic' is not a value of sentiment"),
        (label("sample_2", "positive", "colour"), "Item 1: property_name: No property 'colour'"),
        (label("nope"), "Item 1: sample_identifier: No sample 'nope'"),
        ({"sample_identifier": "sample_2"}, "Item 1: property_name: This field is required."),
        ("just a string", "Item 1: non_field_errors"),
    ],
)
def test_a_list_with_one_bad_item_stores_nothing(alice_api: APIClient, done: Evaluation, bad: Any, words: str) -> None:
    response = alice_api.post(reviews_url(done), [label("sample_1"), bad, label("sample_3")], format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert words in response.json()["detail"]
    assert not Review.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (label("sample_1", "ecstatic"), "value"),
        (label("sample_1", "positive", "colour"), "property_name"),
        (label("sample_999"), "sample_identifier"),
        (label("sample_1", selection="lucky"), "selection"),
        ({"sample_identifier": "sample_1", "property_name": "sentiment", "value": 3}, None),
        ({}, "value"),
    ],
)
def test_it_refuses_bad_labels(alice_api: APIClient, done: Evaluation, body: dict[str, Any], field: str | None) -> None:
    response = alice_api.post(reviews_url(done), body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    if field:
        assert field in response.json()
    assert Review.objects.filter(value="3").exists() is False


def test_it_refuses_an_empty_or_oversized_list_and_malformed_json(alice_api: APIClient, done: Evaluation) -> None:
    assert alice_api.post(reviews_url(done), [], format="json").status_code == HTTPStatus.BAD_REQUEST
    many = [label("sample_1")] * 1001
    assert alice_api.post(reviews_url(done), many, format="json").status_code == HTTPStatus.BAD_REQUEST
    response = alice_api.generic("POST", reviews_url(done), "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not Review.objects.exists()


def test_a_sample_of_another_run_is_refused(
    alice_api: APIClient, done: Evaluation, alice: Any, company_a: Any, spec_a: Any
) -> None:
    from runs.services import run_import

    run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(3, start=100))
    response = alice_api.post(reviews_url(done), label("sample_100"), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "sample_identifier" in response.json()


def test_the_list_is_paginated_newest_first(alice_api: APIClient, done: Evaluation) -> None:
    alice_api.post(reviews_url(done), [label(f"sample_{i}") for i in range(1, 6)], format="json")
    body = alice_api.get(f"{reviews_url(done)}?page_size=2").json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"]
    assert alice_api.get(f"{reviews_url(done)}?page=9").status_code == HTTPStatus.NOT_FOUND


def test_withdraw(alice_api: APIClient, done: Evaluation) -> None:
    review = alice_api.post(reviews_url(done), label("sample_1"), format="json").json()
    response = alice_api.delete(f"{reviews_url(done)}{review['id']}/")
    assert response.status_code == HTTPStatus.NO_CONTENT
    assert not Review.objects.exists()
    assert alice_api.delete(f"{reviews_url(done)}{review['id']}/").status_code == HTTPStatus.NOT_FOUND
    assert alice_api.delete(f"{reviews_url(done)}not-a-uuid/").status_code == HTTPStatus.NOT_FOUND


def test_it_checks_ownership(charlie_api: APIClient, alice_api: APIClient, done: Evaluation) -> None:
    review = alice_api.post(reviews_url(done), label("sample_1"), format="json").json()
    assert charlie_api.get(reviews_url(done)).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.post(reviews_url(done), label("sample_2"), format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.post(reviews_url(done), [label("sample_2")], format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.delete(f"{reviews_url(done)}{review['id']}/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{EVALUATIONS}{done.code}/statistics/").status_code == HTTPStatus.NOT_FOUND
    assert Review.objects.count() == 1


def test_it_requires_rw_access(bob_api: APIClient, alice_api: APIClient, done: Evaluation) -> None:
    review = alice_api.post(reviews_url(done), label("sample_1"), format="json").json()
    assert bob_api.get(reviews_url(done)).json()["count"] == 1
    assert bob_api.post(reviews_url(done), label("sample_2"), format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.delete(f"{reviews_url(done)}{review['id']}/").status_code == HTTPStatus.FORBIDDEN
    assert Review.objects.count() == 1


def test_a_review_of_another_company_is_not_found_through_mine(
    alice_api: APIClient, charlie_api: APIClient, done: Evaluation, charlie: Any, company_b: Any
) -> None:
    from runs.services import run_import, spec_create
    from tests.conftest import SPEC_YAML

    review = alice_api.post(reviews_url(done), label("sample_1"), format="json").json()
    spec_b = spec_create(company=company_b, created_by=charlie, name="B", content_yaml=SPEC_YAML)
    run_b = run_import(company=company_b, created_by=charlie, spec=spec_b, rows=make_rows(2))
    other = Evaluation.objects.create(company=company_b, run=run_b, requested_model="local/embeddings")
    # charlie's own evaluation, alice's review id: not found.
    assert charlie_api.delete(f"{reviews_url(other)}{review['id']}/").status_code == HTTPStatus.NOT_FOUND
    assert Review.objects.count() == 1


# --- Statistics ---


def _label_all(client: APIClient, evaluation: Evaluation, count: int, *, truth: Any = None) -> None:
    """Label `count` samples with their assigned sentiment (or `truth(sample)`), in one list."""
    rows = SampleClassification.objects.filter(evaluation=evaluation).select_related("sample")[:count]
    items = [label(r.sample.identifier, truth(r.sample) if truth else r.sample.properties["sentiment"]) for r in rows]
    assert client.post(reviews_url(evaluation), items, format="json").status_code == HTTPStatus.CREATED


def test_statistics_say_too_few_labels_below_the_minimum(alice_api: APIClient, done: Evaluation) -> None:
    _label_all(alice_api, done, 3)
    body = alice_api.get(f"{EVALUATIONS}{done.code}/statistics/").json()
    sentiment, priority = body["statistics"]["properties"]
    block = sentiment["human_review"]
    assert block["reviewed"] == 3
    assert block["message"].startswith(f"3 of the {agreement.MIN_REVIEWS} unbiased reviews")
    assert block["minimum"] == agreement.MIN_REVIEWS
    assert block["kappa"] is None
    assert block["corrected_distributions"] is None
    assert priority["human_review"]["reviewed"] == 0
    done.refresh_from_db()
    assert "human_review" not in done.statistics["properties"][0]  # the stored JSON is left alone


def test_statistics_gain_the_block_at_the_minimum(
    alice_api: APIClient, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    from runs.services import run_import

    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(agreement.MIN_REVIEWS + 6))
    evaluation = evaluate(run, "local/embeddings")
    _label_all(alice_api, evaluation, agreement.MIN_REVIEWS)
    block = alice_api.get(f"{EVALUATIONS}{evaluation.code}/statistics/").json()["statistics"]["properties"][0][
        "human_review"
    ]
    assert block["reviewed"] == agreement.MIN_REVIEWS
    assert block["message"] is None
    for key in ("judge_accuracy", "judge_confusion", "corrected_distributions", "corrected_ci"):
        assert block[key] is not None, key
    assert set(block["corrected_distributions"]) == {"positive", "negative", "neutral"}
    assert sum(block["corrected_distributions"].values()) == pytest.approx(100)


def test_a_second_evaluation_of_the_run_sees_the_same_labels(
    alice_api: APIClient, done: Evaluation, run_a: Run, evaluate: Any
) -> None:
    _label_all(alice_api, done, 4)
    second = evaluate(run_a, "local/embeddings")
    assert alice_api.get(reviews_url(second)).json()["count"] == 4
    block = alice_api.get(f"{EVALUATIONS}{second.code}/statistics/").json()["statistics"]["properties"][0]
    assert block["human_review"]["reviewed"] == 4


def test_labels_of_several_reviewers_combine_by_majority_then_recency() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert combined_label([("a", t), ("b", t + timedelta(1)), ("a", t + timedelta(2))]) == "a"
    assert combined_label([("a", t + timedelta(3)), ("b", t + timedelta(1))]) == "a"
    assert combined_label([("a", t), ("b", t + timedelta(1))]) == "b"


def test_run_labels_combine_reviewers_and_keep_the_random_set_apart(
    done: Evaluation, alice: Any, company_a: Any
) -> None:
    from evaluations.services import ReviewInput, review_save
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    erin = MembershipFactory(user=UserFactory(username="erin@alpha.test"), company=company_a).user
    review_save(evaluation=done, reviewer=alice, items=[ReviewInput("sample_1", "sentiment", "neutral")])
    review_save(evaluation=done, reviewer=dave, items=[ReviewInput("sample_1", "sentiment", "negative")])
    review_save(evaluation=done, reviewer=erin, items=[ReviewInput("sample_1", "sentiment", "negative")])
    review_save(evaluation=done, reviewer=alice, items=[ReviewInput("sample_2", "sentiment", "neutral", "manual")])
    labels = run_labels(run_id=done.run_id)["sentiment"]
    by_identifier = {Review.objects.filter(sample_id=k).first().sample.identifier: v for k, v in labels.items()}
    assert (by_identifier["sample_1"].value, by_identifier["sample_1"].reviewers) == ("negative", 3)
    assert by_identifier["sample_1"].random
    assert not by_identifier["sample_2"].random


# --- The queue ---


def test_the_random_queue_is_stratified_and_deterministic(
    alice_api: APIClient, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    from runs.services import run_import

    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(60))
    evaluation = evaluate(run, "local/embeddings")
    judged_counts = evaluation.statistics["properties"][0]["evaluated_counts"]
    first = review_queue(evaluation=evaluation, prop="sentiment", mode=QueueMode.RANDOM)
    assert first.row == review_queue(evaluation=evaluation, prop="sentiment", mode=QueueMode.RANDOM).row
    seen: list[str] = []
    for _ in range(9):
        state = review_queue(evaluation=evaluation, prop="sentiment", mode=QueueMode.RANDOM)
        assert state.row is not None
        seen.append(state.row.classifications["sentiment"])
        alice_api.post(reviews_url(evaluation), label(state.row.sample.identifier, "neutral"), format="json")
    # Equal allocation: the judged values with samples get three labels each (fewer only where there are fewer).
    counts = {v: seen.count(v) for v in judged_counts if judged_counts[v]}
    assert max(counts.values()) - min(counts.values()) <= 1 or min(judged_counts.values()) < 3
    assert review_queue(evaluation=evaluation, prop="sentiment", mode=QueueMode.RANDOM).reviewed == 9
    # Not sample order: a shuffle.
    positions = [r.sample.position for r in Review.objects.select_related("sample").order_by("created_at", "id")]
    assert positions != sorted(positions)


def test_the_disagreement_queue_shows_only_judged_not_assigned(alice_api: APIClient, done: Evaluation) -> None:
    SampleClassification.objects.filter(evaluation=done, sample__identifier="sample_4").update(
        classifications={"sentiment": "positive", "priority": "high"}
    )
    SampleClassification.objects.filter(evaluation=done).exclude(sample__identifier="sample_4").update(
        classifications=None, status="failed"
    )
    state = review_queue(evaluation=done, prop="sentiment", mode=QueueMode.DISAGREEMENT)
    assert state.row is not None
    assert state.row.sample.identifier == "sample_4"
    assert (state.reviewed, state.total) == (0, 1)
    alice_api.post(reviews_url(done), label("sample_4", "negative", selection="disagreement"), format="json")
    state = review_queue(evaluation=done, prop="sentiment", mode=QueueMode.DISAGREEMENT)
    assert state.row is None
    assert (state.reviewed, state.total) == (1, 1)
