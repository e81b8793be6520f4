from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, throttling
from rest_framework.decorators import api_view, authentication_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from companies.api.authentication import ApiKeyAuthentication
from companies.models import ApiKey
from companies.services import ApiKeyError, api_key_rotate

from .serializers import ApiKeyRotateOutputSerializer, error_responses
from .throttles import ApiKeyRateThrottle, CompanyRateThrottle


class RotateThrottle(throttling.SimpleRateThrottle):
    """5 rotations an hour per client address, whoever is asking (the Dataframer contract; API_KEY_ROTATE_RATE,
    0 turns it off). Only rotations that happened count: a request checks the limit here, and the view counts its
    rotation once it succeeded, so 401s, 405s and OPTIONS from a shared address cannot use up a real rotation."""

    scope = "api_key_rotate"
    num_requests: int  # set by SimpleRateThrottle.__init__ from the rate (the stubs leave them out)
    duration: int

    def get_rate(self) -> str | None:
        # Read on each request (DRF binds THROTTLE_RATES once, at import), so a changed setting applies.
        rate = str(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or "")
        return None if not rate or rate.split("/")[0].strip() == "0" else rate

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        self.now = self.timer()
        self.history = [moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration]
        return len(self.history) < self.num_requests or self.throttle_failure()

    def count_rotation(self, request: Request) -> None:
        if self.rate is None:
            return
        self.allow_request(request, None)  # re-read: another rotation may have been counted meanwhile
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


@extend_schema(
    request=None,
    responses={
        200: ApiKeyRotateOutputSerializer,
        **error_responses(401, 429),
    },
)
@api_view(["POST"])
@authentication_classes([ApiKeyAuthentication])
@throttle_classes([RotateThrottle, CompanyRateThrottle, ApiKeyRateThrottle])
def rotate_api_key(request: Request) -> Response:
    """Revoke the calling API key and return a new one; the secret is shown only in this response."""
    if not isinstance(request.auth, ApiKey):
        raise exceptions.NotAuthenticated("Rotate with the API key itself as a Bearer token.")
    try:
        key, secret = api_key_rotate(api_key=request.auth)
    except ApiKeyError as exc:
        raise exceptions.AuthenticationFailed(str(exc)) from exc
    RotateThrottle().count_rotation(request)
    data = {"api_key": secret, "masked_key": key.masked_key, "expires_at": key.expires_at}
    return Response(ApiKeyRotateOutputSerializer(data).data, status=status.HTTP_200_OK)
