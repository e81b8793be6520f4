from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_actions import apply_each

from .models import AnonymizationRun, AnonymizedFile
from .services import AnonymizationError, anonymization_run_cancel, anonymization_run_retry


class AnonymizedFileInline(admin.TabularInline):  # type: ignore[type-arg]
    model = AnonymizedFile
    fields = ["position", "path", "size_in_bytes", "skipped_reason"]
    readonly_fields = ["position", "path", "size_in_bytes", "skipped_reason"]
    extra = 0
    can_delete = False


@admin.register(AnonymizationRun)
class AnonymizationRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["__str__", "company", "detection_method", "status", "samples_processed", "created_at", "deleted_at"]
    list_filter = ["status", "detection_method"]
    search_fields = ["code", "dataset_name", "company__name", "error"]
    readonly_fields = [f.name for f in AnonymizationRun._meta.fields]
    inlines = [AnonymizedFileInline]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry failed runs (files already anonymized are kept)")
    def retry(self, request: HttpRequest, queryset: QuerySet[AnonymizationRun]) -> None:
        apply_each(
            self, request, queryset, lambda r: anonymization_run_retry(run=r), (AnonymizationError,), "queued again"
        )

    @admin.action(description="Cancel unfinished runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[AnonymizationRun]) -> None:
        user: Any = request.user
        cancel = anonymization_run_cancel
        apply_each(
            self, request, queryset, lambda r: cancel(run=r, canceled_by=user), (AnonymizationError,), "canceled"
        )
