from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet, uuid_or_none
from companies.api.serializers import error_responses
from evaluations.models import Evaluation
from evaluations.selectors import evaluations_for_run
from evaluations.services import EvaluationError, evaluation_cancel, evaluation_create
from llm.catalog import UnknownModel
from runs.models import Run

from .serializers import (
    EvaluationCreateSerializer,
    EvaluationDetailOutputSerializer,
    EvaluationStatisticsOutputSerializer,
    EvaluationSummaryOutputSerializer,
)


class EvaluationViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, CompanyScopedViewSet):
    queryset = Evaluation.objects.select_related("run", "company", "created_by")

    @extend_schema(responses={200: EvaluationSummaryOutputSerializer(many=True), **error_responses(401, 403)})
    def list(self, request: Request) -> Response:
        """List your company's evaluations, newest first (our addition)."""
        evaluations = self.get_queryset().order_by("-created_at")
        return Response(EvaluationSummaryOutputSerializer(evaluations, many=True).data)

    @extend_schema(responses={200: EvaluationDetailOutputSerializer, **error_responses(401, 403, 404)})
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        """Retrieve an evaluation: poll it until its status is SUCCEEDED or FAILED."""
        return Response(EvaluationDetailOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=EvaluationCreateSerializer,
        responses={201: EvaluationDetailOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request) -> Response:
        """Evaluate a run; the answer is the whole evaluation, PENDING, to poll."""
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = Run.objects.for_company(self.company).filter(code=serializer.validated_data["run_id"]).first()
        if run is None:
            raise exceptions.NotFound("No run with this id.")
        try:
            evaluation = evaluation_create(
                company=self.company,
                created_by=self.membership.user,
                run=run,
                model_name=serializer.validated_data.get("evaluation_model") or None,
            )
        except UnknownModel as exc:
            raise exceptions.ValidationError({"evaluation_model": [str(exc)]}) from exc
        except EvaluationError as exc:
            raise BadRequest(str(exc)) from exc
        evaluation.refresh_from_db()
        return Response(EvaluationDetailOutputSerializer(evaluation).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None, responses={200: EvaluationDetailOutputSerializer, **error_responses(400, 401, 403, 404)}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel an unfinished evaluation (our addition): it ends FAILED, its error_message saying who canceled it."""
        # FAILED, not CANCELED: the Dataframer client's status type has no CANCELED; canceled_at tells them apart.
        try:
            evaluation = evaluation_cancel(evaluation=self.get_object(), canceled_by=self.membership.user)
        except EvaluationError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(EvaluationDetailOutputSerializer(evaluation).data)

    @extend_schema(responses={200: EvaluationStatisticsOutputSerializer, **error_responses(401, 403, 404)})
    @action(detail=True, methods=["get"])
    def statistics(self, request: Request, pk: str | None = None) -> Response:
        """Per property statistics: chi-square p-value, Wilson intervals, agreement, confusion (our addition)."""
        return Response(EvaluationStatisticsOutputSerializer(self.get_object()).data)


# `GET /api/dataframer/runs/{id}/evaluations/` lives here, not on the run viewset, because runs does not know
# evaluations (DESIGN.md §3).
class RunEvaluationsViewSet(mixins.ListModelMixin, CompanyScopedViewSet):
    queryset = Evaluation.objects.select_related("run", "created_by")

    @extend_schema(
        parameters=[OpenApiParameter("run_pk", str, OpenApiParameter.PATH, description="The run's id.")],
        responses={200: EvaluationSummaryOutputSerializer(many=True), **error_responses(401, 403, 404)},
    )
    def list(self, request: Request, run_pk: str = "") -> Response:
        """List a run's evaluations, newest first."""
        code = uuid_or_none(run_pk)
        run = Run.objects.for_company(self.company).filter(code=code).first() if code else None
        if run is None:
            raise exceptions.NotFound("No run with this id.")
        return Response(EvaluationSummaryOutputSerializer(evaluations_for_run(run.id), many=True).data)
