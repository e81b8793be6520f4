"""Monitor and workflow pages (issue 23): lists, the monitor page (chart, failure rate, filters, drill-down), the
workflow and event pages (pass rate, attempts, diff), the home card, and tenancy (charlie 404; bob reads: these
pages have no writes)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from companies.models import Company
from guardrails.defend import workflow_create
from guardrails.models import GuardrailEvaluation, Monitor, Workflow, WorkflowAttempt, WorkflowEvent
from guardrails.monitors import monitor_create, monitor_event_create
from guardrails.selectors import monitor_evaluations, monitor_summary

INPUT = {"system_prompt": "Be brief.", "user_prompt": "How long do refunds take?"}


def scored(evaluation: GuardrailEvaluation, **scores: float) -> None:
    GuardrailEvaluation.objects.filter(pk=evaluation.pk).update(
        status="completed",
        evaluation_result={m: {"score": s, "rationale": "r"} for m, s in scores.items()},
    )


@pytest.fixture
def monitor_a(alice: Any, company_a: Company) -> Monitor:
    monitor = monitor_create(company=company_a, created_by=alice, name="Support bot")
    # Not a transactional test: the events' work is never sent; their results are set by hand.
    for n, (tag, score) in enumerate([("eu", 0.9), ("eu", 0.3), ("us", 0.8)]):
        event = monitor_event_create(
            monitor=monitor, created_by=alice, model_input=INPUT, model_output=f"<b>answer {n}</b>", nametag=tag,
            guardrail_metrics=["completeness", "correctness"],
        )  # fmt: skip
        scored(event.evaluation, completeness=score, correctness=0.9)
    declined = monitor_event_create(
        monitor=monitor, created_by=alice, model_input=INPUT, model_output="x", guardrail_metrics=["completeness"]
    )
    GuardrailEvaluation.objects.filter(pk=declined.evaluation_id).update(
        status="completed", evaluation_result={"completeness": {"score": 0.5, "rationale": "r", "judged": False}}
    )
    return monitor


def test_the_summary_charts_judged_scores_over_time_and_counts_failures(monitor_a: Monitor) -> None:
    summary = monitor_summary(evaluations=monitor_evaluations(monitor=monitor_a))
    lines = {line["name"]: line["y"] for line in summary["chart"]["data"]}
    assert lines == {"correctness": [0.9, 0.9, 0.9], "completeness": [0.9, 0.3, 0.8]}  # oldest first; no declined
    assert (summary["graded"], summary["failed"]) == (3, 1)  # the declined-only event is not graded
    eu = monitor_summary(evaluations=monitor_evaluations(monitor=monitor_a, nametag="eu"))
    assert (eu["graded"], eu["failed"]) == (2, 1)
    later = monitor_summary(evaluations=monitor_evaluations(monitor=monitor_a, since=timezone.now() + timedelta(1)))
    assert (later["chart"], later["failure_rate"]) == (None, None)


def test_the_monitor_page_shows_chart_failure_rate_and_latest_events(
    client: Client, alice: Any, monitor_a: Monitor, django_assert_num_queries: Any
) -> None:
    client.force_login(alice)
    # session, user, monitor (+ company), membership, summary (one query for chart and failure rate), latest
    # events, their count, header membership, header companies
    with django_assert_num_queries(9):
        response = client.get(f"/monitors/{monitor_a.code}/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert 'data-chart="chart-monitor-scores"' in page
    assert "33% (1 of 3 graded events" in page
    for evaluation in GuardrailEvaluation.objects.all():
        assert f"/guardrails/{evaluation.eval_id}/" in page  # drill-down to each evaluation
    filtered = client.get(f"/monitors/{monitor_a.code}/", {"nametag": "us"}).content.decode()
    assert "0% (0 of 1 graded events" in filtered
    today = timezone.now().date()
    assert (
        "No events match"
        in client.get(f"/monitors/{monitor_a.code}/", {"until": str(today - timedelta(days=1))}).content.decode()
    )
    assert "1 graded events" not in client.get(f"/monitors/{monitor_a.code}/", {"since": str(today)}).content.decode()
    assert "No events match" not in client.get(f"/monitors/{monitor_a.code}/", {"since": "junk"}).content.decode()


@pytest.fixture
def event_a(alice: Any, company_a: Company) -> WorkflowEvent:
    workflow = workflow_create(
        company=company_a, created_by=alice, name="Refunds", type="custom", improvement_action="do_nothing",
        custom_hallucination_threshold_values={"completeness": 0.7},
    )  # fmt: skip
    from guardrails.defend import workflow_event_create

    event = workflow_event_create(
        workflow=workflow, created_by=alice, model_input=INPUT, model_output="Refunds take <two> weeks.",
        model_used="m", run_mode="smart",
    )  # fmt: skip
    first = WorkflowAttempt.objects.get(event=event)
    scored(first.evaluation, completeness=0.2)
    WorkflowAttempt.objects.filter(pk=first.pk).update(passed=False, failing_metrics=["completeness"])
    second = WorkflowAttempt.objects.create(
        event=event,
        number=1,
        output="Refunds take 5 days.",
        evaluation=GuardrailEvaluation.objects.create(company=company_a, guardrail_metrics=["completeness"]),
    )
    scored(second.evaluation, completeness=0.9)
    WorkflowAttempt.objects.filter(pk=second.pk).update(passed=True)
    WorkflowEvent.objects.filter(pk=event.pk).update(status="completed", filtered=False)
    return event


def test_the_workflow_pages_show_pass_rate_attempts_and_the_diff(
    client: Client, alice: Any, event_a: WorkflowEvent
) -> None:
    client.force_login(alice)
    workflow = event_a.workflow
    listing = client.get("/workflows/").content.decode()
    assert "Refunds" in listing
    assert "1 of 1" in listing
    page = client.get(f"/workflows/{workflow.code}/").content.decode()
    assert '<dd id="pass-rate">100%</dd>' in page
    assert f"/workflows/{workflow.code}/events/{event_a.code}/" in page
    detail = client.get(f"/workflows/{workflow.code}/events/{event_a.code}/").content.decode()
    assert "Refunds take &lt;two&gt; weeks." in detail  # untrusted output, escaped
    assert "<del>&lt;two&gt;</del>" in detail
    assert "<ins>5</ins>" in detail
    assert "failed: completeness" in detail
    assert "completeness 0.90" in detail


def test_the_home_page_and_the_nav_reach_both(client: Client, alice: Any, monitor_a: Monitor) -> None:
    client.force_login(alice)
    home = client.get("/").content.decode()
    assert 'href="/monitors/"' in home
    assert 'href="/workflows/"' in home
    assert "Support bot" in client.get("/monitors/").content.decode()


def test_it_checks_ownership(client: Client, charlie: Any, monitor_a: Monitor, event_a: WorkflowEvent) -> None:
    client.force_login(charlie)
    workflow = event_a.workflow
    for url in (
        f"/monitors/{monitor_a.code}/",
        f"/workflows/{workflow.code}/",
        f"/workflows/{workflow.code}/events/{event_a.code}/",
    ):
        assert client.get(url).status_code == HTTPStatus.NOT_FOUND
    assert "Support bot" not in client.get("/monitors/").content.decode()
    assert "Refunds" not in client.get("/workflows/").content.decode()


def test_it_requires_rw_access(client: Client, bob: Any, monitor_a: Monitor, event_a: WorkflowEvent) -> None:
    """These pages only read (writes go through the API, where bob gets 403): a viewer sees them all."""
    client.force_login(bob)
    workflow: Workflow = event_a.workflow
    for url in (f"/monitors/{monitor_a.code}/", f"/workflows/{workflow.code}/events/{event_a.code}/"):
        assert client.get(url).status_code == HTTPStatus.OK
    assert client.post(f"/monitors/{monitor_a.code}/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
