from __future__ import annotations

from functools import partial
from http import HTTPStatus
from math import ceil
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from .access import get_active_membership, get_company_for_user, require_active_membership, set_active_company
from .extensions import home_sections
from .models import ApiKey, Membership
from .quotas import company_usage
from .signin import sign_in_throttled


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="A label, e.g. the program that uses it")


if TYPE_CHECKING:
    from django.http import HttpRequest as AnonymousHttpRequest

    from config.http import AuthenticatedHttpRequest as HttpRequest
    from config.http import HtmxHttpRequest


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The active company's dashboard (sections from companies.extensions) above the list of the user's companies."""
    membership = get_active_membership(request)
    memberships = Membership.objects.filter(user=request.user).select_related("company").order_by("company__name")
    sections = [section(request, membership) for section in home_sections] if membership else []
    return render(request, "companies/home.html", {"memberships": memberships, "sections": sections})


@login_required
@require_POST
def switch_company(request: HttpRequest, code: UUID) -> HttpResponse:
    company, _membership = get_company_for_user(request.user, code)
    set_active_company(request, company)
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(next_url)
    return redirect("companies:home")


def _managing_membership(request: HttpRequest) -> Membership:
    """The active membership, if it may manage API keys (owner or admin); 403 otherwise."""
    membership = require_active_membership(request)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins manage API keys.")
    return membership


# The new key's secret, kept in the session between the POST that made it and the page that shows it once.
NEW_KEY_SESSION_KEY = "companies.new_api_key"


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    membership = _managing_membership(request)
    form = ApiKeyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _key, secret = ApiKey.issue(
                company=membership.company, user=membership.user, name=form.cleaned_data["name"]
            )
            # Post/redirect/get: reloading the page that shows the secret must not create a second key.
            request.session[NEW_KEY_SESSION_KEY] = secret
            return _no_store(redirect("companies:api-keys"))
        status = 400
    # Popped as it is shown: the secret is in the session for one page and never again.
    secret = request.session.pop(NEW_KEY_SESSION_KEY, None)
    keys = ApiKey.objects.for_company(membership.company).select_related("user").order_by("-created_at")
    context = {"keys": keys, "form": form, "secret": secret, "now": timezone.now()}
    return _no_store(render(request, "companies/api_keys.html", context, status=status))


@login_required
@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """GET asks for confirmation (the page works without JavaScript); POST revokes."""
    membership = _managing_membership(request)
    key = get_object_or_404(ApiKey.objects.for_company(membership.company).select_related("user"), code=code)
    if request.method == "GET":
        return render(request, "companies/api_key_revoke.html", {"key": key})
    key.revoke()
    messages.success(request, f"Revoked {key.masked_key}.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("companies:api-keys"))
    return redirect("companies:api-keys")


@login_required
def usage_active(request: HttpRequest) -> HttpResponse:
    """The nav's link: the usage page of the company the user is acting for."""
    membership = require_active_membership(request)
    return redirect("companies:usage", code=membership.company.code)


@login_required
def usage(request: HttpRequest, code: UUID) -> HttpResponse:
    """This month's LLM spend and the work in flight against the company's limits (owners and admins)."""
    company, membership = get_company_for_user(request.user, code)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins see the company's usage and limits.")
    return render(request, "companies/usage.html", {"company": company, "usage": company_usage(company)})


class SignInView(LoginView):
    """Django's login, slowed for guessers (companies.signin): after LOGIN_MAX_FAILURES_PER_USERNAME failures for one
    username, or LOGIN_MAX_FAILURES_PER_ADDRESS from one address, within FAILURE_WINDOW_SECONDS, it answers 429
    with Retry-After and does not check the password at all."""

    redirect_authenticated_user = True

    def post(self, request: AnonymousHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return sign_in_throttled(request, partial(super().post, request, *args, **kwargs), self._throttled)

    def _throttled(self, wait: int) -> HttpResponse:
        # An unbound form: binding it would run authenticate(), which is what is being refused.
        form = self.get_form_class()(self.request, initial={"username": self.request.POST.get("username", "")})
        context = self.get_context_data(
            form=form, throttled=f"Too many failed sign-ins. Try again in {ceil(wait / 60)} minutes."
        )
        return self.render_to_response(context, status=HTTPStatus.TOO_MANY_REQUESTS)
