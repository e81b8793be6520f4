from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from runs.models import Run, Spec
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows


def signed_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_run_list_shows_the_companys_runs(
    client: Client, alice: Any, run_a: Run, django_assert_num_queries: Any
) -> None:
    signed_in(client, alice)
    # session, user, active membership, runs (+ spec, version), the header's companies, the import form's specs:
    # exists check, options, and Select.use_required_attribute peeking at the first option
    with django_assert_num_queries(8):
        response = client.get("/runs/")
    page = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert f"/runs/{run_a.code}/" in page
    assert "SUCCEEDED" in page
    assert "not evaluated" in page


def test_run_list_query_count_does_not_grow_with_runs(
    client: Client,
    alice: Any,
    run_a: Run,
    spec_a: Spec,
    company_a: Any,
    django_assert_num_queries: Any,
) -> None:
    for _ in range(5):
        run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(2))
    signed_in(client, alice)
    with django_assert_num_queries(8):
        client.get("/runs/")


def test_run_detail_full_page(client: Client, alice: Any, run_a: Run, django_assert_num_queries: Any) -> None:
    signed_in(client, alice)
    # session, user, run (+spec, version, creator, company), membership, sample count, sample page,
    # one GROUP BY per property (2), the run's evaluations, the evaluate form's price estimate (samples and their
    # characters), active membership + companies for the header
    with django_assert_num_queries(12):
        response = client.get(f"/runs/{run_a.code}/")
    page = response.content.decode()
    assert 'data-chart="chart-expected-1"' in page
    assert 'data-chart="chart-expected-2"' in page
    assert "sample_1" in page
    assert "12 samples" in page


def test_run_detail_chart_data_is_requested_vs_expected(client: Client, alice: Any, run_a: Run) -> None:
    signed_in(client, alice)
    response = client.get(f"/runs/{run_a.code}/")
    figure = response.context["summaries"][0].chart
    requested, expected = figure["data"]
    assert requested["x"] == ["positive", "negative", "neutral"]
    assert requested["y"] == [40, 30, 30]
    # make_rows(12) assigns sentiment round-robin from sample_1: negative, neutral, positive, ...
    assert expected["y"] == [33.33, 33.34, 33.33]  # largest remainder: sums to exactly 100


def test_the_sample_table_partial_filters_and_pages(
    client: Client,
    alice: Any,
    spec_a: Spec,
    company_a: Any,
    django_assert_num_queries: Any,
) -> None:
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(90))
    signed_in(client, alice)
    # session, user, run, membership, count, page
    with django_assert_num_queries(6):
        response = client.get(
            f"/runs/{run.code}/?property=sentiment&value=positive&page=2",
            headers={"HX-Request": "true"},
        )
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="samples-table">')
    assert "<html" not in page
    assert "30 samples" in page
    assert "Page 2 of 2" in page
    assert "sample_78" in page
    assert "sample_1<" not in page
    assert "?property=sentiment&amp;value=positive&amp;page=1" in page


def test_an_unknown_filter_is_ignored(client: Client, alice: Any, run_a: Run) -> None:
    signed_in(client, alice)
    response = client.get(
        f"/runs/{run_a.code}/?property=nope&value=x&page=abc",
        headers={"HX-Request": "true"},
    )
    assert "12 samples" in response.content.decode()


def test_sample_text_is_escaped(client: Client, alice: Any, spec_a: Spec, company_a: Any) -> None:
    rows = make_rows(1)
    rows[0]["content"] = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=rows)
    page = signed_in(client, alice).get(f"/runs/{run.code}/").content.decode()
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_import_through_the_upload_form(client: Client, alice: Any, spec_a: Spec) -> None:
    signed_in(client, alice)
    upload = SimpleUploadedFile("s.jsonl", "\n".join(json.dumps(r) for r in make_rows(5)).encode())
    response = client.post("/runs/import/", {"spec": str(spec_a.code), "name": "Uploaded", "file": upload})
    run = Run.objects.get(name="Uploaded")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/runs/{run.code}/"
    assert run.samples.count() == 5


