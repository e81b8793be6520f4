from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, throttling
from rest_framework.decorators import api_view, authentication_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response

from companies.api.authentication import ApiKeyAuthentication
from companies.models import ApiKey
from companies.services import ApiKeyError, api_key_rotate

from .serializers import ApiKeyRotateOutputSerializer, error_responses
from .throttles import ApiKeyRateThrottle, CompanyRateThrottle


class RotateThrottle(throttling.SimpleRateThrottle):
    """5 rotations an hour per client address, whoever is asking (the Dataframer contract)."""

    scope = "api_key_rotate"

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


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
    data = {"api_key": secret, "masked_key": key.masked_key, "expires_at": key.expires_at}
    return Response(ApiKeyRotateOutputSerializer(data).data, status=status.HTTP_200_OK)
