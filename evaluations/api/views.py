from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet
from evaluations.models import Evaluation
from evaluations.selectors import evaluations_for_run
from evaluations.services import EvaluationError, evaluation_cancel, evaluation_create
from llm.catalog import UnknownModel
from runs.models import Run

from .serializers import (
    EvaluationCreateSerializer,
    evaluation_detail,
    evaluation_summary,
)


class EvaluationViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, CompanyScopedViewSet):
    queryset = Evaluation.objects.select_related("run", "company", "created_by")

    def list(self, request: Request) -> Response:
        """Our addition: every evaluation of the company, newest first."""
        return Response([evaluation_summary(e) for e in self.get_queryset().order_by("-created_at")])

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(evaluation_detail(self.get_object()))

    @extend_schema(request=EvaluationCreateSerializer)
    def create(self, request: Request) -> Response:
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
        return Response(evaluation_detail(evaluation), status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Our addition: stop an unfinished evaluation. It ends FAILED (the Dataframer client knows no CANCELED
        status) with an error_message naming who canceled it; no new judge call starts after a few seconds."""
        try:
            evaluation = evaluation_cancel(evaluation=self.get_object(), canceled_by=self.membership.user)
        except EvaluationError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(evaluation_detail(evaluation))

    @action(detail=True, methods=["get"])
    def statistics(self, request: Request, pk: str | None = None) -> Response:
        """Our addition: per property chi-square p-value, Wilson intervals, agreement and confusion matrix."""
        evaluation = self.get_object()
        return Response(
            {
                "id": str(evaluation.code),
                "status": evaluation.status,
                "statistics": evaluation.statistics,
            }
        )


class RunEvaluationsViewSet(mixins.ListModelMixin, CompanyScopedViewSet):
    """`GET /api/dataframer/runs/{id}/evaluations/`: a run's evaluations, newest first. It lives here, not on the
    run viewset, because runs does not know evaluations (DESIGN.md §3)."""

    queryset = Evaluation.objects.select_related("run", "created_by")

    def list(self, request: Request, run_pk: str = "") -> Response:
        code = _uuid_or_none(run_pk)
        run = Run.objects.for_company(self.company).filter(code=code).first() if code else None
        if run is None:
            raise exceptions.NotFound("No run with this id.")
        return Response([evaluation_summary(e) for e in evaluations_for_run(run.id)])


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
