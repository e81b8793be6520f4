"""The JudgeCall ledger write shared by every caller: one row per provider call attempt.

A row is written before its request leaves (outcome "sent", costed at the request's ceiling) and completed when
the answer comes, so a worker killed mid-call leaves a row for a call the provider may well bill: still "sent"
once no worker can complete it, it reads as "outcome unknown" (JudgeCall.outcome_unknown) at its ceiling price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Sum

from .base import StructuredRequest
from .catalog import JudgeModel
from .engine import Attempt
from .models import JudgeCall

# Each stored text (system prompt, user prompt, raw answer) is cut to this: a sample of a megabyte must not make
# every one of its ledger rows a megabyte. The cut says so, and how much was left out.
STORED_TEXT_MAX_CHARS = 20_000


def bounded(text: str, limit: int = STORED_TEXT_MAX_CHARS) -> str:
    """`text`, or its first `limit` characters and a marker saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [cut: {len(text) - limit:,} more characters not kept]"


@dataclass(frozen=True)
class CallLedger:
    """Where a call's "sent" row goes (the engine's SendLedger): the same fields record_calls is given later."""

    company_id: int
    purpose: str
    subject: models.Model | None = None
    item_id: int | None = None

    def open(self, *, model: JudgeModel, attempt: int, ceiling_usd: Decimal) -> int:
        subject_type = ContentType.objects.get_for_model(self.subject) if self.subject is not None else None
        row = JudgeCall.objects.create(
            company_id=self.company_id,
            subject_type=subject_type,
            subject_id=self.subject.pk if self.subject is not None else None,
            item_id=self.item_id,
            provider=model.provider,
            model=model.name,
            purpose=self.purpose,
            attempt=attempt,
            outcome=JudgeCall.Outcome.SENT,
            cost_usd=ceiling_usd,
        )
        return row.pk

    def discard(self, row_id: int) -> None:
        """The request of this row never left (the worker began stopping meanwhile): no row either."""
        JudgeCall.objects.filter(id=row_id, outcome=JudgeCall.Outcome.SENT).delete()


def record_calls(
    *,
    company_id: int,
    model: JudgeModel,
    purpose: str,
    attempts: list[Attempt],
    subject: models.Model | None = None,
    item_id: int | None = None,
    request: StructuredRequest | None = None,
    prompt_version: str = "",
) -> None:
    """Record every attempt, failed ones included: they were made, and most were paid for.

    `subject` is the work the calls served (an evaluation, a guardrail evaluation); `item_id` the unit within it.
    With a `request`, and unless LLM_STORE_PROMPTS is off, each row keeps the prompts as sent and its raw answer.
    """
    if not attempts:
        return
    kept = request if request is not None and settings.LLM_STORE_PROMPTS else None
    system = bounded(kept.system) if kept else ""
    user = bounded(kept.user) if kept else ""

    def texts(a: Attempt) -> dict[str, str]:
        return {
            "prompt_version": prompt_version,
            "system_prompt": system,
            "user_prompt": user,
            "raw_answer": bounded(a.answer) if kept else "",
        }

    for a in attempts:
        if a.row_id is not None:
            # Sent earlier (CallLedger.open): the row exists, and now says how the call ended and what was said.
            JudgeCall.objects.filter(id=a.row_id).update(**_ending(a), **texts(a))
    attempts = [a for a in attempts if a.row_id is None]
    if not attempts:
        return
    subject_type = ContentType.objects.get_for_model(subject) if subject is not None else None
    JudgeCall.objects.bulk_create(
        JudgeCall(
            company_id=company_id,
            subject_type=subject_type,
            subject_id=subject.pk if subject is not None else None,
            item_id=item_id,
            provider=model.provider,
            model=model.name,
            purpose=purpose,
            attempt=a.attempt,
            **_ending(a),
            **texts(a),
        )
        for a in attempts
    )


def _ending(a: Attempt) -> dict[str, Any]:
    """How an attempt ended, as a ledger row's fields."""
    return {
        "outcome": a.outcome,
        "error": a.error[:2000],
        "input_tokens": a.usage.input_tokens,
        "output_tokens": a.usage.output_tokens,
        "cache_read_tokens": a.usage.cache_read_tokens,
        "cache_write_tokens": a.usage.cache_write_tokens,
        "cost_usd": a.cost_usd,
        "latency_ms": a.latency_ms,
    }


def spend_since(company_id: int, since: datetime) -> Decimal:
    """USD the company's judge calls cost since `since` (a quota source: the monthly budget)."""
    total = JudgeCall.objects.filter(company_id=company_id, created_at__gte=since).aggregate(cost=Sum("cost_usd"))
    return total["cost"] or Decimal(0)
