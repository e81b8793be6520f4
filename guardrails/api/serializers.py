"""DeepRails wire shapes: strict input serializers (like the pydantic models the DeepRails API validates with),
422 schema-error bodies, and every field of deeprails.types.Evaluation with explicit nulls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from guardrails.metrics import DEFAULT_METRICS, METRICS, RUN_MODES
from guardrails.models import GuardrailEvaluation
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


TOO_LARGE = "too_large"  # the error type of a text over GUARDRAIL_MAX_TEXT_CHARS: answered 413, not 422


class GuardrailTextField(StrictCharField):
    """A prompt, output or reference text: at most GUARDRAIL_MAX_TEXT_CHARS characters (read per request; 0 is
    off). Without it any text up to the 50 MB body limit was queued, graded and stored."""

    default_error_messages = {
        **StrictCharField.default_error_messages,
        TOO_LARGE: "The text is {length:,} characters; the limit is {limit:,} (GUARDRAIL_MAX_TEXT_CHARS).",
    }

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        limit = settings.GUARDRAIL_MAX_TEXT_CHARS
        if 0 < limit < len(text):
            self.fail(TOO_LARGE, length=len(text), limit=limit)
        return text


def _optional_text(**kwargs: Any) -> GuardrailTextField:
    return GuardrailTextField(required=False, allow_null=True, allow_blank=True, **kwargs)


class ModelInputSerializer(ObjectSerializer):
    system_prompt = _optional_text()
    user_prompt = _optional_text()
    ground_truth = _optional_text()
    # The wire key `context` shadows Field.context only in the stubs: DRF keeps declared fields apart.
    context = _optional_text(  # type: ignore[assignment]
        help_text="Our addition: more reference material for context_adherence, which always grades against the "
        "system and user prompts too."
    )


class GuardrailCreateSerializer(ObjectSerializer):
    model_input = ModelInputSerializer(help_text="At least a user_prompt or a system_prompt.")
    model_output = GuardrailTextField(allow_blank=True)
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


def validated(request: Request, serializer_class: type[serializers.Serializer[Any]]) -> tuple[Any, Response | None]:
    """The validated body, or the 422 to answer instead (malformed JSON included)."""
    try:
        data = request.data
    except exceptions.ParseError as exc:
        return None, unprocessable([{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}])
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        errors = schema_errors(serializer.errors)
        too_large = any(error["type"] == TOO_LARGE for error in errors)
        return None, unprocessable(errors, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else None)
    return serializer.validated_data, None


# --- Output: every field of deeprails.types.Evaluation, explicit nulls ---


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class LocationPartField(serializers.Field):  # type: ignore[type-arg]
    """One step of an error's location: a key (`"model_output"`) or a list index (`1`), answered as is."""

    def to_representation(self, value: str | int) -> str | int:
        return value


class SchemaErrorOutputSerializer(serializers.Serializer[Any]):
    loc = serializers.ListField(child=LocationPartField(), help_text='Where, e.g. ["body", "model_input"].')
    msg = serializers.CharField()
    type = serializers.CharField(help_text="The pydantic error type, e.g. missing, enum, string_type.")


class UnprocessableOutputSerializer(serializers.Serializer[Any]):
    """The 422 body of a request that does not match the schema."""

    detail = SchemaErrorOutputSerializer(many=True)


def unprocessable(errors: list[dict[str, Any]], code: int | None = None) -> Response:
    """The 422 of a schema error (or `code`: a 413 for a text over its limit, in the same shape)."""
    body = UnprocessableOutputSerializer({"detail": errors}).data
    return Response(body, status=code or status.HTTP_422_UNPROCESSABLE_ENTITY)


# The keys are rubrics.MODEL_INPUT_FIELDS, in that order (tests/test_schema.py checks).
class ModelInputOutputSerializer(serializers.Serializer[Any]):
    """The model input as sent; every field is present, null when not given."""

    system_prompt = serializers.CharField(allow_null=True)
    user_prompt = serializers.CharField(allow_null=True)
    context = serializers.CharField(allow_null=True, help_text="Our addition: reference material.")  # type: ignore[assignment]
    ground_truth = serializers.CharField(allow_null=True)


