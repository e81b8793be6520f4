from __future__ import annotations

import csv
import io
import json
from http import HTTPStatus
from typing import Any

from django.http import StreamingHttpResponse
from django.test import Client

from evaluations.models import Evaluation
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows

HX = {"HX-Request": "true"}


def signed_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_detail_page_shows_score_charts_and_offline_banner(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, alice)
    # session, user, evaluation (+run, spec, version, creator, company), membership, ledger totals, sample page,
    # other evaluations, active membership, header companies, the human labels (statistics), the blind labels
    # (reviewers' agreement). Counts come from the stored statistics. (No labels query for the in-place
    # corrections: each row's "Correct" button fetches its own forms.)
    with django_assert_num_queries(11):
        response = client.get(f"/evaluations/{evaluation.code}/")
    page = response.content.decode()
    assert f"{evaluation.conformance_score:.1f}" in page
    assert "Embedded judge (local/embeddings), not an LLM." in page
    for i in (1, 2):
        assert f'data-chart="chart-distribution-{i}"' in page
        assert f'data-chart="chart-confusion-{i}"' in page
    figure = response.context["views"][0]["chart"]
    assert [trace["name"] for trace in figure["data"]] == ["Requested", "Expected", "Evaluated"]
    assert "error_y" in figure["data"][2]
    assert "12 samples" in page


def test_the_classifications_partial_filters(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, alice)
    # A mismatch is a judged value other than the assigned one; an undecided property is not one.
    mismatched = sum(
        1
        for c in evaluation.classifications.select_related("sample")
        if any(c.sample.properties[name] != value for name, value in (c.classifications or {}).items())
    )
    # session, user, evaluation, membership, sample page (the count is read off the stored confusion matrices)
    with django_assert_num_queries(5):
        response = client.get(f"/evaluations/{evaluation.code}/?mismatch=1", headers=HX)
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="classifications-table">')
    assert f">{mismatched} sample" in page
    response = client.get(f"/evaluations/{evaluation.code}/?property=sentiment&assigned=negative", headers=HX)
    assert ">4 samples" in response.content.decode()
    judged = evaluation.classifications.filter(classifications__sentiment="positive").count()
    response = client.get(f"/evaluations/{evaluation.code}/?property=sentiment&judged=positive", headers=HX)
    assert f">{judged} sample" in response.content.decode()


def test_progress_polls_until_terminal(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, alice)
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.PROCESSING)
    running = client.get(f"/evaluations/{evaluation.code}/?partial=progress", headers=HX)
    assert running.status_code == HTTPStatus.OK
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert "12 / 12 samples classified" in running.content.decode()
    body = client.get(f"/evaluations/{evaluation.code}/?partial=body", headers=HX)
    assert body.status_code == HTTPStatus.OK
    assert 'hx-trigger="every 1s"' in body.content.decode()
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.SUCCEEDED)
    done = client.get(f"/evaluations/{evaluation.code}/?partial=progress", headers=HX)
    assert done.status_code == 286  # htmx: stop polling
    assert "hx-trigger" not in done.content.decode()
    finished_body = client.get(f"/evaluations/{evaluation.code}/?partial=body", headers=HX)
    assert finished_body.status_code == 286
    assert 'data-chart="chart-distribution-1"' in finished_body.content.decode()


def test_start_from_the_run_page(
    client: Client, alice: Any, run_a: Run, django_capture_on_commit_callbacks: Any
) -> None:
    signed_in(client, alice)
    page = client.get(f"/runs/{run_a.code}/").content.decode()
    assert "local/embeddings (embedded judge: no LLM)" in page
    assert "anthropic/claude-opus-4-6 (no credentials: embedded judge instead)" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "local/embeddings"}, headers=HX)
    assert response.status_code == HTTPStatus.OK
    evaluation = Evaluation.objects.get()
    assert evaluation.requested_model == "local/embeddings"
    assert f'id="evaluation-{evaluation.code}"' in response.content.decode()
    history = client.get(f"/runs/{run_a.code}/").content.decode()
    assert f"/evaluations/{evaluation.code}/" in history
    # Without HTMX the form still works: it redirects to the evaluation.
    response = client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "local/embeddings"})
    assert response.status_code == HTTPStatus.FOUND
    bad = client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "gpt-2"}, headers=HX)
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert "Select a valid choice" in bad.content.decode()


