"""Every answer under /api/ and the DeepRails paths is JSON, errors included, in DEBUG too.

DRF renders its own errors as JSON, but Django answers some requests before or after DRF sees them (an unknown
path, a body over the size limit, an exception in a view, DEBUG's technical pages): those are turned into
`{"detail": ...}` here. A 500 carries a request id that is also in the log, so a user can report it.

When the database or the cache (Redis: throttle counters, and the broker) cannot be reached, the answer is a 503
with Retry-After that says which, never a 500: the official clients retry a 503 after the pause, and the service
needs nothing done to recover (Django replaces a broken database connection at the next request; redis-py
reconnects). The throttles fail closed, by choice: a counter that cannot be read answers this 503 rather than let
unlimited requests or password guesses through, so there is no cache error to catch in the throttles themselves.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from .outages import DATABASE, outage_of

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger("config.errors")

# Headers an error answer keeps when its body is rewritten as JSON.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
OUTAGE_RETRY_AFTER = "5"  # seconds: a restart of PostgreSQL or Redis usually takes about this long
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


# The DeepRails family's top-level resources (the official client calls them without an /api/ prefix).
DEEPRAILS_ROOTS = ("evaluate", "monitor", "defend")


def is_api_path(path: str) -> bool:
    return path.startswith("/api/") or path.lstrip("/").split("/", 1)[0] in DEEPRAILS_ROOTS


def request_id(request: HttpRequest) -> str:
    """The id of this request in the log: the proxy's X-Request-ID when it looks like one, else a new one."""
    existing = getattr(request, "request_id", None)
    if existing:
        return str(existing)
    sent = request.META.get("HTTP_X_REQUEST_ID", "")
    rid = sent if _CLIENT_REQUEST_ID.match(sent) else uuid.uuid4().hex
    request.request_id = rid  # type: ignore[attr-defined]
    return rid


def json_error(request: HttpRequest, code: int, detail: str | None = None) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail or f"{HTTPStatus(code).phrase}."}
    if code >= 500:
        body["request_id"] = request_id(request)
    return JsonResponse(body, status=code)


def _declared_too_big(request: HttpRequest) -> int | None:
    """The byte limit a declared Content-Length exceeds, or None; checked before a byte of the body is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return None
    if request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        # Uploaded files are not held in memory and have their own cap (a run import's file).
        limit += settings.IMPORT_MAX_UPLOAD_BYTES
    return limit if length > limit else None


class JsonErrorsMiddleware:
    """First in MIDDLEWARE: it sees every answer on its way out, and its process_exception catches view errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id(request)
        if not is_api_path(request.path_info):
            return self.get_response(request)
        limit = _declared_too_big(request)
        if limit is not None:
            response: HttpResponse = json_error(
                request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The request body is larger than {limit:,} bytes."
            )
        else:
            response = self.get_response(request)
            if response.status_code >= 400 and not _is_json(response):
                response = self._as_json(request, response)
        response["X-Request-ID"] = rid
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        unavailable = outage_response(request, exception)
        if unavailable is not None:
            return unavailable
        if not is_api_path(request.path_info):
            return None  # pages keep Django's handling: templates/404.html, 500.html, or DEBUG's pages
        if isinstance(exception, RequestDataTooBig):
            return json_error(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "The request body is too large.")
        if isinstance(exception, SuspiciousOperation):
            return json_error(request, HTTPStatus.BAD_REQUEST, "The request is malformed.")
        if isinstance(exception, Http404):
            return json_error(request, HTTPStatus.NOT_FOUND)
        if isinstance(exception, PermissionDenied):
            return json_error(request, HTTPStatus.FORBIDDEN)
        logger.exception(
            "Unhandled error, request id %s: %s %s", request_id(request), request.method, request.path_info
        )
        return json_error(request, HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error.")

    def _as_json(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Django's own error page (HTML, or DEBUG's technical page) for an API path, as `{"detail": ...}`."""
        code = response.status_code
        if code >= 500:
            logger.error(
                "Error page %s replaced, request id %s: %s %s",
                code,
                request_id(request),
                request.method,
                request.path_info,
            )
        try:
            detail = None if code >= 500 else f"{HTTPStatus(code).phrase}."
        except ValueError:
            detail = "Error."
        rewritten = json_error(request, code, detail)
        for header in KEPT_HEADERS:
            if header in response:
                rewritten[header] = response[header]
        return rewritten


def _is_json(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").split(";")[0].strip()
    return content_type == "application/json" or content_type.endswith("+json")


def outage_response(request: HttpRequest, exception: BaseException) -> HttpResponse | None:
    """A 503 with Retry-After naming the service that cannot be reached (JSON for the API, a plain "try again in a
    moment" page otherwise), or None when `exception` is not an outage. Touches neither the database nor the cache."""
    service = outage_of(exception)
    if service is None:
        return None
    logger.warning(
        "The %s is unavailable, request id %s: %s %s (%s)",
        service,
        request_id(request),
        request.method,
        request.path_info,
        exception,
    )
    if is_api_path(request.path_info):
        if service == DATABASE and "database is locked" in str(exception):
            # SQLite's write lock stayed taken past the busy timeout: nothing was written, and it frees in a moment.
            detail, retry_after = "The database is busy; retry in a moment.", "2"
        else:
            detail, retry_after = f"The {service} is unavailable; retry in a moment.", OUTAGE_RETRY_AFTER
        body = {"detail": detail, "unavailable": service, "request_id": request_id(request)}
        response: HttpResponse = JsonResponse(body, status=HTTPStatus.SERVICE_UNAVAILABLE)
    else:
        retry_after = OUTAGE_RETRY_AFTER
        page = loader.render_to_string("503.html", {"service": service})
        response = HttpResponse(page, status=HTTPStatus.SERVICE_UNAVAILABLE)
    response["Retry-After"] = retry_after
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500 (DEBUG off): a 503 for an outage (an exception outside any view: a middleware's session read),
    else JSON for the API, else a page that names the request id."""
    unavailable = outage_response(request, sys.exc_info()[1] or Exception())
    if unavailable is not None:
        return unavailable
    rid = request_id(request)
    logger.error("Server error, request id %s: %s %s", rid, request.method, request.path_info)
    if is_api_path(request.path_info):
        return json_error(request, HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error.")
    # No request context: the context processors read the database, which may be why we are here.
    page = loader.render_to_string("500.html", {"request_id": rid})
    return HttpResponse(page, status=HTTPStatus.INTERNAL_SERVER_ERROR)
