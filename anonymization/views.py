"""The anonymization pages: the runs, a run's entities and files, each file before and after, downloads."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST, require_safe

from companies.access import require_active_membership

from .access import get_anonymization_run_for_user, get_rw_anonymization_run_for_user
from .models import AnonymizationRun
from .selectors import PREVIEW_CHARS, segments
from .services import AnonymizationError, anonymization_archive_request, original_text

if TYPE_CHECKING:
    from django.http import HttpRequest

    from companies.models import Membership


def home_section(request: HttpRequest, membership: Membership) -> SafeString:
    """The home dashboard's card (companies/extensions.py): the company's latest anonymization runs."""
    latest = AnonymizationRun.objects.for_company(membership.company).visible().order_by("-created_at").first()
    return mark_safe(render_to_string("anonymization/_home.html", {"latest": latest}, request))  # noqa: S308


@login_required
@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    runs = AnonymizationRun.objects.for_company(membership.company).visible().select_related("created_by")
    return render(request, "anonymization/run_list.html", {"runs": runs, "membership": membership})


@login_required
@require_safe
def run_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    run, membership = get_anonymization_run_for_user(request.user, code)
    context = {
        "run": run,
        "membership": membership,
        "files": list(run.files.all()),
        "summary": run.entity_summary(),
        "archive_ready": run.archive == AnonymizationRun.Archive.READY,
    }
    return render(request, "anonymization/run_detail.html", context)


@login_required
@require_safe
def file_detail(request: HttpRequest, code: UUID, file_code: UUID) -> HttpResponse:
    """A file before and after, its entities highlighted (every segment escaped by the template)."""
    run, membership = get_anonymization_run_for_user(request.user, code)
    row = get_object_or_404(run.files.select_related("seed_file"), code=file_code)
    text, missing = original_text(row.seed_file) if row.seed_file is not None else (None, "the seed file was deleted")
    context = {
        "run": run,
        "file": row,
        "before": segments(text, row.entities) if text is not None and not row.skipped else None,
        "after": segments(text, row.entities, run.mask_config) if text is not None and not row.skipped else None,
        "missing": row.skipped_reason or missing,
        "cut": text is not None and len(text) > PREVIEW_CHARS,
        "preview_chars": PREVIEW_CHARS,
    }
    return render(request, "anonymization/file_detail.html", context)


@login_required
@require_safe
def file_download(request: HttpRequest, code: UUID, file_code: UUID) -> FileResponse:
    run, _membership = get_anonymization_run_for_user(request.user, code)
    row = get_object_or_404(run.files.exclude(storage_name=""), code=file_code)
    return _serve(row.storage_name, row.path.rsplit("/", 1)[-1], row.content_type)


@login_required
@require_POST
def archive_prepare(request: HttpRequest, code: UUID) -> HttpResponse:
    """Ask a worker for the ZIP of every anonymized file; the run's page offers it once ready."""
    run, _membership = get_rw_anonymization_run_for_user(request.user, code)
    try:
        state = anonymization_archive_request(run=run)
    except AnonymizationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "The ZIP is ready." if state == "ready" else "The ZIP is being generated: reload.")
    return redirect("anonymization:detail", code=run.code)


@login_required
@require_safe
def archive_download(request: HttpRequest, code: UUID) -> FileResponse:
    run, _membership = get_anonymization_run_for_user(request.user, code)
    if run.archive != AnonymizationRun.Archive.READY:
        raise Http404("The ZIP is not ready.")
    return _serve(run.archive_storage_name, f"anonymized-{run.code}.zip", "application/zip")


def _serve(name: str, filename: str, content_type: str) -> FileResponse:
    try:
        opened = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The stored copy is missing.") from None
    return FileResponse(opened, as_attachment=True, filename=filename, content_type=content_type)
