"""Names and finding things (issue #25): an evaluation's name and note, edited on its page, shown instead of a
timestamp; the evaluations list searches, filters by score and pages; the home page links to it all."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.models import Evaluation
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows


def _evaluation(company: Any, run: Run, *, name: str = "", score: float | None = None, model: str = "") -> Evaluation:
    return Evaluation.objects.create(
        company=company,
        run=run,
        name=name,
        requested_model="local/embeddings",
        model_used=model,
        conformance_score=score,
        status=Evaluation.Status.SUCCEEDED if score is not None else Evaluation.Status.PENDING,
    )


def test_it_names_an_evaluation_on_its_page(client: Client, alice: Any, company_a: Any, run_a: Run) -> None:
    evaluation = _evaluation(company_a, run_a)
    client.force_login(alice)
    page = client.get(f"/evaluations/{evaluation.code}/").content.decode()
    assert f"<h1>{run_a} · local/embeddings" in page  # the default name, not a timestamp
    url = f"/evaluations/{evaluation.code}/rename/"
    response = client.post(url, {"name": "Prompt <v2>", "note": "after the fix"}, headers={"HX-Request": "true"})
    assert response.status_code == HTTPStatus.OK
    body = response.content.decode()
    assert "<h1>Prompt &lt;v2&gt;" in body  # escaped
    assert "after the fix" in body
    evaluation.refresh_from_db()
    assert (evaluation.name, evaluation.note) == ("Prompt <v2>", "after the fix")
    # Too long: a 400 with the error at the top of the form and the value kept; the name unchanged.
    response = client.post(url, {"name": "x" * 201, "note": "kept"}, headers={"HX-Request": "true"})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    body = response.content.decode()
    assert body.index('role="alert"') < body.index('name="name"')
    assert "kept</textarea>" in body
    evaluation.refresh_from_db()
    assert evaluation.name == "Prompt <v2>"
    assert client.post(url, {"name": "Plain"}).status_code == HTTPStatus.FOUND  # without HTMX: back to the page


def test_it_checks_ownership(client: Client, charlie: Any, company_a: Any, run_a: Run) -> None:
    evaluation = _evaluation(company_a, run_a)
    client.force_login(charlie)
    assert client.post(f"/evaluations/{evaluation.code}/rename/", {"name": "x"}).status_code == HTTPStatus.NOT_FOUND


def test_it_requires_rw_access(client: Client, bob: Any, company_a: Any, run_a: Run) -> None:
    evaluation = _evaluation(company_a, run_a)
    client.force_login(bob)
    assert client.post(f"/evaluations/{evaluation.code}/rename/", {"name": "x"}).status_code == HTTPStatus.FORBIDDEN
    assert "Name this evaluation" not in client.get(f"/evaluations/{evaluation.code}/").content.decode()


def test_the_list_searches_filters_by_score_and_pages(
    client: Client, alice: Any, company_a: Any, spec_a: Any, settings: Any
) -> None:
    other_spec = spec_create(company=company_a, created_by=alice, name="Billing", content_yaml=SPEC_YAML)
    support = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(2), name="Nightly")
    billing = run_import(company=company_a, created_by=alice, spec=other_spec, rows=make_rows(2), name="Weekly")
    named = _evaluation(company_a, support, name="Release candidate", score=91.0, model="openai/gpt-5.4")
    low = _evaluation(company_a, support, score=40.0, model="local/embeddings")
    other = _evaluation(company_a, billing, score=70.0, model="anthropic/claude-sonnet-4-6")
    client.force_login(alice)

    def found(**query: Any) -> set[Evaluation]:
        response = client.get("/evaluations/", query)
        assert response.status_code == HTTPStatus.OK
        return set(response.context["page"].object_list)

    assert found(q="release") == {named}
    assert found(q="weekly") == {other}  # the run's name
    assert found(q="billing") == {other}  # the spec's name
    assert found(q="claude") == {other}  # the judge
    assert found(score_min=60) == {named, other}
    assert found(score_min=60, score_max=80) == {other}
    assert found(score_min="lots") == {named, low, other}  # a bad value is dropped, never an error
    page = client.get("/evaluations/").content.decode()
    assert ">Release candidate</a>" in page
    assert f'href="/runs/{support.code}/"' in page
    settings.PAGE_SIZE = 2
    response = client.get("/evaluations/", {"page": 2})
    assert len(response.context["page"].object_list) == 1


def test_the_home_page_links_names_runs_and_the_search(client: Client, alice: Any, company_a: Any, run_a: Run) -> None:
    evaluation = _evaluation(company_a, run_a, name="Named one", score=80.0)
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert f'<a href="/evaluations/{evaluation.code}/">Named one</a>' in page
    assert f'<a href="/runs/{run_a.code}/">{run_a}</a>' in page
    assert 'action="/evaluations/" role="search"' in page
