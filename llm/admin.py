from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import JudgeCache, JudgeCall


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The ledger and the cache are written by the engine only: staff read them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(JudgeCall)
class JudgeCallAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at", "company", "provider", "model", "purpose", "display_outcome", "attempt", "input_tokens", "output_tokens",
        "cost_usd", "latency_ms", "subject_type", "subject_id",
    ]  # fmt: skip
    list_filter = ["provider", "purpose", "outcome"]
    search_fields = ["model", "company__name", "error"]
    date_hierarchy = "created_at"


@admin.register(JudgeCache)
class JudgeCacheAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "company", "config_hash", "content_hash"]
    search_fields = ["config_hash", "content_hash", "company__name"]
