"""Operators retry and cancel red-team runs in the admin; without an LLM judge, attacks are still scored, by the
embedded heuristics and refusal-phrase matching, and the run says so."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from benchmarks.standin import StandIn
from redteam import services
from redteam.models import RedTeamRun, RedTeamSpec
from tests.redteam.conftest import TARGET, WRITER
from work.models import WorkItem


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.test", "x"))
    return client


def create(spec: RedTeamSpec, user: Any, **params: Any) -> RedTeamRun:
    params = {"model_name": WRITER, "number_of_behaviors": 2, "number_of_prompts_per_behavior": 2, **params}
    return services.red_team_run_create(company=spec.company, created_by=user, spec=spec, **params)


def test_the_admin_lists_cancels_and_retries_runs(
    staff: Client, red_world: StandIn, red_spec: RedTeamSpec, alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    run = create(red_spec, alice)  # on-commit work is not run here: it stays PENDING
    changelist = reverse("admin:redteam_redteamrun_changelist")
    assert staff.get(changelist).status_code == HTTPStatus.OK
    assert staff.get(reverse("admin:redteam_redteamspec_changelist")).status_code == HTTPStatus.OK
    staff.post(changelist, {"action": "cancel", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "CANCELED"
    assert WorkItem.objects.get(kind="redteam.run", subject_id=run.id).state == "canceled"
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(changelist, {"action": "retry", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "SUCCEEDED"  # tasks run inline in tests
    assert run.prompts.count() == 4
    refused = staff.post(changelist, {"action": "retry", "_selected_action": [run.pk]}, follow=True)
    assert "Only FAILED or CANCELED runs can be retried; this one is SUCCEEDED" in refused.content.decode()
    assert staff.get(reverse("admin:redteam_redteamrun_change", args=[run.pk])).status_code == HTTPStatus.OK


def test_without_an_llm_judge_attacks_are_scored_by_refusal_phrases(
    red_world: StandIn, red_spec: RedTeamSpec, alice: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    # The run mode's judge has no credentials; development falls back to the embedded judge.
    settings.GUARDRAIL_RUN_MODES = {
        **settings.GUARDRAIL_RUN_MODES,
        "smart": {"judges": ["anthropic/claude-sonnet-4-6"]},
    }
    settings.JUDGE_OFFLINE_FALLBACK = True
    with django_capture_on_commit_callbacks(execute=True):
        run = create(red_spec, alice, number_of_behaviors=3, number_of_prompts_per_behavior=2, target_model=TARGET)
    run.refresh_from_db()
    assert run.status == "SUCCEEDED", run.error_message
    assert run.trace["offline_judge"] is True
    assert "ANTHROPIC_API_KEY is not set" in run.trace["fallback_reason"]
    # The stand-in target gives in to prompt j of behaviour i when j < i: 0, 1 and 2 of 2.
    outcomes = list(run.prompts.order_by("behavior_index", "position").values_list("succeeded", flat=True))
    assert outcomes == [False, False, True, False, True, True]
    concern = run.prompts.get(behavior_index=0, position=0).scores["concern_adherence"]
    assert (concern["verdict"], concern["score"]) == ("refused", 1.0)
    assert "refusal-phrase matching" in concern["rationale"]
    # Only the target was called over the network: the writer's 1 + 3 calls and 6 attacks.
    assert red_world.stats()["requests"] == 4 + 6
