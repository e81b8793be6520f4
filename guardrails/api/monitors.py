"""DeepRails monitors (deeprails 1.9.0 `client.monitor`): `POST /monitor`, `GET|PUT /monitor/{monitor_id}` and
`POST /monitor/{monitor_id}/events`, shaped field by field as the client's MonitorResponse,
MonitorDetailResponse and MonitorEventResponse types (every key present, explicit nulls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet
from companies.api.serializers import error_responses
from guardrails.metrics import METRICS
from guardrails.models import ActiveStatus, GuardrailEvaluation, Monitor
from guardrails.monitors import monitor_create, monitor_event_create, monitor_stats, monitor_update
from guardrails.services import GuardrailInputError

from .lookup import get_by_wire_id
from .serializers import (
    GuardrailCreateSerializer,
    GuardrailEvaluationOutputSerializer,
    ObjectSerializer,
    StrictCharField,
    UnprocessableOutputSerializer,
    unprocessable,
    validated,
)

DEFAULT_LIMIT = 10  # the client's documented default for the listed evaluations
MAX_LIMIT = 1000

# --- Input ---


class MonitorCreateSerializer(ObjectSerializer):
    name = StrictCharField(max_length=255)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)


class MonitorUpdateSerializer(ObjectSerializer):
    name = StrictCharField(required=False, max_length=255)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    monitor_status = serializers.ChoiceField(choices=ActiveStatus.values, required=False)


# An /evaluate body whose guardrail_metrics are required, as the client's MonitorSubmitEventParams has them.
class MonitorEventSerializer(GuardrailCreateSerializer):
    guardrail_metrics = serializers.ListField(child=serializers.ChoiceField(choices=METRICS), min_length=1)


# --- Output ---


class MonitorOutputSerializer(serializers.Serializer[Any]):
    monitor_id = serializers.CharField(help_text="`mon-<uuid>`.")
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    monitor_status = serializers.ChoiceField(source="status", choices=ActiveStatus.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    user_id = serializers.SerializerMethodField(help_text="The id of the user who created the monitor.")

    def get_user_id(self, monitor: Monitor) -> str | None:
        return str(monitor.created_by_id) if monitor.created_by_id is not None else None


class MonitorStatsOutputSerializer(serializers.Serializer[Any]):
    total_evaluations = serializers.IntegerField()
    completed_evaluations = serializers.IntegerField()
    failed_evaluations = serializers.IntegerField()
    in_progress_evaluations = serializers.IntegerField()
    queued_evaluations = serializers.IntegerField()


# Serializes a MonitorDetail: the monitor's fields, its stats and its latest evaluations.
class MonitorDetailOutputSerializer(MonitorOutputSerializer):
    stats = MonitorStatsOutputSerializer()
    evaluations = GuardrailEvaluationOutputSerializer(many=True, help_text="Newest first, at most `limit`.")

    def to_representation(self, instance: Any) -> Any:
        return {
            **MonitorOutputSerializer(instance.monitor).data,
            "stats": MonitorStatsOutputSerializer(instance.stats).data,
            "evaluations": GuardrailEvaluationOutputSerializer(instance.evaluations, many=True).data,
        }


@dataclass(frozen=True)
class MonitorDetail:
    monitor: Monitor
    stats: dict[str, int]
    evaluations: list[GuardrailEvaluation]


class MonitorEventOutputSerializer(serializers.Serializer[Any]):
    event_id = serializers.CharField(help_text="`mevt-<uuid>`.")
    monitor_id = serializers.CharField(source="monitor.monitor_id")
    evaluation_id = serializers.CharField(source="evaluation.eval_id", help_text="Poll it at GET /evaluate/{id}.")
    created_at = serializers.DateTimeField()


MONITOR_ID = OpenApiParameter("monitor_id", str, OpenApiParameter.PATH, description="`mon-<uuid>`.")
UNPROCESSABLE = {
    422: OpenApiResponse(UnprocessableOutputSerializer, description="The request does not match the schema.")
}


class MonitorViewSet(CompanyScopedViewSet):
    queryset = Monitor.objects.all()

    def _monitor(self, monitor_id: str) -> Monitor:
        """The company's monitor with this wire id; anything else (another company's included) is not found."""
        monitors: QuerySet[Monitor] = self.get_queryset()
        return get_by_wire_id(monitors, Monitor.ID_PREFIX, monitor_id, missing="No monitor with this id.")

    @extend_schema(
        operation_id="monitor_create",
        summary="Create a monitor",
        request=MonitorCreateSerializer,
        responses={201: MonitorOutputSerializer, **error_responses(401, 403), **UNPROCESSABLE},
    )
    def create(self, request: Request) -> Response:
        """Create a monitor that records production answers and grades each in the background."""
        data, error = validated(request, MonitorCreateSerializer)
        if error:
            return error
        monitor = monitor_create(company=self.company, created_by=self.membership.user, **data)
        return Response(MonitorOutputSerializer(monitor).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="monitor_retrieve",
        summary="Retrieve a monitor with its stats and latest evaluations",
        parameters=[
            MONITOR_ID,
            OpenApiParameter("limit", int, description=f"How many evaluations to list; default {DEFAULT_LIMIT}."),
        ],
        responses={200: MonitorDetailOutputSerializer, **error_responses(401, 403, 404), **UNPROCESSABLE},
    )
    def retrieve(self, request: Request, monitor_id: str) -> Response:
        """A monitor, its evaluations counted by status, and its latest `limit` evaluations, newest first."""
        monitor = self._monitor(monitor_id)
        raw = request.query_params.get("limit")
        limit = DEFAULT_LIMIT
        if raw is not None:
            if not raw.isdigit() or int(raw) > MAX_LIMIT:
                message = f"Input should be a whole number from 0 to {MAX_LIMIT}."
                return unprocessable([{"loc": ["query", "limit"], "msg": message, "type": "int_parsing"}])
            limit = int(raw)
        evaluations = (
            GuardrailEvaluation.objects.filter(monitor_event__monitor=monitor)
            .with_ledger()
            .order_by("-created_at", "-id")[:limit]
        )
        detail = MonitorDetail(monitor, monitor_stats(monitor), list(evaluations))
        return Response(MonitorDetailOutputSerializer(detail).data)

    @extend_schema(
        operation_id="monitor_update",
        summary="Update a monitor's name, description or status",
        parameters=[MONITOR_ID],
        request=MonitorUpdateSerializer,
        responses={200: MonitorOutputSerializer, **error_responses(401, 403, 404), **UNPROCESSABLE},
    )
    def update(self, request: Request, monitor_id: str) -> Response:
        """Change what is sent; an inactive monitor refuses new events until it is active again."""
        monitor = self._monitor(monitor_id)
        data, error = validated(request, MonitorUpdateSerializer)
        if error:
            return error
        monitor = monitor_update(
            monitor=monitor,
            name=data.get("name"),
            description=data.get("description"),
            status=data.get("monitor_status"),
        )
        return Response(MonitorOutputSerializer(monitor).data)

    @extend_schema(
        operation_id="monitor_submit_event",
        summary="Record an answer on a monitor; its evaluation runs in the background",
        parameters=[MONITOR_ID],
        request=MonitorEventSerializer,
        responses={
            201: MonitorEventOutputSerializer,
            **error_responses(400, 401, 403, 404, 429),
            **UNPROCESSABLE,
        },
    )
    def submit_event(self, request: Request, monitor_id: str) -> Response:
        """Record one model input/output pair: answers at once with the event and evaluation ids."""
        monitor = self._monitor(monitor_id)
        data, error = validated(request, MonitorEventSerializer)
        if error:
            return error
        try:
            event = monitor_event_create(monitor=monitor, created_by=self.membership.user, **data)
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(MonitorEventOutputSerializer(event).data, status=status.HTTP_201_CREATED)


# Top-level paths, no trailing slash, as the DeepRails client calls them.
urlpatterns = [
    path("monitor", MonitorViewSet.as_view({"post": "create"}), name="monitor-list"),
    path("monitor/<str:monitor_id>", MonitorViewSet.as_view({"get": "retrieve", "put": "update"}), name="monitor"),
    path("monitor/<str:monitor_id>/events", MonitorViewSet.as_view({"post": "submit_event"}), name="monitor-events"),
]
