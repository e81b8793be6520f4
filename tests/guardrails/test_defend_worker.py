"""Defend events through a real worker process (`manage.py worker`) against the stand-in provider on 127.0.0.1:
an event is a work item, graded and improved in the background; a worker killed mid-loop loses no attempt."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.standin import StandIn
from companies.models import Company
from guardrails.defend import workflow_create, workflow_event_create
from guardrails.models import WorkflowAttempt, WorkflowEvent
from llm.models import JudgeCall
from tests.conftest import STANDIN_MODEL
from tests.test_worker import FAST, wait_for

INPUT = {"system_prompt": "You are a support agent.", "user_prompt": "How long do refunds take?"}


def test_an_event_is_improved_to_the_maximum_by_a_real_worker_and_survives_a_kill(
    start_worker: Any, standin: StandIn, company_a: Company, settings: Any, alice: Any
) -> None:
    settings.GUARDRAIL_RUN_MODES = {
        **settings.GUARDRAIL_RUN_MODES,
        "economy": {"judges": [STANDIN_MODEL], "call_per_metric": False, "max_tokens": 1024},
    }
    settings.DEFEND_WRITER_MODEL = STANDIN_MODEL
    env = {
        **FAST,
        "GUARDRAIL_RUN_MODES_JSON": json.dumps(settings.GUARDRAIL_RUN_MODES),
        "DEFEND_WRITER_MODEL": STANDIN_MODEL,
    }
    # The stand-in's scores are random in [0, 1): a threshold of 1 is never met, so every attempt is made.
    workflow = workflow_create(
        company=company_a,
        created_by=alice,
        name="w",
        type="custom",
        improvement_action="regen",
        custom_hallucination_threshold_values={"completeness": 1.0},
        max_improvement_attempts=4,
    )
    event = workflow_event_create(
        workflow=workflow, created_by=alice, model_input=INPUT, model_output="Soon.", model_used="m", run_mode="economy"
    )
    standin.configure(latency=0.5)
    worker = start_worker(**env)
    attempts = WorkflowAttempt.objects.filter(event=event)
    wait_for(lambda: attempts.count() >= 2, timeout=30, every=0.02)
    worker.kill()
    start_worker(**env)
    wait_for(lambda: WorkflowEvent.objects.get(pk=event.pk).is_terminal, timeout=90)
    event.refresh_from_db()
    assert (event.status, event.filtered, event.error_message) == ("completed", True, None)
    assert list(attempts.order_by("number").values_list("number", "passed")) == [(n, False) for n in range(5)]
    assert all(a.evaluation.status == "completed" for a in attempts.select_related("evaluation"))
    # A writer call per improvement. The kill may fall between a call and the save of its attempt: that one call is
    # made again (and both are billed), but no attempt is written twice (the unique constraint on event, number).
    written = list(
        JudgeCall.objects.filter(purpose="defend", outcome="ok", workflow_event=event).values_list("item_id", flat=True)
    )
    assert set(written) == {1, 2, 3, 4}
    assert len(written) <= 5
