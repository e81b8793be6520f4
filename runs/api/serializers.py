"""Dataframer wire shapes (pydataframer 0.12.1 types/dataframer/spec_* and run_*): every key always present."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from runs.models import Run, Spec

# Imported and hand-made specs have no seed dataset; the contract says such specs are MULTI_FILE.
SEEDLESS = {"dataset_id": None, "dataset_name": None, "dataset_type": "MULTI_FILE"}

RUNTIME_PARAM_KEYS = [
    "filtering_types", "generation_model", "generation_thinking_budget", "max_examples_in_prompt",
    "max_revision_cycles", "number_of_samples", "outline_model", "outline_thinking_budget", "revision_model",
    "revision_thinking_budget", "revision_types", "seed_shuffling_level", "skip_outline", "tools",
    "unified_multifield",
]  # fmt: skip


def _email(user: Any) -> str | None:
    return user.email if user is not None else None


class SpecListSerializer(serializers.ModelSerializer[Spec]):
    id = serializers.UUIDField(source="code", read_only=True)

    class Meta:
        model = Spec
        fields = ["id", "name", "description", "status", "created_at"]

    def to_representation(self, instance: Spec) -> dict[str, Any]:
        return {**super().to_representation(instance), **SEEDLESS}


class SpecDetailSerializer(SpecListSerializer):
    def to_representation(self, instance: Spec) -> dict[str, Any]:
        latest = instance.latest_version
        data = {
            **super().to_representation(instance),
            "content_yaml": latest.content_yaml if latest else None,
            "created_by_email": _email(instance.created_by),
            "error": None,
            "runtime_params": None,
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
            "versions": None,
        }
        if self.context.get("include_versions"):
            data["versions"] = [
                {
                    "content_yaml": v.content_yaml,
                    "created_at": serializers.DateTimeField().to_representation(v.created_at),
                }
                for v in instance.versions.order_by("number")
            ]
        return data


class SpecCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=settings.SPEC_MAX_TEXT_CHARS
    )
    # Its size, nesting and counts are checked by runs.specfile.parse_spec (SPEC_MAX_* settings).
    content_yaml = serializers.CharField(required=False, trim_whitespace=False)

    def validate_name(self, value: str) -> str:
        if Spec.objects.filter(company=self.context["company"], name=value).exists():
            raise serializers.ValidationError(f"A spec named '{value}' already exists.")
        return value


class SpecUpdateSerializer(serializers.Serializer[Any]):
    content_yaml = serializers.CharField(trim_whitespace=False)


class RunListSerializer(serializers.ModelSerializer[Run]):
    id = serializers.UUIDField(source="code", read_only=True)
    spec_id = serializers.UUIDField(source="spec.code", read_only=True)
    spec_name = serializers.CharField(source="spec.name", read_only=True)
    spec_version = serializers.IntegerField(source="spec_version.number", read_only=True)
    total_cost = serializers.FloatField(read_only=True)

    class Meta:
        model = Run
        fields = [
            "id", "status", "spec_id", "spec_name", "spec_version", "samples_completed", "samples_failed",
            "total_cost", "created_at", "completed_at",
        ]  # fmt: skip

    def to_representation(self, instance: Run) -> dict[str, Any]:
        return {
            **super().to_representation(instance),
            **SEEDLESS,
            "created_by_email": _email(instance.created_by),
        }


class RunDetailSerializer(RunListSerializer):
    def to_representation(self, instance: Run) -> dict[str, Any]:
        params = instance.runtime_params or {}
        files = instance.samples.order_by("position").values_list("code", "path", "file_type", "size_bytes")
        return {
            **super().to_representation(instance),
            "runtime_params": {
                **params,
                **{key: params.get(key) for key in RUNTIME_PARAM_KEYS},
            },
            "generated_files": [
                {
                    "id": str(code),
                    "path": path,
                    "file_type": file_type,
                    "size_bytes": size,
                }
                for code, path, file_type, size in files
            ],
        }


class RunImportSerializer(serializers.Serializer[Any]):
    """JSON body of POST /api/dataframer/runs/import/; multipart sends spec_id (+ spec_version, name) and `file`."""

    spec_id = serializers.UUIDField()
    spec_version = serializers.IntegerField(required=False, min_value=1)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    samples = serializers.JSONField(required=False)
    file = serializers.FileField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("samples" in attrs) == ("file" in attrs):
            raise serializers.ValidationError("Send either `samples` (JSON) or a `file` (JSONL or ZIP), not both.")
        return attrs
