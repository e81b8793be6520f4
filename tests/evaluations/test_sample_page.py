from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.models import SampleClassification
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows


def _url(row: SampleClassification) -> str:
    return f"/evaluations/{row.evaluation.code}/samples/{row.sample.code}/"


def test_it_shows_content_assigned_and_judged(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample", "evaluation").first()
    # One property judged, the other left out: undecided.
    SampleClassification.objects.filter(pk=row.pk).update(classifications={"sentiment": "negative"})
    client.force_login(alice)
    # session, user, evaluation (+run, spec, version, creator, company), membership, classification (+sample),
    # header companies, active membership, the sample's human reviews (+reviewer), its judge calls, the filtered
    # set's sample codes (previous / next), alice's own labels of it (the correction forms)
    with django_assert_num_queries(11):
        response = client.get(_url(row))
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert row.sample.content in page
    values = {v["name"]: v for v in response.context["values"]}
    assert values["sentiment"]["judged"] == "negative"
    assert values["sentiment"]["assigned"] == row.sample.properties["sentiment"]
    assert values["priority"]["undecided"] is True
    assert "undecided" in page


def test_it_shows_the_failure_reason(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample", "evaluation").first()
    SampleClassification.objects.filter(pk=row.pk).update(
        status=SampleClassification.Status.FAILED, classifications=None, rationales=None, error="the judge timed out"
    )
    client.force_login(alice)
    page = client.get(_url(row)).content.decode()
    assert "the judge timed out" in page
    assert "undecided" not in page


def test_the_sample_table_links_to_each_sample(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    page = client.get(f"/evaluations/{evaluation.code}/").content.decode()
    for row in evaluation.classifications.select_related("sample", "evaluation")[:3]:
        assert f'href="{_url(row)}"' in page


def test_sample_text_is_escaped(client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any) -> None:
    rows = make_rows(2)
    rows[0]["content"] = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    rows[0]["identifier"] = "<b>sample</b>"
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=rows))
    row = evaluation.classifications.select_related("sample", "evaluation").get(sample__identifier="<b>sample</b>")
    client.force_login(alice)
    page = client.get(_url(row)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "<b>sample</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_it_checks_ownership(
    client: Client, alice: Any, charlie: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample", "evaluation").first()
    client.force_login(charlie)
    assert client.get(_url(row)).status_code == HTTPStatus.NOT_FOUND
    # A sample of another run, under an evaluation alice may read, is not found either.
    other = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(2)))
    client.force_login(alice)
    stray = other.classifications.select_related("sample").first()
    assert (
        client.get(f"/evaluations/{evaluation.code}/samples/{stray.sample.code}/").status_code == HTTPStatus.NOT_FOUND
    )


def test_a_viewer_can_read(client: Client, bob: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    row = evaluation.classifications.select_related("sample", "evaluation").first()
    client.force_login(bob)
    assert client.get(_url(row)).status_code == HTTPStatus.OK