# Documentation only: a metric's result is stored as JSON when its judges answer and answered as stored.
class MetricResultOutputSerializer(serializers.Serializer[Any]):
    """One metric's result. Judges add detail keys: `verdicts`, and with several judges `judges`,
    `disagreement` and `failed_judges`; an unscored metric has `error`."""

    score = serializers.FloatField(allow_null=True, help_text="0-1; null when the metric could not be scored.")
    rationale = serializers.CharField()
    judge = serializers.CharField(help_text="Our addition: the judge model(s) that graded, joined by ' + '.")


class UnavailableJudgeOutputSerializer(serializers.Serializer[Any]):
    model = serializers.CharField()
    error = serializers.CharField()


# Serializes the dict guardrails.selectors.guardrail_trace builds (the evaluation page shows the same).
class GuardrailTraceOutputSerializer(serializers.Serializer[Any]):
    """Our addition: which judges graded (offline or not, and why), the prompt version and the calls made."""

    prompt_version = serializers.CharField(allow_null=True)
    requested_judges = serializers.ListField(child=serializers.CharField())
    judges = serializers.ListField(child=serializers.CharField())
    offline_judge = serializers.BooleanField()
    fallback_reason = serializers.CharField(allow_null=True)
    unavailable_judges = serializers.SerializerMethodField()
    call_per_metric = serializers.BooleanField(allow_null=True)
    calls = serializers.IntegerField()

    @extend_schema_field(UnavailableJudgeOutputSerializer(many=True))
    def get_unavailable_judges(self, trace: dict[str, Any]) -> list[dict[str, str]]:
        # As stored: a serializer would reorder the keys of rows PostgreSQL's jsonb already reordered.
        return trace["unavailable_judges"]  # type: ignore[no-any-return]


class GuardrailEvaluationOutputSerializer(serializers.Serializer[Any]):
    eval_id = serializers.CharField(help_text="`eval-<uuid>`.")
    evaluation_status = serializers.ChoiceField(source="status", choices=GuardrailEvaluation.Status.choices)
    run_mode = serializers.ChoiceField(choices=RUN_MODES)
    guardrail_metrics = serializers.ListField(child=serializers.ChoiceField(choices=METRICS))
    model_input = ModelInputOutputSerializer()
    model_output = serializers.CharField()
    model_used = serializers.CharField(allow_null=True)
    nametag = serializers.CharField(allow_null=True)
    progress = serializers.IntegerField(help_text="0-100.")
    evaluation_result = serializers.SerializerMethodField()
    evaluation_total_cost = serializers.FloatField(source="total_cost_usd", help_text="USD.")
    created_at = serializers.DateTimeField()
    start_timestamp = serializers.DateTimeField(allow_null=True)
    end_timestamp = serializers.DateTimeField(allow_null=True)
    modified_at = serializers.DateTimeField()
    error_message = serializers.CharField(allow_null=True)
    error_timestamp = serializers.DateTimeField(allow_null=True)
    trace = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=MetricResultOutputSerializer(), allow_null=True))
    def get_evaluation_result(self, evaluation: GuardrailEvaluation) -> dict[str, Any] | None:
        # As stored, in the requested metrics' order; null until the first metric is graded.
        return evaluation.ordered_result

    @extend_schema_field(GuardrailTraceOutputSerializer)
    def get_trace(self, evaluation: GuardrailEvaluation) -> dict[str, Any]:
        return GuardrailTraceOutputSerializer(guardrail_trace(evaluation)).data


class GuardrailBatchOutputSerializer(serializers.Serializer[Any]):
    eval_ids = serializers.ListField(child=serializers.CharField(), help_text="In the order of the items sent.")
