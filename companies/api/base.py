"""The company-scoped base for every API viewset (STYLE.md rule 5): scoping cannot be skipped by accident."""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from companies.access import get_active_membership
from companies.api.throttles import concurrency_slot_give_back, concurrency_slot_take
from companies.models import Company, Membership


def request_membership(request: Request) -> Membership:
    membership = get_active_membership(request)
    if membership is None:
        raise exceptions.PermissionDenied("You do not belong to any company.")
    return membership


class CompanyWritePermission(permissions.BasePermission):
    """Every member may read; viewers may not write."""

    message = "Your role in this company is read-only."

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = request_membership(request)
        return request.method in permissions.SAFE_METHODS or membership.can_write


class CompanyScopedAutoSchema(AutoSchema):
    """Documents the `{id}` of a company-scoped object as what it is, the object's `code` (a UUID): left alone,
    drf-spectacular reads the router's `pk` as the integer primary key."""

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        queryset = getattr(self.view, "queryset", None)
        if "{id}" in self.path and getattr(self.view, "lookup_field", None) == "code" and queryset is not None:
            description = f"The {queryset.model._meta.verbose_name}'s id."
            parameters.append(OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description=description))
        return parameters


class CompanyScopedViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Owns `get_queryset` and `get_permissions`: subclasses narrow the rows in `scope_queryset` and never see
    other companies' rows; they may add permission classes (`permission_classes`) but never drop the company
    write check (as PostHog's routing base does)."""

    # Always applied, whatever a subclass sets in permission_classes.
    base_permission_classes: tuple[type[permissions.BasePermission], ...] = (
        permissions.IsAuthenticated,
        CompanyWritePermission,
    )
    permission_classes: list[type[permissions.BasePermission]] = []
    lookup_field = "code"
    lookup_url_kwarg = "pk"
    schema = CompanyScopedAutoSchema()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object", "get_permissions"):
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} must not override {name}; implement scope_queryset instead")

    # One of the company's concurrent-request slots, held from the end of the checks to the answer.
    _slot: tuple[str, str] | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions and the per-minute throttles
        self._slot = concurrency_slot_take(self.membership.company_id)

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:  # every way out, an unhandled exception (a 500) included
            if self._slot is not None:
                concurrency_slot_give_back(self._slot)
                self._slot = None

    def get_permissions(self) -> list[permissions.BasePermission]:
        extra = [p for p in self.permission_classes if p not in self.base_permission_classes]
        return [permission() for permission in (*self.base_permission_classes, *extra)]

    @cached_property
    def membership(self) -> Membership:
        return request_membership(self.request)

    @property
    def company(self) -> Company:
        return self.membership.company

    def scope_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset

    def get_queryset(self) -> models.QuerySet[Any]:
        return self.scope_queryset(super().get_queryset().filter(company=self.company))

    def get_object(self) -> Any:
        # A malformed id is "not found" too: never a 500, never a hint.
        try:
            return super().get_object()
        except (ValueError, DjangoValidationError) as exc:
            raise exceptions.NotFound() from exc

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        serializer.save(company=self.company)


class CompanyScopedPrimaryKeyRelatedField(serializers.SlugRelatedField):  # type: ignore[type-arg]
    """A reference by code to another row of the caller's company; others' rows do not exist."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("slug_field", "code")
        super().__init__(**kwargs)

    def get_queryset(self) -> models.QuerySet[Any]:
        queryset = super().get_queryset()
        assert queryset is not None, "a scoped related field needs a queryset"
        request = self.context.get("request")
        if request is None or not request.user.is_authenticated:
            return queryset.none()
        membership = get_active_membership(request)
        return queryset.filter(company=membership.company) if membership else queryset.none()


class ListPagination(PageNumberPagination):
    """Our paginated lists: `{count, next, previous, results}`, 50 a page by default, at most 100."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_number(self, request: Any, paginator: Any) -> Any:
        # DRF reads an empty `page` as the first page; the schema says a positive integer: a 400.
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw != "last" and not raw.strip().isdigit():
            raise BadRequest("page must be a positive integer.")
        return super().get_page_number(request, paginator)

    def get_page_size(self, request: Any) -> int | None:
        # DRF falls back to the default for a page_size that is not a number; the schema says integer: a 400.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not raw.strip().lstrip("-").isdigit():
            raise BadRequest("page_size must be an integer.")
        return super().get_page_size(request)


class WireUUIDField(serializers.UUIDField):
    """A UUID given as a string, the only way the schema (and the official clients) give one. DRF's own field also
    takes an integer as UUID(int=...): `{"run_id": true}` was read as the run 00000000-…-0001."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str | uuid.UUID):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class ParsedJSONField(serializers.JSONField):
    """Any JSON value, taken as the parser gave it. DRF's own field json.dumps the whole value to check that it is
    JSON, which a parsed body always is: for a 20,000-sample import that is tens of ms in C holding the GIL, a
    stall for every other request of the process (runserver serves them all as threads of one)."""

    def to_internal_value(self, data: Any) -> Any:
        return data


class BadRequest(exceptions.APIException):
    """A 400 whose body is `{"detail": "<message>"}` (a business rule, not a field error)."""

    status_code = 400
    default_code = "bad_request"


def uuid_or_none(value: str) -> uuid.UUID | None:
    """An id from a URL as a UUID, or None when it is not one (then: not found, never a 500)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
