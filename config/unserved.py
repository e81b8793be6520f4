"""The official clients' calls this service does not implement yet: each answers a JSON 404 that names the issue.

Why 404 and not 501: both official clients retry every 5xx (POSTs included), so a 501 would be sent again and
again before the caller saw it; a 4xx is final. The resource does not exist here, which is what 404 says, and the
body tells it apart from an unknown id: `"code": "not_implemented"` and the issue that plans it. Without these
routes the DeepRails paths got Django's HTML 404 page, which the clients cannot read.

This is the one list: when an issue lands a family, remove its line here and update the README's table
"What the official clients can call" (tests/test_client_coverage.py checks both).
"""

from __future__ import annotations

from typing import NamedTuple

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt


class Unserved(NamedTuple):
    prefix: str  # the path's first segments, without the leading slash
    feature: str
    issue: int


UNSERVED: list[Unserved] = []  # every call of both clients is served (issue #24 landed the last three families)


@csrf_exempt  # the clients send a Bearer key, never a CSRF token; nothing is changed here
def not_implemented(request: HttpRequest, feature: str, issue: int) -> JsonResponse:
    detail = f"{feature} is not implemented by this service yet (issue #{issue}); nothing was done."
    return JsonResponse({"detail": detail, "code": "not_implemented", "issue": issue}, status=404)


urlpatterns: list[URLPattern] = [
    re_path(rf"^{u.prefix}(?:/.*)?$", not_implemented, {"feature": u.feature, "issue": u.issue}) for u in UNSERVED
]
