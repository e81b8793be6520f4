"""Dataframer's specs, runs and seed-datasets endpoints (one viewset per resource). Just over 400 lines: the three
viewsets share the flags and the download-link helper; signed downloads themselves are in runs/api/downloads.py.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import (
    action,
)
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.base import BadRequest, CompanyScopedViewSet, uuid_or_none
from companies.api.serializers import error_responses
from config.api import StrictJSONParser
from llm.judges import NoWriter
from runs.exports import export_name, run_zip_store
from runs.generation import run_cancel, run_delete, run_generate
from runs.imports import ImportProblems, read_upload
from runs.models import Run, SeedDataset, Spec
from runs.seeds import SeedError, upload_entries, zip_entries
from runs.services import (
    RunError,
    run_import,
    seed_dataset_create,
    seed_dataset_delete,
    spec_add_version,
    spec_create,
    spec_delete,
    spec_generate_create,
)
from runs.specfile import SpecError

from .downloads import download_token
from .serializers import (
    ArchiveDownloadOutputSerializer,
    CreatedOutputSerializer,
    FileDownloadOutputSerializer,
    RunCancelOutputSerializer,
    RunCreateSerializer,
    RunDetailOutputSerializer,
    RunImportSerializer,
    RunListOutputSerializer,
    SeedDatasetDetailOutputSerializer,
    SeedDatasetFilesSerializer,
    SeedDatasetListOutputSerializer,
    SeedDatasetZipSerializer,
    SpecCreateSerializer,
    SpecDetailOutputSerializer,
    SpecListOutputSerializer,
    SpecUpdateSerializer,
)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: `true` or `false` as the schema says (anything else is a 400, not a silent no)."""
    value = request.query_params.get(name, "false").lower()
    if value not in {"true", "false"}:
        raise BadRequest(f"{name} must be true or false.")
    return value == "true"


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
        responses={200: SpecDetailOutputSerializer, **error_responses(400, 401, 403, 404)},
    ),
)
class SpecViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    CompanyScopedViewSet,
):
    queryset = Spec.objects.select_related("created_by", "dataset")
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
        responses={201: CreatedOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request) -> Response:
        """Create a spec from `content_yaml`, or have an LLM write one from `generation_objectives` and/or `dataset_id`."""
        serializer = SpecCreateSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "content_yaml" in data:
            try:
                spec = spec_create(
                    company=self.company, created_by=self.membership.user, name=data["name"],
                    description=data["description"], content_yaml=data["content_yaml"],
                )  # fmt: skip
            except SpecError as exc:
                raise exceptions.ValidationError({"content_yaml": [str(exc)]}) from exc
            return Response(CreatedOutputSerializer(spec).data, status=status.HTTP_201_CREATED)
        objectives = data.get("generation_objectives", "").strip()
        if not objectives and "dataset_id" not in data:
            raise BadRequest(
                "Send the spec itself as `content_yaml`, or `generation_objectives` and/or a seed dataset's "
                "`dataset_id` to have one generated."
            )
        dataset = None
        if "dataset_id" in data:
            dataset = SeedDataset.objects.for_company(self.company).filter(code=data["dataset_id"]).first()
            if dataset is None:
                raise exceptions.NotFound("No seed dataset with this id.")
        try:
            spec = spec_generate_create(
                company=self.company, created_by=self.membership.user, name=data["name"],
                description=data["description"], dataset=dataset, objectives=objectives,
                model_name=data.get("spec_generation_model_name") or settings.SPEC_GENERATION_DEFAULT_MODEL,
                generate_distributions=data["generate_distributions"],
                generate_conditional_distributions=data["generate_conditional_distributions"],
                extrapolate_axes=data["extrapolate_axes"], extrapolate_values=data["extrapolate_values"],
            )  # fmt: skip
        except NoWriter as exc:  # checked before anything is created: no provider, or a model that cannot write
            raise BadRequest(str(exc)) from exc
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
        except RunError as exc:
            raise BadRequest(str(exc)) from exc
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
    queryset = Run.objects.select_related("spec__dataset", "spec_version", "created_by")
    parser_classes = [StrictJSONParser, MultiPartParser, FormParser]

    def get_serializer_class(self) -> Any:
        return RunListOutputSerializer if self.action == "list" else RunDetailOutputSerializer

    def perform_destroy(self, instance: Run) -> None:
        run_delete(run=instance)

    @extend_schema(
        request=RunCreateSerializer,
        responses={201: CreatedOutputSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def create(self, request: Request) -> Response:
        """Generate a run from a SUCCEEDED spec: values assigned by quota, one LLM call per sample; poll its id."""
        # Without an LLM provider configured, a 400 says how to configure one (runs.generation.run_generate).
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        spec = Spec.objects.for_company(self.company).filter(code=data.pop("spec_id")).first()
        if spec is None:
            raise exceptions.NotFound("No spec with this id.")
        try:
            run = run_generate(company=self.company, created_by=self.membership.user, spec=spec, **data)
        except RunError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(CreatedOutputSerializer(run).data, status=status.HTTP_201_CREATED)

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
        if not run_cancel(run=run):
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
        code = uuid_or_none(file_id)
        sample = run.samples.filter(code=code).only("code", "path", "file_type", "position").first() if code else None
        if sample is None:
            raise exceptions.NotFound("No file with this id in this run.")
        token = download_token(request, {"run": str(run.code), "file": str(sample.code)})
        data = {
            "download_url": request.build_absolute_uri(reverse("api:signed-download", args=[token])),
            "filename": export_name(sample).rsplit("/", 1)[-1],
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
        # "archive": the ZIP built just now (runs/exports.py), which the link serves.
        token = download_token(request, {"run": str(run.code), "file": None, "archive": archive_id})
        data = {
            "download_url": request.build_absolute_uri(reverse("api:signed-download", args=[token])),
            "size_bytes": size,
        }
        return Response(ArchiveDownloadOutputSerializer(data).data)


@extend_schema_view(
    list=extend_schema(
        description="List your company's seed datasets, newest first.",
        responses={200: SeedDatasetListOutputSerializer(many=True), **error_responses(401, 403)},
    ),
    retrieve=extend_schema(
        description="Retrieve a seed dataset with its files.",
        responses={200: SeedDatasetDetailOutputSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=extend_schema(
        description="Delete a seed dataset and its files; refused while specs generated from it exist.",
        responses={204: None, **error_responses(400, 401, 403, 404)},
    ),
)
class SeedDatasetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    CompanyScopedViewSet,
):
    queryset = SeedDataset.objects.select_related("created_by")
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_serializer_class(self) -> Any:
        return SeedDatasetListOutputSerializer if self.action == "list" else SeedDatasetDetailOutputSerializer

    def scope_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("files") if self.action == "retrieve" else queryset

    def _created(self, dataset: SeedDataset) -> Response:
        dataset = self.get_queryset().prefetch_related("files").get(pk=dataset.pk)
        return Response(SeedDatasetDetailOutputSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": SeedDatasetZipSerializer},
        responses={201: SeedDatasetDetailOutputSerializer, **error_responses(400, 401, 403)},
    )
    @action(detail=False, methods=["post"], url_path="create-from-zip")
    def create_from_zip(self, request: Request) -> Response:
        """Create a seed dataset from a ZIP; its layout gives the type (one file, files, or folders of files)."""
        serializer = SeedDatasetZipSerializer(data=request.data, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data["zip_file"]
        if upload.size > settings.SEED_MAX_UPLOAD_BYTES:
            raise BadRequest(f"The ZIP is {upload.size:,} bytes; the limit is {settings.SEED_MAX_UPLOAD_BYTES:,}.")
        try:
            with zipfile.ZipFile(upload) as archive:
                dataset = seed_dataset_create(
                    company=self.company, created_by=self.membership.user, name=data["name"],
                    description=data["description"], entries=zip_entries(archive),
                )  # fmt: skip
        except (zipfile.BadZipFile, EOFError, NotImplementedError):
            raise BadRequest("The upload is not a valid ZIP file.") from None
        except SeedError as exc:
            raise BadRequest(f"The seed dataset was refused: {exc}.") from exc
        return self._created(dataset)

    @extend_schema(
        request={"multipart/form-data": SeedDatasetFilesSerializer},
        responses={201: SeedDatasetDetailOutputSerializer, **error_responses(400, 401, 403)},
    )
    @action(detail=False, methods=["post"], url_path="create")
    def create_with_files(self, request: Request) -> Response:
        """Create a seed dataset from uploaded files (`files[]`; for MULTI_FOLDER, `folder_names[]` too)."""
        raw = request.data if isinstance(request.data, Mapping) else {}  # a JSON array body: every field missing
        fields = {key: value for key in ("name", "description", "dataset_type") if (value := raw.get(key)) is not None}
        files = request.FILES.getlist("files[]") or request.FILES.getlist("files") if request.FILES else []
        folders = _getlist(request, "folder_names[]") or _getlist(request, "folder_names")
        data_in = {**fields, "files": files, **({"folder_names": folders} if folders else {})}
        serializer = SeedDatasetFilesSerializer(data=data_in, context={"company": self.company})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        total = sum(upload.size for upload in data["files"])
        if total > settings.SEED_MAX_UPLOAD_BYTES:
            raise BadRequest(f"The files are {total:,} bytes; the limit is {settings.SEED_MAX_UPLOAD_BYTES:,}.")
        try:
            dataset = seed_dataset_create(
                company=self.company, created_by=self.membership.user, name=data["name"],
                description=data["description"], dataset_type=data["dataset_type"],
                entries=upload_entries(data["files"], data.get("folder_names")),
            )  # fmt: skip
        except SeedError as exc:
            raise BadRequest(f"The seed dataset was refused: {exc}.") from exc
        return self._created(dataset)

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        """Delete a seed dataset and its stored files."""
        try:
            seed_dataset_delete(dataset=self.get_object())
        except SeedError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        operation_id="api_dataframer_seed_datasets_files_retrieve",
        parameters=[OpenApiParameter("file_id", str, OpenApiParameter.PATH, description="A seed file's id.")],
        responses={200: FileDownloadOutputSerializer, **error_responses(401, 403, 404)},
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<file_id>[^/]+)")
    def download_file(self, request: Request, pk: str | None = None, file_id: str = "") -> Response:
        """A signed, expiring link to one file of the seed dataset."""
        dataset = self.get_object()
        code = uuid_or_none(file_id)
        seed_file = dataset.files.filter(code=code).first() if code else None
        if seed_file is None:
            raise exceptions.NotFound("No file with this id in this seed dataset.")
        token = download_token(request, {"dataset": str(dataset.code), "seed_file": str(seed_file.code)})
        data = {
            "download_url": request.build_absolute_uri(reverse("api:signed-download", args=[token])),
            "filename": seed_file.path.rsplit("/", 1)[-1],
            "content_type": seed_file.content_type,
        }
        return Response(FileDownloadOutputSerializer(data).data)


def _getlist(request: Request, key: str) -> list[Any]:
    getlist = getattr(request.data, "getlist", None)
    return list(getlist(key)) if getlist else []
