"""Defend workflows (DeepRails `client.defend`): thresholds per metric, and an improvement loop per event.

An event's output is graded by the guardrail engine (attempt 0). While it misses a threshold and attempts are left,
the improvement action writes a new output (ReGen: the prompt asked again, with a nudge for variance; FixIt: the
failing output rewritten from the failing metrics' rationales) and that output is graded in turn. Every attempt's
output, evaluation and writer calls are kept.

Safe to run twice (DESIGN.md §6): each attempt is a row written with its evaluation before it is graded, grading
resumes the metrics that have no result, and a re-delivered item picks up at the latest attempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check, storage_check
from llm.base import BadReply, StructuredRequest
from llm.judges import NoWriter, resolve_writer, with_budget
from llm.ledger import CallLedger, record_calls
from llm.prompts import fenced
from work.dispatch import work_cancel, work_create
from work.models import WorkItem
from work.registry import Result

from .metrics import METRICS
from .models import GuardrailEvaluation, Workflow, WorkflowAttempt, WorkflowEvent
from .services import (
    GuardrailInputError,
    guardrail_evaluation_new,
    guardrail_input_check,
    run_guardrail_evaluation,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

# What each automatic tolerance means. The tolerance is for hallucination: a workflow that tolerates little of it
# ("low") holds outputs to a high bar. The values sit on the rubrics' anchors (rubrics.py): 0.9 admits only minor
# slips, 0.75 tolerates one unsupported detail in an otherwise sound answer, 0.5 refuses only answers that are
# mostly wrong or off-task.
TOLERANCE_THRESHOLDS = {"low": 0.9, "medium": 0.75, "high": 0.5}

WRITER_HELP = (
    "Improving outputs (regen, fixit) needs an LLM that writes: start the service with ANTHROPIC_API_KEY=... or "
    "OPENAI_API_KEY=..., or set DEFEND_WRITER_MODEL to a model of JUDGE_MODELS_FILE (an OpenAI-compatible server: "
    "vLLM, Ollama, llama.cpp). improvement_action do_nothing needs no writer."
)


# --- Workflows ---


def _thresholds(
    *, threshold_type: str, custom: dict[str, Any] | None, automatic: dict[str, str] | None
) -> dict[str, float]:
    """The threshold per metric a workflow's type and values mean; GuardrailInputError naming what is wrong."""
    is_automatic = threshold_type == Workflow.ThresholdType.AUTOMATIC
    names = ["custom_hallucination_threshold_values", "automatic_hallucination_tolerance_levels"]
    given, other = names[::-1] if is_automatic else names
    values: dict[str, Any] | None = automatic if is_automatic else custom
    if (custom if is_automatic else automatic) is not None:
        raise GuardrailInputError(
            f"{other} is for the other type of workflow; with type {threshold_type} send {given}."
        )
    if not values:
        raise GuardrailInputError(f"A workflow of type {threshold_type} needs {given}: at least one metric.")
    unknown = [m for m in values if m not in METRICS]
    if unknown:
        raise GuardrailInputError(f"{given} names unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}.")
    if is_automatic:
        return {m: TOLERANCE_THRESHOLDS[level] for m, level in values.items()}
    return {m: float(v) for m, v in values.items()}


def workflow_create(
    *,
    company: Company,
    created_by: User | None,
    name: str,
    type: str,  # noqa: A002  # the wire's name
    improvement_action: str,
    description: str | None = None,
    custom_hallucination_threshold_values: dict[str, float] | None = None,
    automatic_hallucination_tolerance_levels: dict[str, str] | None = None,
    max_improvement_attempts: int = 10,
    declined_passes: bool = False,
) -> Workflow:
    """Check and save a workflow. regen and fixit need a writer model now, not when the first event fails."""
    thresholds = _thresholds(
        threshold_type=type,
        custom=custom_hallucination_threshold_values,
        automatic=automatic_hallucination_tolerance_levels,
    )
    writer_model = ""
    if improvement_action != Workflow.Action.DO_NOTHING:
        writer_model = settings.DEFEND_WRITER_MODEL
        try:
            resolve_writer(writer_model)
        except NoWriter as exc:
            raise GuardrailInputError(f"{improvement_action} cannot run: {exc} {WRITER_HELP}") from exc
    return Workflow.objects.create(
        company=company,
        created_by=created_by,
        name=name,
        description=description,
        threshold_type=type,
        tolerance_levels=automatic_hallucination_tolerance_levels or {},
        thresholds=thresholds,
        improvement_action=improvement_action,
        max_improvement_attempts=max_improvement_attempts,
        writer_model=writer_model,
        declined_passes=declined_passes,
    )


