"""The analysis of a classified evaluation: one sample set per property, abstentions, failures, odd names."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from evaluations import analysis
from evaluations.models import Evaluation, SampleClassification
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import make_rows
from tests.llm.fakes import first_values, sample_text

SONNET = "anthropic/claude-sonnet-4-6"
SENTIMENTS = ["positive", "negative", "neutral"]
PRIORITIES = ["high", "medium", "low"]


def classified(run: Run, judge: Any) -> Evaluation:
    """An evaluation of `run` whose classification of each sample is judge(assigned properties).

    judge returns the judged map, or None for a sample the judge failed on.
    """
    evaluation = Evaluation.objects.create(
        company=run.company,
        run=run,
        requested_model=SONNET,
        total_samples=run.samples.count(),
        status=Evaluation.Status.PROCESSING,
    )
    rows = []
    for sample in run.samples.order_by("position"):
        judged = judge(sample.properties)
        rows.append(
            SampleClassification(
                evaluation=evaluation,
                sample=sample,
                status=SampleClassification.Status.OK if judged is not None else SampleClassification.Status.FAILED,
                classifications=judged,
                error="" if judged is not None else "HTTP 400: the sample is too long",
            )
        )
    SampleClassification.objects.bulk_create(rows)
    return Evaluation.objects.select_related("run__spec_version").get(pk=evaluation.pk)


def perfect_but_fails_on_negative(assigned: dict[str, str]) -> dict[str, str] | None:
    return None if assigned["sentiment"] == "negative" else dict(assigned)


def on_the_wire(distribution: dict[str, float]) -> Decimal:
    return sum((Decimal(json.dumps(v)) for v in distribution.values()), Decimal(0))


def test_it_scores_a_perfect_judge_that_failed_on_one_class_100(run_a: Run) -> None:
    evaluation = classified(run_a, perfect_but_fails_on_negative)
    distribution, summary, score = analysis.analyse(evaluation)
    # Before, expected counted the 4 failed negative samples and evaluated did not: 66.7 with 100% agreement.
    assert score == 100
    assert summary["mean_agreement"] == 100
    assert summary["samples_failed"] == 4
    assert summary["samples_mismatched"] == 0
    sentiment = distribution[0]
    assert sentiment["total_samples"] == 12
    assert sentiment["total_samples_analyzed"] == 8
    assert sentiment["expected_distributions"] == {"positive": 50.0, "negative": 0.0, "neutral": 50.0}
    assert sentiment["expected_distributions"] == sentiment["evaluated_distributions"]
    coverage = summary["properties"][0]["coverage"]
    assert coverage == {"analysed": 8, "total": 12, "percent": 66.67, "failed": 4, "undecided": 0, "unusable": 0}
    explained = analysis.template_explanation(summary)["conformance_explanation"]
    assert "sentiment 8/12" in explained


def test_it_gives_no_score_when_every_sample_failed(run_a: Run) -> None:
    evaluation = classified(run_a, lambda assigned: None)
    with pytest.raises(analysis.NothingAnalysed) as raised:
        analysis.analyse(evaluation)
    assert raised.value.samples_failed == raised.value.samples_total == 12
    assert str(raised.value) == (
        "No conformance score: the judge failed on all 12 samples, so none could be analysed "
        "(most common error: HTTP 400: the sample is too long)."
    )


def test_it_gives_no_score_when_the_judge_abstained_on_everything(run_a: Run) -> None:
    evaluation = classified(run_a, lambda assigned: {} if assigned["sentiment"] != "negative" else None)
    with pytest.raises(analysis.NothingAnalysed, match="4 of 12 samples failed; on the other 8 the judge left"):
        analysis.analyse(evaluation)


def test_an_abstention_leaves_the_sample_out_of_that_property_only(run_a: Run) -> None:
    def abstains_on_high_priority(assigned: dict[str, str]) -> dict[str, str]:
        judged = dict(assigned)
        if assigned["priority"] == "high":
            del judged["priority"]
        return judged

    distribution, summary, score = analysis.analyse(classified(run_a, abstains_on_high_priority))
    sentiment, priority = distribution
    assert sentiment["total_samples_analyzed"] == 12
    assert priority["total_samples_analyzed"] == 8
    assert priority["expected_distributions"] == {"high": 0.0, "medium": 50.0, "low": 50.0}
    assert summary["properties"][1]["coverage"]["undecided"] == 4
    assert score == 100


def test_a_property_never_analysed_is_listed_but_not_scored(run_a: Run) -> None:
    def only_sentiment(assigned: dict[str, str]) -> dict[str, str]:
        return {"sentiment": "positive"}

    distribution, summary, score = analysis.analyse(classified(run_a, only_sentiment))
    assert summary["properties_not_analysed"] == ["priority"]
    priority = summary["properties"][1]
    assert (priority["total_variation_distance"], priority["agreement"]) == (None, None)
    assert distribution[1]["evaluated_distributions"] == {"high": 0.0, "medium": 0.0, "low": 0.0}
    # Only sentiment is scored: expected 1/3 each, judged all positive → TVD 66.67.
    assert score == pytest.approx(100 - 200 / 3, abs=0.01)
    texts = analysis.template_explanation(summary)
    assert "Not analysed on any sample, so not scored: priority." in texts["conformance_explanation"]


def test_every_distribution_on_the_wire_sums_to_exactly_100(run_a: Run) -> None:
    def judges_neutral(assigned: dict[str, str]) -> dict[str, str]:
        return {"sentiment": "neutral", "priority": assigned["priority"]}

    distribution, _summary, _score = analysis.analyse(classified(run_a, judges_neutral))
    for item in distribution:
        for key in ("requested", "expected", "evaluated", "observed"):
            assert on_the_wire(item[f"{key}_distributions"]) == 100, (item["property_name"], key)
    # Three equal shares: 33.34 + 33.33 + 33.33 (was 33.33 × 3 = 99.99); the tie goes to the first key by name.
    assert distribution[0]["expected_distributions"] == {"positive": 33.33, "negative": 33.34, "neutral": 33.33}


ODD_NAME = "say 'hi' ünï ✓"  # any Unicode but a double quote or a backslash (tests/runs/test_specfile.py)
ODD_VALUES = ['"yes"', "back\\slash", "ünï ✓"]
ODD_SPEC = f"""\
spec:
  description: "Quotes in names"
  requirements: "Anything."
  data_property_variations:
    - property_name: {json.dumps(ODD_NAME)}
      property_values: {json.dumps(ODD_VALUES)}
    - property_name: sentiment
      property_values: [positive, negative, neutral]
