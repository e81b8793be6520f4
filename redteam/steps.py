"""What the worker does with a red-team run: 1. the behaviours, 2. each behaviour's prompts, 3. with a target, each
attack (the prompt sent, the answer scored), each result written as it arrives, so that a killed worker loses
nothing and a retry skips what is done (DESIGN.md §6)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import transaction
from django.utils import timezone

from guardrails.metrics import DEFAULT_RUN_MODE
from guardrails.rubrics import failed_result, judged_result
from guardrails.services import PanelJudge, panel_for
from llm.base import FatalJudgeError
from llm.catalog import JudgeModel
from llm.engine import Judge, Outcome, ask_each
from llm.judges import NoWriter, resolve_writer
from llm.ledger import record_calls
from work.registry import Result

from . import scoring, writing
from .models import RedTeamPrompt, RedTeamRun
from .services import cost_refresh, lock_active, red_team_run_fail

if TYPE_CHECKING:
    from work.runner import Context

T = TypeVar("T")


@dataclass
class Attacked:
    """What one attack came to: the target's answer and its scores, or why not; every call it took."""

    answer: str = ""
    scores: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    fatal: bool = False
    deferred: bool = False
    calls: list[tuple[JudgeModel, str, Outcome]] = field(default_factory=list)


@dataclass
class RedTeamJob:
    """Everything a run's steps need, resolved once per work item."""

    run: RedTeamRun
    writer: Judge
    target: Judge | None = None
    judge: PanelJudge | None = None
    judge_trace: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_run(cls, run: RedTeamRun) -> RedTeamJob:
        """Raises NoWriter, FatalJudgeError or ValueError (a misconfigured run mode) when a model cannot be used."""
        job = cls(run, resolve_writer(run.model_name))
        if run.target_model:
            job.target = resolve_writer(run.target_model)
            panel = panel_for(run.judge_run_mode or DEFAULT_RUN_MODE)
            # One judge grades each answer: a red-team run scores up to MAX_PROMPTS answers, and the panel modes'
            # second opinion is for single evaluations (the trace names the judge that graded).
            job.judge = panel.judges[0]
            job.judge_trace = {
                "run_mode": panel.mode.name,
                "judge": job.judge.name,
                "offline_judge": job.judge.judge.model.is_offline,
                "fallback_reason": job.judge.fallback_reason or None,
            }
        return job

    def attack(self, prompt: RedTeamPrompt, *, deadline: float) -> Attacked:
        """Send one prompt to the target and have its answer graded (in a pool thread: no database here)."""
        assert self.target is not None
        assert self.judge is not None
        result = Attacked()
        request = scoring.target_request(
            system_prompt=self.run.target_system_prompt, adversarial_prompt=prompt.adversarial_prompt
        )
        outcome = self.target.ask(request, scoring.validate_target_answer, deadline=deadline)
        result.calls.append((self.target.model, "redteam_target", outcome))
        if not outcome.ok:
            result.error, result.fatal, result.deferred = (
                f"the target: {outcome.error}",
                outcome.fatal,
                outcome.deferred,
            )
            return result
        result.answer = outcome.answer
        behavior = self.run.behaviors[prompt.behavior_index]
        grading = [
            scoring.safety_request(adversarial_prompt=prompt.adversarial_prompt, answer=result.answer),
            scoring.concern_request(
                concerns=self.run.spec.concerns,
                behavior=behavior,
                adversarial_prompt=prompt.adversarial_prompt,
                answer=result.answer,
            ),
        ]
        for metric, (grade_request, validate) in zip(scoring.METRICS, grading, strict=True):
            graded = self.judge.judge.ask(grade_request, validate, deadline=deadline)
            result.calls.append((self.judge.judge.model, "guardrail", graded))
            if graded.fatal or graded.deferred:
                result.error, result.fatal, result.deferred = (
                    f"the judge: {graded.error}",
                    graded.fatal,
                    graded.deferred,
                )
                return result
            if graded.ok:
                result.scores[metric] = judged_result(self.judge.name, graded.answer[metric])
            else:
                result.scores[metric] = failed_result(self.judge.name, graded.error)
        return result


def _record(run: RedTeamRun, calls: Iterable[tuple[JudgeModel, str, Outcome]], item_id: int | None = None) -> None:
    for model, purpose, outcome in calls:
        record_calls(
            company_id=run.company_id,
            model=model,
            purpose=purpose,
            attempts=outcome.attempts,
            subject=run,
            item_id=item_id,
        )


def _ask_all(
    items: list[T],
    ask: Callable[[T], Any],
    save: Callable[[T, Any], str],
    ctx: Context,
) -> tuple[str, bool]:
    """Ask about every item concurrently, saving each answer as it arrives. `save` returns a fatal error ("" to go
    on). Returns (the fatal error or "", whether every item was asked and none deferred)."""
    fatal: list[str] = []
    deferred: list[bool] = []

    def on_answer(item: T, answer: Any) -> bool:
        error = save(item, answer)
        if getattr(answer, "deferred", False):
            deferred.append(True)
            return False
        ctx.progressed()
        if error:
            fatal.append(error)
        return not fatal

    finished = ask_each(items, ask, on_answer, tick=ctx.tick)
    return (fatal[0] if fatal else ""), finished and not deferred


