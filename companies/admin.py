from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import quotas
from .models import ApiKey, Company, Membership


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "code", "monthly_budget_usd", "created_at"]
    search_fields = ["name"]
    fields = ["name", "code", "created_at", "monthly_budget_usd", "spend_this_month", "in_flight", "limits"]
    readonly_fields = ["code", "created_at", "spend_this_month", "in_flight", "limits"]
    inlines = [MembershipInline]

    # Usage on the change page only: each figure is a query per company, too many for the list.
    @admin.display(description="LLM spend this month (UTC)")
    def spend_this_month(self, company: Company) -> str:
        if company.pk is None:
            return "-"
        spend, budget = quotas.month_spend(company), quotas.monthly_budget(company)
        if not budget:
            return f"${spend:.2f} (no budget)"
        return f"${spend:.2f} of ${budget:.2f}" + (" (over budget: new evaluations refused)" if spend >= budget else "")

    @admin.display(description="Evaluations / samples in flight")
    def in_flight(self, company: Company) -> str:
        if company.pk is None:
            return "-"
        now = quotas.in_flight(company)
        return (
            f"{now.evaluations} of {settings.MAX_EVALUATIONS_IN_FLIGHT or 'unlimited'} evaluations, "
            f"{now.samples:,} of {settings.MAX_SAMPLES_IN_FLIGHT or 'unlimited'} samples"
        )

    @admin.display(description="API requests per minute")
    def limits(self, company: Company) -> str:
        per_company, per_key = settings.API_REQUESTS_PER_MINUTE, settings.API_REQUESTS_PER_MINUTE_PER_KEY
        return f"{per_company or 'unlimited'} per company, {per_key or 'unlimited'} per key (settings)"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "company", "role", "created_at"]
    list_filter = ["role", "company"]
    search_fields = ["user__email", "user__username", "company__name"]
    autocomplete_fields = ["user", "company"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # The hash is never shown: only the masked form identifies a key.
    list_display = [
        "masked_key",
        "name",
        "company",
        "user",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["company"]
    search_fields = ["name", "prefix", "user__email", "company__name"]
    fields = list_display  # type: ignore[assignment]  # every column is a plain field here
    readonly_fields = [
        "masked_key",
        "company",
        "user",
        "created_at",
        "revoked_at",
        "last_used_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key's secret can only be shown at creation, so keys are made where it can be shown:
        # the API keys page or `manage.py create_api_key`.
        return False

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            key.revoke()
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)
