"""The admin site, its sign-in counted and throttled like `/login/` (companies.signin)."""

from __future__ import annotations

from functools import partial
from http import HTTPStatus
from math import ceil
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from companies.signin import sign_in_throttled


class ThrottledAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method != "POST":
            return super().login(request, extra_context)
        return sign_in_throttled(request, partial(super().login, request, extra_context), _throttled)


def _throttled(wait: int) -> HttpResponse:
    return HttpResponse(
        f"Too many failed sign-ins. Try again in {ceil(wait / 60)} minutes.",
        status=HTTPStatus.TOO_MANY_REQUESTS,
        content_type="text/plain; charset=utf-8",
    )
