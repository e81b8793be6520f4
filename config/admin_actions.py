"""One way for admin actions to apply a service to each selected row and report the refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

M = TypeVar("M", bound=Model)


def apply_each(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[M],
    action: Callable[[M], object],
    refusals: tuple[type[Exception], ...],
    done: str,
) -> None:
    """Call `action` on every row; a refusal (e.g. "only FAILED evaluations can be retried") becomes a warning."""
    count = 0
    for row in queryset:
        try:
            action(row)
            count += 1
        except refusals as exc:
            model_admin.message_user(request, f"{row}: {exc}", messages.WARNING)
    model_admin.message_user(request, f"{count} {done}.", messages.SUCCESS)
