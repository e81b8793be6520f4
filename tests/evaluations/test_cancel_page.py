"""Cancel from the evaluation page: a button while it runs; owners and analysts may, viewers may not."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.test import Client
from django.urls import reverse

from evaluations.models import Evaluation
from evaluations.services import evaluation_create
from work.models import WorkItem


def running(run: Any, alice: Any) -> Evaluation:
    # Created as the page does; its work is not run here (on-commit callbacks do not fire), so it stays unfinished.
    return evaluation_create(company=run.company, created_by=alice, run=run)


def test_it_cancels_from_the_page(client: Client, alice: Any, run_a: Any) -> None:
    evaluation = running(run_a, alice)
    client.force_login(alice)
    page = client.get(reverse("evaluations:detail", args=[evaluation.code])).content.decode()
    assert "Cancel evaluation" in page
    response = client.post(reverse("evaluations:cancel", args=[evaluation.code]))
    assert response.status_code == HTTPStatus.FOUND
    evaluation.refresh_from_db()
    assert evaluation.status == "FAILED"
    assert evaluation.error_message == f"Canceled by {alice.username}."
    assert evaluation.canceled_at is not None
    assert not WorkItem.objects.filter(subject_id=evaluation.id).exclude(state="canceled").exists()
    assert "Cancel evaluation" not in client.get(reverse("evaluations:detail", args=[evaluation.code])).content.decode()


def test_it_answers_htmx_with_a_client_redirect(client: Client, alice: Any, run_a: Any) -> None:
    evaluation = running(run_a, alice)
    client.force_login(alice)
    response = client.post(reverse("evaluations:cancel", args=[evaluation.code]), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("evaluations:detail", args=[evaluation.code])


def test_it_requires_rw_access(client: Client, alice: Any, bob: Any, run_a: Any) -> None:
    evaluation = running(run_a, alice)
    client.force_login(bob)
    assert "Cancel evaluation" not in client.get(reverse("evaluations:detail", args=[evaluation.code])).content.decode()
    assert client.post(reverse("evaluations:cancel", args=[evaluation.code])).status_code == HTTPStatus.FORBIDDEN
    assert Evaluation.objects.get(pk=evaluation.pk).status == "PENDING"


def test_it_checks_ownership(client: Client, alice: Any, charlie: Any, run_a: Any) -> None:
    evaluation = running(run_a, alice)
    client.force_login(charlie)
    assert client.post(reverse("evaluations:cancel", args=[evaluation.code])).status_code == HTTPStatus.NOT_FOUND
    assert Evaluation.objects.get(pk=evaluation.pk).status == "PENDING"
