"""Signed download links: a run's file or ZIP, a seed dataset's file, bound to the API key or session that asked."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.core import signing
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import content_disposition_header
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
)
from rest_framework.request import Request

from companies.models import ApiKey, Membership
from runs.exports import build_run_zip, export_name, run_zip_open
from runs.models import Run, Sample, SeedFile
from runs.seeds import SeedError, open_stored

DOWNLOAD_SALT = "runs.download"
LINK_REVOKED = (
    "This download link is no longer valid: the API key or session that made it was revoked, rotated, expired or "
    "signed out."
)


def _session_tag(session_key: str) -> str:
    # The token is signed, not encrypted: it carries a keyed hash of the session key, never the key itself.
    return salted_hmac(DOWNLOAD_SALT, session_key).hexdigest()[:32]


def download_token(request: Request, payload: dict[str, Any], *, salt: str = DOWNLOAD_SALT) -> str:
    """A signed link to what `payload` names (a run's file or ZIP, a seed dataset's file), bound to what asked for
    it: the API key (revoking or rotating it ends the link) or, for a signed-in browser, its session (signing out
    ends it, and only that browser can use it)."""
    payload = dict(payload)
    if isinstance(request.auth, ApiKey):
        payload["key"] = str(request.auth.code)
    else:
        if request.session.session_key is None:
            request.session.save()
        payload["session"] = _session_tag(request.session.session_key or "")
    # Another app's links get their own `salt`: a token is then valid only on the view that made it.
    return signing.dumps(payload, salt=salt, compress=True)


def binding_holds(request: Request, payload: dict[str, Any], company_id: int) -> bool:
    """Whether the key or session that made the link may still read the company's data."""
    if "key" in payload:
        key = ApiKey.objects.active().filter(code=payload["key"], company_id=company_id).select_related("user")
        api_key = key.first()
        return (
            api_key is not None
            and api_key.user.is_active
            and Membership.objects.filter(user=api_key.user, company_id=company_id).exists()
        )
    if "session" in payload:
        session_key = request.session.session_key
        # This view runs no DRF authentication (a key link needs none), which leaves request.user anonymous:
        # read the session's user the way Django's middleware does (checking its password hash too).
        user = get_user(request._request)
        return (
            session_key is not None
            and user.is_authenticated
            and constant_time_compare(payload["session"], _session_tag(session_key))
            and Membership.objects.filter(user=user, company_id=company_id).exists()
        )
    return False  # a link from before links were bound: refuse it


@extend_schema(exclude=True)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
def signed_download(request: Request, token: str) -> HttpResponseBase:
    """Serve a file behind a signed link valid for DOWNLOAD_URL_MAX_AGE seconds: it works without the API key, like
    a presigned URL, but only while the key (or browser session) that made it is still valid."""
    try:
        payload = signing.loads(token, salt=DOWNLOAD_SALT, max_age=settings.DOWNLOAD_URL_MAX_AGE)
    except signing.SignatureExpired:
        raise exceptions.NotFound("This download link has expired.") from None
    except signing.BadSignature:
        raise exceptions.NotFound("Invalid download link.") from None
    if "seed_file" in payload:
        seed_file = get_object_or_404(SeedFile.objects.select_related("dataset"), code=payload["seed_file"])
        if not binding_holds(request, payload, seed_file.dataset.company_id):
            raise exceptions.NotFound(LINK_REVOKED)
        try:
            stored = open_stored(seed_file)
        except SeedError as exc:
            raise exceptions.NotFound(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
        return FileResponse(
            stored,
            as_attachment=True,
            filename=seed_file.path.rsplit("/", 1)[-1],
            content_type=seed_file.content_type,
        )
    run = get_object_or_404(Run, code=payload["run"])
    if not binding_holds(request, payload, run.company_id):
        raise exceptions.NotFound(LINK_REVOKED)
    if payload["file"] is None:
        archive = run_zip_open(str(payload.get("archive") or "")) or build_run_zip(run)
        return FileResponse(
            archive,
            as_attachment=True,
            filename=f"run-{run.code}.zip",
            content_type="application/zip",
        )
    sample: Sample = get_object_or_404(run.samples, code=payload["file"])
    response = HttpResponse(
        sample.content.encode("utf-8"),
        content_type=f"{sample.file_type}; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(True, export_name(sample).rsplit("/", 1)[-1])
    return response
