"""Finding a company's row by its DeepRails wire id (`eval-<uuid>`, `mon-<uuid>`, ...), one way for every resource."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet
from rest_framework import exceptions

from guardrails.models import parse_wire_id

M = TypeVar("M", bound=Model)


def get_by_wire_id(queryset: QuerySet[M], prefix: str, wire_id: str, *, missing: str) -> M:
    """The row of `queryset` (already scoped to the caller) with this wire id; a malformed id or a row outside the
    queryset (another company's included) is the same 404, saying `missing`."""
    code = parse_wire_id(prefix, wire_id)
    row = queryset.filter(code=code).first() if code else None
    if row is None:
        raise exceptions.NotFound(missing)
    return row
