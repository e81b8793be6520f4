"""Wire shapes of pydataframer 0.12.1's `anonymization_runs` (types/dataframer/anonymization_run_*): every key always
present, in the client's order; our additions (`threshold`, `mask_config`, `notes`, each entity's `file_id`,
`skipped_files`) come after."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from anonymization.detect import DEFAULT_THRESHOLD
from anonymization.models import AnonymizationRun, AnonymizedFile
from anonymization.services import ENTITIES_LISTED, METHODS, VENDOR_ONLY_METHODS
from companies.api.base import WireUUIDField

# --- Output ---


class AnonymizedFileOutputSerializer(serializers.Serializer[AnonymizedFile]):
    id = WireUUIDField(source="code", help_text="Pass it as `file_id` to the download endpoint.")
    content_type = serializers.CharField()
    path = serializers.CharField()
    size_in_bytes = serializers.IntegerField()


class AnonymizationEntityOutputSerializer(serializers.Serializer[Any]):
    end = serializers.IntegerField(help_text="Character offset in the original file, exclusive.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label, as the wire has it
    score = serializers.FloatField()
    start = serializers.IntegerField(help_text="Character offset in the original file.")
    file_id = WireUUIDField(help_text="The anonymized file the entity is in (our addition).")


class AnonymizationSkippedFileOutputSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    reason = serializers.CharField()


class AnonymizationResultsOutputSerializer(serializers.Serializer[Any]):
    entities_found = AnonymizationEntityOutputSerializer(
        many=True, help_text=f"Every entity found, file by file, at most {ENTITIES_LISTED:,}."
    )
    entity_summary = serializers.DictField(child=serializers.IntegerField(), help_text="Entities found by type.")
    error = serializers.CharField(allow_null=True)
    samples_processed = serializers.IntegerField()
    skipped_files = AnonymizationSkippedFileOutputSerializer(
        many=True, help_text="Binary files, reported and not anonymized."
    )


class AnonymizationRunListOutputSerializer(serializers.Serializer[AnonymizationRun]):
    id = WireUUIDField(source="code")
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    dataset_id = WireUUIDField(source="dataset.code", allow_null=True)
    dataset_name = serializers.CharField()
    detection_method = serializers.CharField()
    llm_model_name = serializers.CharField(allow_null=True, source="llm_model_name_or_none")
    pii_types = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=AnonymizationRun.Status.choices)


class AnonymizationRunDetailOutputSerializer(serializers.Serializer[AnonymizationRun]):
    id = WireUUIDField(source="code")
    anonymized_files = serializers.SerializerMethodField()
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    dataset_id = WireUUIDField(source="dataset.code", allow_null=True)
    dataset_name = serializers.CharField()
    detection_method = serializers.CharField()
    duration_seconds = serializers.IntegerField(allow_null=True)
    llm_model_name = serializers.CharField(allow_null=True, source="llm_model_name_or_none")
    pii_types = serializers.ListField(child=serializers.CharField())
    results = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=AnonymizationRun.Status.choices)
    threshold = serializers.FloatField()
    mask_config = serializers.DictField(child=serializers.CharField())
    notes = serializers.CharField(allow_null=True, source="notes_or_none")

    @extend_schema_field(AnonymizedFileOutputSerializer(many=True))
    def get_anonymized_files(self, run: AnonymizationRun) -> list[dict[str, Any]]:
        rows = [f for f in _files(run) if not f.skipped]
        return AnonymizedFileOutputSerializer(rows, many=True).data  # type: ignore[arg-type, return-value]

    @extend_schema_field(AnonymizationResultsOutputSerializer(allow_null=True))
    def get_results(self, run: AnonymizationRun) -> dict[str, Any] | None:
        """Null until the run ends; then the entities of the files done (all of them, when it SUCCEEDED)."""
        if not run.is_terminal:
            return None
        files = _files(run)
        entities: list[dict[str, Any]] = []
        for row in files:
            for start, end, label, score in row.entities[: ENTITIES_LISTED - len(entities)]:
                entities.append({"end": end, "label": label, "score": score, "start": start, "file_id": row.code})
        data = {
            "entities_found": entities,
            "entity_summary": run.entity_summary(),
            "error": run.error or None,
            "samples_processed": run.samples_processed,
            "skipped_files": [{"path": f.path, "reason": f.skipped_reason} for f in files if f.skipped],
        }
        return AnonymizationResultsOutputSerializer(data).data


def _files(run: AnonymizationRun) -> list[AnonymizedFile]:
    # Read once per answer: anonymized_files and results both walk them.
    cached: list[AnonymizedFile] | None = getattr(run, "_files_cache", None)
    if cached is None:
        cached = list(run.files.all())
        run._files_cache = cached  # type: ignore[attr-defined]
    return cached


class AnonymizedFileDownloadOutputSerializer(serializers.Serializer[Any]):
    content_type = serializers.CharField()
    download_url = serializers.URLField(help_text="A signed link that works without the API key, for a while.")
    file_name = serializers.CharField()


class AnonymizationArchiveOutputSerializer(serializers.Serializer[Any]):
    download_url = serializers.URLField(allow_null=True, help_text="Null while the ZIP is being generated.")
    status = serializers.ChoiceField(choices=["ready", "generating"])


# --- Input ---


class AnonymizationRunCreateSerializer(serializers.Serializer[Any]):
    dataset_id = WireUUIDField()
    detection_method = serializers.ChoiceField(choices=[*METHODS, *VENDOR_ONLY_METHODS])
    pii_types = serializers.ListField(child=serializers.CharField(max_length=100), max_length=100)
    llm_model_name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    mask_config = serializers.DictField(
        child=serializers.CharField(max_length=200, allow_blank=True), required=False, default=dict
    )
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0, default=DEFAULT_THRESHOLD)