def test_export_csv_and_jsonl_stream(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, alice)
    response = client.get(f"/evaluations/{evaluation.code}/export.csv")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"] == f'attachment; filename="evaluation-{evaluation.code}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 12
    assert set(rows[0]) == {
        "sample_identifier", "status", "assigned_sentiment", "assigned_priority", "judged_sentiment",
        "judged_priority", "human_sentiment", "human_priority", "error", "rationale_sentiment", "rationale_priority",
        "model", "content",
    }  # fmt: skip
    assert rows[0]["sample_identifier"] == "sample_1"
    assert rows[0]["assigned_sentiment"] == "negative"
    assert rows[0]["model"] == "local/embeddings"
    assert rows[0]["content"] == make_rows(1)[0]["content"]
    assert rows[0]["rationale_sentiment"].startswith("lexicon: negative")
    jsonl = client.get(f"/evaluations/{evaluation.code}/export.jsonl")
    records = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert len(records) == 12
    assert records[0]["assigned"] == {"sentiment": "negative", "priority": "medium"}
    assert records[0]["model"] == "local/embeddings"
    assert records[0]["content"] == make_rows(1)[0]["content"]
    assert set(records[0]["rationales"]) == {"sentiment", "priority"}
    assert client.get(f"/evaluations/{evaluation.code}/export.xml").status_code == HTTPStatus.NOT_FOUND


def test_it_neutralises_formulas_in_the_csv_export(
    client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any
) -> None:
    # (Tab and CR cannot start an identifier: imports refuse control characters; the cell rule is tested below.)
    identifiers = ['=HYPERLINK("http://x")', "+SUM(A1)", "-2+3", "@cmd", "plain-id"]
    rows = make_rows(len(identifiers))
    for row, identifier in zip(rows, identifiers, strict=True):
        row |= {"identifier": identifier, "path": f"{row['identifier']}.txt"}
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=rows))
    signed_in(client, alice)
    response = client.get(f"/evaluations/{evaluation.code}/export.csv")
    exported = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
    assert [r["sample_identifier"] for r in exported] == [f"'{i}" for i in identifiers[:-1]] + ["plain-id"]
    assert exported[0]["assigned_sentiment"] == "negative"  # ordinary cells are left alone


def test_compare_two_evaluations(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    first = evaluate(run_a, "local/embeddings")
    second = evaluate(run_a, "anthropic/claude-haiku-4-5")  # no key: judged offline too, so they agree fully
    signed_in(client, alice)
    response = client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")
    assert response.status_code == HTTPStatus.OK
    agreement = [(row["name"], row["cells"][1]["between"]) for row in response.context["comparison"]["properties"]]
    # Priority: both declined it (the texts say nothing of urgency), so there is nothing to agree on.
    assert agreement == [("sentiment", 100.0), ("priority", None)]
    assert client.get("/evaluations/compare/?a=x&b=y").status_code == HTTPStatus.NOT_FOUND


def test_sample_text_is_escaped(client: Client, alice: Any, company_a: Any, spec_a: Any, evaluate: Any) -> None:
    rows = make_rows(2)
    rows[0]["content"] = "<script>alert(1)</script>"
    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=rows))
    page = signed_in(client, alice).get(f"/evaluations/{evaluation.code}/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_it_checks_ownership(client: Client, charlie: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, charlie)
    for url in [
        f"/evaluations/{evaluation.code}/",
        f"/evaluations/{evaluation.code}/?partial=progress",
        f"/evaluations/{evaluation.code}/export.csv",
        f"/evaluations/compare/?a={evaluation.code}&b={evaluation.code}",
    ]:
        assert client.get(url, headers=HX).status_code == HTTPStatus.NOT_FOUND, url
    assert client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "local/embeddings"}).status_code == 404


def test_it_requires_rw_access(client: Client, bob: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    signed_in(client, bob)
    assert client.get(f"/evaluations/{evaluation.code}/").status_code == HTTPStatus.OK
    assert "Evaluate</button>" not in client.get(f"/runs/{run_a.code}/").content.decode()
    response = client.post(f"/runs/{run_a.code}/evaluate/", {"evaluation_model": "local/embeddings"})
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_progress_and_compare_query_counts(
    client: Client, alice: Any, run_a: Run, evaluate: Any, django_assert_num_queries: Any
) -> None:
    first = evaluate(run_a)
    second = evaluate(run_a)
    signed_in(client, alice)
    # session, user, evaluation, membership, ledger totals (progress numbers come from the stored statistics)
    with django_assert_num_queries(5):
        client.get(f"/evaluations/{first.code}/?partial=progress", headers=HX)
    # session, user, two evaluations + their memberships, the agreement aggregate, the picker's candidates, header
    # membership + companies, each evaluation's human labels, the per-sample diff (each evaluation's rows, streamed)
    with django_assert_num_queries(14):
        client.get(f"/evaluations/compare/?a={first.code}&b={second.code}")


def test_every_formula_lead_is_neutralised_in_a_cell() -> None:
    from config.spreadsheet import safe_cell

    for lead in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{lead}x") == f"'{lead}x"
    assert safe_cell("plain") == "plain"
    assert safe_cell(3) == 3
