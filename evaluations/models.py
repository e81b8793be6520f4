from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from companies.models import Company
from llm.catalog import is_offline_name
from runs.models import Run, Sample


class EvaluationQuerySet(models.QuerySet["Evaluation"]):
    def for_company(self, company: Company) -> EvaluationQuerySet:
        return self.filter(company=company)


class Evaluation(models.Model):
    """A Dataframer evaluation: a judge classifies every sample of a run on every property of its spec."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PROCESSING = "PROCESSING", "Processing"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="evaluations")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evaluations")
    # Our addition (issue #25): what analysts call it and why it was run; pages show display_name, not a timestamp.
    name = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_model = models.CharField(max_length=200)
    model_used = models.CharField(max_length=200, blank=True)
    fallback_reason = models.TextField(blank=True)
    prompt_version = models.CharField(max_length=20, blank=True)
    config_hash = models.CharField(max_length=64, blank=True)
    total_samples = models.PositiveIntegerField(default=0)
    chunks_total = models.PositiveIntegerField(default=0)
    # Judged through the provider's batch API (evaluations/batch.py): asked for, or by size (JUDGE_BATCH_MIN_SAMPLES).
    batch = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)

    conformance_score = models.FloatField(null=True, blank=True)
    # Null, not "", until the evaluation completes: the wire contract distinguishes the two.
    conformance_explanation = models.TextField(null=True, blank=True)  # noqa: DJ001
    conformant_areas = models.TextField(null=True, blank=True)  # noqa: DJ001
    non_conformant_areas = models.TextField(null=True, blank=True)  # noqa: DJ001
    distribution_analysis = models.JSONField(null=True, blank=True)
    # Our addition: per property chi-square, Wilson intervals, agreement and confusion matrix.
    statistics = models.JSONField(null=True, blank=True)
    # The embedded judge's plan (llm/embedded_plan.py), fixed when the evaluation starts: per property how it is
    # judged or why it is declined, and which human labels taught it. Null for an LLM judge.
    judge_plan = models.JSONField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Set when a user canceled it (it then ends FAILED: the Dataframer client knows no CANCELED status).
    canceled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    judge_calls = GenericRelation(
        "llm.JudgeCall",
        content_type_field="subject_type",
        object_id_field="subject_id",
        related_query_name="evaluation",
    )

    objects = EvaluationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["run", "-created_at"])]

    def __str__(self) -> str:
        return f"Evaluation {str(self.code)[:8]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def display_name(self) -> str:
        """The name, or "<run name> · <judge>" without one (reads the run: select it with the evaluation)."""
        return self.name or f"{self.run} · {self.model_used or self.requested_model}"

    def rename(self, *, name: str | None = None, note: str | None = None) -> None:
        """Set the name and/or the note (None leaves one as it is)."""
        if name is not None:
            self.name = name.strip()
        if note is not None:
            self.note = note.strip()
        self.save(update_fields=["name", "note", "updated_at"])

    @property
    def is_offline(self) -> bool:
        return is_offline_name(self.model_used)

    @property
    def coverage(self) -> list[tuple[str, float]]:
        """(property, percent of samples analysed on it) from the stored statistics; [] before it finishes."""
        return [(p["property_name"], p["coverage"]["percent"]) for p in (self.statistics or {}).get("properties", [])]

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None

    def ledger_totals(self) -> dict[str, Any]:
        return self.judge_calls.totals()  # type: ignore[no-any-return]


class SampleClassification(models.Model):
    """One sample's judged values in one evaluation; written as soon as the judge answers."""

    class Status(models.TextChoices):
        OK = "ok"
        FAILED = "failed"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="classifications")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="classifications")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    # {property name: judged value}; null when the judge failed on this sample.
    classifications = models.JSONField(null=True, blank=True)
    # {property name: why the judge chose that value (or, for the embedded judge, why it left it undecided)};
    # only for the properties it gave one for, null when it gave none.
    rationales = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    from_cache = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # A sample's judged "value" on a property when the judge gave none (issue #20): strata like any judged value in
    # the corrected distribution, the review queue, filters and exports. In parentheses, so that no spec value (a
    # property may well have a value "failed") is mistaken for them. A sample with no row at all (an evaluation
    # canceled part-way) counts as FAILED: it was not judged.
    UNDECIDED = "(undecided)"
    FAILED = "(failed)"

    class Meta:
        constraints = [models.UniqueConstraint(fields=["evaluation", "sample"], name="classification_one_per_sample")]

    def __str__(self) -> str:
        return f"{self.sample_id} in {self.evaluation_id}"

    def stratum(self, prop: str) -> str:
        """The judged value on `prop`, or UNDECIDED / FAILED when the judge gave none."""
        if self.status == self.Status.FAILED or self.classifications is None:
            return self.FAILED
        return str(self.classifications.get(prop, self.UNDECIDED))

    @classmethod
    def stratum_sql(cls, prop: str, prefix: str = "") -> models.Case:
        """stratum(prop) as a SQL expression over a row's fields (`prefix` reaches them through a relation), for
        filters and queries that must not load the rows."""
        judged = Cast(KeyTextTransform(prop, f"{prefix}classifications"), models.TextField())
        return models.Case(
            models.When(
                models.Q(**{f"{prefix}status": cls.Status.FAILED})
                | models.Q(**{f"{prefix}classifications__isnull": True}),
                then=models.Value(cls.FAILED),
            ),
            default=Coalesce(judged, models.Value(cls.UNDECIDED)),
            output_field=models.TextField(),
        )


