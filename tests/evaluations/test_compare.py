from __future__ import annotations

from http import HTTPStatus
from typing import Any

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
    tvd = comparison["properties"][0]["total_variation_distance"]
    assert tvd["delta"] == round(tvd["b"] - tvd["a"], 2)
    assert comparison["score"]["delta"] == round(second.conformance_score - first.conformance_score, 2)
    assert comparison["samples_compared"] == 12
    assert [c["identifier"] for c in comparison["changed"]] == ["sample_1"]
    assert comparison["changed"][0]["changes"][0]["a"] == original
    page = response.content.decode()
    assert comparison["labels"]["a"].startswith(f"A: {run_a} · ")
    assert "B: Second · " in page
    assert f"/evaluations/{second.code}/samples/" in page
    assert [trace["name"] for trace in comparison["charts"][0]["chart"]["data"]] == ["A", "B"]


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
            for key in ("a", "b"):
                assert f'name="{key}" value="{evaluation.code}" form="{form_id}"' in page, url
    # The picker's GET is the compare URL itself.
    response = client.get("/evaluations/compare/", {"a": str(first.code), "b": str(second.code)})
    assert response.status_code == HTTPStatus.OK
