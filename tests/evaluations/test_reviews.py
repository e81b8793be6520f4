"""Human reviews: the API (one or a list, atomic), validation, the alice/bob/charlie triad on every endpoint and page,
the statistics block once enough labels exist, the queue, exports."""

from __future__ import annotations

import json
import re
from collections import Counter
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evaluations import agreement
from evaluations.human_review import combined_label, run_labels
from evaluations.models import Evaluation, Review, SampleClassification
from evaluations.review_queue import QueueMode, review_queue, samples_with_stratum
from runs.models import Run
from tests.conftest import make_rows
from tests.evaluations.strata import STRATA, stratum_of

EVALUATIONS = "/api/dataframer/evaluations/"
BLIND_RANDOM = {"selection": "random", "blind": True}
HX = {"HX-Request": "true"}


def reviews_url(evaluation: Evaluation) -> str:
    return f"{EVALUATIONS}{evaluation.code}/reviews/"


def label(identifier: str, value: str = "positive", prop: str = "sentiment", **extra: Any) -> dict[str, Any]:
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
        "id", "sample_identifier", "property_name", "value", "selection", "stratum", "inclusion_probability", "blind",
        "reviewer_email", "evaluation_id", "created_at", "updated_at",
    ]  # fmt: skip
    # Through the API a label is hand-picked unless the client says it drew it at random (issue #20).
    assert (body["sample_identifier"], body["value"], body["selection"]) == ("sample_1", "neutral", "api")
    assert (body["stratum"], body["inclusion_probability"], body["blind"]) == ("", None, False)
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
    drawn = label("sample_1", "neutral", selection="random", inclusion_probability=0.25, blind=True)
    alice_api.post(reviews_url(done), drawn, format="json")
    body = alice_api.post(reviews_url(done), label("sample_1", "negative", selection="manual"), format="json").json()
    assert (body["value"], body["selection"]) == ("negative", "random")
    # Its design stays as drawn: correcting it in place neither unblinds it nor changes its probability.
    assert (body["inclusion_probability"], body["blind"]) == (0.25, True)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"selection": "random", "inclusion_probability": 0}, "inclusion_probability"),
        ({"selection": "random", "inclusion_probability": 1.5}, "inclusion_probability"),
        ({"selection": "random", "inclusion_probability": "half"}, "inclusion_probability"),
        ({"inclusion_probability": 0.5}, "inclusion_probability"),  # an `api` label was not drawn at random
        ({"selection": "random", "blind": "maybe"}, "blind"),
    ],
)
def test_a_bad_design_is_a_400(alice_api: APIClient, done: Evaluation, extra: dict[str, Any], field: str) -> None:
    response = alice_api.post(reviews_url(done), label("sample_1", **extra), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert field in response.json()
    assert not Review.objects.exists()


def test_a_random_api_label_keeps_its_probability(alice_api: APIClient, done: Evaluation) -> None:
    body = label("sample_1", selection="random", inclusion_probability=1, blind=True)
    assert alice_api.post(reviews_url(done), body, format="json").status_code == HTTPStatus.CREATED
    review = Review.objects.get()
    assert (review.selection, review.inclusion_probability, review.blind, review.stratum) == ("random", 1.0, True, "")


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


def _label_all(evaluation: Evaluation, count: int, *, truth: Any = None) -> None:
    """Label `count` samples with their assigned sentiment (or `truth(sample)`) as the random queue stores its labels
    (random, blind, with the sample's stratum): the labels the estimates use."""
    from evaluations.reviewing import ReviewInput, review_save

    rows = SampleClassification.objects.filter(evaluation=evaluation).select_related("sample")[:count]
    items = [
        ReviewInput(
            r.sample.identifier,
            "sentiment",
            truth(r.sample) if truth else r.sample.properties["sentiment"],
            stratum=r.stratum("sentiment"),
            blind=True,
        )
        for r in rows
    ]
    assert len(review_save(evaluation=evaluation, reviewer=evaluation.created_by, items=items)) == count


def test_statistics_say_too_few_labels_below_the_minimum(alice_api: APIClient, done: Evaluation) -> None:
    _label_all(done, 3)
    body = alice_api.get(f"{EVALUATIONS}{done.code}/statistics/").json()
    sentiment, priority = body["statistics"]["properties"]
    block = sentiment["human_review"]
    assert block["reviewed"] == 3
    assert block["message"].startswith(f"3 blind random labels of the {agreement.PARTIAL_REVIEWS}")
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
    _label_all(evaluation, agreement.MIN_REVIEWS)
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
    _label_all(done, 4)
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
    from evaluations.reviewing import ReviewInput, review_save
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    erin = MembershipFactory(user=UserFactory(username="erin@alpha.test"), company=company_a).user
    for reviewer, value in ((alice, "neutral"), (dave, "negative"), (erin, "negative")):
        drawn = ReviewInput("sample_1", "sentiment", value, "random", stratum="positive", blind=True)
        review_save(evaluation=done, reviewer=reviewer, items=[drawn])
    review_save(evaluation=done, reviewer=alice, items=[ReviewInput("sample_3", "sentiment", "neutral", "random")])
    review_save(evaluation=done, reviewer=alice, items=[ReviewInput("sample_2", "sentiment", "neutral", "manual")])
    labels = run_labels(run_id=done.run_id)["sentiment"]
    by_identifier = {Review.objects.filter(sample_id=k).first().sample.identifier: v for k, v in labels.items()}
    assert (by_identifier["sample_1"].value, by_identifier["sample_1"].reviewers) == ("negative", 3)
    assert by_identifier["sample_1"].random
    assert [(d.design, d.stratum, d.value) for d in by_identifier["sample_1"].draws] == [
        (f"queue:{done.id}", "positive", "negative")
    ]
    assert not by_identifier["sample_2"].random
    assert not by_identifier["sample_3"].random  # random but not blind: never estimated on


# --- The queue ---


def label_from_queue(client: Client, evaluation: Evaluation, reviewer: Any, count: int, **queue: str) -> list[Any]:
    """`count` labels through the random queue's page as `reviewer` (HTMX), each the sample's assigned value; the
    samples labelled, in order."""
    client.force_login(reviewer)
    labelled = []
    for _ in range(count):
        sample = client.get(queue_url(evaluation, **queue)).context["sample"]
        assert sample is not None, "the queue ran out"
        body = {"sample": str(sample.code), "property": "sentiment", "value": sample.properties["sentiment"], **queue}
        response = client.post(f"/evaluations/{evaluation.code}/review/label/", body, headers=HX)
        assert response.status_code == HTTPStatus.OK
        labelled.append(sample)
    return labelled


def test_the_random_queue_draws_every_stratum_equally(client: Client, alice: Any, strata_run: Evaluation) -> None:
    first = review_queue(evaluation=strata_run, prop="sentiment", mode=QueueMode.RANDOM, reviewer_id=alice.id)
    again = review_queue(evaluation=strata_run, prop="sentiment", mode=QueueMode.RANDOM, reviewer_id=alice.id)
    assert first.sample == again.sample  # deterministic
    assert first.total == agreement.MIN_REVIEWS
    samples = label_from_queue(client, strata_run, alice, 15)
    # Equal allocation over the five strata, undecided and failed (with and without a row) included.
    drawn = Counter(stratum_of(s.position) for s in samples)
    assert drawn == dict.fromkeys(STRATA, 3)
    # The queue's strata in SQL follow SampleClassification.stratum, a sample with no row counting as failed.
    strata = dict(samples_with_stratum(strata_run, "sentiment").values_list("position", "_stratum"))
    assert strata == {position: stratum_of(position) for position in range(1, 61)}
    state = review_queue(evaluation=strata_run, prop="sentiment", mode=QueueMode.RANDOM, reviewer_id=alice.id)
    assert state.reviewed == 15
    # Random within each stratum: not in sample order.
    positions = [s.position for s in samples]
    assert positions != sorted(positions)


def test_queue_labels_carry_their_design(client: Client, alice: Any, strata_run: Evaluation, run_a: Run) -> None:
    samples = label_from_queue(client, strata_run, alice, 10)
    reviews = {r.sample_id: r for r in Review.objects.all()}
    assert len(reviews) == 10
    for sample in samples:
        review = reviews[sample.id]
        assert (review.selection, review.blind, review.evaluation_id) == ("random", True, strata_run.id)
        assert review.stratum == stratum_of(sample.position)
    # Relabelled elsewhere (corrected in place from another evaluation's page), the design stays.
    other = Evaluation.objects.create(
        company=strata_run.company, run=strata_run.run, requested_model="local/embeddings", status="SUCCEEDED"
    )
    sample = samples[0]
    url = f"/evaluations/{other.code}/samples/{sample.code}/correct/"
    assert client.post(url, {"property": "sentiment", "value": "neutral"}).status_code == HTTPStatus.FOUND
    review = Review.objects.get(sample=sample)
    assert review.value == "neutral"
    assert (review.selection, review.blind, review.evaluation_id) == ("random", True, strata_run.id)
    assert review.stratum == stratum_of(sample.position)
    # Labels made elsewhere are neither random nor blind.
    client.post(
        f"/evaluations/{strata_run.code}/samples/{samples[-1].code}/correct/", {"property": "priority", "value": "low"}
    )
    manual = Review.objects.get(sample=samples[-1], property_name="priority")
    assert (manual.selection, manual.blind, manual.stratum) == ("manual", False, "")
    disagreement = label_from_queue(client, strata_run, alice, 1, mode="disagreement")[0]
    found = Review.objects.get(sample=disagreement, selection="disagreement")
    assert (found.blind, found.stratum) == (False, "")


def test_a_second_reviewer_gets_unlabelled_samples_first(
    client: Client, alice: Any, company_a: Any, strata_run: Evaluation, settings: Any
) -> None:
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    settings.REVIEW_OVERLAP_PERCENT = 0
    alices = {s.id for s in label_from_queue(client, strata_run, alice, 10)}
    daves = {s.id for s in label_from_queue(client, strata_run, dave, 10)}
    assert not alices & daves  # new ground only
    # The team's draw stays stratified: 20 labels over five strata, four each.
    assert Counter(Review.objects.values_list("stratum", flat=True)) == dict.fromkeys(STRATA, 4)
    state = review_queue(evaluation=strata_run, prop="sentiment", mode=QueueMode.RANDOM, reviewer_id=alice.id)
    assert state.reviewed == 20


@pytest.mark.parametrize(("percent", "overlapping"), [(100, 8), (50, 4), (25, 2)])
def test_the_overlap_setting_is_honoured(
    client: Client, alice: Any, company_a: Any, strata_run: Evaluation, settings: Any, percent: int, overlapping: int
) -> None:
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    settings.REVIEW_OVERLAP_PERCENT = percent
    alices = {s.id for s in label_from_queue(client, strata_run, alice, 10)}
    daves = [s.id for s in label_from_queue(client, strata_run, dave, 8)]
    assert len(alices & set(daves)) == overlapping
    if percent < 100:
        # The overlap is spread over the labels, not bunched at the start.
        assert daves[0] not in alices


def test_reviewers_agreement_is_shown_on_the_evaluation_page(
    client: Client, alice: Any, company_a: Any, strata_run: Evaluation, settings: Any
) -> None:
    from evaluations.interrater import krippendorff_alpha_nominal
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    settings.REVIEW_OVERLAP_PERCENT = 100
    signed_in(client, alice)
    assert 'id="reviewer-agreement"' not in client.get(f"/evaluations/{strata_run.code}/").content.decode()
    label_from_queue(client, strata_run, alice, 12)
    daves = label_from_queue(client, strata_run, dave, 12)
    # Both give the three values in turn (the queue draws at random, and twelve samples of mostly one value leave
    # alpha no expected disagreement to stand on: it was once -0.045 on CI's second leg), then dave disagrees with
    # alice on two samples.
    values = ["positive", "negative", "neutral"]
    for i, sample in enumerate(daves):
        Review.objects.filter(sample=sample, property_name="sentiment").update(value=values[i % 3])
    for i, sample in enumerate(daves[:2]):
        Review.objects.filter(reviewer=dave, sample=sample).update(value=values[(i + 1) % 3])
    units = [list(Review.objects.filter(sample=s).values_list("value", flat=True)) for s in daves]
    expected = krippendorff_alpha_nominal(units)
    assert expected is not None
    assert 0 < expected < 1
    signed_in(client, alice)
    response = client.get(f"/evaluations/{strata_run.code}/")
    [(name, found)] = response.context["reviewer_agreements"]
    assert (name, found.samples, found.reviewers) == ("sentiment", 12, 2)
    assert found.alpha == pytest.approx(expected)
    assert found.low < found.alpha < found.high
    page = response.content.decode()
    section = page[page.index('id="reviewer-agreement"') :]
    assert f'<td class="alpha">{expected:.2f} <span class="muted">[{found.low:.2f}, {found.high:.2f}]' in section
    # Labels given with the judged value in view (in place, the disagreement queue) never count.
    Review.objects.filter(reviewer=dave).update(blind=False)
    assert client.get(f"/evaluations/{strata_run.code}/").context["reviewer_agreements"] == []


def test_the_disagreement_queue_shows_only_judged_not_assigned(alice_api: APIClient, done: Evaluation) -> None:
    SampleClassification.objects.filter(evaluation=done, sample__identifier="sample_4").update(
        classifications={"sentiment": "positive", "priority": "high"}
    )
    SampleClassification.objects.filter(evaluation=done).exclude(sample__identifier="sample_4").update(
        classifications=None, status="failed"
    )
    state = review_queue(evaluation=done, prop="sentiment", mode=QueueMode.DISAGREEMENT, reviewer_id=done.created_by_id)
    assert state.sample is not None
    assert state.sample.identifier == "sample_4"
    assert (state.reviewed, state.total) == (0, 1)
    alice_api.post(reviews_url(done), label("sample_4", "negative", selection="disagreement"), format="json")
    state = review_queue(evaluation=done, prop="sentiment", mode=QueueMode.DISAGREEMENT, reviewer_id=done.created_by_id)
    assert state.sample is None
    assert (state.reviewed, state.total) == (1, 1)


# --- Pages ---


def shown(response: Any) -> str | None:
    """The identifier of the sample on the card (HTMX partials carry no test context)."""
    return shown_in(response.content.decode())


def shown_in(page: str) -> str | None:
    found = re.search(r'id="review-sample">([^<\s]+)', page)
    return found.group(1) if found else None


def queue_url(evaluation: Evaluation, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/evaluations/{evaluation.code}/review/" + (f"?{query}" if query else "")


ALL_VALUES = ["positive", "negative", "neutral", "high", "medium", "low", "(undecided)", "(failed)"]


def without_answer_buttons(card: str) -> str:
    """The card's HTML less the label buttons (which name every value of the property), the reveal of the previous
    answer and the "Undone: <your label>" line: what is left must say nothing of the judged or assigned values."""
    card = re.sub(r'<form class="review-values".*?</form>', "", card, flags=re.S)
    card = re.sub(r'<p id="review-reveal".*?</p>', "", card, flags=re.S)
    return re.sub(r'<p class="muted" id="review-undone">.*?</p>', "", card, flags=re.S)


def assert_blind(card: str) -> None:
    rest = without_answer_buttons(card)
    assert 'id="review-sample"' in rest
    assert 'class="judged"' not in rest
    assert "Judged" not in rest
    assert "Assigned" not in rest
    for value in ALL_VALUES:
        # As a word: "low" is in the page's "Workflows" link.
        assert not re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", rest), value


def test_the_random_card_is_blind_until_the_answer(client: Client, alice: Any, strata_run: Evaluation) -> None:
    signed_in(client, alice)
    response = client.get(queue_url(strata_run), headers=HX)
    first = shown(response)
    assert_blind(response.content.decode())
    assert 'id="review-reveal"' not in response.content.decode()
    # The answer: the next card first says what the judge said of the sample just labelled, and is blind itself.
    sample = strata_run.run.samples.get(identifier=first)
    body = {"sample": str(sample.code), "property": "sentiment", "value": "neutral", "mode": "random"}
    answer = client.post(f"/evaluations/{strata_run.code}/review/label/", body, headers=HX).content.decode()
    reveal = re.search(r'<p id="review-reveal".*?</p>', answer, flags=re.S)
    assert reveal is not None
    judged = stratum_of(sample.position)
    assert f'{first}: you said <strong>neutral</strong> · judged <strong class="judged">{judged}</strong>' in reveal[0]
    assert f"assigned {sample.properties['sentiment']}" in reveal[0]
    assert ("the judge agreed" if judged == "neutral" else "the judge did not agree") in reveal[0]
    assert_blind(answer)
    # The plain form post says it on the page it is redirected to.
    second = strata_run.run.samples.get(identifier=shown_in(answer))
    body = {"sample": str(second.code), "property": "sentiment", "value": "positive", "mode": "random"}
    plain = client.post(f"/evaluations/{strata_run.code}/review/label/", body)
    assert plain.status_code == HTTPStatus.FOUND
    assert f"answered={second.code}" in plain["Location"]
    followed = client.get(plain["Location"]).content.decode()
    assert f"{second.identifier}: you said <strong>positive</strong>" in followed
    # Back to a labelled sample: answered, so not blind.
    back = client.get(queue_url(strata_run, back="1"), headers=HX).content.decode()
    assert f'Judged sentiment: <strong class="judged">{stratum_of(second.position)}</strong>' in back
    # Undone, the sample is blind again.
    undone = client.post(f"/evaluations/{strata_run.code}/review/undo/", {"property": "sentiment"}, headers=HX)
    assert shown(undone) == second.identifier
    assert_blind(undone.content.decode())


def test_the_reveal_needs_the_readers_own_answer(client: Client, alice: Any, bob: Any, strata_run: Evaluation) -> None:
    signed_in(client, alice)
    sample = client.get(queue_url(strata_run)).context["sample"]
    # A forged `answered` (a sample alice has not labelled) reveals nothing.
    forged = client.get(queue_url(strata_run, answered=str(sample.code)), headers=HX).content.decode()
    assert 'id="review-reveal"' not in forged
    assert_blind(forged)
    client.post(
        f"/evaluations/{strata_run.code}/review/label/",
        {"sample": str(sample.code), "property": "sentiment", "value": "neutral"},
    )
    assert 'id="review-reveal"' in client.get(queue_url(strata_run, answered=str(sample.code))).content.decode()
    # bob (read only) never answered it: alice's answer does not reveal it to him.
    signed_in(client, bob)
    page = client.get(queue_url(strata_run, answered=str(sample.code)))
    assert page.status_code == HTTPStatus.OK
    assert 'id="review-reveal"' not in page.content.decode()
    assert_blind(page.content.decode())


def test_the_disagreement_queue_is_not_blind(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    response = client.get(queue_url(done, mode="disagreement"))
    sample = response.context["sample"]
    assert sample is not None
    judged = SampleClassification.objects.get(evaluation=done, sample=sample).classifications["sentiment"]
    assert f'Judged sentiment: <strong class="judged">{judged}</strong>' in response.content.decode()
    assert "<th>Assigned</th>" in response.content.decode()


def test_the_queue_shows_one_sample_escaped_with_its_values(
    client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any, django_assert_max_num_queries: Any
) -> None:
    from runs.services import run_import

    rows = make_rows(6)
    for row in rows:
        row["content"] = "<script>alert(1)</script> " + row["content"]
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=rows), "local/embeddings")
    signed_in(client, alice)
    # session, user, evaluation, membership, the queue's counts and next sample, alice's label, header
    with django_assert_max_num_queries(10):
        response = client.get(queue_url(evaluation))
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "0 of 6 reviews for sentiment" in page  # a census of the 6 samples is less than the minimum
    for index, value in enumerate(["positive", "negative", "neutral"], start=1):
        assert f'data-key="{index}"' in page
        assert f'value="{value}"' in page
    assert 'data-key="skip"' in page
    assert 'data-key="undo"' in page
    assert "js/review.js" in page
    assert 'name="csrfmiddlewaretoken"' in page


def test_labelling_with_htmx_swaps_in_the_next_card(
    client: Client, alice: Any, done: Evaluation, django_assert_num_queries: Any
) -> None:
    signed_in(client, alice)
    first = client.get(queue_url(done)).context["sample"]
    # session, user, evaluation, membership, the sample's id and identifier, its classification (the label's
    # stratum); savepoint, the samples, alice's current labels, the insert in its own savepoint (3), release; then
    # the next card: the random set so far, the next sample, alice's label on it, and the reveal of the sample just
    # labelled: the sample, alice's label on it, its classification.
    with django_assert_num_queries(19):
        response = client.post(
            f"/evaluations/{done.code}/review/label/",
            {"sample": str(first.code), "property": "sentiment", "value": "neutral", "mode": "random"},
            headers=HX,
        )
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="review-card"')
    assert "1 of 12 reviews for sentiment" in page
    assert shown(response) not in {None, first.identifier}
    review = Review.objects.get()
    assert (review.sample_id, review.value, review.selection) == (first.id, "neutral", "random")


def test_labelling_without_javascript_redirects_to_the_next_card(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    # Sentiment: the embedded judge declines priority on these texts, so it has no disagreement to show.
    first = client.get(queue_url(done, property="sentiment", mode="disagreement")).context["sample"]
    response = client.post(
        f"/evaluations/{done.code}/review/label/",
        {"sample": str(first.code), "property": "sentiment", "value": "neutral", "mode": "disagreement"},
    )
    assert response.status_code == HTTPStatus.FOUND
    assert "property=sentiment" in response["Location"]
    assert "mode=disagreement" in response["Location"]
    assert Review.objects.get().selection == "disagreement"


def test_undo_withdraws_the_last_label_and_shows_its_sample(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    first = client.get(queue_url(done)).context["sample"]
    client.post(
        f"/evaluations/{done.code}/review/label/",
        {"sample": str(first.code), "property": "sentiment", "value": "neutral"},
        headers=HX,
    )
    response = client.post(f"/evaluations/{done.code}/review/undo/", {"property": "sentiment"}, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert not Review.objects.exists()
    assert shown(response) == first.identifier
    assert "Undone: sentiment = neutral" in response.content.decode()
    plain = client.post(f"/evaluations/{done.code}/review/undo/", {"property": "sentiment"})
    assert plain.status_code == HTTPStatus.FOUND  # nothing left to undo: back to the queue
    assert "undone" not in plain["Location"]
    # A plain form post (no JavaScript, or a click before HTMX took over the new card) says it on the next page.
    client.post(
        f"/evaluations/{done.code}/review/label/",
        {"sample": str(first.code), "property": "sentiment", "value": "negative"},
    )
    plain = client.post(f"/evaluations/{done.code}/review/undo/", {"property": "sentiment"}, follow=True)
    assert not Review.objects.exists()
    assert f"Undone: sentiment = negative on {first.identifier}." in plain.content.decode()
    # The value comes from the URL: one that is not a value of the property shows nothing.
    forged = client.get(queue_url(done, property="sentiment", sample=str(first.code), undone="nope"))
    assert "Undone:" not in forged.content.decode()


def test_back_shows_my_earlier_label_and_skip_passes_over(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    first = client.get(queue_url(done)).context["sample"]
    client.post(
        f"/evaluations/{done.code}/review/label/",
        {"sample": str(first.code), "property": "sentiment", "value": "negative"},
    )
    back = client.get(queue_url(done, back="1"), headers=HX)
    assert shown(back) == first.identifier
    assert 'your label: <strong id="my-label">negative' in back.content.decode()
    assert 'data-key="skip"' in back.content.decode()  # → goes forward again
    current = client.get(queue_url(done)).context["sample"]
    skipped = client.get(queue_url(done, skip=str(current.code)))
    assert skipped.context["sample"].id != current.id


def test_the_queue_ends(client: Client, alice: Any, done: Evaluation) -> None:
    # Failed samples are a stratum too: the queue ends once every sample is labelled, whatever the judge said.
    SampleClassification.objects.filter(evaluation=done, sample__position__gt=6).update(
        status="failed", classifications=None
    )
    label_from_queue(client, done, alice, 12)
    response = client.get(queue_url(done))
    assert response.context["sample"] is None
    assert "Nothing left to label" in response.content.decode()


def test_a_bad_label_from_the_page_is_a_400(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    sample = done.run.samples.first()
    url = f"/evaluations/{done.code}/review/label/"
    assert client.post(url, {"sample": str(sample.code), "property": "sentiment", "value": "x"}).status_code == 400
    assert client.post(url, {"sample": "nope", "property": "sentiment", "value": "x"}).status_code == 400
    other = "00000000-0000-0000-0000-000000000000"
    assert client.post(url, {"sample": other, "property": "sentiment", "value": "neutral"}).status_code == 404
    assert client.get(queue_url(done, property="colour", mode="bogus", back="x", skip="y")).status_code == 200
    assert not Review.objects.exists()


def test_a_reviewer_corrects_a_value_in_place(client: Client, alice: Any, done: Evaluation) -> None:
    signed_in(client, alice)
    page = client.get(f"/evaluations/{done.code}/").content.decode()
    # One button per row (issue #25), not a dropdown per property: it fetches the row's forms.
    assert 'aria-label="Correct the judged values of sample_1"' in page
    assert 'aria-label="Correct sentiment of sample_1"' not in page
    sample = done.run.samples.get(identifier="sample_1")
    url = f"/evaluations/{done.code}/samples/{sample.code}/correct/"
    forms = client.get(url, headers=HX).content.decode()
    assert 'aria-label="Correct sentiment of sample_1"' in forms
    assert 'aria-label="Correct priority of sample_1"' in forms
    # Without htmx the button is a link to the sample page's forms.
    plain = client.get(url)
    assert plain.status_code == HTTPStatus.FOUND
    assert plain["Location"] == f"/evaluations/{done.code}/samples/{sample.code}/#correct"
    response = client.post(url, {"property": "sentiment", "value": "positive"}, headers=HX)
    assert response.status_code == HTTPStatus.OK
    assert "✓ saved" in response.content.decode()
    assert Review.objects.get().selection == "manual"
    assert client.post(url, {"property": "sentiment", "value": "neutral"}).status_code == HTTPStatus.FOUND
    assert Review.objects.get().value == "neutral"
    assert client.post(url, {"property": "sentiment", "value": "nope"}).status_code == HTTPStatus.BAD_REQUEST
    # The sample page lists it.
    sample_page = client.get(f"/evaluations/{done.code}/samples/{sample.code}/").content.decode()
    assert "Corrected in place" in sample_page


def test_the_evaluation_page_shows_kappa_verdict_and_corrected_bars(
    client: Client, alice_api: APIClient, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    from runs.services import run_import

    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(agreement.MIN_REVIEWS + 6))
    evaluation = evaluate(run, "local/embeddings")
    signed_in(client, alice)
    assert "No human labels yet" not in client.get(f"/evaluations/{evaluation.code}/").content.decode()
    _label_all(evaluation, agreement.MIN_REVIEWS)
    response = client.get(f"/evaluations/{evaluation.code}/")
    page = response.content.decode()
    view = response.context["views"][0]
    assert [trace["name"] for trace in view["chart"]["data"]] == ["Requested", "Expected", "Evaluated", "Corrected"]
    assert "error_y" in view["chart"]["data"][3]
    # A defined kappa, rendered with its interval (issue #27: the old check passed on "undefined" too, and the
    # template writes class="kappa" in both branches).
    kappa = view["human"]["kappa"]
    assert kappa is not None
    low, high = view["human"]["kappa_ci"]
    assert f'<td class="kappa">{kappa:.2f} <span class="muted">[{low:.2f}, {high:.2f}]</span>' in page
    assert (
        "undefined"
        not in page[page.index('id="human-review"') : page.index("</section>", page.index('id="human-review"'))]
    )
    assert "fit for use" in page
    assert "lower end of kappa" in page


def test_exports_carry_the_human_labels(client: Client, alice: Any, alice_api: APIClient, done: Evaluation) -> None:
    import csv
    import io

    alice_api.post(
        reviews_url(done), [label("sample_1", "neutral"), label("sample_2", "low", "priority")], format="json"
    )
    signed_in(client, alice)
    text = b"".join(client.get(f"/evaluations/{done.code}/export.csv").streaming_content).decode()
    rows = {row["sample_identifier"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["sample_1"]["human_sentiment"] == "neutral"
    assert rows["sample_2"]["human_priority"] == "low"
    assert rows["sample_3"]["human_sentiment"] == ""
    lines = b"".join(client.get(f"/evaluations/{done.code}/export.jsonl").streaming_content).decode().splitlines()
    records = {r["sample_identifier"]: r for r in map(json.loads, lines)}
    assert records["sample_1"]["human"] == {"sentiment": "neutral"}
    assert records["sample_3"]["human"] == {}


def test_the_compare_page_shows_kappa_and_corrected(
    client: Client, alice_api: APIClient, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    from runs.services import run_import

    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(agreement.MIN_REVIEWS + 3))
    first, second = evaluate(run, "local/embeddings"), evaluate(run, "local/embeddings")
    _label_all(first, agreement.MIN_REVIEWS, truth=lambda s: ["positive", "negative"][s.position % 2])
    signed_in(client, alice)
    response = client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")
    chart = response.context["comparison"]["charts"][0]["chart"]
    assert [t["name"] for t in chart["data"] if "corrected" in t["name"]] == ["A corrected", "B corrected"]
    sentiment = next(p for p in response.context["comparison"]["properties"] if p["name"] == "sentiment")
    assert all(cell["kappa"] is not None for cell in sentiment["cells"])  # both judges, against the same labels
    assert "Kappa (humans)" in response.content.decode()


def test_pages_check_ownership(client: Client, charlie: Any, done: Evaluation) -> None:
    signed_in(client, charlie)
    sample = done.run.samples.first()
    assert client.get(queue_url(done)).status_code == HTTPStatus.NOT_FOUND
    body = {"sample": str(sample.code), "property": "sentiment", "value": "neutral"}
    assert client.post(f"/evaluations/{done.code}/review/label/", body).status_code == HTTPStatus.NOT_FOUND
    assert client.post(f"/evaluations/{done.code}/review/undo/", body).status_code == HTTPStatus.NOT_FOUND
    correct = f"/evaluations/{done.code}/samples/{sample.code}/correct/"
    assert client.post(correct, body).status_code == HTTPStatus.NOT_FOUND
    assert not Review.objects.exists()


def test_pages_require_rw_access(client: Client, bob: Any, alice: Any, done: Evaluation) -> None:
    from evaluations.reviewing import ReviewInput, review_save

    review_save(evaluation=done, reviewer=alice, items=[ReviewInput("sample_1", "sentiment", "neutral")])
    signed_in(client, bob)
    sample = done.run.samples.first()
    page = client.get(queue_url(done))
    assert page.status_code == HTTPStatus.OK  # bob reads the queue
    assert 'data-key="1"' not in page.content.decode()
    assert "Correct sentiment" not in client.get(f"/evaluations/{done.code}/").content.decode()
    body = {"sample": str(sample.code), "property": "sentiment", "value": "neutral"}
    assert client.post(f"/evaluations/{done.code}/review/label/", body).status_code == HTTPStatus.FORBIDDEN
    assert client.post(f"/evaluations/{done.code}/review/undo/", body).status_code == HTTPStatus.FORBIDDEN
    correct = f"/evaluations/{done.code}/samples/{sample.code}/correct/"
    assert client.post(correct, body).status_code == HTTPStatus.FORBIDDEN
    assert Review.objects.count() == 1


def test_an_unfinished_evaluation_has_no_queue(client: Client, alice: Any, run_a: Run, company_a: Any) -> None:
    pending = Evaluation.objects.create(company=company_a, run=run_a, requested_model="local/embeddings")
    signed_in(client, alice)
    assert client.get(queue_url(pending)).status_code == HTTPStatus.NOT_FOUND


def test_back_and_undo_stay_in_their_queue(client: Client, alice: Any, done: Evaluation) -> None:
    from evaluations.reviewing import ReviewInput, review_save

    review_save(
        evaluation=done, reviewer=alice, items=[ReviewInput("sample_1", "sentiment", "neutral", "disagreement")]
    )
    signed_in(client, alice)
    # The random queue's back and undo never reach a disagreement label (relabelled there, it would pass as random).
    assert 'id="review-sample"' in client.get(queue_url(done)).content.decode()
    assert client.get(queue_url(done, back="1")).context["back"] == 0
    client.post(f"/evaluations/{done.code}/review/undo/", {"property": "sentiment", "mode": "random"})
    assert Review.objects.filter(selection="disagreement").exists()
    client.post(f"/evaluations/{done.code}/review/undo/", {"property": "sentiment", "mode": "disagreement"})
    assert not Review.objects.exists()


def test_a_concurrent_first_label_is_updated_not_a_500(
    alice_api: APIClient, done: Evaluation, alice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluations import reviewing

    # Another request by the same reviewer created the label after this one read the current labels.
    sample = done.run.samples.get(identifier="sample_1")
    Review.objects.create(
        company=done.company, sample=sample, property_name="sentiment", value="negative", reviewer=alice
    )
    monkeypatch.setattr(reviewing, "_current_labels", lambda **kwargs: {})
    response = alice_api.post(reviews_url(done), label("sample_1", "neutral"), format="json")
    assert response.status_code == HTTPStatus.CREATED
    assert Review.objects.get().value == "neutral"


def test_the_statistics_block_costs_a_few_queries_and_one_per_labelled_property(
    alice_api: APIClient, done: Evaluation, django_assert_num_queries: Any
) -> None:
    _label_all(done, 12)
    url = f"{EVALUATIONS}{done.code}/statistics/"
    alice_api.get(url)  # the API key's last-use stamp is written once a minute at most
    # api key (+company, user), the key's membership (the active one), the evaluation, then the block: the run's
    # reviews, its sample count, the classifications of the reviewed samples only, and one aggregate of the strata
    # per property with labels (sentiment; priority has none)
    with django_assert_num_queries(7):
        assert alice_api.get(url).status_code == HTTPStatus.OK
