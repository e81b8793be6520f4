"""The sample table's text search, sort and page size: all in the URL, composed with the value filters."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client

from evaluations.models import SampleClassification
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows

HX = {"HX-Request": "true"}


def _identifiers(response: Any) -> list[str]:
    return [row.sample.identifier for row in response.context["page"]]


def test_it_searches_identifiers_and_content(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    url = f"/evaluations/{evaluation.code}/"
    # sample_1 and sample_10..12 by identifier.
    assert _identifiers(client.get(url, {"q": "SAMPLE_1"}, headers=HX)) == [
        "sample_1", "sample_10", "sample_11", "sample_12",
    ]  # fmt: skip
    # By content: "furious" is in the negative text (i % 3 == 1), composed with a value filter.
    response = client.get(url, {"q": "furious", "property": "sentiment", "assigned": "negative"}, headers=HX)
    assert _identifiers(response) == ["sample_1", "sample_4", "sample_7", "sample_10"]
    assert response.context["page"].paginator.count == 4
    assert "4 samples" in response.content.decode()
    none = client.get(url, {"q": "no such text"}, headers=HX)
    assert "No samples match." in none.content.decode()
    # Whole page: the search box keeps the query (escaped).
    page = client.get(url, {"q": '"><b>x'}).content.decode()
    assert 'value="&quot;&gt;&lt;b&gt;x"' in page


def test_it_sorts(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    url = f"/evaluations/{evaluation.code}/"
    default = _identifiers(client.get(url, headers=HX))
    assert default == [f"sample_{i}" for i in range(1, 13)]
    assert _identifiers(client.get(url, {"sort": "-position"}, headers=HX)) == default[::-1]
    assert _identifiers(client.get(url, {"sort": "identifier"}, headers=HX)) == sorted(default)
    assert _identifiers(client.get(url, {"sort": "-identifier"}, headers=HX)) == sorted(default, reverse=True)
    # By the judged value of one property, nulls (undecided) last.
    SampleClassification.objects.filter(evaluation=evaluation, sample__identifier="sample_5").update(
        classifications={"priority": "low"}
    )
    judged = client.get(url, {"sort": "judged:sentiment"}, headers=HX).context["page"]
    values = [(row.classifications or {}).get("sentiment") for row in judged]
    assert values[-1] is None
    assert values[:-1] == sorted(v or "" for v in values[:-1])
    # Agreement: the rows whose judged values agree least with the assigned ones first.
    for row in evaluation.classifications.select_related("sample"):
        SampleClassification.objects.filter(pk=row.pk).update(classifications=row.sample.properties)
    row = SampleClassification.objects.get(evaluation=evaluation, sample__identifier="sample_9")
    wrong = {
        name: next(v for v in ("positive", "negative", "neutral", "high", "medium", "low") if v != assigned)
        for name, assigned in row.sample.properties.items()
    }
    SampleClassification.objects.filter(pk=row.pk).update(classifications=wrong)
    assert _identifiers(client.get(url, {"sort": "agreement"}, headers=HX))[0] == "sample_9"
    assert _identifiers(client.get(url, {"sort": "-agreement"}, headers=HX))[-1] == "sample_9"


def test_page_size_and_paging_keep_the_state(
    client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(60)))
    client.force_login(alice)
    url = f"/evaluations/{evaluation.code}/"
    response = client.get(url, {"size": "50", "sort": "-position", "q": "Customer"}, headers=HX)
    page = response.context["page"]
    assert page.paginator.per_page == 50
    assert len(page) == 50
    html = response.content.decode()
    assert '<option value="50" selected>' in html
    # The pager's link keeps search, sort and size.
    assert "?size=50&amp;sort=-position&amp;q=Customer&amp;page=2" in html
    second = client.get(url, {"size": "50", "sort": "-position", "q": "Customer", "page": "2"}, headers=HX)
    assert _identifiers(second) == [f"sample_{i}" for i in range(10, 0, -1)]


def test_bad_parameters_fall_back_to_defaults(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    url = f"/evaluations/{evaluation.code}/"
    for query in (
        {"size": "7"}, {"size": "x"}, {"size": "100000"}, {"sort": "judged:nope"}, {"sort": "sample__content"},
        {"q": "x" * 5000}, {"page": "-3"}, {"sort": ["identifier", "x"]},
    ):  # fmt: skip
        for headers in ({}, HX):
            response = client.get(url, query, headers=headers)
            assert response.status_code == HTTPStatus.OK, query
            assert response.context["page"].paginator.per_page in (25, 12), query


def test_the_table_is_only_for_members(
    client: Client, alice: Any, bob: Any, charlie: Any, run_a: Run, evaluate: Any
) -> None:
    evaluation = evaluate(run_a)
    url = f"/evaluations/{evaluation.code}/?q=sample&sort=identifier&size=50"
    client.force_login(charlie)
    assert client.get(url, headers=HX).status_code == HTTPStatus.NOT_FOUND
    client.force_login(bob)  # a viewer reads
    assert client.get(url, headers=HX).status_code == HTTPStatus.OK
