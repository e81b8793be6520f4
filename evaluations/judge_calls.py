"""Why the judge said so: a sample's classification calls as the ledger recorded them (the sample page)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType

from llm.models import JudgeCall

from .models import Evaluation, SampleClassification


@dataclass(frozen=True)
class SampleCalls:
    """Every attempt the judge took on one sample (retries included), and their sums."""

    attempts: list[JudgeCall]
    cost_usd: Decimal
    latency_ms: int

    @property
    def retries(self) -> int:
        return max(0, len(self.attempts) - 1)

    @property
    def last(self) -> JudgeCall | None:
        return self.attempts[-1] if self.attempts else None


def sample_calls(*, evaluation: Evaluation, row: SampleClassification) -> SampleCalls:
    """The ledger's rows for this sample's classification in this evaluation, oldest first (one query; the content
    type is Django's cache). A sample answered from the result cache has none: no call was made for it here."""
    attempts = list(
        JudgeCall.objects.filter(
            company_id=evaluation.company_id,
            subject_type=ContentType.objects.get_for_model(Evaluation),
            subject_id=evaluation.id,
            item_id=row.sample_id,
            purpose="classify",
        ).order_by("created_at", "attempt", "id")
    )
    for call in attempts:
        call.pretty_answer = pretty(call.raw_answer)  # type: ignore[attr-defined]
    return SampleCalls(
        attempts=attempts,
        cost_usd=sum((a.cost_usd for a in attempts), Decimal(0)),
        latency_ms=sum(a.latency_ms for a in attempts),
    )


def pretty(raw: str) -> str:
    """The raw answer indented for reading when it is JSON (a cut one is not: shown as kept)."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw
