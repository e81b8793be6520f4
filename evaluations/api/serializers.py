"""Dataframer evaluation wire shapes (pydataframer 0.12.1 types/dataframer/evaluation_*): every key present."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from companies.api.base import iso_datetime
from evaluations.models import Evaluation
from evaluations.selectors import evaluation_trace


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": str(evaluation.code),
        "run_id": str(evaluation.run.code),
        "status": evaluation.status,
        "status_display": evaluation.get_status_display(),
        "conformance_score": evaluation.conformance_score,
        "created_at": iso_datetime(evaluation.created_at),
        "created_by_email": evaluation.created_by.email if evaluation.created_by else None,
        "started_at": iso_datetime(evaluation.started_at),
        "completed_at": iso_datetime(evaluation.completed_at),
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
                "created_at": iso_datetime(created),
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
        "updated_at": iso_datetime(evaluation.updated_at),
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
