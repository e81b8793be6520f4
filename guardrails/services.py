"""Guardrail evaluation workflows (DeepRails /evaluate): create and enqueue, claim, grade, complete.

Safe to run twice (DESIGN.md §6): the claim is a conditional UPDATE, each metric's result is written as soon as
it is known, and a re-delivered task resumes only the metrics that have no result yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check, storage_check
from llm.base import FatalJudgeError
from llm.engine import Judge, Outcome, ask_each
from llm.judges import resolve_judge, with_budget
from llm.ledger import CallLedger, record_calls
from work.dispatch import work_cancel, work_create
from work.models import WorkItem
from work.registry import Result

from .metrics import DEFAULT_RUN_MODE, METRIC_NEEDS, MODEL_INPUT_FIELDS, default_metrics
from .models import GuardrailEvaluation
from .rubrics import (
    PROMPT_VERSION,
    RunModeConfig,
    failed_result,
    guardrail_request,
    judged_result,
    panel_result,
    run_mode_config,
    validator,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

BATCH_MAX_ITEMS = 1000


class GuardrailInputError(ValueError):
    """A request that is well-formed but cannot be evaluated (the API answers 400)."""


# --- Creating ---


@dataclass(frozen=True)
class GuardrailInput:
    """One evaluation request after the semantic checks, ready to save."""

    model_input: dict[str, str]
    model_output: str
    run_mode: str
    guardrail_metrics: list[str]
    model_used: str | None = None
    nametag: str | None = None


def guardrail_input_check(
    *,
    model_input: dict[str, Any],
    model_output: str,
    run_mode: str | None = None,
    guardrail_metrics: list[str] | None = None,
    model_used: str | None = None,
    nametag: str | None = None,
) -> GuardrailInput:
    """Apply the rules a schema cannot express; raise GuardrailInputError naming the one broken."""
    given = {k: model_input[k] for k in MODEL_INPUT_FIELDS if model_input.get(k) is not None}
    if not any(str(given.get(k, "")).strip() for k in ("user_prompt", "system_prompt")):
        raise GuardrailInputError("model_input must contain at least a user_prompt or a system_prompt.")
    if guardrail_metrics is None:
        metrics = default_metrics(given)
    else:
        metrics = list(dict.fromkeys(guardrail_metrics))  # duplicates would be graded (and billed) twice
        if not metrics:
            raise GuardrailInputError(
                "guardrail_metrics is empty: name at least one metric, or leave it out for the default set."
            )
    for metric, needed in METRIC_NEEDS.items():
        if metric in metrics and not str(given.get(needed, "")).strip():
            raise GuardrailInputError(f"{metric} needs model_input.{needed}, which is missing or empty.")
    return GuardrailInput(
        model_input=given,
        model_output=model_output,
        run_mode=run_mode or DEFAULT_RUN_MODE,
        guardrail_metrics=metrics,
        model_used=model_used,
        nametag=nametag,
    )


def _requested_judges(run_mode: str) -> list[str]:
    try:
        return list(run_mode_config(run_mode).judges)
    except ValueError:
        return []  # a misconfigured mode fails the evaluation in the worker, with the reason


def guardrail_evaluation_new(*, company: Company, created_by: User | None, data: GuardrailInput) -> GuardrailEvaluation:
    """An unsaved, queued evaluation of checked input (Defend grades its attempts inline, with no work item)."""
    return GuardrailEvaluation(
        company=company,
        created_by=created_by,
        run_mode=data.run_mode,
        guardrail_metrics=data.guardrail_metrics,
        model_input=data.model_input,
        model_output=data.model_output,
        stored_bytes=GuardrailEvaluation.text_bytes(data.model_input, data.model_output),
        model_used=data.model_used,
        nametag=data.nametag,
        trace={"prompt_version": PROMPT_VERSION, "requested_judges": _requested_judges(data.run_mode)},
    )


def _enqueue(evaluation: GuardrailEvaluation) -> None:
    work_create(
        company_id=evaluation.company_id,
        kind="guardrail.run",
        subject_id=evaluation.id,
        key=f"guardrail.run:{evaluation.id}",
    )


def _enqueue_new(evaluation: GuardrailEvaluation) -> None:
    _enqueue(evaluation)
    # A new evaluation has made no calls: the response needs no ledger query.
    evaluation.total_cost = Decimal(0)  # type: ignore[attr-defined]
    evaluation.calls = 0  # type: ignore[attr-defined]


@transaction.atomic
def guardrail_evaluation_create(
    *,
    company: Company,
    created_by: User | None,
    model_input: dict[str, Any],
    model_output: str,
    run_mode: str | None = None,
    guardrail_metrics: list[str] | None = None,
    model_used: str | None = None,
    nametag: str | None = None,
) -> GuardrailEvaluation:
    """Create a queued guardrail evaluation and enqueue it once the row is committed."""
    data = guardrail_input_check(
        model_input=model_input,
        model_output=model_output,
        run_mode=run_mode,
        guardrail_metrics=guardrail_metrics,
        model_used=model_used,
        nametag=nametag,
    )
    quota_check(company=company, evaluations=1, samples=1)  # raises QuotaExceeded (a 429)
    evaluation = guardrail_evaluation_new(company=company, created_by=created_by, data=data)
    storage_check(company=company, adding=evaluation.stored_bytes, what="this evaluation's text")  # else a 413
    evaluation.save()
    _enqueue_new(evaluation)
    return evaluation


@transaction.atomic
def guardrail_evaluation_create_batch(
    *, company: Company, created_by: User | None, items: list[dict[str, Any]]
) -> list[GuardrailEvaluation]:
    """Check every item first, then create them all (or none), each enqueued once committed."""
    if not 1 <= len(items) <= BATCH_MAX_ITEMS:
        raise GuardrailInputError(f"items must hold between 1 and {BATCH_MAX_ITEMS} evaluations.")
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(guardrail_input_check(**item))
        except GuardrailInputError as exc:
            raise GuardrailInputError(f"items[{index}]: {exc}") from exc
    quota_check(company=company, evaluations=len(checked), samples=len(checked))
    new = [guardrail_evaluation_new(company=company, created_by=created_by, data=data) for data in checked]
    storage_check(company=company, adding=sum(e.stored_bytes for e in new), what="this batch's texts")
    evaluations = GuardrailEvaluation.objects.bulk_create(new)
    for evaluation in evaluations:
        _enqueue_new(evaluation)
    return evaluations


# --- Running (the worker) ---


@dataclass(frozen=True)
class PanelJudge:
    """One judge of a run mode, as resolved: possibly the offline heuristic standing in for the one asked for."""

    name: str  # the model that judges: the one asked for, or offline/heuristic
    requested: str
    judge: Judge
    fallback_reason: str = ""


@dataclass
class Panel:
    mode: RunModeConfig
    judges: list[PanelJudge]
    # Judges of the mode that cannot take part, with why: they show up in every metric's failed_judges.
    unavailable: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_offline(self) -> bool:
        return all(j.judge.model.is_offline for j in self.judges)

    def trace(self) -> dict[str, Any]:
        reasons = [j.fallback_reason for j in self.judges if j.fallback_reason]
        reasons += [u["error"] for u in self.unavailable]
        return {
            "prompt_version": PROMPT_VERSION,
            "requested_judges": list(self.mode.judges),
            "judges": [j.name for j in self.judges],
            "offline_judge": self.is_offline,
            "fallback_reason": "; ".join(reasons) or None,
            "unavailable_judges": self.unavailable,
            "call_per_metric": self.mode.call_per_metric,
        }


def panel_for(run_mode: str) -> Panel:
    """Resolve the run mode's judges. FatalJudgeError when none can judge (e.g. no credentials, fallback off).

    A panel (precision_plus) carries on with the judges it has; it never averages a real judge with the offline
    heuristic, which would pass a guess off as half of a measurement.
    """
    mode = run_mode_config(run_mode)
    judges: list[PanelJudge] = []
    unavailable: list[dict[str, str]] = []
    for name in mode.judges:
        try:
            resolved = resolve_judge(name)
        except FatalJudgeError as exc:
            if not mode.is_panel:
                raise
            unavailable.append({"model": name, "error": str(exc)})
            continue
        judge = with_budget(resolved.judge, mode.max_tokens)  # a combined call writes several metrics
        judges.append(PanelJudge(resolved.model.name, name, judge, resolved.fallback_reason))
    real = [j for j in judges if not j.judge.model.is_offline]
    if real and len(real) < len(judges):
        unavailable += [{"model": j.requested, "error": j.fallback_reason} for j in judges if j not in real]
        judges = real
    elif not real and judges:
        # The heuristic twice would agree with itself: once is enough, with every judge's reason for missing.
        reason = "; ".join(j.fallback_reason for j in judges if j.fallback_reason)
        judges = [replace(judges[0], fallback_reason=reason)]
    if not judges:
        raise FatalJudgeError("No judge is available: " + "; ".join(f"{u['model']}: {u['error']}" for u in unavailable))
    return Panel(mode, judges, unavailable)


@dataclass(frozen=True)
class Call:
    judge: PanelJudge
    metrics: tuple[str, ...]


def _plan(panel: Panel, metrics: list[str]) -> list[Call]:
    if panel.mode.call_per_metric:
        return [Call(judge, (metric,)) for metric in metrics for judge in panel.judges]
    return [Call(judge, tuple(metrics)) for judge in panel.judges]


def _ask(
    call: Call, *, evaluation: GuardrailEvaluation, combined: bool, dead: dict[str, str], deadline: float
) -> Outcome:
    """Make one call (in a pool thread: no database here). A judge that failed fatally is not asked again."""
    if call.judge.name in dead:
        return Outcome(error=dead[call.judge.name], fatal=True)
    request = guardrail_request(
        metrics=call.metrics,
        model_input=evaluation.model_input,
        model_output=evaluation.model_output,
        combined=combined,
    )
    ledger = CallLedger(company_id=evaluation.company_id, purpose="guardrail", subject=evaluation)
    outcome = call.judge.judge.ask(
        request, validator(metrics=call.metrics, combined=combined), deadline=deadline, ledger=ledger
    )
    if outcome.fatal:
        # Marked here, not when the result is read, so this judge's next queued call already sees it.
        dead.setdefault(call.judge.name, outcome.error)
    return outcome


def _save_metric(*, evaluation_id: int, metric: str, result: dict[str, Any]) -> None:
    """Write one metric's result and the progress it makes, at once; a result already there stands."""
    with transaction.atomic():
        evaluation = GuardrailEvaluation.objects.select_for_update().get(id=evaluation_id)
        if evaluation.status != GuardrailEvaluation.Status.IN_PROGRESS:
            return
        results = dict(evaluation.evaluation_result or {})
        if metric in results:
            return  # a duplicate worker got there first
        results[metric] = result
        metrics = evaluation.guardrail_metrics
        evaluation.evaluation_result = {m: results[m] for m in metrics if m in results}
        # 100 means completed (the wire contract), so a running evaluation stops at 99.
        evaluation.progress = min(99, 100 * len(evaluation.evaluation_result) // max(1, len(metrics)))
        evaluation.save(update_fields=["evaluation_result", "progress", "modified_at"])


def guardrail_evaluation_fail(*, evaluation_id: int, message: str) -> None:
    """End the evaluation FAILED with `message` (unless it already ended), and its work item."""
    now = timezone.now()
    GuardrailEvaluation.objects.filter(
        id=evaluation_id, status__in=[GuardrailEvaluation.Status.QUEUED, GuardrailEvaluation.Status.IN_PROGRESS]
    ).update(
        status=GuardrailEvaluation.Status.FAILED,
        error_message=message,
        error_timestamp=now,
        end_timestamp=now,
        modified_at=now,
    )
    work_cancel(kind_prefix="guardrail.", subject_id=evaluation_id, reason=message)


def guardrail_evaluation_cancel(*, evaluation: GuardrailEvaluation) -> GuardrailEvaluation:
    """Stop an unfinished evaluation: `canceled` (terminal); a running worker makes no new call after its next
    heartbeat (WORK_HEARTBEAT_SECONDS)."""
    if evaluation.is_terminal:
        raise GuardrailInputError(
            f"Only queued or in_progress evaluations can be canceled; this one is {evaluation.status}."
        )
    now = timezone.now()
    GuardrailEvaluation.objects.filter(
        id=evaluation.id, status__in=[GuardrailEvaluation.Status.QUEUED, GuardrailEvaluation.Status.IN_PROGRESS]
    ).update(status=GuardrailEvaluation.Status.CANCELED, end_timestamp=now, modified_at=now)
    work_cancel(kind_prefix="guardrail.", subject_id=evaluation.id, reason="canceled")
    evaluation.refresh_from_db()
    return evaluation


@transaction.atomic
def guardrail_evaluation_retry(*, evaluation: GuardrailEvaluation) -> GuardrailEvaluation:
    """Run a failed evaluation again: metrics already graded keep their results, the others are graded."""
    if evaluation.status != GuardrailEvaluation.Status.FAILED:
        raise GuardrailInputError(f"Only failed evaluations can be retried; this one is {evaluation.status}.")
    GuardrailEvaluation.objects.filter(id=evaluation.id, status=GuardrailEvaluation.Status.FAILED).update(
        status=GuardrailEvaluation.Status.QUEUED,
        error_message=None,
        error_timestamp=None,
        end_timestamp=None,
        modified_at=timezone.now(),
    )
    WorkItem.objects.for_subject("guardrail.", evaluation.id).delete()
    _enqueue(evaluation)
    evaluation.refresh_from_db()
    return evaluation


def run_guardrail_evaluation(*, evaluation_id: int, ctx: Context) -> Result:
    """Start (or resume: the work item's claim makes this worker the only one) and grade the metrics that have
    no result yet, each written as soon as its judges have answered; then complete."""
    now = timezone.now()
    GuardrailEvaluation.objects.filter(id=evaluation_id, status=GuardrailEvaluation.Status.QUEUED).update(
        status=GuardrailEvaluation.Status.IN_PROGRESS, start_timestamp=now, modified_at=now
    )
    evaluation = GuardrailEvaluation.objects.filter(id=evaluation_id).first()
    if evaluation is None or evaluation.status != GuardrailEvaluation.Status.IN_PROGRESS:
        return Result.DONE  # deleted, finished or canceled
    try:
        panel = panel_for(evaluation.run_mode)
    except (FatalJudgeError, ValueError) as exc:
        guardrail_evaluation_fail(evaluation_id=evaluation_id, message=str(exc))
        return Result.DONE
    GuardrailEvaluation.objects.filter(id=evaluation_id).update(trace=panel.trace(), modified_at=timezone.now())
    done = set(evaluation.evaluation_result or {})
    remaining = [m for m in evaluation.guardrail_metrics if m not in done]
    if remaining:
        error = _grade(evaluation=evaluation, panel=panel, metrics=remaining, ctx=ctx)
        if error:
            guardrail_evaluation_fail(evaluation_id=evaluation_id, message=error)
            return Result.DONE
        evaluation.refresh_from_db(fields=["evaluation_result"])
        if ctx.stop_reason or set(evaluation.guardrail_metrics) - set(evaluation.evaluation_result or {}):
            return Result.YIELD
    now = timezone.now()
    GuardrailEvaluation.objects.filter(id=evaluation_id, status=GuardrailEvaluation.Status.IN_PROGRESS).update(
        status=GuardrailEvaluation.Status.COMPLETED, progress=100, end_timestamp=now, modified_at=now
    )
    return Result.DONE


def _result(
    panel: Panel, metric: str, grades: list[tuple[str, dict[str, Any]]], failures: list[dict[str, str]]
) -> dict[str, Any]:
    if panel.mode.is_panel:
        return panel_result(metric, grades, panel.unavailable + failures)
    if grades:
        [(judge, grade)] = grades
        return judged_result(judge, grade)
    [failure] = failures
    return failed_result(failure["model"], failure["error"])


def _grade(*, evaluation: GuardrailEvaluation, panel: Panel, metrics: list[str], ctx: Context) -> str:
    """Make the mode's calls concurrently, writing each metric once all its judges have answered.

    Returns the message of a fatal error that ends the evaluation, or "" when every metric has its result.
    """
    calls = _plan(panel, metrics)
    combined = not panel.mode.call_per_metric
    waiting = {m: {j.name for j in panel.judges} for m in metrics}
    grades: dict[str, list[tuple[str, dict[str, Any]]]] = {m: [] for m in metrics}
    failures: dict[str, list[dict[str, str]]] = {m: [] for m in metrics}
    dead: dict[str, str] = {}  # judges that failed fatally: the pool's threads skip their remaining calls

    def on_answer(call: Call, outcome: Outcome) -> bool:
        record_calls(
            company_id=evaluation.company_id,
            model=call.judge.judge.model,
            purpose="guardrail",
            attempts=outcome.attempts,
            subject=evaluation,
        )
        judge = call.judge.name
        if outcome.fatal:
            dead.setdefault(judge, outcome.error)
        if len(dead) == len(panel.judges):
            return False  # no judge left: stop (calls in flight are still handed here, and recorded)
        if outcome.deferred:
            return False  # out of time in this run: the metrics without a result are graded in the next run
        for metric in call.metrics:
            if outcome.ok:
                grades[metric].append((judge, outcome.answer[metric]))
            else:
                failures[metric].append({"model": judge, "error": outcome.error})
            waiting[metric].discard(judge)
            if not waiting[metric]:
                result = _result(panel, metric, grades[metric], failures[metric])
                _save_metric(evaluation_id=evaluation.id, metric=metric, result=result)
                ctx.progressed()
        return True

    ask_each(
        calls,
        partial(_ask, evaluation=evaluation, combined=combined, dead=dead, deadline=ctx.deadline),
        on_answer,
        workers=max(1, min(len(calls), settings.JUDGE_CONCURRENCY)),
        tick=ctx.tick,
    )
    if len(dead) == len(panel.judges):
        if len(panel.judges) == 1:
            return f"The judge failed: {next(iter(dead.values()))}"
        return "Every judge failed: " + "; ".join(f"{name}: {error}" for name, error in dead.items())
    return ""