def _processing(run_id: int) -> RedTeamRun | None:
    return RedTeamRun.objects.select_related("spec").filter(id=run_id, status=RedTeamRun.Status.PROCESSING).first()


def red_team_run_work(*, run_id: int, ctx: Context) -> Result:
    """Claim the run and do what is left of it: 1. the behaviours, 2. each behaviour's prompts, 3. with a target,
    each attack; then end it SUCCEEDED. A fatal error (credentials, unknown model) ends it FAILED with why."""
    RedTeamRun.objects.filter(id=run_id, status=RedTeamRun.Status.PENDING).update(
        status=RedTeamRun.Status.PROCESSING, started_at=timezone.now()
    )
    run = _processing(run_id)
    if run is None:
        return Result.DONE  # deleted, finished or canceled
    try:
        job = RedTeamJob.for_run(run)
    except (NoWriter, FatalJudgeError, ValueError) as exc:
        red_team_run_fail(run_id=run_id, message=str(exc))
        return Result.DONE
    if job.judge_trace:
        RedTeamRun.objects.filter(id=run_id).update(trace={**run.trace, **job.judge_trace})
    for step in (_write_behaviors, _write_prompts, _attack):
        error, finished = step(job, ctx)
        cost_refresh(run_id)
        if error:
            red_team_run_fail(run_id=run_id, message=error)
            return Result.DONE
        if ctx.lost:
            return Result.DONE  # another worker owns the item now
        if not finished:
            return Result.YIELD  # stopped, or out of time: the next turn goes on from the rows
        run.refresh_from_db(fields=["behaviors", "status"])
        if run.status != RedTeamRun.Status.PROCESSING:
            return Result.DONE
    RedTeamRun.objects.filter(id=run_id, status=RedTeamRun.Status.PROCESSING).update(
        status=RedTeamRun.Status.SUCCEEDED, completed_at=timezone.now()
    )
    return Result.DONE


def _write_behaviors(job: RedTeamJob, ctx: Context) -> tuple[str, bool]:
    run = job.run
    if run.behaviors:
        return "", True
    count = run.number_of_behaviors

    def save(_request: object, outcome: Outcome) -> str:
        with transaction.atomic():
            active = lock_active(run.id)
            _record(run, [(job.writer.model, "redteam", outcome)])
            if active and outcome.ok:
                RedTeamRun.objects.filter(id=run.id).update(behaviors=outcome.answer)
        if outcome.ok or outcome.deferred:
            return ""
        return f"The behaviours could not be written: {outcome.error}"

    request = writing.behaviors_request(run.spec, count)
    return _ask_all(
        [request],
        lambda r: job.writer.ask(r, lambda data: writing.validate_behaviors(data, count), deadline=ctx.deadline),
        save,
        ctx,
    )


def _write_prompts(job: RedTeamJob, ctx: Context) -> tuple[str, bool]:
    run = job.run
    count = run.number_of_prompts_per_behavior
    done = set(run.prompts.values_list("behavior_index", flat=True))
    todo = [i for i in range(len(run.behaviors)) if i not in done]

    def ask(index: int) -> Outcome:
        request = writing.prompts_request(run.spec, run.behaviors[index], count)
        return job.writer.ask(request, lambda data: writing.validate_prompts(data, count), deadline=ctx.deadline)

    def save(index: int, outcome: Outcome) -> str:
        with transaction.atomic():
            active = lock_active(run.id)
            _record(run, [(job.writer.model, "redteam", outcome)], item_id=index)
            if active and outcome.ok:
                RedTeamPrompt.objects.bulk_create(
                    [
                        RedTeamPrompt(run=run, behavior_index=index, position=position, **prompt)
                        for position, prompt in enumerate(outcome.answer)
                    ],
                    ignore_conflicts=True,  # a duplicate delivery wrote them first: its prompts stand
                )
        if outcome.ok or outcome.deferred:
            return ""
        return f"The prompts for behaviour #{index + 1} could not be written: {outcome.error}"

    return _ask_all(todo, ask, save, ctx)


def _attack(job: RedTeamJob, ctx: Context) -> tuple[str, bool]:
    run = job.run
    if job.target is None:
        return "", True
    todo = list(run.prompts.filter(attacked=False).order_by("behavior_index", "position"))

    def save(prompt: RedTeamPrompt, result: Attacked) -> str:
        with transaction.atomic():
            active = lock_active(run.id)
            _record(run, result.calls, item_id=prompt.id)
            if active and not (result.fatal or result.deferred):
                RedTeamPrompt.objects.filter(id=prompt.id, attacked=False).update(
                    attacked=True,
                    answer=result.answer,
                    scores=result.scores,
                    succeeded=scoring.attack_succeeded(result.scores) if not result.error else None,
                    error=result.error[:2000],
                )
        return f"The attack failed: {result.error}" if result.fatal else ""

    return _ask_all(todo, lambda prompt: job.attack(prompt, deadline=ctx.deadline), save, ctx)
