from __future__ import annotations

import mimetypes
import uuid
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models import Q
from django.utils import timezone

from companies.models import Company

from .specfile import Property


class SeedDatasetQuerySet(models.QuerySet["SeedDataset"]):
    def for_company(self, company: Company) -> SeedDatasetQuerySet:
        return self.filter(company=company)


class SeedDataset(models.Model):
    """Example data a spec is generated from (Dataframer's seed datasets); its files live in Django's storage."""

    class Type(models.TextChoices):
        SINGLE_FILE = "SINGLE_FILE"  # one CSV / JSON / JSONL file holding every sample
        MULTI_FILE = "MULTI_FILE"  # one file per sample
        MULTI_FOLDER = "MULTI_FOLDER"  # one folder per sample

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="seed_datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dataset_type = models.CharField(max_length=16, choices=Type.choices)
    file_count = models.PositiveIntegerField(default=0)
    folder_count = models.PositiveIntegerField(default=0)
    # Rows of a SINGLE_FILE dataset; null for the other types (and for a JSON file too big to count).
    sample_count = models.PositiveIntegerField(null=True, blank=True)
    total_bytes = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SeedDatasetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="seeddataset_unique_name_per_company")]

    def __str__(self) -> str:
        return self.name


class SeedFile(models.Model):
    class FileType(models.TextChoices):
        JSON = "json"
        JSONL = "jsonl"
        CSV = "csv"
        MD = "md"
        TXT = "txt"
        PDF = "pdf"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    dataset = models.ForeignKey(SeedDataset, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveIntegerField()  # upload (or ZIP) order: within a folder, later files may build on earlier
    path = models.CharField(max_length=500)  # "folder/name.txt", or "name.txt" at the root
    file_type = models.CharField(max_length=8, choices=FileType.choices)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # The storage's name for the bytes: made of ids only, never of the uploaded path.
    storage_name = models.CharField(max_length=300)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "path"], name="seedfile_unique_path"),
            models.UniqueConstraint(fields=["dataset", "position"], name="seedfile_unique_position"),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def folder(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def content_type(self) -> str:
        if self.file_type == self.FileType.JSONL:
            return "application/jsonl"
        return mimetypes.guess_type(f"x.{self.file_type}")[0] or "application/octet-stream"


class SpecQuerySet(models.QuerySet["Spec"]):
    def for_company(self, company: Company) -> SpecQuerySet:
        return self.filter(company=company)


class Spec(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "PROCESSING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="specs")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUCCEEDED)
    # The seed dataset a generated spec was made from (null: seedless or hand-written). PROTECT: a dataset in use
    # cannot be deleted (runs.services.seed_dataset_delete says which specs use it).
    dataset = models.ForeignKey(SeedDataset, null=True, blank=True, on_delete=models.PROTECT, related_name="specs")
    # Why generation failed (status FAILED), else empty (answered as null). A database default too: rows written
    # by code that predates the column (older migrations' models) get one.
    error = models.TextField(blank=True, default="", db_default="")
    # What a generated spec was asked for (model, objectives, flags); null for a spec written by hand.
    runtime_params = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SpecQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="spec_unique_name_per_company")]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def latest_version(self) -> SpecVersion | None:
        return self.versions.order_by("-number").first()


