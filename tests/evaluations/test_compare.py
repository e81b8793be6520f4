from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from evaluations.models import Evaluation, SampleClassification
from runs.models import Run
from runs.services import run_import, spec_add_version, spec_create
from tests.conftest import SPEC_YAML, make_rows

# A second version that drops "priority" and adds "channel": only "sentiment" is shared.
SPEC_V2_YAML = """\
spec:
  description: "Customer support conversations"
  requirements: "Each conversation has a greeting, an issue and an agent reply."
  data_property_variations:
    - property_name: sentiment
      property_values: [positive, negative, neutral]
      base_distributions: {positive: 40, negative: 30, neutral: 30}
      property_description: "Overall customer sentiment"
    - property_name: channel
      property_values: [email, chat]
      base_distributions: {email: 50, chat: 50}
"""


def _rows_with_channel(count: int) -> list[dict[str, Any]]:
    rows = make_rows(count)
    for i, row in enumerate(rows):
        row["properties"] = {"sentiment": row["properties"]["sentiment"], "channel": ["email", "chat"][i % 2]}
    return rows


def test_compare_runs_of_one_spec_across_versions(
    client: Client, alice: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    spec_add_version(spec=spec_a, created_by=alice, content_yaml=SPEC_V2_YAML)
    spec_a.refresh_from_db()
    run_b = run_import(company=company_a, created_by=alice, spec=spec_a, rows=_rows_with_channel(12), name="Second")
    first, second = evaluate(run_a), evaluate(run_b)
    assert run_b.spec_version_id != run_a.spec_version_id
    # Make B judge one shared sample differently, so it shows up as changed.
    row = SampleClassification.objects.get(evaluation=second, sample__identifier="sample_1")
    judged = dict(row.classifications or {})
    original = judged["sentiment"]
    row.classifications = {**judged, "sentiment": "neutral" if original != "neutral" else "positive"}
    row.save()
    client.force_login(alice)
    response = client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")
    assert response.status_code == HTTPStatus.OK
    comparison = response.context["comparison"]
    assert [row["name"] for row in comparison["properties"]] == ["sentiment"]
    a, b = comparison["properties"][0]["cells"]
    assert b["tvd_delta"] == round(b["tvd"] - a["tvd"], 2)
    assert a["tvd_delta"] is None
    assert comparison["columns"][1]["score_delta"] == round(second.conformance_score - first.conformance_score, 2)
    assert comparison["samples_compared"] == 12
    [change] = response.context["diff"]["rows"]
    assert (change.identifier, change.property_name, change.letter) == ("sample_1", "sentiment", "B")
    assert change.baseline_judged == original
    page = response.content.decode()
    assert comparison["columns"][0]["label"].startswith(f"A: {run_a} · ")
    assert "B: Second · " in page
    assert f"/evaluations/{second.code}/samples/" in page
    # Both versions ask for the same sentiment shares: one requested series, then each evaluation's evaluated.
    assert [trace["name"] for trace in comparison["charts"][0]["chart"]["data"]] == ["Requested", "A", "B"]
    assert change.candidate_evaluation == second.code


def test_compare_without_shared_identifiers_has_no_sample_table(
    client: Client, alice: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    other = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(6, start=100))
    first, second = evaluate(run_a), evaluate(other)
    client.force_login(alice)
    response = client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")
    assert response.status_code == HTTPStatus.OK
    assert response.context["comparison"]["samples_compared"] == 0
    assert "share no sample identifier" in response.content.decode()


def test_compare_runs_of_different_specs_is_a_400(
    client: Client, alice: Any, company_a: Any, run_a: Run, evaluate: Any
) -> None:
    other_spec = spec_create(company=company_a, created_by=alice, name="Other", content_yaml=SPEC_YAML)
    other = run_import(company=company_a, created_by=alice, spec=other_spec, rows=make_rows(4))
    first, second = evaluate(run_a), evaluate(other)
    client.force_login(alice)
    response = client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "only evaluations of runs of one spec" in response.content.decode()


def test_compare_with_another_companys_evaluation_is_a_404(
    client: Client, alice: Any, charlie: Any, company_b: Any, run_a: Run, evaluate: Any
) -> None:
    theirs_spec = spec_create(company=company_b, created_by=charlie, name="Support", content_yaml=SPEC_YAML)
    their_run = run_import(company=company_b, created_by=charlie, spec=theirs_spec, rows=make_rows(4))
    theirs = Evaluation.objects.create(company=company_b, run=their_run, requested_model="local/embeddings")
    mine = evaluate(run_a)
    client.force_login(alice)
    for query in (f"a={mine.code}&b={theirs.code}", f"a={theirs.code}&b={mine.code}"):
        assert client.get(f"/evaluations/compare/?{query}").status_code == HTTPStatus.NOT_FOUND


def test_list_and_run_pages_offer_a_compare_picker(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    first, second = evaluate(run_a), evaluate(run_a)
    client.force_login(alice)
    for url, form_id in (("/evaluations/", "compare-picker"), (f"/runs/{run_a.code}/", "run-compare-picker")):
        page = client.get(url).content.decode()
        assert f'<form id="{form_id}" class="filters" method="get" action="/evaluations/compare/">' in page, url
        for evaluation in (first, second):
            assert f'type="checkbox" name="e" value="{evaluation.code}" form="{form_id}"' in page, url
    # The evaluation page: itself as the baseline, the others to tick.
    page = client.get(f"/evaluations/{first.code}/").content.decode()
    assert f'<input type="hidden" name="e" value="{first.code}">' in page
    assert f'<input type="checkbox" name="e" value="{second.code}">' in page
    # The picker's GET is the compare URL itself.
    response = client.get("/evaluations/compare/", {"e": [str(first.code), str(second.code)]})
    assert response.status_code == HTTPStatus.OK


def test_compare_three_with_deltas_against_the_first(
    client: Client, alice: Any, bob: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    run_b = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(12), name="Second")
    run_c = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(12), name="Third")
    first, second, third = evaluate(run_a), evaluate(run_b), evaluate(run_c)
    # C judges sample_2's sentiment differently from A; B does not. (Priority is declined by the embedded judge.)
    row = SampleClassification.objects.get(evaluation=third, sample__identifier="sample_2")
    original = (row.classifications or {})["sentiment"]
    changed_to = "negative" if original != "negative" else "positive"
    SampleClassification.objects.filter(pk=row.pk).update(
        classifications={**(row.classifications or {}), "sentiment": changed_to}
    )
    Evaluation.objects.filter(pk=third.pk).update(conformance_score=first.conformance_score - 10)
    client.force_login(bob)  # a viewer may compare
    url = f"/evaluations/compare/?e={first.code}&e={second.code}&e={third.code}"
    response = client.get(url)
    assert response.status_code == HTTPStatus.OK
    comparison = response.context["comparison"]
    assert [c["letter"] for c in comparison["columns"]] == ["A", "B", "C"]
    assert [c["label"][:3] for c in comparison["columns"]] == ["A: ", "B: ", "C: "]
    assert len({c["label"] for c in comparison["columns"]}) == 3
    assert [c["score_delta"] for c in comparison["columns"]] == [None, 0.0, -10.0]
    sentiment = next(r for r in comparison["properties"] if r["name"] == "sentiment")
    assert [c["letter"] for c in sentiment["cells"]] == ["A", "B", "C"]
    assert sentiment["cells"][1]["between"] == 100.0
    decided = sum(1 for r in first.classifications.all() if "sentiment" in (r.classifications or {}))
    assert sentiment["cells"][2]["between"] == pytest.approx(100 * (decided - 1) / decided)
    assert comparison["paired"] == [12, 12]
    [change] = response.context["diff"]["rows"]
    assert (change.identifier, change.letter, change.baseline_judged, change.candidate_judged) == (
        "sample_2",
        "C",
        original,
        changed_to,
    )
    page = response.content.decode()
    assert '<option value="C">C</option>' in page
    assert '<span class="delta bad">−10.00 pts</span>' in page
    assert [t["name"] for t in comparison["charts"][0]["chart"]["data"]] == ["Requested", "A", "B", "C"]
    # Duplicates count once; the older a=&b= URL still works.
    assert client.get(f"{url}&e={first.code}").status_code == HTTPStatus.OK
    assert client.get(f"/evaluations/compare/?a={first.code}&b={third.code}").status_code == HTTPStatus.OK


def test_compare_bad_lists(
    client: Client, alice: Any, charlie: Any, company_a: Any, company_b: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    mine = [evaluate(run_a) for _ in range(7)]
    theirs_spec = spec_create(company=company_b, created_by=charlie, name="Support", content_yaml=SPEC_YAML)
    their_run = run_import(company=company_b, created_by=charlie, spec=theirs_spec, rows=make_rows(4))
    theirs = Evaluation.objects.create(company=company_b, run=their_run, requested_model="local/embeddings")
    pending = Evaluation.objects.create(company=company_a, run=run_a, requested_model="local/embeddings")
    client.force_login(alice)

    def get(*codes: Any) -> int:
        return client.get("/evaluations/compare/", {"e": [str(c) for c in codes]}).status_code

    assert get(*(e.code for e in mine[:6])) == HTTPStatus.OK
    assert get(*(e.code for e in mine)) == HTTPStatus.BAD_REQUEST  # seven
    assert get(mine[0].code) == HTTPStatus.BAD_REQUEST
    assert get(mine[0].code, mine[0].code) == HTTPStatus.BAD_REQUEST  # one, twice
    assert get(mine[0].code, pending.code) == HTTPStatus.BAD_REQUEST
    assert get(mine[0].code, mine[1].code, theirs.code) == HTTPStatus.NOT_FOUND
    assert get(theirs.code, mine[0].code) == HTTPStatus.NOT_FOUND
    assert get(mine[0].code, "not-a-uuid") == HTTPStatus.NOT_FOUND
    assert get() == HTTPStatus.NOT_FOUND  # no e=, no a/b: nothing to compare
    assert client.get("/evaluations/compare/?a=&b=").status_code == HTTPStatus.NOT_FOUND
    client.logout()
    assert client.get("/evaluations/compare/", {"e": [str(mine[0].code), str(mine[1].code)]}).status_code == 302
