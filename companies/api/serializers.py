"""Output serializers every API family shares: the error body and the API key rotation answer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


# DRF's body for 401, 403, 404 and 429, and ours for a business-rule 400.
class DetailOutputSerializer(serializers.Serializer[Any]):
    """An error: `detail` says what went wrong."""

    detail = serializers.CharField()


class ApiKeyRotateOutputSerializer(serializers.Serializer[Any]):
    api_key = serializers.CharField(help_text="The new key; shown only in this response.")
    masked_key = serializers.CharField(help_text="The new key with its middle hidden, as the key list shows it.")
    expires_at = serializers.DateTimeField()


ERROR_DESCRIPTIONS = {
    400: 'A business rule refused the request: `{"detail": "..."}`; or invalid fields: `{"<field>": ["..."]}`.',
    401: "Missing, invalid, expired or revoked API key.",
    403: "Your role in this company is read-only.",
    404: "No such object in your company.",
    429: "Too many requests, or a company quota reached (the message names it): retry after `Retry-After` seconds.",
}


# A 400 is either body: `{"detail": "..."}`, or DRF's field errors keyed by field name (a list of messages, an
# object for a nested field, a list of objects for a list of nested items).
BAD_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'An error: `detail` says what went wrong; or field errors, `{"<field>": ["..."]}`.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {
        "description": "The errors of one field: messages, or the errors of its nested fields or items.",
        "anyOf": [{"type": "array", "items": {}}, {"type": "object"}],
    },
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the listed error statuses, documented with the `{"detail": ...}` body; a 400 may carry
    field errors instead, and its schema says so."""
    return {
        code: OpenApiResponse(
            BAD_REQUEST_SCHEMA if code == 400 else DetailOutputSerializer, description=ERROR_DESCRIPTIONS[code]
        )
        for code in codes
    }
