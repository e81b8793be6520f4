"""DeepRails-compatible guardrail evaluations (deeprails 1.9.0 `client.evaluate`): `POST /evaluate`,
`GET /evaluate/{eval_id}`, and our additions `GET /evaluate` (filtered, paginated) and `POST /evaluate/batch`.

The DeepRails family answers schema errors with 422 `{"detail": [{"loc", "msg", "type"}]}` and business-rule
errors with 400 `{"detail": "..."}`; paths have no trailing slash; every field of the client's `Evaluation`
type is always present.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, cast

from django.db.models import QuerySet
from django.urls import path
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet, ListPagination
from companies.api.serializers import DetailOutputSerializer, error_responses
from guardrails.metrics import RUN_MODES
from guardrails.models import GuardrailEvaluation, GuardrailEvaluationQuerySet, Monitor, parse_wire_id
from guardrails.services import (
    GuardrailInputError,
    guardrail_evaluation_cancel,
    guardrail_evaluation_create,
    guardrail_evaluation_create_batch,
)

from .lookup import get_by_wire_id
from .serializers import (
    GuardrailBatchOutputSerializer,
    GuardrailBatchSerializer,
    GuardrailCreateSerializer,
    GuardrailEvaluationOutputSerializer,
    UnprocessableOutputSerializer,
    unprocessable,
    validated,
)


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
    try:
        # A moment past year 9999 in UTC (9999-12-31T23:59-01:00) exists in no database: refuse it here.
        return moment.astimezone(UTC) if moment is not None else None
    except OverflowError:
        return None


LIST_PARAMETERS = [
    OpenApiParameter("nametag", str, description="Only evaluations with exactly this nametag."),
    OpenApiParameter("monitor_id", str, description="Only the evaluations of this monitor's events (`mon-<uuid>`)."),
    OpenApiParameter("status", str, enum=list(GuardrailEvaluation.Status.values)),
    OpenApiParameter("run_mode", str, enum=list(RUN_MODES)),
    OpenApiParameter("created_after", str, description="ISO date or datetime; inclusive."),
    OpenApiParameter("created_before", str, description="ISO date or datetime; exclusive."),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description="At most 100; default 50."),
]
EVAL_ID = OpenApiParameter("eval_id", str, OpenApiParameter.PATH, description="`eval-<uuid>`.")
UNPROCESSABLE = {
    422: OpenApiResponse(UnprocessableOutputSerializer, description="The request does not match the schema.")
}
TOO_LARGE = {
    # Two shapes: a text over its limit is named like a schema error; a body over MAX_REQUEST_BYTES is refused
    # before it is read (config/errors.py), with `{"detail": "..."}`.
    413: OpenApiResponse(
        {
            "oneOf": [
                {"$ref": "#/components/schemas/UnprocessableOutput"},
                {"$ref": "#/components/schemas/DetailOutput"},
            ]
        },
        description="A text is longer than GUARDRAIL_MAX_TEXT_CHARS (the error names it), or the body is larger "
        "than MAX_REQUEST_BYTES.",
    ),
}


class GuardrailEvaluationViewSet(CompanyScopedViewSet):
    queryset = GuardrailEvaluation.objects.all()
    pagination_class = ListPagination
    lookup_url_kwarg = "eval_id"

    def scope_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return cast(GuardrailEvaluationQuerySet, queryset).with_ledger().order_by("-created_at", "-id")

    def _evaluation(self, eval_id: str) -> GuardrailEvaluation:
        """The company's evaluation with this wire id (`eval-<uuid>`); anything else is not found."""
        evaluations: QuerySet[GuardrailEvaluation] = self.get_queryset()
        return get_by_wire_id(
            evaluations, GuardrailEvaluation.ID_PREFIX, eval_id, missing="No evaluation with this id."
        )

    @extend_schema(
        operation_id="evaluate_create",
        summary="Create a guardrail evaluation",
        request=GuardrailCreateSerializer,
        responses={
            201: GuardrailEvaluationOutputSerializer,
            **error_responses(400, 401, 403, 429),
            **UNPROCESSABLE,
            **TOO_LARGE,
        },
    )
    def create(self, request: Request) -> Response:
        """Evaluate a model output on guardrail metrics; the answer is the evaluation, queued, to poll."""
        data, error = validated(request, GuardrailCreateSerializer)
        if error:
            return error
        try:
            evaluation = guardrail_evaluation_create(company=self.company, created_by=self.membership.user, **data)
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(GuardrailEvaluationOutputSerializer(evaluation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="evaluate_retrieve",
        summary="Retrieve a guardrail evaluation",
        parameters=[EVAL_ID],
        responses={200: GuardrailEvaluationOutputSerializer, **error_responses(401, 403, 404)},
    )
    def retrieve(self, request: Request, eval_id: str) -> Response:
        """Poll an evaluation until its status is completed or failed."""
        return Response(GuardrailEvaluationOutputSerializer(self._evaluation(eval_id)).data)

    @extend_schema(
        operation_id="evaluate_cancel",
        summary="Cancel a guardrail evaluation (our addition)",
        request=None,
        responses={200: GuardrailEvaluationOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def cancel(self, request: Request, eval_id: str) -> Response:
        """Stop a queued or in-progress evaluation: it ends `canceled`; no new judge call starts."""
        try:
            evaluation = guardrail_evaluation_cancel(evaluation=self._evaluation(eval_id))
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(GuardrailEvaluationOutputSerializer(evaluation).data)

    @extend_schema(
        operation_id="evaluate_list",
        summary="List guardrail evaluations (our addition), newest first",
        parameters=LIST_PARAMETERS,
        responses={
            200: GuardrailEvaluationOutputSerializer(many=True),
            **error_responses(400, 401, 403),  # 400: a query parameter holding a NUL (config/text.py)
            404: OpenApiResponse(DetailOutputSerializer, description="No such page (`page` from 1 to the last)."),
            **UNPROCESSABLE,
        },
    )
    def list(self, request: Request) -> Response:
        """List your company's guardrail evaluations, newest first, filtered and a page at a time."""
        queryset = self.get_queryset()
        params = request.query_params
        errors = []
        if params.get("nametag") is not None:
            queryset = queryset.filter(nametag=params["nametag"])
        if params.get("monitor_id") is not None:
            code = parse_wire_id(Monitor.ID_PREFIX, params["monitor_id"])
            if code is None:
                message = "Input should be a monitor id (mon-<uuid>)."
                errors.append({"loc": ["query", "monitor_id"], "msg": message, "type": "value_error"})
            else:  # the queryset is the company's: another company's monitor lists nothing
                queryset = queryset.filter(monitor_event__monitor__code=code)
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
        return self.get_paginated_response(GuardrailEvaluationOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="evaluate_batch",
        summary="Create up to 1,000 guardrail evaluations at once (our addition); all or nothing",
        request=GuardrailBatchSerializer,
        responses={
            201: GuardrailBatchOutputSerializer,
            **error_responses(400, 401, 403, 429),
            **UNPROCESSABLE,
            **TOO_LARGE,
        },
    )
    def batch(self, request: Request) -> Response:
        """Create up to 1,000 evaluations in one request: all are created, or none."""
        data, error = validated(request, GuardrailBatchSerializer)
        if error:
            return error
        try:
            evaluations = guardrail_evaluation_create_batch(
                company=self.company, created_by=self.membership.user, items=data["items"]
            )
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        data = {"eval_ids": [e.eval_id for e in evaluations]}
        return Response(GuardrailBatchOutputSerializer(data).data, status=status.HTTP_201_CREATED)


# Top-level paths, no trailing slash: the DeepRails client posts to exactly `/evaluate`.
urlpatterns = [
    path("evaluate", GuardrailEvaluationViewSet.as_view({"get": "list", "post": "create"}), name="evaluate"),
    path("evaluate/batch", GuardrailEvaluationViewSet.as_view({"post": "batch"}), name="evaluate-batch"),
    path("evaluate/<str:eval_id>", GuardrailEvaluationViewSet.as_view({"get": "retrieve"}), name="evaluation"),
    path(
        "evaluate/<str:eval_id>/cancel",
        GuardrailEvaluationViewSet.as_view({"post": "cancel"}),
        name="evaluation-cancel",
    ),
]
