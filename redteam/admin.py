from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from config.admin_actions import apply_each

from .models import RedTeamPrompt, RedTeamRun, RedTeamSpec
from .services import RedTeamError, red_team_run_cancel, red_team_run_retry


@admin.register(RedTeamSpec)
class RedTeamSpecAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "company", "created_at"]
    search_fields = ["name", "company__name"]
    readonly_fields = ["code", "created_at", "updated_at"]
    raw_id_fields = ["created_by"]


class RedTeamPromptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RedTeamPrompt
    extra = 0
    fields = ["behavior_index", "position", "adversarial_prompt", "succeeded", "error"]
    readonly_fields = ["behavior_index", "position", "adversarial_prompt", "succeeded", "error"]
    can_delete = False


@admin.register(RedTeamRun)
class RedTeamRunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["__str__", "company", "spec", "status", "model_name", "target_model", "created_at"]
    list_filter = ["status"]
    search_fields = ["code", "company__name", "spec__name"]
    readonly_fields = ["code", "created_at", "started_at", "completed_at", "total_cost"]
    raw_id_fields = ["spec", "created_by"]
    inlines = [RedTeamPromptInline]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry failed or canceled runs (what is written and scored is kept)")
    def retry(self, request: HttpRequest, queryset: QuerySet[RedTeamRun]) -> None:
        apply_each(self, request, queryset, lambda r: red_team_run_retry(run=r), (RedTeamError,), "queued again")

    @admin.action(description="Cancel unfinished runs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[RedTeamRun]) -> None:
        apply_each(self, request, queryset, lambda r: red_team_run_cancel(run=r), (RedTeamError,), "canceled")
