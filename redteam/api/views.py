"""The red_team_specs and red_team_runs endpoints (pydataframer 0.12.1), plus our additions on a run: cancel, and
the attacks on its target with their scores."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet, uuid_or_none
from companies.api.serializers import error_responses
from redteam import selectors
from redteam.models import RedTeamRun, RedTeamSpec
from redteam.services import (
    RedTeamError,
    red_team_run_cancel,
    red_team_run_create,
    red_team_run_delete,
    red_team_spec_create,
    red_team_spec_delete,
    red_team_spec_update,
)

from .serializers import (
    AttackReportOutputSerializer,
    RedTeamRunCreateSerializer,
    RedTeamRunDetailOutputSerializer,
    RedTeamRunListOutputSerializer,
    RedTeamSpecCreateSerializer,
    RedTeamSpecDetailOutputSerializer,
    RedTeamSpecListOutputSerializer,
    RedTeamSpecUpdateSerializer,
)


@extend_schema_view(
    list=extend_schema(
        description="List your company's red team specs, newest first.",
        responses={200: RedTeamSpecListOutputSerializer(many=True), **error_responses(401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve a red team spec.",
        responses={200: RedTeamSpecDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=extend_schema(
        description="Delete a red team spec and its runs.",
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class RedTeamSpecViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedViewSet,
):
    queryset = RedTeamSpec.objects.select_related("company", "created_by")
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self) -> Any:
        return RedTeamSpecListOutputSerializer if self.action == "list" else RedTeamSpecDetailOutputSerializer

    def perform_destroy(self, instance: RedTeamSpec) -> None:
        red_team_spec_delete(spec=instance)

    @extend_schema(
        request=RedTeamSpecCreateSerializer,
        responses={201: RedTeamSpecDetailOutputSerializer, **error_responses(400, 401, 403)},
    )
    def create(self, request: Request) -> Response:
        """Describe an application to red-team; the name is stored in snake_case and is unique in your company."""
        serializer = RedTeamSpecCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            spec = red_team_spec_create(
                company=self.company, created_by=self.membership.user, **serializer.validated_data
            )
        except RedTeamError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(RedTeamSpecDetailOutputSerializer(spec).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RedTeamSpecUpdateSerializer,
        responses={200: RedTeamSpecDetailOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Change the fields sent; a new name is stored in snake_case and must stay unique."""
        spec = self.get_object()
        serializer = RedTeamSpecUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            spec = red_team_spec_update(spec=spec, changes=dict(serializer.validated_data))
        except RedTeamError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(RedTeamSpecDetailOutputSerializer(spec).data)


@extend_schema_view(
    list=extend_schema(
        description="List your company's red team runs, newest first.",
        parameters=[OpenApiParameter("spec_id", str, description="Only the runs of this red team spec.")],
        responses={200: RedTeamRunListOutputSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve a red team run; results_json holds the prompts once it has ended.",
        responses={200: RedTeamRunDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=extend_schema(
        description="Delete a red team run (a running one stops).",
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class RedTeamRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedViewSet,
):
    queryset = RedTeamRun.objects.select_related("company", "spec", "created_by")

    def get_serializer_class(self) -> Any:
        return RedTeamRunListOutputSerializer if self.action == "list" else RedTeamRunDetailOutputSerializer

    def scope_queryset(self, queryset: Any) -> Any:
        spec_id = self.request.query_params.get("spec_id") if self.action == "list" else None
        if spec_id is None:
            return queryset
        code = uuid_or_none(spec_id)
        if code is None:
            raise BadRequest("spec_id is not a valid red team spec id.")
        return queryset.filter(spec__code=code)

    def perform_destroy(self, instance: RedTeamRun) -> None:
        red_team_run_delete(run=instance)

    @extend_schema(
        request=RedTeamRunCreateSerializer,
        responses={201: RedTeamRunDetailOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request) -> Response:
        """Write adversarial behaviours and prompts for a spec (poll its status); `target_model` also scores attacks."""
        serializer = RedTeamRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["judge_run_mode"] = data.pop("run_mode", "")
        spec = RedTeamSpec.objects.for_company(self.company).filter(code=data.pop("red_team_spec_id")).first()
        if spec is None:
            raise exceptions.NotFound("No red team spec with this id.")
        try:
            run = red_team_run_create(company=self.company, created_by=self.membership.user, spec=spec, **data)
        except RedTeamError as exc:
            raise BadRequest(str(exc)) from exc
        run.refresh_from_db()  # tasks may have run it already (inline in tests)
        return Response(RedTeamRunDetailOutputSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: RedTeamRunDetailOutputSerializer, **error_responses(401, 403, 404)})
    @action(detail=True, methods=["get"], url_path="status")
    def retrieve_status(self, request: Request, pk: str | None = None) -> Response:
        """The run as retrieve answers it: poll until it is SUCCEEDED, FAILED or CANCELED."""
        return Response(RedTeamRunDetailOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=None, responses={200: RedTeamRunDetailOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a PENDING or PROCESSING run (our addition)."""
        run = self.get_object()
        try:
            red_team_run_cancel(run=run)
        except RedTeamError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(RedTeamRunDetailOutputSerializer(run).data)

    @extend_schema(responses={200: AttackReportOutputSerializer, **error_responses(400, 401, 403, 404)})
    @action(detail=True, methods=["get"])
    def attacks(self, request: Request, pk: str | None = None) -> Response:
        """The attacks on the run's target, worst first, and the success rate per behaviour (our addition)."""
        run = self.get_object()
        summary = selectors.attack_summary(run)
        if summary is None:
            raise BadRequest("This run has no target_model: its prompts were written, not sent anywhere.")
        prompts = selectors.worst_first(list(run.prompts.all()))
        attacks = [
            {
                "behavior": run.behaviors[p.behavior_index] if p.behavior_index < len(run.behaviors) else "",
                "query": p.query,
                "adversarial_prompt": p.adversarial_prompt,
                "answer": p.answer if p.attacked else None,
                "scores": p.scores,
                "succeeded": p.succeeded,
                "error": p.error or None,
            }
            for p in prompts
        ]
        data = {"status": run.status, "target_model": run.target_model, **summary, "attacks": attacks}
        return Response(AttackReportOutputSerializer(data).data)
