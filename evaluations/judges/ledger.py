"""The JudgeCall ledger write shared by every kind of evaluation: one row per provider call attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evaluations.models import JudgeCall

from .catalog import JudgeModel
from .engine import Attempt

if TYPE_CHECKING:
    from runs.models import Sample


def record_calls(
    *,
    company_id: int,
    model: JudgeModel,
    purpose: str,
    attempts: list[Attempt],
    evaluation_id: int | None = None,
    guardrail_evaluation_id: int | None = None,
    sample: Sample | None = None,
) -> None:
    """Record every attempt, failed ones included: they were made, and most were paid for."""
    JudgeCall.objects.bulk_create(
        JudgeCall(
            company_id=company_id,
            evaluation_id=evaluation_id,
            guardrail_evaluation_id=guardrail_evaluation_id,
            sample=sample,
            provider=model.provider,
            model=model.name,
            purpose=purpose,
            attempt=a.attempt,
            outcome=a.outcome,
            error=a.error[:2000],
            input_tokens=a.usage.input_tokens,
            output_tokens=a.usage.output_tokens,
            cache_read_tokens=a.usage.cache_read_tokens,
            cache_write_tokens=a.usage.cache_write_tokens,
            cost_usd=a.cost_usd,
            latency_ms=a.latency_ms,
        )
        for a in attempts
    )
