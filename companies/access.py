"""The one place that answers "which company is this request acting for, and may it write?"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import ApiKey, Company, Membership

if TYPE_CHECKING:
    from uuid import UUID

    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest

ACTIVE_COMPANY_SESSION_KEY = "active_company"
M = TypeVar("M", bound=Model)


def get_membership(user: User | AnonymousUser, company: Company) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, company=company).first()


def get_company_for_user(user: User | AnonymousUser, code: UUID | str) -> tuple[Company, Membership]:
    """Return the company with this code and the user's membership, or 404 if they are not a member."""
    if not user.is_authenticated:
        raise Http404
    membership = Membership.objects.select_related("company").filter(user=user, company__code=code).first()
    if membership is None:
        raise Http404
    return membership.company, membership


def get_active_membership(request: HttpRequest) -> Membership | None:
    """The membership a request acts through: the API key's company, else the session's chosen company.

    A user who never chose, or whose choice is no longer valid, gets their oldest membership.
    """
    user = request.user
    if not user.is_authenticated:
        return None
    cached: Membership | None = getattr(request, "_active_membership", None)
    if cached is not None:
        return cached
    api_key = getattr(request, "auth", None)
    memberships = Membership.objects.select_related("company").filter(user=user)
    membership: Membership | None
    if isinstance(api_key, ApiKey):
        membership = memberships.filter(company_id=api_key.company_id).first()
    else:
        chosen = request.session.get(ACTIVE_COMPANY_SESSION_KEY) if hasattr(request, "session") else None
        membership = memberships.filter(company__code=chosen).first() if chosen else None
        membership = membership or memberships.order_by("created_at", "id").first()
    request._active_membership = membership  # type: ignore[attr-defined]
    return membership


def set_active_company(request: HttpRequest, company: Company) -> None:
    request.session[ACTIVE_COMPANY_SESSION_KEY] = str(company.code)
    request.__dict__.pop("_active_membership", None)


def get_object_for_user(queryset: QuerySet[M], user: User | AnonymousUser, **lookup: Any) -> tuple[M, Membership]:
    """Return the object if `user` belongs to its company, with their membership; 404 for strangers and typos alike."""
    obj = get_object_or_404(queryset.select_related("company"), **lookup)
    membership = get_membership(user, obj.company)  # type: ignore[attr-defined]
    if membership is None:
        raise Http404
    return obj, membership


def get_rw_object_for_user(queryset: QuerySet[M], user: User | AnonymousUser, **lookup: Any) -> tuple[M, Membership]:
    """As get_object_for_user, and 403 unless the user's role may write."""
    obj, membership = get_object_for_user(queryset, user, **lookup)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    return obj, membership


def require_active_membership(request: HttpRequest) -> Membership:
    """The membership a page acts through; 404 for a user who belongs to no company."""
    membership = get_active_membership(request)
    if membership is None:
        raise Http404("You do not belong to any company.")
    return membership