def test_the_upload_form_shows_each_problem(client: Client, alice: Any, spec_a: Spec) -> None:
    signed_in(client, alice)
    rows = make_rows(3)
    rows[1]["properties"]["sentiment"] = "furious"
    upload = SimpleUploadedFile("s.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    response = client.post("/runs/import/", {"spec": str(spec_a.code), "file": upload})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert (
        "sample 2 (&#x27;sample_2&#x27;): property &#x27;sentiment&#x27; is &#x27;furious&#x27;"
        in response.content.decode()
    )
    assert not Run.objects.exists()


def test_the_upload_form_refuses_another_companys_spec(
    client: Client, charlie: Any, company_b: Any, spec_a: Spec
) -> None:
    spec_create(company=company_b, created_by=charlie, name="Theirs", content_yaml=SPEC_YAML)
    signed_in(client, charlie)
    upload = SimpleUploadedFile("s.jsonl", json.dumps(make_rows(1)[0]).encode())
    response = client.post("/runs/import/", {"spec": str(spec_a.code), "file": upload})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "Select a valid choice" in response.content.decode()
    assert not Run.objects.exists()


def test_spec_pages(client: Client, alice: Any, spec_a: Spec) -> None:
    signed_in(client, alice)
    assert "Support" in client.get("/specs/").content.decode()
    page = client.get(f"/specs/{spec_a.code}/").content.decode()
    assert "Overall customer sentiment" in page
    assert "sentiment = negative: high 50%, medium 40%, low 10%" in page


def test_create_a_spec_through_the_form(client: Client, alice: Any) -> None:
    signed_in(client, alice)
    response = client.post("/specs/", {"name": "From form", "content_yaml": SPEC_YAML})
    spec = Spec.objects.get(name="From form")
    assert response["Location"] == f"/specs/{spec.code}/"
    bad = client.post(
        "/specs/",
        {"name": "Bad", "content_yaml": "spec:\n  data_property_variations: []\n"},
    )
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert "line 2: &#x27;data_property_variations&#x27; must be a non-empty list" in bad.content.decode()


def test_it_checks_ownership(client: Client, charlie: Any, run_a: Run, spec_a: Spec) -> None:
    signed_in(client, charlie)
    assert client.get(f"/runs/{run_a.code}/").status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/runs/{run_a.code}/", headers={"HX-Request": "true"}).status_code == HTTPStatus.NOT_FOUND
    assert client.get(f"/specs/{spec_a.code}/").status_code == HTTPStatus.NOT_FOUND
    assert str(run_a.code) not in client.get("/runs/").content.decode()
    assert "Support" not in client.get("/specs/").content.decode()


def test_it_requires_rw_access(client: Client, bob: Any, run_a: Run, spec_a: Spec) -> None:
    signed_in(client, bob)
    assert client.get(f"/runs/{run_a.code}/").status_code == HTTPStatus.OK
    page = client.get("/runs/").content.decode()
    assert "Import a run" not in page
    upload = SimpleUploadedFile("s.jsonl", json.dumps(make_rows(1)[0]).encode())
    assert client.post("/runs/import/", {"spec": str(spec_a.code), "file": upload}).status_code == HTTPStatus.FORBIDDEN
    assert client.post("/specs/", {"name": "X", "content_yaml": SPEC_YAML}).status_code == HTTPStatus.FORBIDDEN


def test_pages_require_sign_in(client: Client, run_a: Run) -> None:
    for url in ["/runs/", f"/runs/{run_a.code}/", "/specs/"]:
        assert client.get(url)["Location"].startswith("/login/")


def test_run_list_shows_the_latest_conformance_score(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    page = signed_in(client, alice).get("/runs/").content.decode()
    assert f"{evaluation.conformance_score:.1f}" in page
    assert "not evaluated" not in page


def test_spec_pages_query_counts(
    client: Client, alice: Any, spec_a: Spec, run_a: Run, django_assert_num_queries: Any
) -> None:
    signed_in(client, alice)
    # session, user, active membership, specs with run counts (+ seed dataset), header companies, the generate
    # form's seed datasets
    with django_assert_num_queries(6):
        client.get("/specs/")
    # session, user, spec, membership, latest version, the spec's mean sample size (the generate form's price of
    # each mode, runs/batch.price_estimate), runs, header membership + companies
    with django_assert_num_queries(9):
        client.get(f"/specs/{spec_a.code}/")
