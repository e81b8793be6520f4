"""evaluations/human_review.py against the database: which labels feed the estimates (blind random ones of one
design), undecided and failed samples as strata, a census exact through every layer, a second judge corrected with
labels drawn for the first, and the evaluation page's partial estimate from 10 labels (issue #20)."""

from __future__ import annotations

from collections import Counter
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from evaluations import agreement
from evaluations.human_review import human_review_blocks
from evaluations.models import Evaluation, Review, SampleClassification
from evaluations.reviewing import ReviewInput, review_save
from runs.models import Run

EVALUATIONS = "/api/dataframer/evaluations/"


@pytest.fixture
def run_40(alice: Any, company_a: Any, spec_a: Any) -> Run:
    from runs.services import run_import
    from tests.conftest import make_rows

    return run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(40))


def _queue_labels(evaluation: Evaluation, reviewer: Any, rows: list[SampleClassification], truth: Any) -> None:
    """Label `rows` as `evaluation`'s review queue does: random, blind, within the row's stratum."""
    items = [
        ReviewInput(
            row.sample.identifier, "sentiment", truth(row), "random", stratum=row.stratum("sentiment"), blind=True
        )
        for row in rows
    ]
    review_save(evaluation=evaluation, reviewer=reviewer, items=items)


def _rows(evaluation: Evaluation) -> list[SampleClassification]:
    return list(evaluation.classifications.select_related("sample").order_by("sample__position"))


def _abstain_and_fail(evaluation: Evaluation) -> None:
    """Make the judge abstain on samples 1-8 and fail on 9-10 (and have no row at all for sample 11)."""
    rows = _rows(evaluation)
    for row in rows[:8]:
        row.classifications = {"priority": row.classifications.get("priority", "low")}
        row.save()
    for row in rows[8:10]:
        row.status, row.classifications = SampleClassification.Status.FAILED, None
        row.save()
    rows[10].delete()


def truth_of(row: SampleClassification) -> str:
    # Not the assigned value: position-based, so the judge is wrong on a good part of the run.
    return ["positive", "negative", "neutral", "negative"][row.sample.position % 4]


def test_a_census_through_the_database_gives_the_human_labels_exactly(run_40: Run, evaluate: Any, alice: Any) -> None:
    evaluation = evaluate(run_40, "local/embeddings")
    _abstain_and_fail(evaluation)
    rows = _rows(evaluation)
    # 12 drawn by the queue, the other 27 corrected by hand, and sample 11 (no row: failed) through the API.
    _queue_labels(evaluation, alice, rows[:12], truth_of)
    manual = [ReviewInput(r.sample.identifier, "sentiment", truth_of(r), "manual") for r in rows[12:]]
    review_save(evaluation=evaluation, reviewer=alice, items=manual)
    missing = run_40.samples.exclude(classifications__evaluation=evaluation).get()
    review_save(
        evaluation=evaluation,
        reviewer=alice,
        items=[
            ReviewInput(
                missing.identifier,
                "sentiment",
                ["positive", "negative", "neutral", "negative"][missing.position % 4],
                "api",
            )
        ],
    )
    block = human_review_blocks(evaluation=evaluation)["sentiment"]
    shares = Counter(["positive", "negative", "neutral", "negative"][p % 4] for p in range(1, 41))
    assert block["census"] is True
    assert (block["reviewed"], block["blind_random"]) == (40, 12)
    assert block["corrected_distributions"] == {v: 100 * shares[v] / 40 for v in ("positive", "negative", "neutral")}
    assert all(low == high for low, high in block["corrected_ci"].values())


def test_hand_picked_and_api_labels_never_feed_the_estimates(
    run_40: Run, evaluate: Any, alice: Any, alice_api: APIClient
) -> None:
    evaluation = evaluate(run_40, "local/embeddings")
    body = [
        {"sample_identifier": f"sample_{i}", "property_name": "sentiment", "value": "neutral"} for i in range(1, 21)
    ]
    assert alice_api.post(f"{EVALUATIONS}{evaluation.code}/reviews/", body, format="json").status_code == 201
    block = alice_api.get(f"{EVALUATIONS}{evaluation.code}/statistics/").json()["statistics"]["properties"][0]
    block = block["human_review"]
    assert (block["reviewed"], block["blind_random"], block["extra_reviewed"]) == (20, 0, 20)
    assert block["corrected_distributions"] is None
    assert block["message"].startswith("0 blind random labels")
    # Not blind: the reviewer saw the judged value. Random, but still never estimated on.
    rows = _rows(evaluation)[20:32]
    items = [ReviewInput(r.sample.identifier, "sentiment", "neutral", "random", stratum="x") for r in rows]
    review_save(evaluation=evaluation, reviewer=alice, items=items)
    assert human_review_blocks(evaluation=evaluation)["sentiment"]["blind_random"] == 0


