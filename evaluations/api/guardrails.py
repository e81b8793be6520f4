"""DeepRails-compatible guardrail evaluations (deeprails 1.9.0 `client.evaluate`): `POST /evaluate`,
`GET /evaluate/{eval_id}`, and our additions `GET /evaluate` (filtered, paginated) and `POST /evaluate/batch`.

The DeepRails family answers schema errors with 422 `{"detail": [{"loc", "msg", "type"}]}` and business-rule
errors with 400 `{"detail": "..."}`; paths have no trailing slash; every field of the client's `Evaluation`
type is always present.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from django.db.models import QuerySet
from django.urls import path
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from companies.api.base import BadRequest, CompanyScopedViewSet
from evaluations.guardrail_services import (
    BATCH_MAX_ITEMS,
    GuardrailInputError,
    guardrail_evaluation_create,
    guardrail_evaluation_create_batch,
)
from evaluations.judges.guardrails import DEFAULT_METRICS, METRICS, MODEL_INPUT_FIELDS, RUN_MODES
from evaluations.models import GuardrailEvaluation

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
    context = _optional_text(help_text="Our addition: reference material for context_adherence.")


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


def _dt(value: datetime | None) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def guardrail_trace(evaluation: GuardrailEvaluation) -> dict[str, Any]:
    """Our addition: which judges graded (offline or not, and why), the prompt version and the calls made."""
    trace = evaluation.trace or {}
    calls = getattr(evaluation, "calls", None)
    return {
        "prompt_version": trace.get("prompt_version"),
        "requested_judges": trace.get("requested_judges", []),
        "judges": trace.get("judges", []),
        "offline_judge": bool(trace.get("offline_judge", False)),
        "fallback_reason": trace.get("fallback_reason"),
        "unavailable_judges": trace.get("unavailable_judges", []),
        "call_per_metric": trace.get("call_per_metric"),
        "calls": calls if calls is not None else evaluation.judge_calls.count(),
    }


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
        "created_at": _dt(evaluation.created_at),
        "start_timestamp": _dt(evaluation.start_timestamp),
        "end_timestamp": _dt(evaluation.end_timestamp),
        "modified_at": _dt(evaluation.modified_at),
        "error_message": evaluation.error_message,
        "error_timestamp": _dt(evaluation.error_timestamp),
        "trace": guardrail_trace(evaluation),
    }


# --- Views ---


class GuardrailPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


def _moment(value: str) -> datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC when it names no zone); None if it is neither."""
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


LIST_PARAMETERS = [
    OpenApiParameter("nametag", str, description="Only evaluations with exactly this nametag."),
    OpenApiParameter("status", str, enum=list(GuardrailEvaluation.Status.values)),
    OpenApiParameter("run_mode", str, enum=list(RUN_MODES)),
    OpenApiParameter("created_after", str, description="ISO date or datetime; inclusive."),
    OpenApiParameter("created_before", str, description="ISO date or datetime; exclusive."),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description="At most 100; default 50."),
]


class GuardrailEvaluationViewSet(CompanyScopedViewSet):
    queryset = GuardrailEvaluation.objects.all()
    pagination_class = GuardrailPagination
    lookup_url_kwarg = "eval_id"

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.with_ledger().order_by("-created_at", "-id")

    def _evaluation(self, eval_id: str) -> GuardrailEvaluation:
        """The company's evaluation with this wire id (`eval-<uuid>`); anything else is not found."""
        code = GuardrailEvaluation.parse_eval_id(eval_id)
        evaluation = self.get_queryset().filter(code=code).first() if code else None
        if evaluation is None:
            raise exceptions.NotFound("No evaluation with this id.")
        return evaluation

    @extend_schema(
        operation_id="evaluate_create",
        summary="Create a guardrail evaluation",
        request=GuardrailCreateSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    )
    def create(self, request: Request) -> Response:
        data, error = validated(request, GuardrailCreateSerializer)
        if error:
            return error
        try:
            evaluation = guardrail_evaluation_create(company=self.company, created_by=request.user, **data)
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(guardrail_evaluation_data(evaluation), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="evaluate_retrieve",
        summary="Retrieve a guardrail evaluation",
        responses={200: OpenApiTypes.OBJECT},
    )
    def retrieve(self, request: Request, eval_id: str) -> Response:
        return Response(guardrail_evaluation_data(self._evaluation(eval_id)))

    @extend_schema(
        operation_id="evaluate_list",
        summary="List guardrail evaluations (our addition), newest first",
        parameters=LIST_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    )
    def list(self, request: Request) -> Response:
        queryset = self.get_queryset()
        params = request.query_params
        errors = []
        if params.get("nametag") is not None:
            queryset = queryset.filter(nametag=params["nametag"])
        for name, choices in (("status", GuardrailEvaluation.Status.values), ("run_mode", RUN_MODES)):
            value = params.get(name)
            if value is None:
                continue
            if value not in choices:
                errors.append(
                    {"loc": ["query", name], "msg": f"Input should be one of {', '.join(choices)}.", "type": "enum"}
                )
                continue
            queryset = queryset.filter(**{name: value})
        for name, lookup in (("created_after", "created_at__gte"), ("created_before", "created_at__lt")):
            value = params.get(name)
            if value is None:
                continue
            moment = _moment(value)
            if moment is None:
                errors.append(
                    {
                        "loc": ["query", name],
                        "msg": "Input should be an ISO date or datetime.",
                        "type": "datetime_parsing",
                    }
                )
                continue
            queryset = queryset.filter(**{lookup: moment})
        if errors:
            return unprocessable(errors)
        page = self.paginate_queryset(queryset)
        assert page is not None  # pagination_class is set
        return self.get_paginated_response([guardrail_evaluation_data(e) for e in page])

    @extend_schema(
        operation_id="evaluate_batch",
        summary="Create up to 1,000 guardrail evaluations at once (our addition); all or nothing",
        request=GuardrailBatchSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 422: OpenApiTypes.OBJECT},
    )
    def batch(self, request: Request) -> Response:
        data, error = validated(request, GuardrailBatchSerializer)
        if error:
            return error
        try:
            evaluations = guardrail_evaluation_create_batch(
                company=self.company, created_by=request.user, items=data["items"]
            )
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"eval_ids": [e.eval_id for e in evaluations]}, status=status.HTTP_201_CREATED)


# Top-level paths, no trailing slash: the DeepRails client posts to exactly `/evaluate`.
urlpatterns = [
    path("evaluate", GuardrailEvaluationViewSet.as_view({"get": "list", "post": "create"}), name="evaluate"),
    path("evaluate/batch", GuardrailEvaluationViewSet.as_view({"post": "batch"}), name="evaluate-batch"),
    path("evaluate/<str:eval_id>", GuardrailEvaluationViewSet.as_view({"get": "retrieve"}), name="evaluation"),
]
