from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .dispatch import dispatch, work_retry
from .models import WorkItem


@admin.register(WorkItem)
class WorkItemAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "key", "company", "state", "attempts", "lease_until", "enqueued_at", "worker", "created_at", "finished_at",
    ]  # fmt: skip
    list_filter = ["state", "kind"]
    search_fields = ["key", "company__name", "last_error"]
    readonly_fields = [f.name for f in WorkItem._meta.fields]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry: queue again with its attempts reset")
    def retry(self, request: HttpRequest, queryset: QuerySet[WorkItem]) -> None:
        count = work_retry(queryset)
        dispatch()
        self.message_user(request, f"{count} item(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel: end the item (a running worker stops at its next heartbeat)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[WorkItem]) -> None:
        count = queryset.open().update(state=WorkItem.State.CANCELED, lease_until=None, last_error="canceled by staff")  # type: ignore[attr-defined]
        self.message_user(request, f"{count} item(s) canceled.", messages.SUCCESS)