def workflow_update(*, workflow: Workflow, name: str | None = None, description: str | None = None) -> Workflow:
    """Change what was given (the client's update sends only name and description)."""
    if name is not None:
        workflow.name = name
    if description is not None:
        workflow.description = description
    workflow.save()
    return workflow


# --- Events ---


def _enqueue(event: WorkflowEvent) -> None:
    work_create(company_id=event.company_id, kind="defend.event", subject_id=event.id, key=f"defend.event:{event.id}")


@transaction.atomic
def workflow_event_create(
    *,
    workflow: Workflow,
    created_by: User | None,
    model_input: dict[str, Any],
    model_output: str,
    model_used: str,
    run_mode: str,
    nametag: str | None = None,
) -> WorkflowEvent:
    """Queue an event (graded and improved by a worker once committed). An inactive workflow takes none."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if not workflow.is_active:
        raise GuardrailInputError("This workflow is inactive and takes no events.")
    data = guardrail_input_check(
        model_input=model_input, model_output=model_output, run_mode=run_mode, guardrail_metrics=workflow.metrics
    )
    quota_check(company=workflow.company, evaluations=1, samples=1)  # raises QuotaExceeded (a 429)
    # Counted once, as its first attempt's evaluation (each improvement's evaluation counts as it is written).
    text_bytes = GuardrailEvaluation.text_bytes(data.model_input, model_output)
    storage_check(company=workflow.company, adding=text_bytes, what="this event's text")
    event = WorkflowEvent.objects.create(
        workflow=workflow,
        company=workflow.company,
        run_mode=data.run_mode,
        model_input=data.model_input,
        model_output=model_output,
        model_used=model_used,
        nametag=nametag,
    )
    _attempt_create(event=event, workflow=workflow, number=0, output=model_output, created_by=created_by)
    _enqueue(event)
    return event


def _attempt_create(
    *, event: WorkflowEvent, workflow: Workflow, number: int, output: str, created_by: User | None = None
) -> WorkflowAttempt:
    """An attempt and its (queued) evaluation, saved together: a retry finds either both or neither."""
    data = guardrail_input_check(
        model_input=event.model_input,
        model_output=output,
        run_mode=event.run_mode,
        guardrail_metrics=workflow.metrics,
        model_used=event.model_used if number == 0 else workflow.writer_model,
        nametag=event.nametag,
    )
    with transaction.atomic():
        evaluation = guardrail_evaluation_new(company=workflow.company, created_by=created_by, data=data)
        evaluation.save()
        return WorkflowAttempt.objects.create(event=event, number=number, output=output, evaluation=evaluation)


def workflow_event_fail(*, event_id: int, message: str) -> None:
    """End the event FAILED with `message` (unless it already ended), and its work item."""
    WorkflowEvent.objects.filter(
        id=event_id, status__in=[WorkflowEvent.Status.QUEUED, WorkflowEvent.Status.IN_PROGRESS]
    ).update(status=WorkflowEvent.Status.FAILED, error_message=message, modified_at=timezone.now())
    work_cancel(kind_prefix="defend.", subject_id=event_id, reason=message)


def workflow_event_cancel(*, event: WorkflowEvent) -> WorkflowEvent:
    """Stop an unfinished event: `canceled`; the worker starts no new call after its next heartbeat."""
    if event.is_terminal:
        raise GuardrailInputError(f"Only queued or in_progress events can be canceled; this one is {event.status}.")
    WorkflowEvent.objects.filter(
        id=event.id, status__in=[WorkflowEvent.Status.QUEUED, WorkflowEvent.Status.IN_PROGRESS]
    ).update(status=WorkflowEvent.Status.CANCELED, modified_at=timezone.now())
    work_cancel(kind_prefix="defend.", subject_id=event.id, reason="canceled")
    event.refresh_from_db()
    return event


@transaction.atomic
def workflow_event_retry(*, event: WorkflowEvent) -> WorkflowEvent:
    """Run a failed event again from its latest attempt (whose graded metrics are kept)."""
    if event.status != WorkflowEvent.Status.FAILED:
        raise GuardrailInputError(f"Only failed events can be retried; this one is {event.status}.")
    WorkflowEvent.objects.filter(id=event.id).update(
        status=WorkflowEvent.Status.QUEUED, error_message=None, modified_at=timezone.now()
    )
    latest = event.attempts.order_by("-number").first()
    if latest is not None:
        GuardrailEvaluation.objects.filter(id=latest.evaluation_id, status=GuardrailEvaluation.Status.FAILED).update(
            status=GuardrailEvaluation.Status.QUEUED, error_message=None, error_timestamp=None, end_timestamp=None
        )
    WorkItem.objects.for_subject("defend.", event.id).delete()
    _enqueue(event)
    event.refresh_from_db()
    return event


# --- Improving an output (the writer's prompts) ---

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"output": {"type": "string", "description": "The new answer, in full, and nothing else."}},
    "required": ["output"],
    "additionalProperties": False,
}
_TAGS = ("system_prompt", "user_prompt", "context", "previous_output", "failed_checks")


def _validate_output(data: Any) -> str:
    output = data.get("output") if isinstance(data, dict) else None
    if not isinstance(output, str) or not output.strip():
        raise BadReply("the reply has no output")
    return output


def improvement_request(
    *, action: str, event: WorkflowEvent, previous: WorkflowAttempt, failing: list[str], number: int
) -> StructuredRequest:
    """The writer's call for attempt `number`. The prompts and outputs are untrusted text: fenced, never obeyed."""
    model_input = event.model_input
    task = "\n\n".join(
        fenced(tag, str(model_input[tag]), also=_TAGS)
        for tag in ("system_prompt", "user_prompt", "context")
        if model_input.get(tag)
    )
    if action == Workflow.Action.REGEN:
        system = (
            "Answer the request below as the assistant it describes would, following its system prompt. "
            f"This is attempt {number}: an earlier answer fell short, so write a fresh one rather than a paraphrase."
        )
        user = task
    else:
        rationales = (previous.evaluation.evaluation_result or {}) if previous.evaluation_id else {}
        checks = "\n".join(f"- {m}: {(rationales.get(m) or {}).get('rationale', 'no rationale')}" for m in failing)
        system = (
            "You fix an assistant's answer that failed quality checks. Rewrite it so that every failed check passes, "
            "keeping what was right, and following the original system prompt. Reply with the whole new answer."
        )
        user = f"{task}\n\n{fenced('previous_output', previous.output, also=_TAGS)}\n\n{fenced('failed_checks', checks, also=_TAGS)}"
    return StructuredRequest(
        purpose="defend",
        system=system,
        user=user,
        schema=OUTPUT_SCHEMA,
        tool_name="record_output",
        tool_description="Record the new answer.",
    )


