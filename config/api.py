"""DRF defaults that keep hostile JSON a 400: a strict, bounded JSON parser and OPTIONS that never introspect."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.metadata import BaseMetadata
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from config.text import shown, unstorable


class JSONProblem(ValueError):
    """Text that is not JSON we accept; the message says what is wrong with it."""


class UnstorableText(JSONProblem):
    """Valid JSON holding a string no supported database can store; the message says where."""


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class OutOfRange(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "A value in the request is out of range (dates must fall within years 1 to 9999)."
    default_code = "out_of_range"


def _refuse_constant(name: str) -> Any:
    raise JSONProblem(f"{name} is not a JSON number")


# Where a value sits: (the place of its container, its key or index, its depth), None for the top level. A chain
# of tuples rather than a list per value, so walking a 20,000-sample import copies nothing.
_Where = tuple[Any, str | int, int] | None


def _check_text(text: str, where: _Where) -> None:
    # json decodes "\ud800" to a lone surrogate and "\u0000" to a NUL, which PostgreSQL refuses later (a 500 then).
    reason = unstorable(text)
    if reason:
        raise UnstorableText(f"the string at {_path(where)} {reason}")


def _path(where: _Where) -> str:
    """`samples[0].content`: where a value sits in the document, for the message."""
    parts: list[str] = []
    while where is not None:
        where, key, _depth = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{shown(key)}")
    return "".join(reversed(parts)).lstrip(".") or "the top level"


def _each_object(value: dict[str, Any]) -> dict[str, Any]:
    # A Python call per JSON object lets the interpreter hand the GIL to another thread: json.loads alone runs in C
    # and holds it for the whole document (a 4 MB import body: 30 ms to 1 s on a loaded machine), during which no
    # other request of the process moves. With it the longest stall is the interpreter's switch interval.
    return value


def loads_strict(text: str, max_depth: int | None = None) -> Any:
    """json.loads, refusing NaN/Infinity, unstorable text (NUL, lone surrogates; the message names where) and
    nesting deeper than `max_depth` (API_JSON_MAX_DEPTH)."""
    max_depth = settings.API_JSON_MAX_DEPTH if max_depth is None else max_depth
    try:
        data = json.loads(text, parse_constant=_refuse_constant, object_hook=_each_object)
    except RecursionError:
        # The C decoder recurses per level; ~1,000 levels exhaust the stack before any check could run.
        raise JSONProblem(f"nested more than {max_depth} levels deep") from None
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # an integer of more than 4,300 digits, or a constant refused above
        raise JSONProblem(str(exc)) from None
    # Iterative, so checking depth cannot itself recurse; linear in the number of values.
    pending: list[tuple[Any, _Where]] = [(data, None)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str):
            _check_text(node, where)
        elif isinstance(node, dict | list):
            depth = 1 if where is None else where[2] + 1
            if depth > max_depth:
                raise JSONProblem(f"nested more than {max_depth} levels deep")
            if isinstance(node, dict):
                for key, value in node.items():
                    _check_text(key, (where, key, depth))
                    pending.append((value, (where, key, depth)))
            else:
                pending.extend((value, (where, index, depth)) for index, value in enumerate(node))
    return data


class StrictJSONParser(JSONParser):
    """The default JSON parser: reads at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (else 413), then `loads_strict`."""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        # DRF hands JSON parsers the raw request stream, which Django does not cap: read one byte past the limit.
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit:,} bytes (MAX_REQUEST_BYTES).")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError(f"JSON parse error - the body is not {encoding} text.") from None
        try:
            return loads_strict(text)
        except JSONProblem as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}.") from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: a QuotaExceeded is a 429 with Retry-After (the storage quota: a 413), and an
    OverflowError is a 400. It comes from a value the client chose that Python cannot represent once converted,
    e.g. `created_after=9999-12-31T23:59:59-01:00` is past year 9999 in UTC."""
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES (this module) when it is imported.
    from rest_framework.views import exception_handler as drf_exception_handler

    from companies.quotas import QuotaExceeded, StorageQuotaExceeded

    if isinstance(exc, OverflowError):
        exc = OutOfRange()
    elif isinstance(exc, StorageQuotaExceeded):
        exc = PayloadTooLarge(str(exc))  # waiting would not help: no 429 and no Retry-After
    elif isinstance(exc, QuotaExceeded):
        # A business limit, so 429 (DESIGN.md: never 409/5xx); DRF adds Retry-After from `wait`.
        exc = exceptions.Throttled(wait=exc.retry_after, detail=str(exc))
    return drf_exception_handler(exc, context)


class MinimalMetadata(BaseMetadata):
    """OPTIONS answers name, description and formats; DRF's default introspects serializers, which not every
    view has (OPTIONS /evaluate answered 500)."""

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }


def document_refused_text(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular hook: every operation may answer 400, since config.text's middleware refuses text no
    database can store (a NUL, a lone surrogate) in any query parameter, documented or not, before the view runs."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if responses is not None and "400" not in responses and "401" in responses:
                responses["400"] = {
                    "content": responses["401"]["content"],
                    "description": "A query parameter holds text no database can store (a NUL or a lone surrogate).",
                }
    return result
