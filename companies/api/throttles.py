"""API requests per minute, per company and per API key (issue 12), on every API view (DEFAULT_THROTTLE_CLASSES).

DRF's sliding-window throttle, counted in the cache like every other throttle here: with the default per-process
LocMemCache each web process counts alone, so set REDIS_URL to enforce the limit across processes. The rate is read
from settings on each request (a throttle is built per request), and 0 turns a limit off.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions, throttling
from rest_framework.request import Request

from companies.access import get_active_membership
from companies.models import ApiKey


class _PerMinuteThrottle(throttling.SimpleRateThrottle):
    setting: str
    who: str

    def get_rate(self) -> str | None:
        per_minute = int(getattr(settings, self.setting))
        return f"{per_minute}/min" if per_minute > 0 else None

    def throttle_failure(self) -> bool:
        # Raised rather than returned: DRF's own message would not say which limit was hit.
        wait = max(1, math.ceil(self.wait() or 1))
        limit = getattr(settings, self.setting)
        raise exceptions.Throttled(
            wait=wait, detail=f"API request limit reached: {limit} requests per minute {self.who} ({self.setting})."
        )


class CompanyRateThrottle(_PerMinuteThrottle):
    scope = "company"
    setting = "API_REQUESTS_PER_MINUTE"
    who = "for your company"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            company_id: int | None = request.auth.company_id  # no query: the key names its company
        else:
            membership = get_active_membership(request)  # cached on the request for the view
            company_id = membership.company_id if membership else None
        if company_id is None:
            return None  # anonymous or companyless: refused by the permission checks, not counted
        return self.cache_format % {"scope": self.scope, "ident": company_id}


class ApiKeyRateThrottle(_PerMinuteThrottle):
    scope = "api_key"
    setting = "API_REQUESTS_PER_MINUTE_PER_KEY"
    who = "for this API key (or browser session)"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"  # a browser session counts like a key of its own
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


# A slot outlives any request (gunicorn's default timeout is 30 s): if a web process dies mid-request, its slot
# frees itself after this long.
SLOT_SECONDS = 120


def concurrency_slot_take(company_id: int) -> tuple[str, str] | None:
    """Take one of the company's API_CONCURRENT_REQUESTS_PER_COMPANY slots (a cache key added only if absent, so
    two processes cannot take the same one), or raise Throttled; None when the limit is off. Give it back with
    concurrency_slot_give_back once the answer is ready."""
    limit = int(settings.API_CONCURRENT_REQUESTS_PER_COMPANY)
    if limit <= 0:
        return None
    token = uuid.uuid4().hex
    for index in range(limit):
        key = f"api-concurrency:{company_id}:{index}"
        if cache.add(key, token, SLOT_SECONDS):
            return key, token
    raise exceptions.Throttled(
        wait=1,
        detail=(
            f"Too many requests at once: at most {limit} API requests of your company in progress at a time "
            "(API_CONCURRENT_REQUESTS_PER_COMPANY)."
        ),
    )


def concurrency_slot_give_back(slot: tuple[str, str]) -> None:
    key, token = slot
    if cache.get(key) == token:  # not a slot that expired and was taken again
        cache.delete(key)