class SpecVersion(models.Model):
    spec = models.ForeignKey(Spec, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content_yaml = models.TextField()
    # The parsed properties (runs.specfile.Property.to_dict), so readers never re-parse YAML.
    properties = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["spec", "number"], name="specversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.spec} v{self.number}"

    @cached_property
    def parsed_properties(self) -> list[Property]:
        return [Property.from_dict(p) for p in self.properties]


def _abandoned_import() -> Q:
    seconds = settings.IMPORT_ABANDONED_SECONDS
    if seconds <= 0:
        return Q(pk__in=[])  # off: no import counts as abandoned
    return Q(importing=True, created_at__lt=timezone.now() - timedelta(seconds=seconds))


class RunQuerySet(models.QuerySet["Run"]):
    def for_company(self, company: Company) -> RunQuerySet:
        return self.filter(company=company)

    def abandoned_imports(self) -> RunQuerySet:
        """Runs an import began and never finished or deleted (IMPORT_ABANDONED_SECONDS)."""
        return self.filter(_abandoned_import())

    def without_abandoned_imports(self) -> RunQuerySet:
        return self.exclude(_abandoned_import())


class VisibleRunManager(models.Manager["Run"]):
    """Runs.objects (and spec.runs): every run but those an import is still writing, which nothing may show."""

    def get_queryset(self) -> RunQuerySet:
        return RunQuerySet(self.model, using=self._db).exclude(importing=True)

    def for_company(self, company: Company) -> RunQuerySet:
        return self.get_queryset().for_company(company)


class Run(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        PROCESSING = "PROCESSING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"
        CANCELED = "CANCELED"

    ACTIVE = (Status.PENDING, Status.PROCESSING)  # every other status is terminal: the run never changes again

    class Source(models.TextChoices):
        IMPORT = "import", "Imported"
        GENERATED = "generated", "Generated"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="runs")
    spec = models.ForeignKey(Spec, on_delete=models.CASCADE, related_name="runs")
    spec_version = models.ForeignKey(SpecVersion, on_delete=models.PROTECT, related_name="runs")
    name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORT)
    samples_completed = models.PositiveIntegerField(default=0)
    samples_failed = models.PositiveIntegerField(default=0)
    # True while run_import writes its samples in batches (so that no company's import holds SQLite's one write
    # lock for long): hidden from Run.objects until the last batch is in.
    importing = models.BooleanField(default=False, db_default=False)
    # Bytes of its samples' content: what the storage quota counts (companies.quotas), summed per run, not per sample.
    stored_bytes = models.PositiveBigIntegerField(default=0, db_default=0)
    total_cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    runtime_params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The LLM calls that wrote (and filtered) a generated run's samples: total_cost is their sum.
    judge_calls = GenericRelation(
        "llm.JudgeCall",
        content_type_field="subject_type",
        object_id_field="subject_id",
        related_query_name="run",
    )

    objects = VisibleRunManager()
    # Every run, those being imported too: for the import itself and the storage quota's count.
    with_importing = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"Run {str(self.code)[:8]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.CANCELED}

    @property
    def samples_requested(self) -> int:
        return int((self.runtime_params or {}).get("number_of_samples") or 0)

    @property
    def progress_percent(self) -> int:
        done = self.samples_completed + self.samples_failed
        return min(100, round(100 * done / self.samples_requested)) if self.samples_requested else 100

    @property
    def is_cancelable(self) -> bool:
        return self.status in {self.Status.PENDING, self.Status.PROCESSING}

    def cancel(self) -> bool:
        """Cancel if still pending or processing; return whether this call did it."""
        updated = Run.objects.filter(pk=self.pk, status__in=self.ACTIVE).update(
            status=self.Status.CANCELED, completed_at=timezone.now()
        )
        if updated:
            self.refresh_from_db(fields=["status", "completed_at"])
        return bool(updated)


class Sample(models.Model):
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="samples")
    position = models.PositiveIntegerField()
    identifier = models.CharField(max_length=255)
    path = models.CharField(max_length=500)
    file_type = models.CharField(max_length=100, default="text/plain")
    size_bytes = models.PositiveIntegerField(default=0)
    content = models.TextField()
    # The property values generation assigned to this sample: {property name: value}.
    properties = models.JSONField(default=dict)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "identifier"], name="sample_unique_identifier")]
        indexes = [models.Index(fields=["run", "position"])]

    def __str__(self) -> str:
        return self.identifier

    @staticmethod
    def guess_file_type(path: str) -> str:
        if path.endswith(".jsonl"):
            return "application/jsonl"
        return mimetypes.guess_type(path)[0] or "text/plain"

    def metadata(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "path": self.path,
            "assigned_properties": self.properties,
        }


class GenerationFailure(models.Model):
    """A position of a generated run that has no sample, and why: the writer refused, its reply did not fit twice,
    or the conformance filter rejected every attempt. Counted in samples_failed; a resumed run skips it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="generation_failures")
    position = models.PositiveIntegerField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="generationfailure_unique_position")]

    def __str__(self) -> str:
        return f"{self.run} #{self.position}: {self.reason[:60]}"
