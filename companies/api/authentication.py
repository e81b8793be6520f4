from __future__ import annotations

from typing import TYPE_CHECKING

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from companies.models import ApiKey, Membership
from companies.throttling import API_KEY_BY_ADDRESS, client_address

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`: the key names the user and the company the request acts for."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        # Checked before the key is looked at: while an address is over its limit, a right guess answers 429
        # like a wrong one, so guessing from it learns nothing.
        address = client_address(request)
        wait = API_KEY_BY_ADDRESS.retry_after(address)
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait,
                detail=f"Too many failed API-key attempts from this address; try again in {wait} seconds.",
            )
        try:
            user, key, membership = self._check(parts)
        except exceptions.AuthenticationFailed:
            API_KEY_BY_ADDRESS.record(address)
            raise
        request._active_membership = membership  # type: ignore[attr-defined]  # get_active_membership reads it: no second query
        return user, key

    def _check(self, parts: list[str]) -> tuple[User, ApiKey, Membership]:
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <api key>'.")
        key = ApiKey.find(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.is_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        membership = Membership.objects.filter(user=key.user, company=key.company).first()
        if not key.user.is_active or membership is None:
            raise exceptions.AuthenticationFailed("This API key's user no longer belongs to its company.")
        membership.company = key.company  # already read with the key
        key.touch()
        return key.user, key, membership

    def authenticate_header(self, request: Request) -> str:
        # A value here makes DRF answer 401 (not 403) when credentials are missing.
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular's registry hook
    """Documents ApiKeyAuthentication as an HTTP bearer scheme, so `/api/docs/`'s "Authorize" takes an API key.

    Defining it next to the class registers it whenever the class is importable, i.e. before any schema is built.
    """

    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from the API keys page, sent as `Authorization: Bearer <key>`.",
        }
