"""DeepRails Defend workflows (issue 23): the official client in strict mode against a live server, a stand-in
writer that improves an output until it passes (or never does), thresholds, declined metrics, the writer-less 400,
quotas and tenancy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from deeprails import BadRequestError, Deeprails, NotFoundError
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from companies.models import Company
from guardrails.defend import TOLERANCE_THRESHOLDS, workflow_create
from guardrails.models import ActiveStatus, Workflow, WorkflowEvent
from guardrails.monitors import monitor_create
from llm.models import JudgeCall
from tests.guardrails.test_scoring import Judges, guardrail_answer, install_judges
from work.models import WorkItem

INPUT: Any = {
    "system_prompt": "You are a support agent. Refunds take 5 days.",
    "user_prompt": "How long do refunds take?",
}
PASSING = "PASS"  # the stand-in judge passes an output with this word in it, and fails any other


def stand_in(judges: Judges, writes: list[str]) -> list[str]:
    """The judge grades 0.95 an output containing PASS and 0.3 any other; the writer answers `writes` in order.
    Returns the user turns the writer was sent."""
    queue: Iterator[str] = iter(writes)
    writer_prompts: list[str] = []

    def answer(schema: dict[str, Any], user: str) -> dict[str, Any]:
        if set(schema["properties"]) == {"output"}:
            writer_prompts.append(user)
            return {"output": next(queue)}
        graded = user.split("<model_output>")[-1]
        return guardrail_answer(0.95 if PASSING in graded else 0.3)(schema, user)

    judges.anthropic.answer = answer
    return writer_prompts


@pytest.fixture
def judges(monkeypatch: pytest.MonkeyPatch) -> Judges:
    return install_judges(monkeypatch)


def strict(live_server: Any, key: str) -> Deeprails:
    return Deeprails(base_url=live_server.url, api_key=key, _strict_response_validation=True, max_retries=0)


def wait_decided(client: Deeprails, workflow_id: str, event_id: str) -> Any:
    event = client.defend.retrieve_event(event_id, workflow_id=workflow_id)
    deadline = time.monotonic() + 10
    while event.filtered is None and time.monotonic() < deadline:
        time.sleep(0.1)  # tasks run inline in tests, so this normally never waits
        event = client.defend.retrieve_event(event_id, workflow_id=workflow_id)
    return event


# --- The official client, strict, against a live server ---


@pytest.mark.django_db(transaction=True)
def test_fixit_improves_until_an_output_passes(live_server: Any, alice_key: str, judges: Judges) -> None:
    prompts = stand_in(judges, ["Refunds take two weeks.", f"Refunds take 5 days. {PASSING}", "never asked"])
    client = strict(live_server, alice_key)
    workflow = client.defend.create_workflow(
        name="Refund answers",
        type="custom",
        improvement_action="fixit",
        custom_hallucination_threshold_values={"correctness": 0.8, "completeness": 0.8},
        max_improvement_attempts=5,
        description="Support bot",
    )
    assert workflow.workflow_id.startswith("wkfl-")
    assert (workflow.improvement_action, workflow.max_improvement_attempts, workflow.status) == ("fixit", 5, "active")
    assert workflow.success_rate is None  # no event decided yet

    event = client.defend.submit_event(
        workflow.workflow_id,
        model_input=INPUT,
        model_output="Refunds take about a month.",
        model_used="gpt-4o",
        run_mode="economy",
        nametag="refunds",
    )
    assert event.event_id.startswith("wevt-")
    assert event.workflow_id == workflow.workflow_id
    event = wait_decided(client, workflow.workflow_id, event.event_id)
    assert event.filtered is False
    assert event.attempt_number == 2  # two improvements: the first failed, the second passed
    raw = event.to_dict()
    assert raw["status"] == "completed"
    assert raw["final_output"] == f"Refunds take 5 days. {PASSING}"
    attempts = raw["attempts"]
    assert [a["output"] for a in attempts] == [
        "Refunds take about a month.",
        "Refunds take two weeks.",
        f"Refunds take 5 days. {PASSING}",
    ]
    assert [a["passed"] for a in attempts] == [False, False, True]
    assert [a["failing_metrics"] for a in attempts] == [["correctness", "completeness"]] * 2 + [[]]
    assert event.evaluation_id == attempts[-1]["evaluation_id"]
    for attempt in attempts:
        assert attempt["evaluation_status"] == "completed"
        assert attempt["evaluation_cost_usd"] > 0
        graded = client.evaluate.retrieve(attempt["evaluation_id"])  # each attempt's evaluation is a real one
        assert graded.api_model_output == attempt["output"]
    assert attempts[0]["writer_cost_usd"] == 0
    assert attempts[1]["writer_cost_usd"] > 0
    assert attempts[2]["writer_cost_usd"] > 0
    # FixIt shows the writer the failing output and the failing metrics' rationales.
    assert len(prompts) == 2
    assert "Refunds take about a month." in prompts[0]
    assert "correctness: Fake rationale (0.3)." in prompts[0]
    assert "Refunds take two weeks." in prompts[1]
    assert client.defend.retrieve_workflow(workflow.workflow_id).success_rate == 1.0


@pytest.mark.django_db(transaction=True)
def test_regen_stops_at_the_maximum_and_filters_an_output_that_never_passes(
    live_server: Any, alice_key: str, judges: Judges
) -> None:
    prompts = stand_in(judges, ["Still wrong.", "Wrong again.", "never asked"])
    client = strict(live_server, alice_key)
    workflow = client.defend.create_workflow(
        name="Strict",
        type="automatic",
        improvement_action="regen",
        automatic_hallucination_tolerance_levels={"completeness": "low"},
        max_improvement_attempts=2,
    )
    event = client.defend.submit_event(
        workflow.workflow_id, model_input=INPUT, model_output="Wrong.", model_used="gpt-4o", run_mode="economy"
    )
    event = wait_decided(client, workflow.workflow_id, event.event_id)
    assert event.filtered is True
    assert event.attempt_number == 2
    assert [a["output"] for a in event.to_dict()["attempts"]] == ["Wrong.", "Still wrong.", "Wrong again."]
    assert len(prompts) == 2  # attempts stop at the maximum
    # ReGen asks the prompt again: the writer sees the user's request, not the failed output.
    assert "How long do refunds take?" in prompts[0]
    assert "Wrong." not in prompts[0]
    assert client.defend.retrieve_workflow(workflow.workflow_id).success_rate == 0.0
    assert JudgeCall.objects.filter(purpose="defend").count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_sdist_tests_shapes_get_answers_the_client_accepts(live_server: Any, alice_key: str) -> None:
    """The calls deeprails' own generated tests make, with their placeholder values; no writer is configured."""
    client = strict(live_server, alice_key)
    with pytest.raises(BadRequestError) as refused:
        client.defend.create_workflow(improvement_action="regen", name="name", type="automatic")
    assert "automatic_hallucination_tolerance_levels" in refused.value.message
    workflow = client.defend.create_workflow(
        improvement_action="do_nothing",
        name="name",
        type="custom",
        custom_hallucination_threshold_values={"completeness": 0},
        description="description",
        max_improvement_attempts=0,
    )
    assert client.defend.retrieve_workflow(workflow.workflow_id).name == "name"
    updated = client.defend.update_workflow(workflow.workflow_id, description="description", name="new name")
    assert updated.name == "new name"
    client.defend.update_workflow(workflow.workflow_id)
    with pytest.raises(BadRequestError):
        client.defend.submit_event(
            workflow.workflow_id, model_input={}, model_output="model_output", model_used="model_used", run_mode="smart"
        )
    event = client.defend.submit_event(
        workflow.workflow_id,
        model_input={"ground_truth": "ground_truth", "system_prompt": "system_prompt", "user_prompt": "user_prompt"},
        model_output="model_output",
        model_used="model_used",
        run_mode="precision_plus",
        nametag="nametag",
    )
    assert client.defend.retrieve_event(event.event_id, workflow_id=workflow.workflow_id).event_id == event.event_id
    with pytest.raises(NotFoundError):
        client.defend.retrieve_event("event_id", workflow_id=workflow.workflow_id)
    with pytest.raises(NotFoundError):
        client.defend.retrieve_workflow("workflow_id")


