from __future__ import annotations

from django.contrib import admin

from .models import GenerationFailure, Run, Spec, SpecVersion


class SpecVersionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SpecVersion
    extra = 0
    fields = ["number", "created_at", "created_by"]
    readonly_fields = ["number", "created_at", "created_by"]
    can_delete = False


@admin.register(Spec)
class SpecAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "company", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "company__name"]
    readonly_fields = ["code", "created_at"]
    inlines = [SpecVersionInline]


class GenerationFailureInline(admin.TabularInline):  # type: ignore[type-arg]
    model = GenerationFailure
    extra = 0
    fields = ["position", "reason", "created_at"]
    readonly_fields = ["position", "reason", "created_at"]
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["__str__", "company", "spec", "status", "samples_completed", "samples_failed", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["name", "code", "company__name"]
    readonly_fields = ["code", "created_at"]
    raw_id_fields = ["spec", "spec_version", "created_by"]
    inlines = [GenerationFailureInline]  # a generated run's positions with no sample, and why
