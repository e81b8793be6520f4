"""Request types for views (STYLE.md rule 16)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthenticatedHttpRequest(HttpRequest):
    """A request to a page behind login_required: its user is a real one."""

    user: User


class HtmxHttpRequest(AuthenticatedHttpRequest):
    htmx: HtmxDetails
