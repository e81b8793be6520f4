"""Failed sign-ins and failed API-key attempts, counted in the cache per fixed window (FAILURE_WINDOW_SECONDS).

The cache, not django-axes: one small mechanism serves both the login form and the API key header (axes only
knows username/password logins), a failure writes no database row (on SQLite every write takes the one write
lock, the very contention issue 12 is about), and there is no new dependency or migration. The cost: no admin
list of lockouts, and with the default per-process LocMemCache each web process counts on its own; set
REDIS_URL to share the counts, as the DRF throttles already do.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle


def client_address(request: HttpRequest) -> str:
    """The address DRF's throttles use (REMOTE_ADDR, or X-Forwarded-For when NUM_PROXIES says to trust it)."""
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FailureCounter:
    scope: str
    limit_setting: str  # read on each use, so tests and operators can change it

    @property
    def limit(self) -> int:
        return int(getattr(settings, self.limit_setting))

    def _key(self, ident: str) -> str:
        # Hashed: a username or address may hold characters memcached keys cannot, and need not sit in the cache.
        return f"failures:{self.scope}:{hashlib.sha256(ident.encode('utf-8', 'replace')).hexdigest()[:40]}"

    def retry_after(self, ident: str) -> int | None:
        """Seconds until `ident` may try again, or None if it is under the limit (or the limit is 0: off)."""
        if self.limit <= 0:
            return None  # 0 means off, as for every other limit (it once refused every request, right ones too)
        key = self._key(ident)
        counts = cache.get_many([key, f"{key}:since"])
        if counts.get(key, 0) < self.limit:
            return None
        since = counts.get(f"{key}:since", time.time())
        left = since + settings.FAILURE_WINDOW_SECONDS - time.time()
        if left <= 0:
            # The window is over by our clock, whatever the cache's own expiry says (Redis expires by its clock).
            self.clear(ident)
            return None
        return max(1, int(left) + 1)

    def record(self, ident: str) -> None:
        if self.limit <= 0:
            return
        key, window = self._key(ident), settings.FAILURE_WINDOW_SECONDS
        if cache.add(key, 1, window):
            cache.set(f"{key}:since", time.time(), window)
            return
        try:
            cache.incr(key)  # atomic on Redis and LocMemCache; keeps the window's expiry
        except ValueError:  # expired between add and incr
            cache.add(key, 1, window)

    def clear(self, ident: str) -> None:
        key = self._key(ident)
        cache.delete_many([key, f"{key}:since"])


LOGIN_BY_USERNAME = FailureCounter("login-username", "LOGIN_MAX_FAILURES_PER_USERNAME")
LOGIN_BY_ADDRESS = FailureCounter("login-address", "LOGIN_MAX_FAILURES_PER_ADDRESS")
API_KEY_BY_ADDRESS = FailureCounter("api-key-address", "API_KEY_MAX_FAILURES_PER_ADDRESS")
