from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_actions import apply_each

from .models import GuardrailEvaluation
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
