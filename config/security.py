"""A strict Content-Security-Policy on every answer (Django 5.2 has none built in; 6.0 adds one).

Scripts come only from our own origin: no inline script, no eval, no CDN. The templates keep scripts in static/js
and data in json_script blocks (type application/json, never executed); the API docs use drf-spectacular's split
view, which serves its start-up script from a URL instead of inline. Styles allow 'unsafe-inline' because Plotly
and htmx insert <style> rules and style attributes as they draw; a style cannot run code.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
