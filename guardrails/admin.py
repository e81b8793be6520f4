from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_actions import apply_each

from .defend import workflow_event_cancel, workflow_event_retry
from .models import GuardrailEvaluation, Monitor, MonitorEvent, Workflow, WorkflowAttempt, WorkflowEvent
from .services import GuardrailInputError, guardrail_evaluation_cancel, guardrail_evaluation_retry


@admin.register(GuardrailEvaluation)
class GuardrailEvaluationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["__str__", "company", "run_mode", "status", "progress", "nametag", "created_at", "end_timestamp"]
    list_filter = ["status", "run_mode"]
    search_fields = ["code", "nametag", "company__name", "error_message"]
    readonly_fields = [f.name for f in GuardrailEvaluation._meta.fields]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry failed evaluations (graded metrics are kept)")
    def retry(self, request: HttpRequest, queryset: QuerySet[GuardrailEvaluation]) -> None:
        retry = guardrail_evaluation_retry
        apply_each(self, request, queryset, lambda e: retry(evaluation=e), (GuardrailInputError,), "queued again")

    @admin.action(description="Cancel unfinished evaluations")
    def cancel(self, request: HttpRequest, queryset: QuerySet[GuardrailEvaluation]) -> None:
        cancel = guardrail_evaluation_cancel
        apply_each(self, request, queryset, lambda e: cancel(evaluation=e), (GuardrailInputError,), "canceled")


class MonitorEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = MonitorEvent
    fields = ["code", "evaluation", "created_at"]
    readonly_fields = ["code", "evaluation", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = False


@admin.register(Monitor)
class MonitorAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "company", "status", "created_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["code", "name", "company__name"]
    readonly_fields = ["code", "company", "created_by", "created_at", "updated_at"]
    inlines = [MonitorEventInline]


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "company", "status", "threshold_type", "improvement_action", "max_improvement_attempts"]
    list_filter = ["status", "threshold_type", "improvement_action"]
    search_fields = ["code", "name", "company__name"]
    readonly_fields = ["code", "company", "created_by", "thresholds", "writer_model", "created_at", "modified_at"]


class WorkflowAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WorkflowAttempt
    fields = ["number", "output", "evaluation", "passed", "failing_metrics"]
    readonly_fields = ["number", "output", "evaluation", "passed", "failing_metrics"]
    extra = 0
    can_delete = False


@admin.register(WorkflowEvent)
class WorkflowEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Monitor events are guardrail evaluations (retried and canceled above); a workflow event is its own work."""

    list_display = ["__str__", "workflow", "company", "status", "filtered", "nametag", "created_at"]
    list_filter = ["status", "filtered"]
    search_fields = ["code", "nametag", "workflow__name", "error_message"]
    readonly_fields = [f.name for f in WorkflowEvent._meta.fields]
    inlines = [WorkflowAttemptInline]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry failed events (from their latest attempt)")
    def retry(self, request: HttpRequest, queryset: QuerySet[WorkflowEvent]) -> None:
        apply_each(
            self, request, queryset, lambda e: workflow_event_retry(event=e), (GuardrailInputError,), "queued again"
        )

    @admin.action(description="Cancel unfinished events")
    def cancel(self, request: HttpRequest, queryset: QuerySet[WorkflowEvent]) -> None:
        apply_each(
            self, request, queryset, lambda e: workflow_event_cancel(event=e), (GuardrailInputError,), "canceled"
        )