"""


@pytest.fixture
def odd_run(alice: Any, company_a: Any) -> Run:
    spec = spec_create(company=company_a, created_by=alice, name="Odd", content_yaml=ODD_SPEC)
    rows = [
        {
            "identifier": f"odd_{i}",
            "content": f"Sample {i}",
            "properties": {ODD_NAME: ODD_VALUES[i % 3], "sentiment": SENTIMENTS[i % 3]},
        }
        for i in range(9)
    ]
    return run_import(company=company_a, created_by=alice, spec=spec, rows=rows)


def test_property_and_value_names_with_quotes_backslashes_and_unicode_are_counted(odd_run: Run) -> None:
    def wrong_on_backslash(assigned: dict[str, str]) -> dict[str, str]:
        judged = dict(assigned)
        if judged[ODD_NAME] == "back\\slash":
            judged[ODD_NAME] = '"yes"'
        return judged

    distribution, summary, _score = analysis.analyse(classified(odd_run, wrong_on_backslash))
    odd = distribution[0]
    assert odd["property_name"] == ODD_NAME
    assert odd["total_samples_analyzed"] == 9
    assert odd["expected_distributions"] == {'"yes"': 33.34, "back\\slash": 33.33, "ünï ✓": 33.33}
    assert odd["evaluated_distributions"] == {'"yes"': 66.67, "back\\slash": 0.0, "ünï ✓": 33.33}
    assert summary["properties"][0]["confusion_matrix"] == [[3, 0, 0], [3, 0, 0], [0, 0, 3]]
    assert summary["samples_mismatched"] == 3


def test_the_evaluation_page_shows_odd_names_coverage_and_the_chi_square_note(
    odd_run: Run, client: Any, alice: Any
) -> None:
    # The judge abstains on sentiment everywhere: listed as not analysed, not scored.
    evaluation = classified(odd_run, lambda assigned: {ODD_NAME: assigned[ODD_NAME]})
    distribution, summary, score = analysis.analyse(evaluation)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.SUCCEEDED,
        distribution_analysis=distribution,
        statistics=summary | {"explanation_source": "template"},
        conformance_score=score,
        **analysis.template_explanation(summary),
    )
    client.force_login(alice)
    page = client.get(reverse("evaluations:detail", args=[evaluation.code]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "say &#x27;hi&#x27; ünï ✓" in html
    assert "not analysed" in html
    assert "(9 undecided)" in html
    # 9 samples over 3 values: no cell expects 5, so no p-value, and the page says why.
    assert "not tested: fewer than two cells with expected count &gt;= 5 after pooling" in html


@pytest.mark.parametrize("samples", [12, 40])
def test_it_takes_one_query_whatever_the_size(alice: Any, company_a: Any, spec_a: Any, samples: int) -> None:
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(samples))
    evaluation = classified(run, perfect_but_fails_on_negative)
    with CaptureQueriesContext(connection) as queries:
        analysis.analyse(evaluation)
    # The classifications joined to their samples, streamed (the run and spec came with the evaluation).
    assert len(queries) == 1, [q["sql"] for q in queries]


# --- End to end: the judge engine and finalize, as the API drives them ---


def numbered(user: str) -> int:
    match = re.search(r"Customer (\d+):", sample_text(user))
    assert match
    return int(match.group(1))


def test_a_perfect_judge_failing_only_on_negative_samples_scores_100_end_to_end(
    fake_anthropic: Any, run_a: Run, evaluate: Any
) -> None:
    def perfect_unless_negative(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if "<sample>" not in user:
            return first_values(schema, user)  # the explanation call
        i = numbered(user)
        if SENTIMENTS[i % 3] == "negative":
            return {"sentiment": "furious", "priority": "high"}  # off the schema, twice: that sample fails
        return {"sentiment": SENTIMENTS[i % 3], "priority": PRIORITIES[i % 3]}

    fake_anthropic.answer = perfect_unless_negative
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.classifications.filter(status="failed").count() == 4
    assert evaluation.conformance_score == 100
    assert evaluation.statistics["mean_agreement"] == 100
    assert [a["total_samples_analyzed"] for a in evaluation.distribution_analysis] == [8, 8]


def test_an_evaluation_whose_every_sample_failed_ends_failed_end_to_end(
    fake_anthropic: Any, run_a: Run, evaluate: Any
) -> None:
    fake_anthropic.answer = lambda schema, user: {"sentiment": "furious", "priority": "high"}
    evaluation = evaluate(run_a, SONNET)
    assert evaluation.status == "FAILED"
    assert evaluation.conformance_score is None
    assert "the judge failed on all 12 samples" in (evaluation.error_message or "")