def _improve(*, event: WorkflowEvent, workflow: Workflow, previous: WorkflowAttempt, ctx: Context) -> str | None:
    """Ask the writer for the next output; None when it did not answer in this run (the item yields or fails)."""
    writer = with_budget(resolve_writer(workflow.writer_model), settings.DEFEND_WRITER_MAX_TOKENS)
    number = previous.number + 1
    request = improvement_request(
        action=workflow.improvement_action,
        event=event,
        previous=previous,
        failing=previous.failing_metrics,
        number=number,
    )
    ledger = CallLedger(company_id=event.company_id, purpose="defend", subject=event, item_id=number)
    outcome = writer.ask(request, _validate_output, deadline=ctx.deadline, ledger=ledger)
    # Paid for whatever came of it, and billed to the attempt it was for (item_id: its number) within the event.
    record_calls(
        company_id=event.company_id,
        model=writer.model,
        purpose="defend",
        attempts=outcome.attempts,
        subject=event,
        item_id=number,
    )
    if outcome.deferred:
        return None
    if not outcome.ok:
        raise WriterFailed(outcome.error)
    return str(outcome.answer)


class WriterFailed(Exception):
    """The writer gave no usable output after its retries (the event fails with the reason)."""


# --- Running (the worker) ---


def run_workflow_event(*, event_id: int, ctx: Context) -> Result:
    """Grade the latest attempt; while it fails and attempts are left, improve and grade again; then decide.

    1. claim the event (QUEUED -> IN_PROGRESS); a canceled or finished one is left alone;
    2. grade the latest attempt's output (resuming a half-graded one);
    3. passed: done, filtered false. Failed with no attempt left (or do_nothing): done, filtered true;
    4. else write the next output, save it as a new attempt, and go to 2.
    """
    WorkflowEvent.objects.filter(id=event_id, status=WorkflowEvent.Status.QUEUED).update(
        status=WorkflowEvent.Status.IN_PROGRESS, modified_at=timezone.now()
    )
    event = WorkflowEvent.objects.select_related("workflow").filter(id=event_id).first()
    if event is None or event.status != WorkflowEvent.Status.IN_PROGRESS:
        return Result.DONE
    workflow = event.workflow
    while True:
        attempt = event.attempts.select_related("evaluation").order_by("-number").first()
        if attempt is None:  # an event always has attempt 0; this only guards a hand-edited database
            workflow_event_fail(event_id=event_id, message="The event has no output to grade.")
            return Result.DONE
        if not attempt.evaluation.is_terminal:
            if run_guardrail_evaluation(evaluation_id=attempt.evaluation_id, ctx=ctx) is Result.YIELD:
                return Result.YIELD
            attempt.evaluation.refresh_from_db()
        if attempt.evaluation.status != GuardrailEvaluation.Status.COMPLETED:
            message = attempt.evaluation.error_message or f"the evaluation ended {attempt.evaluation.status}"
            workflow_event_fail(event_id=event_id, message=f"Attempt {attempt.number} could not be graded: {message}")
            return Result.DONE
        if attempt.passed is None:
            attempt.failing_metrics = workflow.failing_metrics(attempt.evaluation.evaluation_result)
            attempt.passed = not attempt.failing_metrics
            attempt.save(update_fields=["failing_metrics", "passed"])
        out_of_attempts = attempt.number >= workflow.max_improvement_attempts
        if attempt.passed or out_of_attempts or workflow.improvement_action == Workflow.Action.DO_NOTHING:
            WorkflowEvent.objects.filter(id=event_id, status=WorkflowEvent.Status.IN_PROGRESS).update(
                status=WorkflowEvent.Status.COMPLETED, filtered=not attempt.passed, modified_at=timezone.now()
            )
            return Result.DONE
        if not ctx.tick():
            return Result.YIELD
        try:
            output = _improve(event=event, workflow=workflow, previous=attempt, ctx=ctx)
        except (NoWriter, WriterFailed) as exc:
            workflow_event_fail(event_id=event_id, message=f"The writer failed: {exc}")
            return Result.DONE
        if output is None:
            return Result.YIELD
        event.refresh_from_db(fields=["status"])
        if event.status != WorkflowEvent.Status.IN_PROGRESS:
            return Result.DONE  # canceled while the writer wrote
        _attempt_create(event=event, workflow=workflow, number=attempt.number + 1, output=output)
