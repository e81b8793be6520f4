"""Work item handlers (the work app runs them in django-q2 workers): thin functions that take the item and call
services (STYLE.md rule 9). Registered in GuardrailsConfig.ready()."""

from __future__ import annotations

from work.models import WorkItem
from work.registry import Result, register
from work.runner import Context

from . import defend, services


def run(item: WorkItem, ctx: Context) -> Result:
    return services.run_guardrail_evaluation(evaluation_id=item.subject_id, ctx=ctx)


def give_up(item: WorkItem, reason: str) -> None:
    services.guardrail_evaluation_fail(
        evaluation_id=item.subject_id, message=f"The evaluation could not finish: {reason}"
    )


def run_defend_event(item: WorkItem, ctx: Context) -> Result:
    return defend.run_workflow_event(event_id=item.subject_id, ctx=ctx)


def give_up_defend_event(item: WorkItem, reason: str) -> None:
    defend.workflow_event_fail(event_id=item.subject_id, message=f"The event could not finish: {reason}")


def register_all() -> None:
    register("guardrail.run", run=run, give_up=give_up)
    register("defend.event", run=run_defend_event, give_up=give_up_defend_event)
