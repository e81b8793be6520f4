from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.models import Evaluation
from runs.models import Run
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows

HX = {"HX-Request": "true"}


def test_it_lists_the_companys_evaluations(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    # session, user, active membership, count, page of evaluations (+run, spec, version), specs and runs for the
    # filters, header companies
    with django_assert_num_queries(8):
        response = client.get("/evaluations/")
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert f"/evaluations/{evaluation.code}/" in page
    assert f"{evaluation.conformance_score:.1f}" in page
    assert "embedded judge" in page
    assert "sentiment 100%" in page
    assert 'href="/evaluations/"' in page  # the nav link


def test_the_partial_query_count_does_not_grow_with_rows(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    for _ in range(3):
        evaluate(run_a)
    client.force_login(alice)
    # session, user, active membership, count, page of evaluations (+run, spec, version)
    with django_assert_num_queries(5):
        response = client.get("/evaluations/?sort=-score", headers=HX)
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="evaluations-table">')
    assert "3 evaluations" in page
    # The sort rides along with the filter form from inside the swapped table, so a filter change keeps it.
    assert '<input type="hidden" name="sort" value="-score" form="evaluations-filters">' in page
    # Every hx-get also has an href: the table works without JavaScript.
    tags = re.findall(r"<a [^>]*hx-get=[^>]*>", page)
    assert tags
    assert all(" href=" in tag for tag in tags)


def test_it_filters_and_sorts(
    client: Client, alice: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any
) -> None:
    other_spec = spec_create(company=company_a, created_by=alice, name="Other", content_yaml=SPEC_YAML)
    other_run = run_import(company=company_a, created_by=alice, spec=other_spec, rows=make_rows(6))
    first = evaluate(run_a)
    second = evaluate(other_run)
    Evaluation.objects.filter(pk=first.pk).update(conformance_score=10)
    Evaluation.objects.filter(pk=second.pk).update(conformance_score=90)
    client.force_login(alice)

    def codes(query: str) -> list[Any]:
        response = client.get(f"/evaluations/{query}", headers=HX)
        assert response.status_code == HTTPStatus.OK
        return [e.code for e in response.context["page"]]

    assert codes(f"?spec={spec_a.code}") == [first.code]
    assert codes(f"?run={other_run.code}") == [second.code]
    assert codes("?sort=score") == [first.code, second.code]
    assert codes("?sort=-score") == [second.code, first.code]
    assert codes("?judge=embedded") == [second.code, first.code]
    assert codes("?judge=llm") == []
    assert codes("?status=FAILED") == []
    assert codes("?date_from=2000-01-01&date_to=2999-01-01&status=SUCCEEDED") == [second.code, first.code]
    assert codes("?date_to=2000-01-01") == []
    # Unknown values are ignored, not an error page.
    assert len(codes("?sort=bogus&status=nope&date_from=never")) == 2


def test_it_checks_ownership(client: Client, charlie: Any, spec_a: Any, run_a: Run, evaluate: Any) -> None:
    evaluate(run_a)
    client.force_login(charlie)
    response = client.get("/evaluations/")
    assert response.status_code == HTTPStatus.OK
    assert response.context["page"].paginator.count == 0
    assert client.get(f"/evaluations/?spec={spec_a.code}").status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/evaluations/?run={run_a.code}").status_code == HTTPStatus.NOT_FOUND


def test_a_viewer_can_read(client: Client, bob: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(bob)
    response = client.get(f"/evaluations/?run={run_a.code}")
    assert response.status_code == HTTPStatus.OK
    assert f"/evaluations/{evaluation.code}/" in response.content.decode()


def test_it_pages(client: Client, alice: Any, run_a: Run, evaluate: Any, settings: Any) -> None:
    settings.PAGE_SIZE = 2
    for _ in range(3):
        evaluate(run_a)
    client.force_login(alice)
    page = client.get("/evaluations/?sort=date").content.decode()
    assert "Page 1 of 2" in page
    assert 'href="/evaluations/?sort=date&amp;page=2"' in page
    assert 'hx-push-url="true"' in page
