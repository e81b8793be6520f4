from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from anonymization.models import AnonymizationRun, AnonymizedFile
from anonymization.services import (
    AnonymizationError,
    anonymization_archive_request,
    anonymization_run_create,
    anonymization_run_delete,
)
from companies.api.base import BadRequest, CompanyScopedViewSet, uuid_or_none
from companies.api.serializers import error_responses
from config.api import StrictJSONParser
from runs.api.downloads import LINK_REVOKED, binding_holds, download_token
from runs.models import SeedDataset

from .serializers import (
    AnonymizationArchiveOutputSerializer,
    AnonymizationRunCreateSerializer,
    AnonymizationRunDetailOutputSerializer,
    AnonymizationRunListOutputSerializer,
    AnonymizedFileDownloadOutputSerializer,
)

DOWNLOAD_SALT = "anonymization.download"  # its links open only here, never on the runs' download view


@extend_schema_view(
    list=extend_schema(
        description="List your company's anonymization runs, newest first.",
        responses={200: AnonymizationRunListOutputSerializer(many=True), **error_responses(401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve an anonymization run; poll it while PENDING or PROCESSING.",
        responses={200: AnonymizationRunDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=extend_schema(
        description="Delete an anonymization run: it is hidden, its data kept.",
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class AnonymizationRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CompanyScopedViewSet,
):
    queryset = AnonymizationRun.objects.select_related("dataset", "created_by")
    parser_classes = [StrictJSONParser]

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.visible()

    def get_serializer_class(self) -> Any:
        return AnonymizationRunListOutputSerializer if self.action == "list" else AnonymizationRunDetailOutputSerializer

    @extend_schema(
        request=AnonymizationRunCreateSerializer,
        responses={201: AnonymizationRunDetailOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request) -> Response:
        """Anonymize a seed dataset in the background: answers at once, PENDING; poll its id."""
        serializer = AnonymizationRunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        dataset = SeedDataset.objects.for_company(self.company).filter(code=data.pop("dataset_id")).first()
        if dataset is None:
            raise exceptions.NotFound("No seed dataset with this id.")
        try:
            run = anonymization_run_create(
                company=self.company, created_by=self.membership.user, dataset=dataset, **data
            )
        except AnonymizationError as exc:
            raise BadRequest(str(exc)) from exc
        run.refresh_from_db()  # the work may have run inline already (a synchronous queue)
        return Response(AnonymizationRunDetailOutputSerializer(run).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Soft-delete a run: hidden from the list, its data kept."""
        anonymization_run_delete(run=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="api_dataframer_anonymization_runs_files_download_retrieve",
        parameters=[OpenApiParameter("file_id", str, OpenApiParameter.PATH, description="An anonymized file's id.")],
        responses={200: AnonymizedFileDownloadOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<file_id>[^/]+)/download")
    def download_file(self, request: Request, pk: str | None = None, file_id: str = "") -> Response:
        """A signed, expiring link to one anonymized file of a SUCCEEDED run."""
        run = self.get_object()
        code = uuid_or_none(file_id)
        row = run.files.filter(code=code, skipped_reason="").first() if code else None
        if row is None:
            raise exceptions.NotFound("No anonymized file with this id in this run.")
        if run.status != AnonymizationRun.Status.SUCCEEDED:
            raise BadRequest(f"The run must be SUCCEEDED to download its files; it is {run.status}.")
        token = download_token(request, {"anonymization_run": str(run.code), "file": str(row.code)}, salt=DOWNLOAD_SALT)
        data = {
            "content_type": row.content_type,
            "download_url": request.build_absolute_uri(reverse("api:anonymization-download", args=[token])),
            "file_name": row.path.rsplit("/", 1)[-1],
        }
        return Response(AnonymizedFileDownloadOutputSerializer(data).data)

    @extend_schema(
        operation_id="api_dataframer_anonymization_runs_download_retrieve",
        responses={200: AnonymizationArchiveOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="download")
    def download_all(self, request: Request, pk: str | None = None) -> Response:
        """A ZIP of every anonymized file: `generating` while a worker builds it, then `ready` with a signed link."""
        run = self.get_object()
        try:
            state = anonymization_archive_request(run=run)
        except AnonymizationError as exc:
            raise BadRequest(str(exc)) from exc
        url = None
        if state == "ready":
            token = download_token(request, {"anonymization_run": str(run.code), "file": None}, salt=DOWNLOAD_SALT)
            url = request.build_absolute_uri(reverse("api:anonymization-download", args=[token]))
        return Response(AnonymizationArchiveOutputSerializer({"download_url": url, "status": state}).data)


@extend_schema(exclude=True)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
def signed_download(request: Request, token: str) -> HttpResponseBase:
    """Serve an anonymized file or the run's ZIP behind a signed link (DOWNLOAD_URL_MAX_AGE seconds), while the key
    or browser session that made it is still valid, as the runs' links do."""
    try:
        payload = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.DOWNLOAD_URL_MAX_AGE)
    except signing.SignatureExpired:
        raise exceptions.NotFound("This download link has expired.") from None
    except signing.BadSignature:
        raise exceptions.NotFound("Invalid download link.") from None
    run = get_object_or_404(AnonymizationRun.objects.visible(), code=payload["anonymization_run"])
    if not binding_holds(request, payload, run.company_id):
        raise exceptions.NotFound(LINK_REVOKED)
    if payload["file"] is None:
        if run.archive != AnonymizationRun.Archive.READY or not default_storage.exists(run.archive_storage_name):
            raise exceptions.NotFound("The ZIP is gone: ask for the download again.")
        stored, name, content_type = run.archive_storage_name, f"anonymized-{run.code}.zip", "application/zip"
    else:
        row: AnonymizedFile = get_object_or_404(run.files.exclude(storage_name=""), code=payload["file"])
        stored, name, content_type = row.storage_name, row.path.rsplit("/", 1)[-1], row.content_type
    try:
        opened = default_storage.open(stored, "rb")
    except FileNotFoundError:
        raise exceptions.NotFound("The stored copy is missing.") from None
    return FileResponse(opened, as_attachment=True, filename=name, content_type=content_type)
