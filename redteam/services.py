"""Red-team workflows: specs (snake_case names, unique per company), runs created and sent to a worker, and the
worker's steps (behaviours, then each behaviour's prompts, then each attack on the target), each result written
as it arrives so that a killed worker loses nothing and a retry skips what is done (DESIGN.md §6)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check
from guardrails.metrics import DEFAULT_RUN_MODE, RUN_MODES
from guardrails.rubrics import failed_result, judged_result
from guardrails.services import PanelJudge, panel_for
from llm.base import FatalJudgeError
from llm.catalog import JudgeModel
from llm.engine import Judge, Outcome, ask_each
from llm.judges import NoWriter, resolve_writer
from llm.ledger import record_calls
from llm.models import JudgeCall
from work.dispatch import work_cancel, work_create
from work.models import WorkItem
from work.registry import Result

from . import scoring, writing
from .models import RedTeamPrompt, RedTeamRun, RedTeamSpec, snake_case

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from work.runner import Context

# The client's model_name values (pydataframer 0.12.1 RedTeamRunCreateParams): open models, served here by
# whatever the model catalog maps them to.
WRITER_MODELS = (
    "deepseek-ai/DeepSeek-V3.1",
    "deepseek-ai/DeepSeek-R1-0528-tput",
    "moonshotai/Kimi-K2-Instruct",
    "openai/gpt-oss-120b",
)
MAX_BEHAVIORS = 25
MAX_PROMPTS_PER_BEHAVIOR = 25
MAX_PROMPTS = 100  # the vendor's documented scale: "fewer than 100 prompts per run"
KIND = "redteam.run"

T = TypeVar("T")


class RedTeamError(ValueError):
    """A request that is well-formed but cannot be done (the API answers 400)."""


def writer_help(name: str) -> str:
    return (
        f"Red-team prompts are written by an LLM: {name} must be in the model catalog with working credentials. Add "
        f'it to JUDGE_MODELS_FILE, e.g. {{"{name}": {{"provider": "openai", "model": "{name}", "base_url": '
        '"http://gpu:8000/v1"}} for a vLLM, Ollama or llama.cpp server, or a hosted OpenAI-compatible API with '
        '"api_key_env" naming the variable that holds its key.'
    )


# --- Specs ---


def _spec_name(name: str) -> str:
    stored = snake_case(name)
    if not stored:
        raise RedTeamError("name must contain at least one letter or digit.")
    return stored[:200]


def red_team_spec_create(
    *,
    company: Company,
    created_by: User | None,
    name: str,
    app_description: str,
    domain_description: str,
    concerns: str = "",
) -> RedTeamSpec:
    """Save a spec under its snake_case name; RedTeamError when the company has one by that name already."""
    stored = _spec_name(name)
    try:
        with transaction.atomic():
            return RedTeamSpec.objects.create(
                company=company,
                created_by=created_by,
                name=stored,
                app_description=app_description,
                domain_description=domain_description,
                concerns=concerns,
            )
    except IntegrityError:
        raise RedTeamError(f"A red team spec named '{stored}' already exists.") from None


def red_team_spec_update(*, spec: RedTeamSpec, changes: dict[str, str]) -> RedTeamSpec:
    """Change the given fields (a new name is stored in snake_case, and must stay unique)."""
    if "name" in changes:
        changes = {**changes, "name": _spec_name(changes["name"])}
    for key, value in changes.items():
        setattr(spec, key, value)
    try:
        with transaction.atomic():
            spec.save()
    except IntegrityError:
        raise RedTeamError(f"A red team spec named '{spec.name}' already exists.") from None
    return spec


def red_team_spec_delete(*, spec: RedTeamSpec) -> None:
    """Delete a spec and its runs, ending the runs' work first (a worker stops at its next tick)."""
    for run_id in spec.runs.values_list("id", flat=True):
        work_cancel(kind_prefix="redteam.", subject_id=run_id, reason="the spec was deleted")
    spec.delete()


# --- Runs: creating, canceling, deleting ---


def _check_limits(behaviors: int, prompts: int) -> None:
    if not 1 <= behaviors <= MAX_BEHAVIORS:
        raise RedTeamError(f"number_of_behaviors must be from 1 to {MAX_BEHAVIORS}.")
    if not 1 <= prompts <= MAX_PROMPTS_PER_BEHAVIOR:
        raise RedTeamError(f"number_of_prompts_per_behavior must be from 1 to {MAX_PROMPTS_PER_BEHAVIOR}.")
    if behaviors * prompts > MAX_PROMPTS:
        raise RedTeamError(
            f"number_of_behaviors × number_of_prompts_per_behavior is {behaviors * prompts}; a run writes at most "
            f"{MAX_PROMPTS} prompts."
        )


