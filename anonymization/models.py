from __future__ import annotations

import uuid
from collections import Counter

from django.conf import settings
from django.db import models

from companies.models import Company
from runs.models import SeedDataset, SeedFile


class AnonymizationRunQuerySet(models.QuerySet["AnonymizationRun"]):
    def for_company(self, company: Company) -> AnonymizationRunQuerySet:
        return self.filter(company=company)

    def visible(self) -> AnonymizationRunQuerySet:
        """Not deleted: a deleted run is hidden, its data kept (the vendor's soft delete)."""
        return self.filter(deleted_at__isnull=True)


class AnonymizationRun(models.Model):
    """A seed dataset's files with personal data found and masked (Dataframer's `anonymization_runs`)."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        PROCESSING = "PROCESSING"
        SUCCEEDED = "SUCCEEDED"
        FAILED = "FAILED"

    class Archive(models.TextChoices):
        NONE = ""
        GENERATING = "generating"
        READY = "ready"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="anonymization_runs")
    # The dataset may be deleted later; the run keeps its name and its anonymized copies.
    dataset = models.ForeignKey(SeedDataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dataset_name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    detection_method = models.CharField(max_length=32)  # as asked: "heuristics", "llm", "llm+heuristics", "all"
    llm_model_name = models.CharField(max_length=200, blank=True)
    pii_types = models.JSONField(default=list)
    mask_config = models.JSONField(default=dict, blank=True)
    threshold = models.FloatField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    notes = models.TextField(blank=True)  # what the service did differently from what was asked, and why
    files_total = models.PositiveIntegerField(default=0)
    samples_processed = models.PositiveIntegerField(default=0)
    archive = models.CharField(max_length=16, choices=Archive.choices, default=Archive.NONE, blank=True)
    archive_storage_name = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = AnonymizationRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.dataset_name} ({self.detection_method}, {self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def llm_model_name_or_none(self) -> str | None:
        return self.llm_model_name or None

    @property
    def notes_or_none(self) -> str | None:
        return self.notes or None

    @property
    def duration_seconds(self) -> int | None:
        if self.completed_at is None or self.started_at is None:
            return None
        return int((self.completed_at - self.started_at).total_seconds())

    def entity_summary(self) -> dict[str, int]:
        """Entities found by type, over every file (the types asked for, 0 included)."""
        counts: Counter[str] = Counter(dict.fromkeys(self.pii_types, 0))
        for entities in self.files.values_list("entities", flat=True):
            counts.update(entity[2] for entity in entities)
        return dict(sorted(counts.items()))


class AnonymizedFile(models.Model):
    """One file of the run's dataset: its anonymized copy in storage and the entities found, or why it was
    skipped (a binary file)."""

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    run = models.ForeignKey(AnonymizationRun, on_delete=models.CASCADE, related_name="files")
    seed_file = models.ForeignKey(SeedFile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    position = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    content_type = models.CharField(max_length=100)
    size_in_bytes = models.PositiveBigIntegerField(default=0)
    storage_name = models.CharField(max_length=300, blank=True)  # empty when skipped
    skipped_reason = models.TextField(blank=True)
    # [start, end, label, score] of every entity, in the original text's characters, in text order.
    entities = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="anonymizedfile_unique_position")]

    def __str__(self) -> str:
        return self.path

    @property
    def skipped(self) -> bool:
        return bool(self.skipped_reason)
