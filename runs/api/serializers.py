"""Dataframer wire shapes (pydataframer 0.12.1 types/dataframer/spec_* and run_*): every key always present."""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from companies.api.base import ParsedJSONField, WireUUIDField
from runs.assignment import MODES
from runs.models import Run, SeedDataset, SeedFile, Spec

# --- Output ---


# Getters of the seed dataset keys of a spec (or of a run's spec): a spec generated from a seed dataset names it;
# seedless, imported and hand-made specs have none, and the contract calls such specs MULTI_FILE. Each serializer
# declares the fields itself, at their place in the wire order. (Comments, not a docstring: a serializer's
# docstring becomes its description in /api/schema/.)
class SeedlessFieldsMixin:
    def _dataset(self, instance: Any) -> SeedDataset | None:
        spec = instance.spec if isinstance(instance, Run) else instance
        return spec.dataset if isinstance(spec, Spec) and spec.dataset_id else None

    def get_dataset_id(self, instance: Any) -> str | None:
        dataset = self._dataset(instance)
        return str(dataset.code) if dataset else None

    def get_dataset_name(self, instance: Any) -> str | None:
        dataset = self._dataset(instance)
        return dataset.name if dataset else None

    @extend_schema_field(serializers.ChoiceField(choices=SeedDataset.Type.choices))
    def get_dataset_type(self, instance: Any) -> Literal["SINGLE_FILE", "MULTI_FILE", "MULTI_FOLDER"]:
        dataset = self._dataset(instance)
        return dataset.dataset_type if dataset else "MULTI_FILE"  # type: ignore[return-value]


class CreatedOutputSerializer(serializers.Serializer[Any]):
    """The new object's id."""

    id = WireUUIDField(source="code")


class SpecVersionOutputSerializer(serializers.Serializer[Any]):
    content_yaml = serializers.CharField()
    created_at = serializers.DateTimeField()


class SpecListOutputSerializer(SeedlessFieldsMixin, serializers.Serializer[Spec]):
    id = WireUUIDField(source="code")
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=Spec.Status.choices)
    created_at = serializers.DateTimeField()
    dataset_id = serializers.SerializerMethodField()
    dataset_name = serializers.SerializerMethodField()
    dataset_type = serializers.SerializerMethodField()


class SpecDetailOutputSerializer(SpecListOutputSerializer):
    content_yaml = serializers.CharField(source="latest_version.content_yaml", allow_null=True)
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    error = serializers.SerializerMethodField(help_text="Why generation failed (status FAILED); else null.")
    runtime_params = serializers.JSONField(
        allow_null=True, help_text="What a generated spec was asked for (model, objectives, flags); null if written."
    )
    updated_at = serializers.DateTimeField()
    versions = serializers.SerializerMethodField(help_text="Oldest first; null unless `include_versions=true`.")

    def get_error(self, spec: Spec) -> str | None:
        return spec.error or None

    @extend_schema_field(SpecVersionOutputSerializer(many=True, allow_null=True))
    def get_versions(self, spec: Spec) -> list[dict[str, Any]] | None:
        if not self.context.get("include_versions"):
            return None
        return SpecVersionOutputSerializer(spec.versions.order_by("number"), many=True).data  # type: ignore[return-value]


# RunDetailOutputSerializer.get_runtime_params builds the object: the stored parameters (an import keeps what it
# was imported with), then every key below, null when unset.
class RunRuntimeParamsOutputSerializer(serializers.Serializer[Any]):
    """The parameters the run was made with: every key below is present (null when unset), and a run may add
    others (an imported run has `source`)."""

    filtering_types = serializers.ListField(child=serializers.CharField(), allow_null=True)
    generation_model = serializers.CharField(allow_null=True)
    generation_thinking_budget = serializers.IntegerField(allow_null=True)
    max_examples_in_prompt = serializers.IntegerField(allow_null=True)
    max_revision_cycles = serializers.IntegerField(allow_null=True)
    number_of_samples = serializers.IntegerField(allow_null=True)
    outline_model = serializers.CharField(allow_null=True)
    outline_thinking_budget = serializers.IntegerField(allow_null=True)
    revision_model = serializers.CharField(allow_null=True)
    revision_thinking_budget = serializers.IntegerField(allow_null=True)
    revision_types = serializers.ListField(child=serializers.CharField(), allow_null=True)
    seed_shuffling_level = serializers.ChoiceField(choices=["none", "sample", "field", "prompt"], allow_null=True)
    skip_outline = serializers.BooleanField(allow_null=True)
    tools = serializers.ListField(child=serializers.CharField(), allow_null=True)
    unified_multifield = serializers.BooleanField(allow_null=True)


