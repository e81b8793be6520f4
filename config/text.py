"""Text a supported database cannot store, refused at the boundary so SQLite and PostgreSQL accept the same input.

PostgreSQL refuses a NUL character in every text and JSON column (SQLite stores it), and no database or encoder
takes a lone surrogate (JSON's "\\ud800" and YAML's "\\ud800" decode to one). `unstorable` is the one test; the
JSON parser (config.api), the spec YAML reader, the run import and the middleware below for query strings and
page forms call it, each naming the field in its 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse
from django.template import loader

from config.errors import is_api_path, json_error

_UNSHOWABLE = re.compile("[\x00-\x1f\ud800-\udfff]")


def shown(text: str) -> str:
    """`text` (cut to 100 characters) safe to echo in a message: control characters and lone surrogates escaped."""
    return _UNSHOWABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text[:100])


def unstorable(text: str) -> str | None:
    """Why a supported database cannot store `text` (a phrase to follow the field's name), or None."""
    if "\x00" in text:
        return "holds a NUL character (\\u0000), which the database cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "holds a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


class StorableTextMiddleware:
    """Query strings on every path, and form fields of pages, with unstorable text are a 400 naming the parameter.

    Filters read the query string in many views (`?nametag=a%00b` reached PostgreSQL as a 500); checking it once here
    covers every present and future filter. API bodies are DRF's (its parsers and serializers refuse such text), so
    only pages' form bodies are read here. Django decodes the query string and form bodies with errors='replace',
    so in practice only NUL arrives this way.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = is_api_path(request.path_info)
        sources = [("query parameter", request.GET)]
        if not api and request.method == "POST":
            sources.append(("form field", request.POST))
        for kind, data in sources:
            for key, values in data.lists():
                for text in (key, *values):
                    reason = unstorable(text)
                    if reason:
                        detail = f"The {kind} '{shown(key)}' {reason}."
                        if api:
                            return json_error(request, HTTPStatus.BAD_REQUEST, detail)
                        page = loader.render_to_string("400.html", {"detail": detail}, request)
                        return HttpResponse(page, status=HTTPStatus.BAD_REQUEST)
        return self.get_response(request)
