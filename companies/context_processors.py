from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.functional import SimpleLazyObject

from .access import get_active_membership
from .models import Company

if TYPE_CHECKING:
    from django.http import HttpRequest


def active_company(request: HttpRequest) -> dict[str, Any]:
    """The header's company switcher needs the active company and the others the user belongs to."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    # Lazy, so HTMX partials that never show the header do not pay for it.
    membership = SimpleLazyObject(lambda: get_active_membership(request))
    return {
        "active_membership": membership,
        "active_company": SimpleLazyObject(lambda: membership.company if membership else None),
        "user_companies": Company.objects.for_user(request.user),
    }
