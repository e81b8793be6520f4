"""What an evaluation is doing and costs (its trace), and the company's in-flight totals (a quota source)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Sum

from companies.quotas import InFlight

from .analysis import plan_summary
from .batch import batch_summary
from .models import Evaluation, SampleClassification


def evaluations_in_flight(company_id: int) -> InFlight:
    """The company's PENDING/PROCESSING evaluations and their samples, in one aggregate (a quota source)."""
    totals = Evaluation.objects.filter(
        company_id=company_id, status__in=[Evaluation.Status.PENDING, Evaluation.Status.PROCESSING]
    ).aggregate(evaluations=Count("id"), samples=Sum("total_samples"))
    return InFlight(evaluations=totals["evaluations"], samples=totals["samples"] or 0)


def evaluation_trace(evaluation: Evaluation) -> dict[str, Any]:
    """Task id, models requested and used (and why they differ), prompt and configuration, calls, tokens, cost,
    and progress (classified / failed / total), readable while the evaluation runs."""
    totals = evaluation.ledger_totals()
    if evaluation.status == Evaluation.Status.SUCCEEDED and evaluation.statistics:
        # Finished: every sample has a row, and the failures were counted when it finished.
        classified, failed = evaluation.total_samples, evaluation.statistics["samples_failed"]
    else:
        classified = evaluation.classifications.count()
        failed = evaluation.classifications.filter(status=SampleClassification.Status.FAILED).count()
    return {
        "task_id": evaluation.task_id or None,
        "requested_model": evaluation.requested_model,
        "model_used": evaluation.model_used or None,
        "offline_judge": evaluation.is_offline,
        "fallback_reason": evaluation.fallback_reason or None,
        "prompt_version": evaluation.prompt_version,
        "config_hash": evaluation.config_hash or None,
        "calls": totals["calls"],
        "input_tokens": totals["input_tokens"],
        "output_tokens": totals["output_tokens"],
        "cache_read_tokens": totals["cache_read_tokens"],
        "cache_write_tokens": totals["cache_write_tokens"],
        "cost_usd": totals["cost_usd"],
        "calls_outcome_unknown": totals["unknown"],
        "progress": {
            "classified": classified,
            "failed": failed,
            "total": evaluation.total_samples,
        },
        "chunks": evaluation.chunks_total,
        # The embedded judge's plan: per property judged how, or declined and why, and the review ids that taught
        # it (evaluations/teaching.py); None for an LLM judge.
        "embedded_plan": plan_summary(evaluation.judge_plan, evaluation.run.spec_version.parsed_properties)
        if evaluation.judge_plan
        else None,
        "batch": batch_summary(evaluation),
    }
