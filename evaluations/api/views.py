from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet, ListPagination, uuid_or_none
from companies.api.serializers import error_responses
from evaluations.gate import GateError, gate_compare
from evaluations.models import Evaluation, Review
from evaluations.reviewing import ReviewError, ReviewInput, review_save, review_withdraw
from evaluations.run_card import evaluations_for_run
from evaluations.services import EvaluationError, evaluation_cancel, evaluation_create
from llm.catalog import UnknownModel
from runs.models import Run

from .serializers import (
    EvaluationCompareOutputSerializer,
    EvaluationCreateSerializer,
    EvaluationDetailOutputSerializer,
    EvaluationMetaSerializer,
    EvaluationStatisticsOutputSerializer,
    EvaluationSummaryOutputSerializer,
    ReviewCreateSerializer,
    ReviewOutputSerializer,
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
                batch=serializer.validated_data.get("batch"),
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

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "baseline",
                OpenApiTypes.UUID,
                OpenApiParameter.QUERY,
                required=True,
                description="The evaluation to compare against: a finished evaluation of a run of the same spec.",
            )
        ],
        responses={200: EvaluationCompareOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, pk: str | None = None) -> Response:
        """Changes from a baseline evaluation with 95% intervals, and the regression gate's verdict (our addition)."""
        # `manage.py gate` gives the same answer (evaluations/gate.py); the thresholds are the GATE_* settings.
        candidate = self.get_object()
        raw = request.query_params.get("baseline", "")
        code = uuid_or_none(raw)
        if code is None:
            raise BadRequest("Pass ?baseline=<evaluation id>." if not raw else "baseline is not an evaluation id.")
        baseline = self.get_queryset().filter(code=code).first()
        if baseline is None:
            raise exceptions.NotFound("No evaluation with the baseline's id.")
        try:
            changes = gate_compare(baseline=baseline, candidate=candidate)
        except GateError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(EvaluationCompareOutputSerializer(changes).data)

    @extend_schema(methods=["GET"], responses={200: EvaluationMetaSerializer, **error_responses(401, 403, 404)})
    @extend_schema(
        methods=["PATCH"],
        request=EvaluationMetaSerializer,
        responses={200: EvaluationMetaSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get", "patch"])
    def meta(self, request: Request, pk: str | None = None) -> Response:
        """An evaluation's name and note (our addition: the evaluation object keeps its documented keys)."""
        evaluation = self.get_object()
        if request.method == "PATCH":
            serializer = EvaluationMetaSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            evaluation.rename(**serializer.validated_data)
        return Response(EvaluationMetaSerializer(evaluation).data)

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


REVIEW_PARAMETERS = [
    OpenApiParameter("evaluation_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The evaluation's id.")
]
MAX_REVIEWS_PER_REQUEST = 1000
ONE_OR_MANY_REVIEWS = PolymorphicProxySerializer(
    component_name="ReviewCreateOneOrMany",
    serializers=[ReviewCreateSerializer, ReviewCreateSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)
STORED_ONE_OR_MANY = PolymorphicProxySerializer(
    component_name="ReviewOneOrMany",
    serializers=[ReviewOutputSerializer, ReviewOutputSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


# Human labels of an evaluation's samples (our addition). They belong to the run's samples: every evaluation of the
# run lists and measures against the same ones.
class EvaluationReviewViewSet(CompanyScopedViewSet):
    queryset = Review.objects.select_related("sample", "reviewer", "evaluation")
    pagination_class = ListPagination

    def _evaluation(self, evaluation_pk: str) -> Evaluation:
        code = uuid_or_none(evaluation_pk)
        rows = Evaluation.objects.for_company(self.company).select_related("run__spec_version")
        evaluation = rows.filter(code=code).first() if code else None
        if evaluation is None:
            raise exceptions.NotFound("No evaluation with this id.")
        return evaluation

    @extend_schema(
        parameters=REVIEW_PARAMETERS,
        responses={200: ReviewOutputSerializer(many=True), **error_responses(400, 401, 403, 404)},
    )
    def list(self, request: Request, evaluation_pk: str) -> Response:
        """List the human labels of the evaluation's samples (every reviewer's), most recently changed first."""
        evaluation = self._evaluation(evaluation_pk)
        reviews = self.get_queryset().filter(sample__run_id=evaluation.run_id).order_by("-updated_at", "-id")
        page = self.paginate_queryset(reviews)
        assert page is not None  # pagination_class is set
        return self.get_paginated_response(ReviewOutputSerializer(page, many=True).data)

    @extend_schema(
        parameters=REVIEW_PARAMETERS,
        request=ONE_OR_MANY_REVIEWS,
        responses={201: STORED_ONE_OR_MANY, **error_responses(400, 401, 403, 404)},
    )
    def create(self, request: Request, evaluation_pk: str) -> Response:
        """Label samples: one object, or a list of up to 1,000 stored all or none (a 400 names the bad item's index)."""
        evaluation = self._evaluation(evaluation_pk)
        many = isinstance(request.data, list)
        items = request.data if many else [request.data]
        if many and not 1 <= len(items) <= MAX_REVIEWS_PER_REQUEST:
            raise BadRequest(
                f"Send from 1 to {MAX_REVIEWS_PER_REQUEST:,} labels at once; this list has {len(items):,}."
            )
        inputs = []
        for index, item in enumerate(items):
            serializer = ReviewCreateSerializer(data=item)
            if not serializer.is_valid():
                if not many:
                    raise exceptions.ValidationError(serializer.errors)
                problems = "; ".join(
                    f"{field}: {' '.join(map(str, errors))}" for field, errors in serializer.errors.items()
                )
                raise BadRequest(f"Item {index}: {problems}")
            inputs.append(ReviewInput(**serializer.validated_data))
        try:
            reviews = review_save(evaluation=evaluation, reviewer=self.membership.user, items=inputs)
        except ReviewError as exc:
            if not many:
                raise exceptions.ValidationError({exc.field: [str(exc)]}) from exc
            raise BadRequest(f"Item {exc.index}: {exc.field}: {exc}") from exc
        data = ReviewOutputSerializer(reviews, many=True).data
        return Response(data if many else data[0], status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            *REVIEW_PARAMETERS,
            OpenApiParameter("review_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The label's id."),
        ],
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def destroy(self, request: Request, evaluation_pk: str, review_id: str) -> Response:
        """Withdraw a human label."""
        evaluation = self._evaluation(evaluation_pk)
        code = uuid_or_none(review_id)
        review = self.get_queryset().filter(sample__run_id=evaluation.run_id, code=code).first() if code else None
        if review is None:
            raise exceptions.NotFound("No label with this id.")
        review_withdraw(review=review)
        return Response(status=status.HTTP_204_NO_CONTENT)
