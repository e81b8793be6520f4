"""Samples the judge left undecided or failed on are visible everywhere (issue #20 item 6): the confusion matrix,
the sample table's judged filter, the exports and the compare page's changed samples."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import quote

from django.test import Client

from evaluations.models import Evaluation, SampleClassification
from evaluations.sample_table import classification_count, classification_rows
from tests.evaluations.strata import STRATA

UNDECIDED, FAILED = SampleClassification.UNDECIDED, SampleClassification.FAILED


def identifiers(positions: range) -> set[str]:
    return {f"sample_{i}" for i in positions}


def test_the_confusion_matrix_has_undecided_and_failed_columns(
    client: Client, alice: Any, strata_run: Evaluation
) -> None:
    client.force_login(alice)
    view = client.get(f"/evaluations/{strata_run.code}/").context["views"][0]
    heatmap = view["heatmap"]["data"][0]
    assert heatmap["x"] == ["positive", "negative", "neutral", UNDECIDED, FAILED]
    assert heatmap["y"] == ["positive", "negative", "neutral"]
    by_column = dict(zip(heatmap["x"], zip(*heatmap["z"], strict=True), strict=True))
    # Rows are the assigned values (position % 3: 1 negative, 2 neutral, 0 positive).
    undecided = [
        sum(1 for i in STRATA[UNDECIDED] if ["positive", "negative", "neutral"][i % 3] == v) for v in heatmap["y"]
    ]
    assert list(by_column[UNDECIDED]) == undecided
    assert sum(by_column[FAILED]) == 4  # the rows that failed; the 4 samples with no row are not in the statistics


def test_the_judged_filter_offers_and_finds_undecided_and_failed(
    client: Client, alice: Any, strata_run: Evaluation
) -> None:
    client.force_login(alice)
    url = f"/evaluations/{strata_run.code}/?property=sentiment"
    page = client.get(url).content.decode()
    assert f'<option value="{UNDECIDED}"' in page
    assert f'<option value="{FAILED}"' in page
    for judged, positions, count in [(UNDECIDED, STRATA[UNDECIDED], 7), (FAILED, range(53, 57), 4)]:
        response = client.get(f"{url}&judged={quote(judged)}")
        shown = {row.sample.identifier for row in response.context["page"]}
        assert shown == identifiers(positions)
        assert response.context["page"].paginator.count == count
        # The count read off the stored statistics equals the rows the filter gives, for every assigned value.
        for assigned in ["", "positive", "negative", "neutral"]:
            filters = {"prop": "sentiment", "judged": judged, "assigned": assigned}
            stored = classification_count(evaluation=strata_run, **filters)
            assert stored == classification_rows(evaluation=strata_run, **filters).count()


def test_exports_say_undecided_and_failed(client: Client, alice: Any, strata_run: Evaluation) -> None:
    client.force_login(alice)
    text = b"".join(client.get(f"/evaluations/{strata_run.code}/export.csv").streaming_content).decode()
    rows = {row["sample_identifier"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["sample_1"]["judged_sentiment"] == "positive"
    assert rows["sample_46"]["judged_sentiment"] == UNDECIDED
    assert rows["sample_46"]["judged_priority"] == "low"
    assert (rows["sample_53"]["judged_sentiment"], rows["sample_53"]["judged_priority"]) == (FAILED, FAILED)
    lines = b"".join(client.get(f"/evaluations/{strata_run.code}/export.jsonl").streaming_content).decode()
    records = {r["sample_identifier"]: r for r in map(json.loads, lines.splitlines())}
    assert records["sample_46"]["judged"] == {"sentiment": UNDECIDED, "priority": "low"}
    assert records["sample_53"]["judged"] == {"sentiment": FAILED, "priority": FAILED}


def test_the_compare_page_shows_undecided_changes(
    client: Client, alice: Any, strata_run: Evaluation, evaluate: Any
) -> None:
    from evaluations.analysis import analyse

    other = evaluate(strata_run.run)
    # B abstains on sample_1 (A judged it positive) and fails on sample_2 (A judged it positive).
    SampleClassification.objects.filter(evaluation=other, sample__identifier="sample_1").update(
        classifications={"priority": "low"}
    )
    SampleClassification.objects.filter(evaluation=other, sample__identifier="sample_2").update(
        status="failed", classifications=None
    )
    other.distribution_analysis, other.statistics, other.conformance_score = analyse(other)
    other.save()
    client.force_login(alice)
    response = client.get(f"/evaluations/compare/?a={strata_run.code}&b={other.code}")
    changed = {
        (row.identifier, row.property_name): (row.baseline_judged, row.candidate_judged)
        for row in response.context["diff"]["rows"]
    }
    assert changed[("sample_1", "sentiment")] == ("positive", UNDECIDED)
    assert changed[("sample_2", "sentiment")] == ("positive", FAILED)
    assert f"→ {UNDECIDED}</a></td>" in response.content.decode()
