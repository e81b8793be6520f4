"""Compare as a diff (issue #25): the chosen baseline, the per-sample diff as improvements and regressions, its
filters and its CSV, and the deltas formatted one way with a significance mark."""

from __future__ import annotations

import csv
import io
from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.analysis import analyse
from evaluations.models import Evaluation, SampleClassification
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows


def set_sentiment(evaluation: Evaluation, judged: dict[str, str]) -> Evaluation:
    """Judge every sample's sentiment as assigned, except the identifiers in `judged`; store the statistics again."""
    for row in SampleClassification.objects.filter(evaluation=evaluation).select_related("sample"):
        value = judged.get(row.sample.identifier, row.sample.properties["sentiment"])
        row.status, row.classifications = SampleClassification.Status.OK, {"sentiment": value}
        row.save()
    evaluation.distribution_analysis, evaluation.statistics, evaluation.conformance_score = analyse(evaluation)
    evaluation.save()
    return evaluation


def wrong(identifier: str) -> str:
    """A sentiment other than make_rows' assigned one for `identifier` (sample_i is assigned sentiments[i % 3])."""
    i = int(identifier.split("_")[1])
    return ["negative", "neutral", "positive"][i % 3]


def other_wrong(identifier: str) -> str:
    i = int(identifier.split("_")[1])
    return ["neutral", "positive", "negative"][i % 3]


def _pair(run_a: Run, evaluate: Any) -> tuple[Evaluation, Evaluation]:
    # sample_3: the baseline was wrong, the candidate right (improvement); sample_4: the reverse (regression);
    # sample_5: wrong in both, differently (changed).
    baseline = set_sentiment(evaluate(run_a), {"sample_3": wrong("sample_3"), "sample_5": wrong("sample_5")})
    candidate = set_sentiment(evaluate(run_a), {"sample_4": wrong("sample_4"), "sample_5": other_wrong("sample_5")})
    return baseline, candidate


def test_it_lists_improvements_regressions_and_changes(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    baseline, candidate = _pair(run_a, evaluate)
    client.force_login(alice)
    query = {"e": [str(baseline.code), str(candidate.code)]}
    response = client.get("/evaluations/compare/", query)
    assert response.status_code == HTTPStatus.OK
    diff = response.context["diff"]
    assert diff["counts"] == {"regression": 1, "improvement": 1, "changed": 1}
    kinds = {row.identifier: row.kind for row in diff["rows"]}
    assert kinds == {"sample_3": "improvement", "sample_4": "regression", "sample_5": "changed"}
    page = response.content.decode()
    assert '<td class="kind-regression">regression</td>' in page
    # Filtered to the regressions: only sample_4, the counts unchanged.
    response = client.get("/evaluations/compare/", {**query, "kind": "regression"})
    assert [row.identifier for row in response.context["diff"]["rows"]] == ["sample_4"]
    assert response.context["diff"]["counts"]["improvement"] == 1
    # A property the runs do not share, or an unknown kind: 400.
    for bad in ({"kind": "worse"}, {"prop": "colour"}, {"vs": "C"}):
        assert client.get("/evaluations/compare/", {**query, **bad}).status_code == HTTPStatus.BAD_REQUEST


def test_it_exports_the_diff_as_csv(client: Client, alice: Any, charlie: Any, run_a: Run, evaluate: Any) -> None:
    baseline, candidate = _pair(run_a, evaluate)
    client.force_login(alice)
    query = {"e": [str(baseline.code), str(candidate.code)]}
    response = client.get("/evaluations/compare/diff.csv", query)
    assert response.status_code == HTTPStatus.OK
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["sample", "property", "change", "candidate"]
    assert sorted((r[0], r[2], r[3]) for r in rows[1:]) == [
        ("sample_3", "improvement", "B"),
        ("sample_4", "regression", "B"),
        ("sample_5", "changed", "B"),
    ]
    sample_4 = next(r for r in rows if r[0] == "sample_4")
    assert sample_4[4:] == ["negative", "negative", "negative", wrong("sample_4")]  # sample_4 is assigned negative
    filtered = client.get("/evaluations/compare/diff.csv", {**query, "kind": "improvement"})
    assert b"sample_3" in b"".join(filtered.streaming_content)
    assert client.get("/evaluations/compare/diff.csv", {**query, "kind": "nope"}).status_code == 400
    client.force_login(charlie)
    assert client.get("/evaluations/compare/diff.csv", query).status_code == HTTPStatus.NOT_FOUND


def test_it_uses_the_chosen_baseline(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    older, newer = _pair(run_a, evaluate)
    client.force_login(alice)

    def baseline_of(**query: Any) -> Evaluation:
        response = client.get("/evaluations/compare/", query)
        assert response.status_code == HTTPStatus.OK
        return response.context["comparison"]["columns"][0]["evaluation"]  # type: ignore[no-any-return]

    # Ticked newest first (as the list shows them), the baseline is still the oldest unless one is chosen.
    assert baseline_of(e=[str(newer.code), str(older.code)]) == older
    assert baseline_of(e=[str(older.code), str(newer.code)], baseline=str(newer.code)) == newer
    response = client.get(
        "/evaluations/compare/", {"e": [str(older.code), str(newer.code)], "baseline": str(newer.code)}
    )
    # Against the newer baseline, sample_4 is an improvement and sample_3 a regression.
    assert {row.identifier: row.kind for row in response.context["diff"]["rows"]}["sample_4"] == "improvement"
    page = response.content.decode()
    assert f"baseline={older.code}" in page  # "make baseline" for the other one
    outsider = evaluate(run_a)
    query = {"e": [str(older.code), str(newer.code)], "baseline": str(outsider.code)}
    assert client.get("/evaluations/compare/", query).status_code == HTTPStatus.BAD_REQUEST
    query["baseline"] = "not-a-uuid"
    assert client.get("/evaluations/compare/", query).status_code == HTTPStatus.NOT_FOUND


def test_it_colours_deltas_and_marks_significant_ones(
    client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(60))
    baseline = set_sentiment(evaluate(run), {})
    # The candidate's judge gets 30 of 60 wrong: agreement 100% -> 50%, far beyond noise.
    flipped = {f"sample_{i}": wrong(f"sample_{i}") for i in range(1, 31)}
    candidate = set_sentiment(evaluate(run), flipped)
    client.force_login(alice)
    response = client.get("/evaluations/compare/", {"e": [str(baseline.code), str(candidate.code)]})
    page = response.content.decode()
    sentiment = next(r for r in response.context["comparison"]["properties"] if r["name"] == "sentiment")
    change = sentiment["cells"][1]["agreement_change"]
    assert change["delta"] == -50.0
    assert change["significant"]
    assert '<span class="delta bad">−50.00 pp<sup class="significant"' in page
    assert "Newcombe" in page


def test_compare_of_another_spec_still_400s(
    client: Client, alice: Any, company_a: Any, run_a: Run, evaluate: Any
) -> None:
    other_spec = spec_create(company=company_a, created_by=alice, name="Other", content_yaml=SPEC_YAML)
    other = run_import(company=company_a, created_by=alice, spec=other_spec, rows=make_rows(4))
    client.force_login(alice)
    query = {"e": [str(evaluate(run_a).code), str(evaluate(other).code)]}
    assert client.get("/evaluations/compare/diff.csv", query).status_code == HTTPStatus.BAD_REQUEST