class ReviewQuerySet(models.QuerySet["Review"]):
    def for_company(self, company: Company) -> ReviewQuerySet:
        return self.filter(company=company)

    def for_run(self, run_id: int) -> ReviewQuerySet:
        return self.filter(sample__run_id=run_id)


class Review(models.Model):
    """A human's label: the true value of one property of one sample, as one reviewer sees it.

    It belongs to the sample, not to the evaluation it was made from, so every evaluation of the run (another
    judge, another prompt) is measured against the same labels. One current label per reviewer, sample and
    property: labelling again updates it.
    """

    class Selection(models.TextChoices):
        # Only RANDOM labels feed the estimates: the queue drew the sample at random within its judged value.
        RANDOM = "random", "Random (stratified queue)"
        DISAGREEMENT = "disagreement", "Disagreement queue (judged ≠ assigned)"
        MANUAL = "manual", "Corrected in place"
        API = "api", "Through the API (not drawn at random)"

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="reviews")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="reviews")
    property_name = models.CharField(max_length=200)
    value = models.CharField(max_length=500)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviews")
    selection = models.CharField(max_length=16, choices=Selection.choices, default=Selection.RANDOM)
    # Which evaluation's page or API call the label came from. For a RANDOM label it is also the design: the
    # evaluation whose judged values were the strata the sample was drawn from (fixed once drawn).
    evaluation = models.ForeignKey(Evaluation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The design of a RANDOM label (issue #20): the stratum it was drawn from (that evaluation's judged value at the
    # time, "undecided" and "failed" included; "" for a draw over the whole run), and, when a client drew it
    # itself and said so, its inclusion probability (None: derived from the design when estimating).
    stratum = models.CharField(max_length=500, blank=True)
    inclusion_probability = models.FloatField(null=True, blank=True)
    # Given blind: the reviewer saw neither the judged nor the assigned value before answering. Only blind RANDOM
    # labels feed kappa, judge accuracy and the corrected distribution.
    blind = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "sample", "property_name"], name="review_one_per_reviewer")
        ]
        indexes = [models.Index(fields=["sample", "property_name"])]

    def __str__(self) -> str:
        return f"{self.property_name}={self.value} on {self.sample_id}"
