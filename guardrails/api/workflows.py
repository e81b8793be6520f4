"""DeepRails Defend workflows (deeprails 1.9.0 `client.defend`): `POST /defend`, `GET|PUT /defend/{workflow_id}`,
`POST /defend/{workflow_id}/events` and `GET /defend/{workflow_id}/events/{event_id}`, shaped as the client's
DefendResponse and WorkflowEventResponse types (every key present, explicit nulls) plus documented additions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet
from companies.api.serializers import error_responses
from guardrails.defend import TOLERANCE_THRESHOLDS, workflow_create, workflow_event_create, workflow_update
from guardrails.metrics import RUN_MODES
from guardrails.models import ActiveStatus, Workflow, WorkflowEvent
from guardrails.selectors import workflow_event_attempts, workflow_success_rate
from guardrails.services import GuardrailInputError

from .lookup import get_by_wire_id
from .serializers import (
    ModelInputSerializer,
    ObjectSerializer,
    StrictCharField,
    UnprocessableOutputSerializer,
    validated,
)

# --- Input ---


class StrictFloatField(serializers.FloatField):
    """A JSON number, never a string or a boolean turned into one."""

    default_error_messages = {"float_type": "Input should be a valid number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("float_type")
        return super().to_internal_value(data)


class WorkflowCreateSerializer(ObjectSerializer):
    name = StrictCharField(max_length=255)
    type = serializers.ChoiceField(choices=Workflow.ThresholdType.values)
    improvement_action = serializers.ChoiceField(choices=Workflow.Action.values)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    custom_hallucination_threshold_values = serializers.DictField(
        child=StrictFloatField(min_value=0.0, max_value=1.0), required=False, help_text="For type custom: metric → 0-1."
    )
    automatic_hallucination_tolerance_levels = serializers.DictField(
        child=serializers.ChoiceField(choices=list(TOLERANCE_THRESHOLDS)),
        required=False,
        help_text="For type automatic: metric → low (threshold "
        + ", ".join(f"{k} {v:g}" for k, v in TOLERANCE_THRESHOLDS.items())
        + "). Low tolerance of hallucination means a high bar.",
    )
    max_improvement_attempts = serializers.IntegerField(
        required=False, min_value=0, max_value=settings.DEFEND_MAX_IMPROVEMENT_ATTEMPTS, default=10
    )
    declined_passes = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Our addition: count a metric the judge declined to grade (`judged: false`) as passed. "
        "Off by default: a placeholder score is not a pass.",
    )


class WorkflowUpdateSerializer(ObjectSerializer):
    name = StrictCharField(required=False, max_length=255)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)


class WorkflowEventSerializer(ObjectSerializer):
    model_input = ModelInputSerializer(help_text="At least a user_prompt or a system_prompt.")
    model_output = StrictCharField(allow_blank=True)
    model_used = StrictCharField(max_length=200)
    run_mode = serializers.ChoiceField(choices=RUN_MODES)
    nametag = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=255)


# --- Output ---


class WorkflowOutputSerializer(serializers.Serializer[Any]):
    workflow_id = serializers.CharField(help_text="`wkfl-<uuid>`.")
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=ActiveStatus.choices)
    improvement_action = serializers.ChoiceField(choices=Workflow.Action.choices)
    max_improvement_attempts = serializers.IntegerField()
    success_rate = serializers.SerializerMethodField(help_text="0-1: the share of decided events that passed.")
    created_at = serializers.DateTimeField()
    modified_at = serializers.DateTimeField()
    type = serializers.ChoiceField(source="threshold_type", choices=Workflow.ThresholdType.choices)
    thresholds = serializers.DictField(
        child=serializers.FloatField(), help_text="Our addition: the threshold per metric the workflow applies."
    )
    declined_passes = serializers.BooleanField(help_text="Our addition (see the create body).")

    def get_success_rate(self, workflow: Workflow) -> float | None:
        return workflow_success_rate(workflow)


class AttemptOutputSerializer(serializers.Serializer[Any]):
    attempt_number = serializers.IntegerField(help_text="0 is the output as submitted; 1.. the improvements.")
    output = serializers.CharField()
    evaluation_id = serializers.CharField()
    evaluation_status = serializers.CharField()
    evaluation_result = serializers.DictField(allow_null=True)
    passed = serializers.BooleanField(allow_null=True)
    failing_metrics = serializers.ListField(child=serializers.CharField())
    evaluation_cost_usd = serializers.FloatField()
    writer_cost_usd = serializers.FloatField()
    cost_usd = serializers.FloatField()


# Serializes (event, attempts): the wire's four fields first, then our additions.
class WorkflowEventOutputSerializer(serializers.Serializer[Any]):
    event_id = serializers.CharField(help_text="`wevt-<uuid>`.")
    workflow_id = serializers.CharField()
    attempt_number = serializers.IntegerField(allow_null=True, help_text="How many improvements were made.")
    evaluation_id = serializers.CharField(allow_null=True, help_text="The latest attempt's evaluation.")
    filtered = serializers.BooleanField(allow_null=True, help_text="Null until decided.")
    status = serializers.ChoiceField(choices=WorkflowEvent.Status.choices)
    error_message = serializers.CharField(allow_null=True)
    final_output = serializers.CharField(allow_null=True, help_text="The latest attempt's output.")
    attempts = AttemptOutputSerializer(many=True)

    def to_representation(self, instance: Any) -> Any:
        event, attempts = instance
        latest = attempts[-1] if attempts else None
        return {
            "event_id": event.event_id,
            "workflow_id": event.workflow.workflow_id,
            "attempt_number": latest["attempt_number"] if latest else None,
            "evaluation_id": latest["evaluation_id"] if latest else None,
            "filtered": event.filtered,
            "status": event.status,
            "error_message": event.error_message,
            "final_output": latest["output"] if latest else None,
            "attempts": AttemptOutputSerializer(attempts, many=True).data,
        }


WORKFLOW_ID = OpenApiParameter("workflow_id", str, OpenApiParameter.PATH, description="`wkfl-<uuid>`.")
EVENT_ID = OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="`wevt-<uuid>`.")
UNPROCESSABLE = {
    422: OpenApiResponse(UnprocessableOutputSerializer, description="The request does not match the schema.")
}


class WorkflowViewSet(CompanyScopedViewSet):
    queryset = Workflow.objects.all()

    def _workflow(self, workflow_id: str) -> Workflow:
        """The company's workflow with this wire id; anything else (another company's included) is not found."""
        workflows: QuerySet[Workflow] = self.get_queryset()
        return get_by_wire_id(workflows, Workflow.ID_PREFIX, workflow_id, missing="No workflow with this id.")

    def _event_data(self, event: WorkflowEvent) -> Any:
        return WorkflowEventOutputSerializer((event, workflow_event_attempts(event))).data

    @extend_schema(
        operation_id="defend_create_workflow",
        summary="Create a Defend workflow",
        request=WorkflowCreateSerializer,
        responses={201: WorkflowOutputSerializer, **error_responses(400, 401, 403), **UNPROCESSABLE},
    )
    def create(self, request: Request) -> Response:
        """Thresholds per metric and an improvement action; regen and fixit need a writer model (400 says how)."""
        data, error = validated(request, WorkflowCreateSerializer)
        if error:
            return error
        try:
            workflow = workflow_create(company=self.company, created_by=self.membership.user, **data)
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(WorkflowOutputSerializer(workflow).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="defend_retrieve_workflow",
        summary="Retrieve a Defend workflow",
        parameters=[WORKFLOW_ID],
        responses={200: WorkflowOutputSerializer, **error_responses(401, 403, 404)},
    )
    def retrieve(self, request: Request, workflow_id: str) -> Response:
        """A workflow with its thresholds and success rate (the share of decided events that passed)."""
        return Response(WorkflowOutputSerializer(self._workflow(workflow_id)).data)

    @extend_schema(
        operation_id="defend_update_workflow",
        summary="Rename or redescribe a Defend workflow",
        parameters=[WORKFLOW_ID],
        request=WorkflowUpdateSerializer,
        responses={200: WorkflowOutputSerializer, **error_responses(401, 403, 404), **UNPROCESSABLE},
    )
    def update(self, request: Request, workflow_id: str) -> Response:
        """Change the name or description; thresholds and action stay as created."""
        workflow = self._workflow(workflow_id)
        data, error = validated(request, WorkflowUpdateSerializer)
        if error:
            return error
        workflow = workflow_update(workflow=workflow, name=data.get("name"), description=data.get("description"))
        return Response(WorkflowOutputSerializer(workflow).data)

    @extend_schema(
        operation_id="defend_submit_event",
        summary="Submit an output to a workflow; it is graded (and improved) in the background",
        parameters=[WORKFLOW_ID],
        request=WorkflowEventSerializer,
        responses={
            201: WorkflowEventOutputSerializer,
            **error_responses(400, 401, 403, 404, 429),
            **UNPROCESSABLE,
        },
    )
    def submit_event(self, request: Request, workflow_id: str) -> Response:
        """Answers at once (queued, attempt 0); poll GET .../events/{event_id} until `filtered` is set."""
        workflow = self._workflow(workflow_id)
        data, error = validated(request, WorkflowEventSerializer)
        if error:
            return error
        try:
            event = workflow_event_create(workflow=workflow, created_by=self.membership.user, **data)
        except GuardrailInputError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(self._event_data(event), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="defend_retrieve_event",
        summary="Retrieve a workflow event with every attempt's output, evaluation and cost",
        parameters=[WORKFLOW_ID, EVENT_ID],
        responses={200: WorkflowEventOutputSerializer, **error_responses(401, 403, 404)},
    )
    def retrieve_event(self, request: Request, workflow_id: str, event_id: str) -> Response:
        """An event: where its improvement loop stands, and every attempt's output, evaluation and cost."""
        workflow = self._workflow(workflow_id)
        events = workflow.events.select_related("workflow")
        event = get_by_wire_id(
            events, WorkflowEvent.ID_PREFIX, event_id, missing="No event with this id in this workflow."
        )
        return Response(self._event_data(event))


# Top-level paths, no trailing slash, as the DeepRails client calls them.
urlpatterns = [
    path("defend", WorkflowViewSet.as_view({"post": "create"}), name="defend-list"),
    path("defend/<str:workflow_id>", WorkflowViewSet.as_view({"get": "retrieve", "put": "update"}), name="defend"),
    path("defend/<str:workflow_id>/events", WorkflowViewSet.as_view({"post": "submit_event"}), name="defend-events"),
    path(
        "defend/<str:workflow_id>/events/<str:event_id>",
        WorkflowViewSet.as_view({"get": "retrieve_event"}),
        name="defend-event",
    ),
]
