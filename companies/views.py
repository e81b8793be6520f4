from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .access import get_company_for_user, set_active_company
from .models import Membership

if TYPE_CHECKING:
    from django.http import HttpRequest


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("company").order_by("company__name")
    return render(request, "companies/home.html", {"memberships": memberships})


@login_required
@require_POST
def switch_company(request: HttpRequest, code: UUID) -> HttpResponse:
    company, _membership = get_company_for_user(request.user, code)
    set_active_company(request, company)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(next_url)
    return redirect("companies:home")
