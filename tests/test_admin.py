"""Operators in the admin: every background model listed with its lease and attempt fields, retry and cancel."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from evaluations.models import Evaluation
from guardrails import services as guardrail_services
from guardrails.models import GuardrailEvaluation
from work.models import WorkItem


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.test", "x"))
    return client


@pytest.mark.parametrize(
    "model",
    ["work_workitem", "llm_judgecall", "llm_judgecache", "runs_run", "runs_spec", "evaluations_evaluation",
     "guardrails_guardrailevaluation", "evaluations_review"],
)  # fmt: skip
def test_it_lists_every_background_model(staff: Client, model: str, run_a: Any, evaluate: Any) -> None:
    evaluate(run_a)
    response = staff.get(reverse(f"admin:{model}_changelist"))
    assert response.status_code == HTTPStatus.OK


def test_the_work_item_page_shows_lease_and_attempts(staff: Client, run_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    item = WorkItem.objects.get(kind="evaluation.start", subject_id=evaluation.id)
    page = staff.get(reverse("admin:work_workitem_change", args=[item.pk])).content.decode()
    for field in ("Lease until", "Attempts", "Last error", "Worker"):
        assert field in page


def test_it_retries_a_failed_evaluation_keeping_its_results(
    staff: Client, run_a: Any, evaluate: Any, django_capture_on_commit_callbacks: Any
) -> None:
    evaluation = evaluate(run_a)
    judged = evaluation.classifications.count()
    Evaluation.objects.filter(pk=evaluation.pk).update(status="FAILED", error_message="the worker's disk filled up")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            reverse("admin:evaluations_evaluation_changelist"),
            {"action": "retry", "_selected_action": [evaluation.pk]},
        )
    assert response.status_code == HTTPStatus.FOUND
    evaluation.refresh_from_db()
    assert evaluation.status == "SUCCEEDED"  # tasks run inline in tests
    assert evaluation.error_message is None
    assert evaluation.classifications.count() == judged == 12


def test_it_refuses_to_retry_what_did_not_fail(staff: Client, run_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    response = staff.post(
        reverse("admin:evaluations_evaluation_changelist"),
        {"action": "retry", "_selected_action": [evaluation.pk]},
        follow=True,
    )
    assert "Only FAILED evaluations can be retried" in response.content.decode()


def test_it_cancels_a_queued_guardrail_evaluation(staff: Client, alice: Any, company_a: Any) -> None:
    evaluation = guardrail_services.guardrail_evaluation_create(
        company=company_a, created_by=alice, model_input={"user_prompt": "Hi"}, model_output="Hello"
    )  # on-commit work is not run here: it stays queued
    staff.post(
        reverse("admin:guardrails_guardrailevaluation_changelist"),
        {"action": "cancel", "_selected_action": [evaluation.pk]},
    )
    assert GuardrailEvaluation.objects.get(pk=evaluation.pk).status == "canceled"
    assert WorkItem.objects.get(kind="guardrail.run", subject_id=evaluation.id).state == "canceled"


def test_it_requeues_a_failed_work_item(staff: Client, run_a: Any, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    item = WorkItem.objects.get(kind="evaluation.start", subject_id=evaluation.id)
    WorkItem.objects.filter(pk=item.pk).update(state="failed", attempts=5, last_error="boom")
    staff.post(reverse("admin:work_workitem_changelist"), {"action": "retry", "_selected_action": [item.pk]})
    item.refresh_from_db()
    # Queued again with its attempts reset, and sent: tasks run inline in tests, so it is already done.
    assert (item.state, item.attempts, item.last_error) == ("done", 0, "")