# The keys every run's runtime_params has, in the contract's order.
RUNTIME_PARAM_KEYS = list(RunRuntimeParamsOutputSerializer().fields)


# Documentation only: a run can hold thousands of samples, so RunDetailOutputSerializer builds these rows from
# one values_list; tests/test_schema.py checks they match these fields, in this order.
class GeneratedFileOutputSerializer(serializers.Serializer[Any]):
    """One generated file (sample) of a run."""

    id = WireUUIDField()
    path = serializers.CharField()
    file_type = serializers.CharField()
    size_bytes = serializers.IntegerField()


class RunListOutputSerializer(SeedlessFieldsMixin, serializers.Serializer[Run]):
    id = WireUUIDField(source="code")
    status = serializers.ChoiceField(choices=Run.Status.choices)
    spec_id = WireUUIDField(source="spec.code")
    spec_name = serializers.CharField(source="spec.name")
    spec_version = serializers.IntegerField(source="spec_version.number")
    samples_completed = serializers.IntegerField()
    samples_failed = serializers.IntegerField()
    total_cost = serializers.FloatField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    dataset_id = serializers.SerializerMethodField()
    dataset_name = serializers.SerializerMethodField()
    dataset_type = serializers.SerializerMethodField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)


class RunDetailOutputSerializer(RunListOutputSerializer):
    runtime_params = serializers.SerializerMethodField()
    generated_files = serializers.SerializerMethodField()

    @extend_schema_field(RunRuntimeParamsOutputSerializer)
    def get_runtime_params(self, run: Run) -> dict[str, Any]:
        params = run.runtime_params or {}
        return {**params, **{key: params.get(key) for key in RUNTIME_PARAM_KEYS}}

    @extend_schema_field(GeneratedFileOutputSerializer(many=True))
    def get_generated_files(self, run: Run) -> list[dict[str, Any]]:
        files = run.samples.order_by("position").values_list("code", "path", "file_type", "size_bytes")
        return [
            {"id": str(code), "path": path, "file_type": file_type, "size_bytes": size}
            for code, path, file_type, size in files
        ]


class RunCancelOutputSerializer(serializers.Serializer[Run]):
    id = WireUUIDField(source="code")
    status = serializers.ChoiceField(choices=Run.Status.choices)


class FileDownloadOutputSerializer(serializers.Serializer[Any]):
    download_url = serializers.URLField(help_text="A signed link that works without the API key, for a while.")
    filename = serializers.CharField()
    content_type = serializers.CharField()


class ArchiveDownloadOutputSerializer(serializers.Serializer[Any]):
    download_url = serializers.URLField(help_text="A signed link to a ZIP of every file; it works without the API key.")
    size_bytes = serializers.IntegerField()


# --- Input ---


