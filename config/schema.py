"""The OpenAPI schema's own rules (drf-spectacular): request strings that refuse a blank say so, and every
operation documents the answers that the middleware, parsers, throttles and database layer give around its view.
A module of its own: config/api.py is imported by DRF's settings, before drf-spectacular can be."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import serializers


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, plus `minLength: 1` on every request string that refuses a blank. Its own setting for
    this (ENFORCE_NON_BLANK_FIELDS) marks response fields too, where our outputs do hold "" (a blank stratum)."""

    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict[str, Any]:
        meta: dict[str, Any] = super()._get_serializer_field_meta(field, direction)  # type: ignore[no-untyped-call]
        if direction == "request" and isinstance(field, serializers.CharField) and not field.allow_blank:
            meta.setdefault("minLength", 1)
        return meta


# The answers any API operation may give besides its own: (status, description, only where a body is sent).
REFUSALS = [
    (413, "The body is larger than MAX_REQUEST_BYTES, or what it would store passes STORAGE_QUOTA_BYTES.", True),
    (415, "The body's Content-Type is not one the operation accepts.", True),
    (
        429,
        "A request quota (API_REQUESTS_PER_MINUTE, API_REQUESTS_PER_MINUTE_PER_KEY, "
        "API_CONCURRENT_REQUESTS_PER_COMPANY) or a work quota is reached; Retry-After says when to ask again.",
        False,
    ),
    (
        503,
        "The database stayed busy (or a dependency is down) past its timeout; Retry-After says when to retry.",
        False,
    ),
]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Operations with a JSON body that may carry a file instead (multipart): their multipart stays documented.
FILE_UPLOAD_PATHS = {"/api/dataframer/runs/import/"}


def document_refusals(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular hook: every operation documents the 413/415 (with a body), 429 and 503 that the middleware,
    parsers, throttles and database layer may answer before or around its view, in the `{"detail": ...}` shape;
    and a JSON body is advertised as JSON only, unless it carries a file (form posts of nested JSON bodies fail)."""
    for path, item in result.get("paths", {}).items():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if responses is None or "401" not in responses:
                continue
            body = operation.get("requestBody", {}).get("content", {})
            for status_code, description, with_body in REFUSALS:
                if str(status_code) not in responses and (body or not with_body):
                    detail = {"application/json": {"schema": {"$ref": "#/components/schemas/DetailOutput"}}}
                    responses[str(status_code)] = {"content": detail, "description": description}
            if "application/json" in body:
                for media_type in FORM_TYPES:
                    if media_type == "application/x-www-form-urlencoded" or path not in FILE_UPLOAD_PATHS:
                        body.pop(media_type, None)
    return result
