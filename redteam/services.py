"""Red-team workflows: specs (snake_case names, unique per company), and runs created and sent to a worker,
canceled, retried, failed and deleted. What the worker does with a run is in steps.py."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from companies.models import Company
from companies.quotas import quota_check
from guardrails.metrics import DEFAULT_RUN_MODE, RUN_MODES
from guardrails.services import panel_for
from llm.base import FatalJudgeError
from llm.judges import NoWriter, resolve_writer
from llm.models import JudgeCall
from work.dispatch import work_cancel, work_create
from work.models import WorkItem

from . import writing
from .models import RedTeamRun, RedTeamSpec, snake_case

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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
    if mode:
        try:
            panel_for(mode)  # answers nobody can score are not worth asking for
        except (FatalJudgeError, ValueError) as exc:
            raise RedTeamError(f"The answers could not be scored: {exc}") from exc
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
        if not lock_active(run_id):
            return
        cost_refresh(run_id)
        RedTeamRun.objects.filter(id=run_id).update(
            status=RedTeamRun.Status.FAILED, completed_at=timezone.now(), error_message=message[:5000]
        )
    work_cancel(kind_prefix="redteam.", subject_id=run_id, reason=message)


def lock_active(run_id: int) -> bool:
    """Lock the run's row in the caller's transaction and say whether it is still PENDING or PROCESSING: whatever
    writes a result takes it, so nothing is added to a run that ended (an answer that lands after a cancel is in the
    ledger, it was paid for, but changes nothing else)."""
    return RedTeamRun.objects.select_for_update().filter(id=run_id, status__in=RedTeamRun.ACTIVE).exists()


def cost_refresh(run_id: int) -> None:
    """total_cost recounted from the ledger, never incremented: duplicates and kills cannot make it drift."""
    total = JudgeCall.objects.filter(
        subject_type=ContentType.objects.get_for_model(RedTeamRun), subject_id=run_id
    ).aggregate(total=Sum("cost_usd"))["total"]
    RedTeamRun.objects.filter(id=run_id).update(total_cost=total or Decimal(0))
