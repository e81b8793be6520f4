from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status
from rest_framework.decorators import (
    action,
    api_view,
    authentication_classes,
    permission_classes,
)
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet
from companies.api.serializers import error_responses
from runs.exports import build_run_zip, run_zip_open, run_zip_store
from runs.imports import ImportProblems, read_upload
from runs.models import Run, Sample, Spec
from runs.services import (
    RunError,
    run_import,
    spec_add_version,
    spec_create,
    spec_delete,
)
from runs.specfile import SpecError

from .serializers import (
    ArchiveDownloadOutputSerializer,
    CreatedOutputSerializer,
    FileDownloadOutputSerializer,
    RunCancelOutputSerializer,
    RunDetailOutputSerializer,
    RunImportSerializer,
    RunListOutputSerializer,
    SpecCreateSerializer,
    SpecDetailOutputSerializer,
    SpecListOutputSerializer,
    SpecUpdateSerializer,
)

DOWNLOAD_SALT = "runs.download"


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


INCLUDE_VERSIONS = OpenApiParameter(
    "include_versions", bool, description="Also return every version's YAML, oldest first."
)


@extend_schema_view(
    list=extend_schema(
        description="List your company's specs, newest first.",
        responses={200: SpecListOutputSerializer(many=True), **error_responses(401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve a spec with its latest YAML.",
        parameters=[INCLUDE_VERSIONS],
        responses={200: SpecDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
)
class SpecViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedViewSet,
):
    queryset = Spec.objects.select_related("created_by")
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def get_serializer_class(self) -> Any:
        return SpecListOutputSerializer if self.action == "list" else SpecDetailOutputSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        return {
            **super().get_serializer_context(),
            "include_versions": _flag(self.request, "include_versions"),
        }

    @extend_schema(
        request=SpecCreateSerializer,
        responses={201: CreatedOutputSerializer, **error_responses(400, 401, 403)},
    )
    def create(self, request: Request) -> Response:
        """Create a spec from its YAML (`content_yaml`); the answer holds its id."""
        serializer = SpecCreateSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        if "content_yaml" not in serializer.validated_data:
            raise BadRequest(
                "Generating a spec from a seed dataset or objectives is not supported yet: "
                "send the spec itself as `content_yaml`."
            )
        try:
            spec = spec_create(
                company=self.company,
                created_by=self.membership.user,
                **serializer.validated_data,
            )
        except SpecError as exc:
            raise exceptions.ValidationError({"content_yaml": [str(exc)]}) from exc
        return Response(CreatedOutputSerializer(spec).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=SpecUpdateSerializer,
        parameters=[INCLUDE_VERSIONS],
        responses={200: SpecDetailOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def update(self, request: Request, pk: str | None = None) -> Response:
        """Save new YAML as the spec's next version and return the spec."""
        spec = self.get_object()
        serializer = SpecUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            spec_add_version(
                spec=spec,
                created_by=self.membership.user,
                content_yaml=serializer.validated_data["content_yaml"],
            )
        except SpecError as exc:
            raise exceptions.ValidationError({"content_yaml": [str(exc)]}) from exc
        spec.refresh_from_db()
        return Response(SpecDetailOutputSerializer(spec, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[OpenApiParameter("force", bool, description="Also delete the spec's runs.")],
        responses={204: None, **error_responses(400, 401, 403, 404)},
    )
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Delete a spec; one with runs only with `force=true`, which deletes its runs too."""
        try:
            spec_delete(spec=self.get_object(), force=_flag(request, "force"))
        except RunError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        description="List your company's runs, newest first.",
        responses={200: RunListOutputSerializer(many=True), **error_responses(401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve a run with its runtime parameters and files.",
        responses={200: RunDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=extend_schema(
        description="Delete a run and its samples.",
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class RunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedViewSet,
):
    queryset = Run.objects.select_related("spec", "spec_version", "created_by")
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_serializer_class(self) -> Any:
        return RunListOutputSerializer if self.action == "list" else RunDetailOutputSerializer

    @extend_schema(request=None, responses=error_responses(400, 401, 403))
    def create(self, request: Request) -> Response:
        """Not supported yet (always 400): generate your samples elsewhere and import them."""
        raise BadRequest(
            "Generating runs with an LLM is not supported yet: bring your samples with "
            "POST /api/dataframer/runs/import/."
        )

    @extend_schema(
        request=RunImportSerializer,
        responses={201: CreatedOutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=False, methods=["post"], url_path="import")
    def import_run(self, request: Request) -> Response:
        """Import a run you generated elsewhere: JSON `samples`, or a JSONL / ZIP `file`."""
        serializer = RunImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        spec = Spec.objects.for_company(self.company).filter(code=data["spec_id"]).first()
        if spec is None:
            raise exceptions.NotFound("No spec with this id.")
        try:
            rows = data["samples"] if "samples" in data else read_upload(data["file"])
            run = run_import(
                company=self.company, created_by=self.membership.user, spec=spec, rows=rows,
                spec_version=data.get("spec_version"), name=data["name"],
            )  # fmt: skip
        except ImportProblems as exc:
            raise exceptions.ValidationError({"samples": exc.problems}) from exc
        except RunError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(CreatedOutputSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunCancelOutputSerializer, **error_responses(400, 401, 403, 404)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a PENDING or PROCESSING run."""
        run = self.get_object()
        if not run.cancel():
            raise BadRequest(f"Only PENDING or PROCESSING runs can be canceled; this run is {run.status}.")
        return Response(RunCancelOutputSerializer(run).data)

    @extend_schema(
        operation_id="api_dataframer_runs_files_download_retrieve",
        parameters=[OpenApiParameter("file_id", str, OpenApiParameter.PATH, description="A generated file's id.")],
        responses={200: FileDownloadOutputSerializer, **error_responses(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<file_id>[^/]+)/download")
    def download_file(self, request: Request, pk: str | None = None, file_id: str = "") -> Response:
        """A signed, expiring link to one file of the run."""
        run = self.get_object()
        sample = (
            run.samples.filter(code=file_id).only("code", "path", "file_type").first() if _is_uuid(file_id) else None
        )
        if sample is None:
            raise exceptions.NotFound("No file with this id in this run.")
        token = signing.dumps({"run": str(run.code), "file": str(sample.code)}, salt=DOWNLOAD_SALT)
        data = {
            "download_url": request.build_absolute_uri(reverse("api:signed-download", args=[token])),
            "filename": sample.path.rsplit("/", 1)[-1],
            "content_type": sample.file_type,
        }
        return Response(FileDownloadOutputSerializer(data).data)

    @extend_schema(
        operation_id="api_dataframer_runs_files_download_all_retrieve",
        responses={200: ArchiveDownloadOutputSerializer, **error_responses(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="files/download")
    def download_all(self, request: Request, pk: str | None = None) -> Response:
        """A signed, expiring link to a ZIP of every file of the run."""
        run = self.get_object()
        # Built once, here (the answer carries its size); the link serves this very file.
        archive_id, size = run_zip_store(run)
        token = signing.dumps({"run": str(run.code), "file": None, "archive": archive_id}, salt=DOWNLOAD_SALT)
        data = {
            "download_url": request.build_absolute_uri(reverse("api:signed-download", args=[token])),
            "size_bytes": size,
        }
        return Response(ArchiveDownloadOutputSerializer(data).data)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@extend_schema(exclude=True)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
def signed_download(request: Request, token: str) -> HttpResponseBase:
    """Serve a file behind a signed, expiring link: it works without the API key, like a presigned URL."""
    try:
        payload = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.DOWNLOAD_URL_MAX_AGE)
    except signing.SignatureExpired:
        raise exceptions.NotFound("This download link has expired.") from None
    except signing.BadSignature:
        raise exceptions.NotFound("Invalid download link.") from None
    run = get_object_or_404(Run, code=payload["run"])
    if payload["file"] is None:
        archive = run_zip_open(str(payload.get("archive") or "")) or build_run_zip(run)
        return FileResponse(
            archive,
            as_attachment=True,
            filename=f"run-{run.code}.zip",
            content_type="application/zip",
        )
    sample: Sample = get_object_or_404(run.samples, code=payload["file"])
    response = HttpResponse(
        sample.content.encode("utf-8"),
        content_type=f"{sample.file_type}; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(True, sample.path.rsplit("/", 1)[-1])
    return response
