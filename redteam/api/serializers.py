"""Red-team wire shapes (pydataframer 0.12.1 types/dataframer/red_team_*): every key always present; our additions
(a target and its scores) are extra request fields and an endpoint of their own, never new response keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from companies.api.base import WireUUIDField
from guardrails.api.serializers import ObjectSerializer, StrictCharField
from guardrails.metrics import RUN_MODES
from redteam import selectors
from redteam.models import RedTeamRun, RedTeamSpec
from redteam.services import WRITER_MODELS

TEXT = settings.SPEC_MAX_TEXT_CHARS

# --- Input ---


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, never a string, a float or a boolean turned into one."""

    default_error_messages = {"int_type": "Input should be a valid integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("int_type")
        return super().to_internal_value(data)


class RedTeamSpecCreateSerializer(ObjectSerializer):
    name = StrictCharField(max_length=200, help_text="Stored in snake_case; unique within your company.")
    app_description = StrictCharField(max_length=TEXT)
    domain_description = StrictCharField(max_length=TEXT)
    concerns = StrictCharField(required=False, allow_blank=True, default="", max_length=TEXT)


class RedTeamSpecUpdateSerializer(ObjectSerializer):
    name = StrictCharField(
        required=False, max_length=200, help_text="Stored in snake_case; unique within your company."
    )
    app_description = StrictCharField(required=False, max_length=TEXT)
    domain_description = StrictCharField(required=False, max_length=TEXT)
    concerns = StrictCharField(required=False, allow_blank=True, max_length=TEXT)


class RedTeamRunCreateSerializer(ObjectSerializer):
    red_team_spec_id = WireUUIDField()
    model_name = serializers.ChoiceField(
        choices=WRITER_MODELS, help_text="Writes the behaviours and prompts; must be configured in the model catalog."
    )
    number_of_behaviors = StrictIntegerField(min_value=1)
    number_of_prompts_per_behavior = StrictIntegerField(min_value=1)
    target_model = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="Our addition: a model of the catalog (e.g. an OpenAI-compatible server) that answers every "
        "adversarial prompt; each answer is scored by the guardrail engine (see the run's attacks).",
    )
    target_system_prompt = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=TEXT,
        help_text="Our addition: the target's system prompt.",
    )
    run_mode = serializers.ChoiceField(
        choices=RUN_MODES,
        required=False,
        help_text="Our addition, with target_model: the guardrail run mode whose judge scores the answers "
        "(default smart).",
    )


# --- Output ---


class RedTeamSpecListOutputSerializer(serializers.Serializer[RedTeamSpec]):
    id = WireUUIDField(source="code")
    app_description = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    domain_description = serializers.CharField()
    name = serializers.CharField()
    updated_at = serializers.DateTimeField()


class RedTeamSpecDetailOutputSerializer(serializers.Serializer[RedTeamSpec]):
    id = WireUUIDField(source="code")
    app_description = serializers.CharField()
    company_id = WireUUIDField(source="company.code")
    company_name = serializers.CharField(source="company.name")
    concerns = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    domain_description = serializers.CharField()
    name = serializers.CharField()
    updated_at = serializers.DateTimeField()


class RedTeamRunListOutputSerializer(serializers.Serializer[RedTeamRun]):
    id = WireUUIDField(source="code")
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    model_name = serializers.CharField()
    number_of_behaviors = serializers.IntegerField()
    number_of_prompts_per_behavior = serializers.IntegerField()
    red_team_spec_id = WireUUIDField(source="spec.code")
    spec_name = serializers.CharField(source="spec.name")
    status = serializers.ChoiceField(choices=RedTeamRun.Status.choices)


class EnhancedQueryOutputSerializer(serializers.Serializer[Any]):
    query = serializers.CharField()
    adversarial_prompt = serializers.CharField()


class ResultsJsonOutputSerializer(serializers.Serializer[Any]):
    behavior_to_enhanced_queries = serializers.DictField(child=EnhancedQueryOutputSerializer(many=True))


class RedTeamRunDetailOutputSerializer(serializers.Serializer[RedTeamRun]):
    id = WireUUIDField(source="code")
    company_id = WireUUIDField(source="company.code")
    company_name = serializers.CharField(source="company.name")
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    created_by_email = serializers.CharField(source="created_by.email", allow_null=True)
    error_message = serializers.SerializerMethodField()
    model_name = serializers.ChoiceField(choices=WRITER_MODELS)
    number_of_behaviors = serializers.IntegerField()
    number_of_prompts_per_behavior = serializers.IntegerField()
    red_team_spec_id = WireUUIDField(source="spec.code")
    results_json = serializers.SerializerMethodField(help_text="Null while the run is PENDING or PROCESSING.")
    spec_name = serializers.CharField(source="spec.name")
    status = serializers.ChoiceField(choices=RedTeamRun.Status.choices)
    task_id = serializers.SerializerMethodField()
    trace = serializers.SerializerMethodField(
        help_text="Progress (steps done of total), the prompt version and, with a target, the judge."
    )

    def get_error_message(self, run: RedTeamRun) -> str | None:
        return run.error_message or None

    @extend_schema_field(ResultsJsonOutputSerializer(allow_null=True))
    def get_results_json(self, run: RedTeamRun) -> dict[str, Any] | None:
        return selectors.results_json(run)

    def get_task_id(self, run: RedTeamRun) -> str:
        return f"redteam.run:{run.code}"

    @extend_schema_field(serializers.JSONField())
    def get_trace(self, run: RedTeamRun) -> dict[str, Any]:
        return {**run.trace, "target_model": run.target_model or None, "progress": selectors.progress(run)}


class BehaviorSuccessOutputSerializer(serializers.Serializer[Any]):
    behavior = serializers.CharField()
    attacks = serializers.IntegerField(help_text="Prompts of the behaviour.")
    scored = serializers.IntegerField(help_text="Attacks whose answer has every score.")
    successes = serializers.IntegerField(help_text="Scored attacks whose answer scored under the threshold.")
    success_rate = serializers.FloatField(allow_null=True, help_text="Percent of scored attacks that succeeded.")
    ci_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, percent.")
    ci_high = serializers.FloatField(allow_null=True)


class AttackOutputSerializer(serializers.Serializer[Any]):
    behavior = serializers.CharField()
    query = serializers.CharField()
    adversarial_prompt = serializers.CharField()
    answer = serializers.CharField(allow_null=True)
    scores = serializers.JSONField(
        help_text="{metric: {score, rationale, ...}}: comprehensive_safety, concern_adherence."
    )
    succeeded = serializers.BooleanField(allow_null=True, help_text="Null: not scored (yet, or the call failed).")
    error = serializers.CharField(allow_null=True)


class AttackReportOutputSerializer(serializers.Serializer[Any]):
    """Our addition: the attacks on the run's target, worst first, and the success rate per behaviour."""

    status = serializers.ChoiceField(choices=RedTeamRun.Status.choices)
    target_model = serializers.CharField()
    threshold = serializers.FloatField(help_text="An answer scoring under it on any metric is a successful attack.")
    metrics = serializers.ListField(child=serializers.CharField())
    overall = BehaviorSuccessOutputSerializer()
    behaviors = BehaviorSuccessOutputSerializer(many=True)
    attacks = AttackOutputSerializer(many=True)
