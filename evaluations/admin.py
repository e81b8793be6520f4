from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_actions import apply_each

from .models import Evaluation, Review
from .services import EvaluationError, evaluation_cancel, evaluation_retry


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "__str__", "company", "run", "status", "model_used", "conformance_score", "created_at", "completed_at",
    ]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["code", "company__name", "error_message"]
    readonly_fields = [f.name for f in Evaluation._meta.fields]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry failed evaluations (finished samples are kept)")
    def retry(self, request: HttpRequest, queryset: QuerySet[Evaluation]) -> None:
        apply_each(
            self, request, queryset, lambda e: evaluation_retry(evaluation=e), (EvaluationError,), "queued again"
        )

    @admin.action(description="Cancel unfinished evaluations")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Evaluation]) -> None:
        def cancel(evaluation: Evaluation) -> object:
            return evaluation_cancel(evaluation=evaluation, canceled_by=request.user)  # type: ignore[arg-type]

        apply_each(self, request, queryset, cancel, (EvaluationError,), "canceled")


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Human labels, for operators to look at; reviewers add and withdraw them on the pages or through the API."""

    list_display = ["__str__", "company", "property_name", "value", "selection", "reviewer", "updated_at"]
    list_filter = ["selection"]
    list_select_related = ["company", "reviewer"]
    search_fields = ["code", "company__name", "property_name", "value", "sample__identifier"]
    readonly_fields = [f.name for f in Review._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
