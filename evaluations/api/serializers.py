"""Dataframer evaluation wire shapes (pydataframer 0.12.1 types/dataframer/evaluation_*): every key present."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evaluations.models import Evaluation, SampleClassification


def _dt(value: Any) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


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
        "progress": {
            "classified": classified,
            "failed": failed,
            "total": evaluation.total_samples,
        },
        "chunks": evaluation.chunks_total,
    }


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": str(evaluation.code),
        "run_id": str(evaluation.run.code),
        "status": evaluation.status,
        "status_display": evaluation.get_status_display(),
        "conformance_score": evaluation.conformance_score,
        "created_at": _dt(evaluation.created_at),
        "created_by_email": evaluation.created_by.email if evaluation.created_by else None,
        "started_at": _dt(evaluation.started_at),
        "completed_at": _dt(evaluation.completed_at),
    }


def evaluation_detail(evaluation: Evaluation) -> dict[str, Any]:
    done = evaluation.status == Evaluation.Status.SUCCEEDED
    classifications = []
    if done:
        rows = (
            evaluation.classifications.select_related("sample")
            .order_by("sample__position")
            .values_list("code", "sample__identifier", "classifications", "created_at")
        )
        eval_id = str(evaluation.code)
        classifications = [
            {
                "id": str(code),
                "evaluation_id": eval_id,
                "sample_identifier": identifier,
                "classifications": judged,
                "created_at": _dt(created),
            }
            for code, identifier, judged, created in rows.iterator(chunk_size=2000)
        ]
    return {
        **evaluation_summary(evaluation),
        "company_id": str(evaluation.company.code),
        "distribution_analysis": _in_spec_order(evaluation),
        "created_by": evaluation.created_by_id,
        "conformance_explanation": evaluation.conformance_explanation,
        "conformant_areas": evaluation.conformant_areas,
        "non_conformant_areas": evaluation.non_conformant_areas,
        "sample_classifications": classifications,
        "duration_seconds": evaluation.duration_seconds,
        "error_message": evaluation.error_message,
        "trace": evaluation_trace(evaluation),
        "updated_at": _dt(evaluation.updated_at),
    }


def _in_spec_order(evaluation: Evaluation) -> list[dict[str, Any]] | None:
    """The stored analysis with each distribution's keys in the spec's value order (jsonb does not keep it)."""
    if evaluation.distribution_analysis is None or not evaluation.statistics:
        return evaluation.distribution_analysis
    values = {p["property_name"]: p["values"] for p in evaluation.statistics["properties"]}
    return [
        {
            key: (
                {v: item[key][v] for v in values[item["property_name"]]}
                if key.endswith("_distributions")
                else item[key]
            )
            for key in item
        }
        for item in evaluation.distribution_analysis
    ]


class EvaluationCreateSerializer(serializers.Serializer[Any]):
    run_id = serializers.UUIDField()
    evaluation_model = serializers.CharField(required=False, allow_null=True, allow_blank=True)