def red_team_run_create(
    *,
    company: Company,
    created_by: User | None,
    spec: RedTeamSpec,
    model_name: str,
    number_of_behaviors: int,
    number_of_prompts_per_behavior: int,
    target_model: str = "",
    target_system_prompt: str = "",
    judge_run_mode: str = "",
) -> RedTeamRun:
    """A PENDING run and its work item (sent to a worker once committed). Every model is checked first, so nothing
    is created that could only fail; the monthly budget too (QuotaExceeded, a 429)."""
    if spec.company_id != company.id:
        raise RedTeamError("unknown red team spec")
    _check_limits(number_of_behaviors, number_of_prompts_per_behavior)
    if model_name not in WRITER_MODELS:
        raise RedTeamError(f"model_name must be one of {', '.join(WRITER_MODELS)}.")
    try:
        resolve_writer(model_name)
    except NoWriter as exc:
        raise RedTeamError(f"{model_name} cannot write here. {writer_help(model_name)}") from exc
    if target_model:
        try:
            resolve_writer(target_model)
        except NoWriter as exc:
            raise RedTeamError(f"target_model {target_model!r} cannot be attacked: {exc}") from exc
    elif target_system_prompt or judge_run_mode:
        raise RedTeamError("target_system_prompt and run_mode only apply with a target_model.")
    mode = (judge_run_mode or DEFAULT_RUN_MODE) if target_model else ""
    if mode and mode not in RUN_MODES:
        raise RedTeamError(f"run_mode must be one of {', '.join(RUN_MODES)}.")
    with transaction.atomic():
        quota_check(company=company, evaluations=0, samples=0)
        run = RedTeamRun.objects.create(
            company=company,
            spec=spec,
            created_by=created_by,
            model_name=model_name,
            number_of_behaviors=number_of_behaviors,
            number_of_prompts_per_behavior=number_of_prompts_per_behavior,
            target_model=target_model,
            target_system_prompt=target_system_prompt,
            judge_run_mode=mode,
            trace={"prompt_version": writing.PROMPT_VERSION},
        )
        work_create(company_id=company.id, kind=KIND, subject_id=run.id, key=f"{KIND}:{run.id}")
    return run


def red_team_run_cancel(*, run: RedTeamRun) -> None:
    """Cancel a PENDING or PROCESSING run (else RedTeamError); its worker makes no new call after its next tick."""
    if not run.cancel():
        raise RedTeamError(f"Only PENDING or PROCESSING runs can be canceled; this one is {run.status}.")
    work_cancel(kind_prefix="redteam.", subject_id=run.id, reason="the run was canceled")


def red_team_run_delete(*, run: RedTeamRun) -> None:
    work_cancel(kind_prefix="redteam.", subject_id=run.id, reason="the run was deleted")
    run.delete()


@transaction.atomic
def red_team_run_retry(*, run: RedTeamRun) -> None:
    """Run a FAILED or CANCELED run again (else RedTeamError): what it wrote and scored is kept, the rest is done."""
    updated = RedTeamRun.objects.filter(
        id=run.id, status__in=[RedTeamRun.Status.FAILED, RedTeamRun.Status.CANCELED]
    ).update(status=RedTeamRun.Status.PENDING, error_message="", completed_at=None)
    if not updated:
        raise RedTeamError(f"Only FAILED or CANCELED runs can be retried; this one is {run.status}.")
    WorkItem.objects.for_subject("redteam.", run.id).delete()
    work_create(company_id=run.company_id, kind=KIND, subject_id=run.id, key=f"{KIND}:{run.id}")
    run.refresh_from_db()


def red_team_run_fail(*, run_id: int, message: str) -> None:
    """End the run FAILED with `message` (unless it already ended), its cost exact as it ends."""
    with transaction.atomic():
        if not _lock_active(run_id):
            return
        _cost_refresh(run_id)
        RedTeamRun.objects.filter(id=run_id).update(
            status=RedTeamRun.Status.FAILED, completed_at=timezone.now(), error_message=message[:5000]
        )
    work_cancel(kind_prefix="redteam.", subject_id=run_id, reason=message)


def _lock_active(run_id: int) -> bool:
    """Lock the run's row in the caller's transaction and say whether it is still PENDING or PROCESSING: whatever
    writes a result takes it, so nothing is added to a run that ended (an answer that lands after a cancel is in the
    ledger, it was paid for, but changes nothing else)."""
    return RedTeamRun.objects.select_for_update().filter(id=run_id, status__in=RedTeamRun.ACTIVE).exists()


def _cost_refresh(run_id: int) -> None:
    """total_cost recounted from the ledger, never incremented: duplicates and kills cannot make it drift."""
    total = JudgeCall.objects.filter(
        subject_type=ContentType.objects.get_for_model(RedTeamRun), subject_id=run_id
    ).aggregate(total=Sum("cost_usd"))["total"]
    RedTeamRun.objects.filter(id=run_id).update(total_cost=total or Decimal(0))


# --- Runs: the worker ---


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
        _cost_refresh(run_id)
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
            active = _lock_active(run.id)
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
            active = _lock_active(run.id)
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
            active = _lock_active(run.id)
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