def test_undecided_and_failed_samples_are_strata_whose_labels_count(run_40: Run, evaluate: Any, alice: Any) -> None:
    evaluation = evaluate(run_40, "local/embeddings")
    _abstain_and_fail(evaluation)
    rows = _rows(evaluation)
    # Every undecided and failed sample, and two of each judged value: 10 + 6 blind random labels.
    judged = [
        r for r in rows if r.stratum("sentiment") not in (SampleClassification.UNDECIDED, SampleClassification.FAILED)
    ]
    picked = rows[:10]
    by_value: dict[str, list[SampleClassification]] = {}
    for r in judged:
        by_value.setdefault(r.stratum("sentiment"), []).append(r)
    picked += [r for group in by_value.values() for r in group[:2]]
    _queue_labels(evaluation, alice, picked, truth_of)
    block = human_review_blocks(evaluation=evaluation)["sentiment"]
    assert block["reviewed"] == block["blind_random"] == len(picked)
    assert block["paired"] == len(picked) - 10
    assert block["partial"] is True
    # The strata's own shares: the undecided and failed samples' labels are in the estimate.
    sizes = Counter(r.stratum("sentiment") for r in rows) + Counter({SampleClassification.FAILED: 1})
    expected: Counter[str] = Counter()
    for stratum, members in [(s, [r for r in picked if r.stratum("sentiment") == s]) for s in sizes]:
        for r in members:
            expected[truth_of(r)] += round(1_000_000 * sizes[stratum] / len(members) / 40)
    # Sample 11 has no row: it is failed, and the failed stratum's 2 labelled rows stand for 3 samples.
    for value in ("positive", "negative", "neutral"):
        assert block["corrected_distributions"][value] == pytest.approx(expected[value] / 10_000, abs=0.011)


def test_a_second_judge_is_corrected_with_labels_drawn_for_the_first(run_40: Run, evaluate: Any, alice: Any) -> None:
    first, second = evaluate(run_40, "local/embeddings"), evaluate(run_40, "local/embeddings")
    _abstain_and_fail(second)  # B's strata differ from A's
    _queue_labels(first, alice, _rows(first)[::3], truth_of)  # 14 labels drawn by A's queue
    block_b = human_review_blocks(evaluation=second)["sentiment"]
    block_a = human_review_blocks(evaluation=first)["sentiment"]
    assert block_b["design"] == "another evaluation's queue"
    assert block_a["design"] == "the review queue of this evaluation"
    assert block_b["blind_random"] == block_a["blind_random"] == 14
    # B decided fewer of the labelled samples: the abstained and failed ones are in its estimate, not its kappa.
    assert block_b["paired"] < block_a["paired"]
    assert block_b["corrected_distributions"] is not None


def test_the_design_with_most_labels_feeds_the_estimates(
    run_40: Run, evaluate: Any, alice: Any, company_a: Any
) -> None:
    from tests.factories import MembershipFactory, UserFactory

    dave = MembershipFactory(user=UserFactory(username="dave@alpha.test"), company=company_a).user
    first, second = evaluate(run_40, "local/embeddings"), evaluate(run_40, "local/embeddings")
    _queue_labels(first, alice, _rows(first)[:12], truth_of)
    _queue_labels(second, dave, _rows(second)[20:30], truth_of)
    for evaluation in (first, second):
        block = human_review_blocks(evaluation=evaluation)["sentiment"]
        assert block["blind_random"] == 12  # A's 12, not B's 10, for both judges
        assert block["reviewed"] == 22


def test_the_page_shows_a_partial_estimate_from_ten_labels(
    client: Client, run_40: Run, evaluate: Any, alice: Any
) -> None:
    evaluation = evaluate(run_40, "local/embeddings")
    rows = _rows(evaluation)
    client.force_login(alice)
    _queue_labels(evaluation, alice, rows[: agreement.PARTIAL_REVIEWS - 1], truth_of)
    page = client.get(f"/evaluations/{evaluation.code}/").content.decode()
    assert "9 blind random labels of the 10 needed" in page
    assert "Partial estimate" not in page
    _queue_labels(evaluation, alice, rows[agreement.PARTIAL_REVIEWS - 1 : agreement.PARTIAL_REVIEWS], truth_of)
    response = client.get(f"/evaluations/{evaluation.code}/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "Partial estimate" in page
    block = response.context["views"][0]["human"]
    assert f"about {block['labels_to_halve']} more blind random labels would halve" in page
    assert block["fit_for_use"] is None
    assert [t["name"] for t in response.context["views"][0]["chart"]["data"]][-1] == "Corrected"


def test_the_schema_documents_a_labels_design(client: Client, db: None) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    request = schema["components"]["schemas"]["ReviewCreate"]["properties"]
    assert request["selection"]["default"] == "api"
    probability = request["inclusion_probability"]
    assert (probability["minimum"], probability["maximum"], probability.get("nullable")) == (0, 1, True)
    assert "(0, 1]" in probability["description"]
    assert "blind" in request


def test_labels_that_taught_the_judge_never_measure_it(run_40: Run, evaluate: Any, alice: Any) -> None:
    # Cross-fitting (evaluations.teaching): the reviews listed in the evaluation's plan as having taught the
    # embedded judge stay the truth for their samples but are not random draws for *that* evaluation's error.
    evaluation = evaluate(run_40, "local/embeddings")
    rows = _rows(evaluation)
    _queue_labels(evaluation, alice, rows[:14], truth_of)
    assert human_review_blocks(evaluation=evaluation)["sentiment"]["blind_random"] == 14
    taught = sorted(Review.objects.filter(sample__in=[r.sample for r in rows[:4]]).values_list("id", flat=True))
    evaluation.judge_plan = {**(evaluation.judge_plan or {}), "taught_review_ids": taught}
    evaluation.save(update_fields=["judge_plan"])
    block = human_review_blocks(evaluation=evaluation)["sentiment"]
    assert (block["reviewed"], block["blind_random"]) == (14, 10)
