"""DeepRails wire shapes: strict input serializers (like the pydantic models the DeepRails API validates with),
422 schema-error bodies, and every field of deeprails.types.Evaluation with explicit nulls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from companies.api.base import iso_datetime
from guardrails.models import GuardrailEvaluation
from guardrails.rubrics import DEFAULT_METRICS, METRICS, MODEL_INPUT_FIELDS, RUN_MODES
from guardrails.selectors import guardrail_trace
from guardrails.services import BATCH_MAX_ITEMS

# --- Input: strict, like the pydantic models the DeepRails API validates with ---


class StrictCharField(serializers.CharField):
    """A string, never a number or boolean turned into one, and kept exactly as sent (no trimming)."""

    default_error_messages = {"string_type": "Input should be a valid string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("string_type")
        return super().to_internal_value(data)


class ObjectSerializer(serializers.Serializer[Any]):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            message = serializers.ErrorDetail("Input should be a valid dictionary or object.", code="dict_type")
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]})
        return super().to_internal_value(data)


def _optional_text(**kwargs: Any) -> StrictCharField:
    return StrictCharField(required=False, allow_null=True, allow_blank=True, **kwargs)


class ModelInputSerializer(ObjectSerializer):
    system_prompt = _optional_text()
    user_prompt = _optional_text()
    ground_truth = _optional_text()
    # DRF's metaclass takes declared fields off the class, so this does not shadow Serializer.context.
    context = _optional_text(help_text="Our addition: reference material for context_adherence.")  # type: ignore[assignment]


class GuardrailCreateSerializer(ObjectSerializer):
    model_input = ModelInputSerializer(help_text="At least a user_prompt or a system_prompt.")
    model_output = StrictCharField(allow_blank=True)
    run_mode = serializers.ChoiceField(choices=RUN_MODES, required=False, allow_null=True, help_text="Default: smart.")
    guardrail_metrics = serializers.ListField(
        child=serializers.ChoiceField(choices=METRICS),
        required=False,
        allow_null=True,
        help_text=f"Default: {', '.join(DEFAULT_METRICS)}, plus context_adherence when model_input.context is "
        "given and ground_truth_adherence when model_input.ground_truth is.",
    )
    model_used = _optional_text(max_length=200)
    nametag = _optional_text(max_length=255)


class GuardrailBatchSerializer(ObjectSerializer):
    items = serializers.ListField(child=GuardrailCreateSerializer(), min_length=1, max_length=BATCH_MAX_ITEMS)


# DRF error codes → the pydantic error types the DeepRails API reports.
ERROR_TYPES = {
    "required": "missing",
    "null": "none_forbidden",
    "invalid_choice": "enum",
    "not_a_list": "list_type",
    "max_length": "too_long",
    "min_length": "too_short",
    "empty": "too_short",
}


def schema_errors(errors: Any, loc: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """Flatten DRF's nested serializer errors into `[{"loc": [...], "msg": ..., "type": ...}]`."""
    if isinstance(errors, Mapping):
        found = []
        for key, value in errors.items():
            where = loc if key == api_settings.NON_FIELD_ERRORS_KEY else (*loc, key)
            found += schema_errors(value, where)
        return found
    if isinstance(errors, list) and not all(isinstance(e, str) for e in errors):
        found = []
        for index, value in enumerate(errors):
            found += schema_errors(value, (*loc, index))
        return found
    return [_error(loc, e) for e in (errors if isinstance(errors, list) else [errors])]


def _error(loc: tuple[str | int, ...], detail: Any) -> dict[str, Any]:
    code = getattr(detail, "code", None) or "value_error"
    return {"loc": list(loc), "msg": str(detail), "type": ERROR_TYPES.get(code, code)}


def unprocessable(errors: list[dict[str, Any]]) -> Response:
    return Response({"detail": errors}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


def validated(request: Request, serializer_class: type[serializers.Serializer[Any]]) -> tuple[Any, Response | None]:
    """The validated body, or the 422 to answer instead (malformed JSON included)."""
    try:
        data = request.data
    except exceptions.ParseError as exc:
        return None, unprocessable([{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}])
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        return None, unprocessable(schema_errors(serializer.errors))
    return serializer.validated_data, None


# --- Output: every field of deeprails.types.Evaluation, explicit nulls ---


def guardrail_evaluation_data(evaluation: GuardrailEvaluation) -> dict[str, Any]:
    return {
        "eval_id": evaluation.eval_id,
        "evaluation_status": evaluation.status,
        "run_mode": evaluation.run_mode,
        "guardrail_metrics": list(evaluation.guardrail_metrics),
        "model_input": {k: evaluation.model_input.get(k) for k in MODEL_INPUT_FIELDS},
        "model_output": evaluation.model_output,
        "model_used": evaluation.model_used,
        "nametag": evaluation.nametag,
        "progress": evaluation.progress,
        "evaluation_result": evaluation.ordered_result,
        "evaluation_total_cost": evaluation.total_cost_usd(),
        "created_at": iso_datetime(evaluation.created_at),
        "start_timestamp": iso_datetime(evaluation.start_timestamp),
        "end_timestamp": iso_datetime(evaluation.end_timestamp),
        "modified_at": iso_datetime(evaluation.modified_at),
        "error_message": evaluation.error_message,
        "error_timestamp": iso_datetime(evaluation.error_timestamp),
        "trace": guardrail_trace(evaluation),
    }