# --- Rules ---


@pytest.mark.parametrize("action", ["regen", "fixit"])
def test_improving_without_a_writer_is_a_400_that_says_how_to_configure_one(alice_api: APIClient, action: str) -> None:
    body = {
        "name": "w",
        "type": "custom",
        "improvement_action": action,
        "custom_hallucination_threshold_values": {"completeness": 0.7},
    }
    response = alice_api.post("/defend", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    detail = response.json()["detail"]
    assert "ANTHROPIC_API_KEY" in detail
    assert "DEFEND_WRITER_MODEL" in detail
    assert "do_nothing" in detail
    assert not Workflow.objects.exists()
    assert (
        alice_api.post("/defend", {**body, "improvement_action": "do_nothing"}, format="json").status_code
        == HTTPStatus.CREATED
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"custom_hallucination_threshold_values": {"completeness": 1.5}}, "custom_hallucination_threshold_values"),
        ({"custom_hallucination_threshold_values": {"completeness": "0.5"}}, "custom_hallucination_threshold_values"),
        ({"type": "manual"}, "type"),
        ({"max_improvement_attempts": -1}, "max_improvement_attempts"),
    ],
)
def test_a_schema_error_is_a_422_naming_the_field(alice_api: APIClient, changes: dict[str, Any], field: str) -> None:
    body = {"name": "w", "type": "custom", "improvement_action": "do_nothing"}
    body |= {"custom_hallucination_threshold_values": {"completeness": 0.7}} | changes
    response = alice_api.post("/defend", body, format="json")
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"type": "custom", "custom_hallucination_threshold_values": {"truthiness": 0.5}},
            "unknown metric(s) truthiness",
        ),
        ({"type": "custom"}, "needs custom_hallucination_threshold_values"),
        (
            {
                "type": "custom",
                "custom_hallucination_threshold_values": {"completeness": 0.5},
                "automatic_hallucination_tolerance_levels": {"completeness": "low"},
            },
            "is for the other type",
        ),
    ],
)
def test_thresholds_that_mean_nothing_are_a_400(alice_api: APIClient, body: dict[str, Any], message: str) -> None:
    response = alice_api.post("/defend", {"name": "w", "improvement_action": "do_nothing", **body}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.json()["detail"]


def test_automatic_tolerances_mean_the_documented_thresholds(alice: Any, company_a: Company) -> None:
    workflow = workflow_create(
        company=company_a,
        created_by=alice,
        name="w",
        type="automatic",
        improvement_action="do_nothing",
        automatic_hallucination_tolerance_levels={
            "completeness": "low",
            "correctness": "medium",
            "comprehensive_safety": "high",
        },
    )
    assert workflow.thresholds == {"completeness": 0.9, "correctness": 0.75, "comprehensive_safety": 0.5}
    assert TOLERANCE_THRESHOLDS["low"] > TOLERANCE_THRESHOLDS["medium"] > TOLERANCE_THRESHOLDS["high"]


def test_a_declined_metric_does_not_pass_unless_the_workflow_says_so(alice: Any, company_a: Company) -> None:
    workflow = workflow_create(
        company=company_a,
        created_by=alice,
        name="w",
        type="custom",
        improvement_action="do_nothing",
        custom_hallucination_threshold_values={"correctness": 0.5, "completeness": 0.5},
    )
    declined = {"correctness": {"score": 0.5, "judged": False}, "completeness": {"score": 0.9}}
    assert workflow.failing_metrics(declined) == ["correctness"]
    assert workflow.failing_metrics({"correctness": {"score": 0.49}, "completeness": {"score": 0.5}}) == ["correctness"]
    assert workflow.failing_metrics({"completeness": {"score": 0.9}}) == ["correctness"]  # not graded at all
    workflow.declined_passes = True
    assert workflow.failing_metrics(declined) == []


@pytest.mark.django_db(transaction=True)
def test_do_nothing_works_with_the_embedded_judge_and_filters_what_it_declined(
    live_server: Any, alice_key: str
) -> None:
    client = strict(live_server, alice_key)
    body: Any = {"name": "w", "type": "custom", "improvement_action": "do_nothing", "max_improvement_attempts": 3}
    thresholds = {"correctness": 0.5}
    strict_wf = client.defend.create_workflow(**body, custom_hallucination_threshold_values=thresholds)
    lenient_wf = client.defend.create_workflow(
        **body, custom_hallucination_threshold_values=thresholds, extra_body={"declined_passes": True}
    )
    for workflow, filtered in ((strict_wf, True), (lenient_wf, False)):
        event = client.defend.submit_event(
            workflow.workflow_id,
            model_input=INPUT,
            model_output="Refunds take 5 days.",
            model_used="m",
            run_mode="smart",
        )
        event = wait_decided(client, workflow.workflow_id, event.event_id)
        # No ground truth or context: the embedded judge declines correctness (judged false).
        result = event.to_dict()["attempts"][0]["evaluation_result"]
        assert result["correctness"]["judged"] is False
        assert (event.filtered, event.attempt_number) == (filtered, 0)  # do_nothing makes no attempt


def test_an_inactive_workflow_refuses_events(alice_api: APIClient, alice: Any, company_a: Company) -> None:
    workflow = workflow_create(
        company=company_a, created_by=alice, name="w", type="custom", improvement_action="do_nothing",
        custom_hallucination_threshold_values={"completeness": 0.5},
    )  # fmt: skip
    Workflow.objects.filter(pk=workflow.pk).update(status=ActiveStatus.INACTIVE)
    body = {"model_input": INPUT, "model_output": "x", "model_used": "m", "run_mode": "smart"}
    response = alice_api.post(f"/defend/{workflow.workflow_id}/events", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "inactive" in response.json()["detail"]
    assert not WorkflowEvent.objects.exists()


@override_settings(MAX_EVALUATIONS_IN_FLIGHT=2)
def test_events_count_in_the_in_flight_quota(alice_api: APIClient, alice: Any, company_a: Company) -> None:
    workflow = workflow_create(
        company=company_a, created_by=alice, name="w", type="custom", improvement_action="do_nothing",
        custom_hallucination_threshold_values={"completeness": 0.5},
    )  # fmt: skip
    body = {"model_input": INPUT, "model_output": "x", "model_used": "m", "run_mode": "smart"}
    url = f"/defend/{workflow.workflow_id}/events"
    # Not a transactional test: the work is never sent, so the events stay queued and take the two slots; each
    # counts once, not again for its attempt's evaluation.
    for _ in range(2):
        assert alice_api.post(url, body, format="json").status_code == HTTPStatus.CREATED
    response = alice_api.post(url, body, format="json")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "MAX_EVALUATIONS_IN_FLIGHT" in response.json()["detail"]
    assert WorkflowEvent.objects.count() == 2


# --- Tenancy ---


@pytest.fixture
def workflow_a(alice: Any, company_a: Company) -> Workflow:
    return workflow_create(
        company=company_a, created_by=alice, name="Alpha", type="custom", improvement_action="do_nothing",
        custom_hallucination_threshold_values={"completeness": 0.5},
    )  # fmt: skip


def test_it_checks_ownership(alice_api: APIClient, charlie_api: APIClient, workflow_a: Workflow) -> None:
    body = {"model_input": INPUT, "model_output": "x", "model_used": "m", "run_mode": "smart"}
    url = f"/defend/{workflow_a.workflow_id}"
    event = alice_api.post(f"{url}/events", body, format="json").json()
    assert charlie_api.get(url).status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.put(url, {"name": "mine"}, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.post(f"{url}/events", body, format="json").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(f"{url}/events/{event['event_id']}").status_code == HTTPStatus.NOT_FOUND
    workflow_a.refresh_from_db()
    assert workflow_a.name == "Alpha"
    assert WorkflowEvent.objects.count() == 1


def test_it_requires_rw_access(alice_api: APIClient, bob_api: APIClient, workflow_a: Workflow) -> None:
    body = {"model_input": INPUT, "model_output": "x", "model_used": "m", "run_mode": "smart"}
    url = f"/defend/{workflow_a.workflow_id}"
    event = alice_api.post(f"{url}/events", body, format="json").json()
    assert bob_api.get(url).status_code == HTTPStatus.OK  # a viewer reads
    assert bob_api.get(f"{url}/events/{event['event_id']}").status_code == HTTPStatus.OK
    create = {
        "name": "w",
        "type": "custom",
        "improvement_action": "do_nothing",
        "custom_hallucination_threshold_values": {"completeness": 0.5},
    }
    assert bob_api.post("/defend", create, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.put(url, {"name": "x"}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert bob_api.post(f"{url}/events", body, format="json").status_code == HTTPStatus.FORBIDDEN
    assert Workflow.objects.count() == 1
    assert WorkflowEvent.objects.count() == 1


# --- Admin ---


def test_the_admin_lists_monitors_workflows_and_events_and_cancels_and_retries_events(
    alice_api: APIClient, workflow_a: Workflow, admin_client: Any
) -> None:
    monitor = monitor_create(company=workflow_a.company, created_by=None, name="m")
    body = {"model_input": INPUT, "model_output": "x", "model_used": "m", "run_mode": "smart"}
    alice_api.post(f"/defend/{workflow_a.workflow_id}/events", body, format="json")  # stays queued: no commit here
    event = WorkflowEvent.objects.get()
    for page in (
        reverse("admin:guardrails_monitor_changelist"),
        reverse("admin:guardrails_monitor_change", args=[monitor.pk]),
        reverse("admin:guardrails_workflow_changelist"),
        reverse("admin:guardrails_workflowevent_changelist"),
        reverse("admin:guardrails_workflowevent_change", args=[event.pk]),
    ):
        assert admin_client.get(page).status_code == HTTPStatus.OK
    changelist = reverse("admin:guardrails_workflowevent_changelist")
    admin_client.post(changelist, {"action": "retry", "_selected_action": [event.pk]})
    assert WorkflowEvent.objects.get().status == "queued"  # not failed: nothing to retry
    admin_client.post(changelist, {"action": "cancel", "_selected_action": [event.pk]})
    assert WorkflowEvent.objects.get().status == "canceled"
    assert WorkItem.objects.get(kind="defend.event", subject_id=event.pk).state == "canceled"
    WorkflowEvent.objects.update(status="failed", error_message="boom")
    admin_client.post(changelist, {"action": "retry", "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert (event.status, event.error_message) == ("queued", None)
    assert WorkItem.objects.get(kind="defend.event", subject_id=event.pk).state == "queued"