class SpecCreateSerializer(serializers.Serializer[Any]):
    """Either `content_yaml` (the spec itself), or what to generate one from: `generation_objectives` (seedless)
    and/or `dataset_id` (a seed dataset)."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=settings.SPEC_MAX_TEXT_CHARS
    )
    # Its size, nesting and counts are checked by runs.specfile.parse_spec (SPEC_MAX_* settings).
    content_yaml = serializers.CharField(required=False, trim_whitespace=False)
    dataset_id = WireUUIDField(required=False, help_text="The seed dataset to generate the spec from.")
    generation_objectives = serializers.CharField(
        required=False, allow_blank=True, max_length=settings.SPEC_MAX_TEXT_CHARS,
        help_text="What the data is for; required without dataset_id.",
    )  # fmt: skip
    generate_distributions = serializers.BooleanField(
        required=False, default=True, help_text="False: every property gets a uniform distribution."
    )
    generate_conditional_distributions = serializers.BooleanField(
        required=False, default=False, help_text="Accepted and recorded; not generated (base distributions only)."
    )
    extrapolate_axes = serializers.BooleanField(
        required=False, default=False, help_text="Ask for properties the seed data does not show."
    )
    extrapolate_values = serializers.BooleanField(
        required=False, default=False, help_text="Ask for values the seed data does not show."
    )
    spec_generation_model_name = serializers.CharField(
        required=False, max_length=200, help_text="The LLM that writes the spec; its provider must be configured."
    )
    # Accepted so the client's calls validate; never stored (they are secrets) and never used.
    databricks_api_base = serializers.CharField(required=False, allow_blank=True, write_only=True)
    databricks_client_id = serializers.CharField(required=False, allow_blank=True, write_only=True)
    databricks_client_secret = serializers.CharField(required=False, allow_blank=True, write_only=True)

    def validate_name(self, value: str) -> str:
        if Spec.objects.filter(company=self.context["company"], name=value).exists():
            raise serializers.ValidationError(f"A spec named '{value}' already exists.")
        return value


class SpecUpdateSerializer(serializers.Serializer[Any]):
    content_yaml = serializers.CharField(trim_whitespace=False)


class RunImportSerializer(serializers.Serializer[Any]):
    """JSON body of POST /api/dataframer/runs/import/; multipart sends spec_id (+ spec_version, name) and `file`."""

    spec_id = WireUUIDField()
    spec_version = serializers.IntegerField(required=False, min_value=1)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    samples = ParsedJSONField(required=False)
    file = serializers.FileField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("samples" in attrs) == ("file" in attrs):
            raise serializers.ValidationError("Send either `samples` (JSON) or a `file` (JSONL or ZIP), not both.")
        return attrs


# --- Seed datasets (pydataframer 0.12.1 types/dataframer/seed_dataset_* and file.py) ---


class SeedFileOutputSerializer(serializers.Serializer[SeedFile]):
    id = WireUUIDField(source="code")
    file_type = serializers.ChoiceField(choices=SeedFile.FileType.choices)
    path = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()


class SeedDatasetListOutputSerializer(serializers.Serializer[SeedDataset]):
    id = WireUUIDField(source="code")
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    dataset_type = serializers.ChoiceField(choices=SeedDataset.Type.choices)
    description = serializers.CharField()
    file_count = serializers.IntegerField()
    folder_count = serializers.IntegerField()
    name = serializers.CharField()
    updated_at = serializers.DateTimeField()


class SeedDatasetDetailOutputSerializer(serializers.Serializer[SeedDataset]):
    id = WireUUIDField(source="code")
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    dataset_type = serializers.ChoiceField(choices=SeedDataset.Type.choices)
    description = serializers.CharField()
    file_count = serializers.IntegerField()
    files = SeedFileOutputSerializer(many=True)
    folder_count = serializers.IntegerField()
    name = serializers.CharField()
    sample_count = serializers.IntegerField(allow_null=True, help_text="Rows of a SINGLE_FILE dataset; else null.")
    updated_at = serializers.DateTimeField()


class SeedDatasetInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=settings.SPEC_MAX_TEXT_CHARS
    )

    def validate_name(self, value: str) -> str:
        if SeedDataset.objects.filter(company=self.context["company"], name=value).exists():
            raise serializers.ValidationError(f"A seed dataset named '{value}' already exists.")
        return value


class SeedDatasetZipSerializer(SeedDatasetInputSerializer):
    zip_file = serializers.FileField(help_text="A ZIP of the dataset's files; its layout gives the dataset type.")


class SeedDatasetFilesSerializer(SeedDatasetInputSerializer):
    """Multipart: `files[]` (one part per file) and, for MULTI_FOLDER, `folder_names[]` (one per file)."""

    dataset_type = serializers.ChoiceField(choices=SeedDataset.Type.choices)
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    folder_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False)


class StrictIntegerField(serializers.IntegerField):
    """An integer as JSON sends one: never a string of digits, a float or a boolean turned into one."""

    default_error_messages = {"integer_type": "A valid integer is required (a JSON number, not a string)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("integer_type")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"boolean_type": "A valid boolean is required (true or false)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("boolean_type")
        return data


IGNORED = "Accepted and ignored here (echoed in runtime_params)."


def _ignored(field_class: type[serializers.Field[Any, Any, Any, Any]], **kwargs: Any) -> Any:
    """An accepted, stored (echoed in runtime_params) and otherwise ignored parameter: our writer has no outline,
    revision, seed dataset, tool or Databricks step. Said in its description in /api/schema/. (Built with the text
    in its arguments: DRF copies declared fields by re-instantiating them.)"""
    kwargs["help_text"] = f"{kwargs['help_text']} {IGNORED}" if "help_text" in kwargs else IGNORED
    return field_class(required=False, **kwargs)


MODEL_HELP = "A model name of the judge model table (unknown names get a 400 listing the allowed ones)."


class RunCreateSerializer(serializers.Serializer[Any]):
    """Body of POST /api/dataframer/runs/ (pydataframer 0.12.1 RunCreateParams, plus `assignment_mode`)."""

    spec_id = WireUUIDField(help_text="A SUCCEEDED spec of your company.")
    number_of_samples = StrictIntegerField(min_value=1, max_value=settings.GENERATION_MAX_SAMPLES)
    spec_version = StrictIntegerField(required=False, min_value=1, help_text="Default: the latest version.")
    generation_model = serializers.CharField(
        required=False, max_length=200, help_text=f"{MODEL_HELP} Default: GENERATION_DEFAULT_MODEL. It must be an "
        "LLM whose provider is configured: the embedded judge does not write data.",
    )  # fmt: skip
    filtering_types = serializers.ListField(
        child=serializers.ChoiceField(choices=["structural", "conformance"]),
        required=False,
        max_length=2,
        help_text="`conformance`: each written sample is classified by the evaluation judge and written again (up "
        "to GENERATION_FILTER_ATTEMPTS times) while it reads as other values than its assigned ones; a sample "
        "still rejected counts as failed. `structural` is accepted and ignored.",
    )
    assignment_mode = serializers.ChoiceField(
        choices=list(MODES),
        required=False,
        default="quota",
        help_text="Our extension. `quota` (default): each value goes to exactly its largest-remainder share of the "
        "samples (expected within 100/N points of requested). `random`: each sample's values are drawn from the "
        "distributions.",
    )
    batch = StrictBooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Our addition: write the samples through the provider's batch API at half the price, answered "
        "within 24 hours (usually far sooner). Absent or null: batch mode for runs of at least "
        "GENERATION_BATCH_MIN_SAMPLES samples (not with the conformance filter). A model without a batch API, or "
        "batch mode with the conformance filter, gets a 400.",
    )
    databricks_api_base = _ignored(serializers.CharField, max_length=500)
    databricks_client_id = _ignored(serializers.CharField, max_length=500)
    databricks_client_secret = _ignored(serializers.CharField, max_length=500, help_text="Never stored.")
    enable_revisions = _ignored(StrictBooleanField)
    generation_thinking_budget = _ignored(
        StrictIntegerField, min_value=0, help_text="The model table sets thinking budgets."
    )
    max_examples_in_prompt = _ignored(StrictIntegerField, min_value=0)
    max_revision_cycles = _ignored(StrictIntegerField, min_value=0)
    outline_model = _ignored(serializers.CharField, max_length=200)
    outline_thinking_budget = _ignored(StrictIntegerField, min_value=0)
    revision_model = _ignored(serializers.CharField, max_length=200)
    revision_thinking_budget = _ignored(StrictIntegerField, min_value=0)
    revision_types = _ignored(
        serializers.ListField,
        child=serializers.ChoiceField(choices=["coherence_flow", "consistency", "distinguishability", "conformance"]),
        max_length=4,
    )
    seed_shuffling_level = _ignored(serializers.ChoiceField, choices=["none", "sample", "field", "prompt"])
    skip_outline = _ignored(StrictBooleanField)
    tools = _ignored(serializers.ListField, child=serializers.CharField(max_length=100), max_length=20)
    unified_multifield = _ignored(StrictBooleanField)
