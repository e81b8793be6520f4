from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING, HttpResponseClientRefresh

from companies.access import require_active_membership
from companies.models import Membership
from companies.quotas import QuotaExceeded
from llm.judges import NoWriter

from .access import (
    get_run_for_user,
    get_rw_run_for_user,
    get_rw_seed_dataset_for_user,
    get_seed_dataset_for_user,
    get_spec_for_user,
)
from .batch import price_estimate
from .extensions import extensions
from .forms import RunGenerateForm, RunImportForm, SeedDatasetUploadForm, SpecForm, SpecGenerateForm
from .generation import run_cancel, run_generate
from .imports import ImportProblems, read_upload
from .models import Run, SeedDataset, SeedFile, Spec
from .seeds import SeedError, read_text, zip_entries
from .selectors import run_property_summaries, sample_page
from .services import (
    RunError,
    run_import,
    seed_dataset_create,
    seed_dataset_delete,
    spec_create,
    spec_generate_create,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from config.http import HtmxHttpRequest


def _spec_list_response(
    request: HttpRequest, membership: Membership, form: SpecForm, generate_form: SpecGenerateForm
) -> HttpResponse:
    specs = (
        Spec.objects.for_company(membership.company)
        .select_related("dataset")
        .annotate(run_count=Count("runs", filter=Q(runs__importing=False)))  # a join sees imports in progress
        .order_by("-created_at")
    )
    status = 400 if form.errors or generate_form.errors else 200
    context = {"specs": specs, "form": form, "generate_form": generate_form, "membership": membership}
    return render(request, "runs/spec_list.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def spec_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    form = SpecForm(request.POST or None, company=membership.company)
    if request.method == "POST":
        if not membership.can_write:
            raise PermissionDenied("Your role in this company is read-only.")
        if form.is_valid():
            spec = spec_create(company=membership.company, created_by=membership.user, **form.cleaned_data)
            messages.success(request, f"Spec '{spec.name}' created.")
            return redirect("runs:spec-detail", code=spec.code)
    return _spec_list_response(request, membership, form, SpecGenerateForm(company=membership.company))


@login_required
@require_POST
def spec_generate(request: HttpRequest) -> HttpResponse:
    """Start generating a spec; its page shows PROCESSING and polls until the LLM has written it."""
    membership = require_active_membership(request)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    form = SpecGenerateForm(request.POST, company=membership.company)
    if form.is_valid():
        data = form.cleaned_data
        try:
            spec = spec_generate_create(
                company=membership.company, created_by=membership.user, name=data["name"],
                dataset=data["dataset"], objectives=data["generation_objectives"].strip(), model_name=data["model"],
                generate_distributions=data["generate_distributions"],
            )  # fmt: skip
        except (NoWriter, QuotaExceeded) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("runs:spec-detail", code=spec.code)
    return _spec_list_response(request, membership, SpecForm(company=membership.company), form)


@login_required
def spec_status(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    """The polled status badge of a spec being generated. On its own page, once written, the page reloads to show
    the properties."""
    spec, _membership = get_spec_for_user(request.user, code)
    if request.GET.get("on") == "detail" and spec.status == Spec.Status.SUCCEEDED:
        return HttpResponseClientRefresh()
    return render(request, "runs/_spec_status.html", {"spec": spec, "on": request.GET.get("on", "")})


def _spec_detail_response(
    request: HttpRequest, spec: Spec, membership: Membership, form: RunGenerateForm, status: int = 200
) -> HttpResponse:
    version = spec.latest_version
    runs = spec.runs.select_related("spec_version").order_by("-created_at")
    context = {
        "spec": spec,
        "membership": membership,
        "version": version,
        "properties": version.parsed_properties if version else [],
        "runs": runs,
        "generate_form": form,
    }
    return render(request, "runs/spec_detail.html", context, status=status)


@login_required
def spec_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    spec, membership = get_spec_for_user(request.user, code)
    return _spec_detail_response(request, spec, membership, RunGenerateForm(prices=price_estimate(spec)))


@login_required
@require_POST
def run_generate_form(request: HttpRequest, code: UUID) -> HttpResponse:
    """The spec page's "generate a run" form: the run page then shows its progress live."""
    spec, membership = get_spec_for_user(request.user, code)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    form = RunGenerateForm(request.POST, prices=price_estimate(spec))
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = run_generate(
                company=membership.company,
                created_by=membership.user,
                spec=spec,
                number_of_samples=data["number_of_samples"],
                generation_model=data["generation_model"],
                assignment_mode=data["assignment_mode"],
                filtering_types=["conformance"] if data["conformance_filter"] else [],
                batch=form.batch,
            )
        except RunError as exc:
            form.add_error(None, str(exc))
        except QuotaExceeded as exc:
            form.add_error(None, str(exc))
            response = _spec_detail_response(request, spec, membership, form, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        else:
            messages.success(request, f"Generating {data['number_of_samples']} samples.")
            return redirect("runs:detail", code=run.code)
    return _spec_detail_response(request, spec, membership, form, status=400)


def _run_list_response(
    request: HttpRequest, membership: Membership, form: RunImportForm, status: int = 200
) -> HttpResponse:
    runs = extensions.annotate_latest_score(
        Run.objects.for_company(membership.company).select_related("spec", "spec_version").order_by("-created_at")
    )
    context = {"runs": runs, "form": form, "membership": membership}
    return render(request, "runs/run_list.html", context, status=status)


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    return _run_list_response(request, membership, RunImportForm(company=membership.company))


@login_required
@require_POST
def run_import_upload(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    form = RunImportForm(request.POST, request.FILES, company=membership.company)
    if form.is_valid():
        try:
            rows = read_upload(form.cleaned_data["file"])
            run = run_import(
                company=membership.company,
                created_by=membership.user,
                spec=form.cleaned_data["spec"],
                rows=rows,
                name=form.cleaned_data["name"],
            )
        except ImportProblems as exc:
            for problem in exc.problems:
                form.add_error("file", problem)
        except (RunError, QuotaExceeded) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Imported {run.samples_completed} samples.")
            return redirect("runs:detail", code=run.code)
    return _run_list_response(request, membership, form, status=400)


@login_required
def run_detail(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    run, membership = get_run_for_user(request.user, code)
    htmx = bool(request.htmx) and not request.htmx.history_restore_request  # back to a pushed URL: the page
    if htmx and request.GET.get("partial") == "progress":
        return _run_progress(request, run, membership)
    prop = request.GET.get("property", "")
    value = request.GET.get("value", "")
    properties = run.spec_version.parsed_properties
    if prop not in {p.name for p in properties}:
        prop = value = ""
    context = {
        "run": run,
        "membership": membership,
        "properties": properties,
        "page": sample_page(run=run, prop=prop, value=value, page=request.GET.get("page", 1)),
        "filter_property": prop,
        "filter_value": value,
    }
    if htmx:
        return render(request, "runs/run_detail.html#samples-table", context)
    context["summaries"] = run_property_summaries(run=run)
    context["evaluations_section"] = extensions.run_page_section(request, run, membership)
    return render(request, "runs/run_detail.html", context)


# --- Seed datasets ---

PREVIEW_FILES = 3
PREVIEW_BYTES = 2000


def _seed_list_response(
    request: HttpRequest, membership: Membership, form: SeedDatasetUploadForm, status: int = 200
) -> HttpResponse:
    datasets = SeedDataset.objects.for_company(membership.company).select_related("created_by").order_by("-created_at")
    limits = {
        "single": settings.SEED_MAX_SINGLE_FILE_BYTES,
        "file": settings.SEED_MAX_FILE_BYTES,
        "total": settings.SEED_MAX_TOTAL_BYTES,
        "files": settings.SEED_MAX_FILES,
        "per_folder": settings.SEED_MAX_FILES_PER_FOLDER,
    }
    context = {"datasets": datasets, "form": form, "membership": membership, "limits": limits}
    return render(request, "runs/seed_dataset_list.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def seed_dataset_list(request: HttpRequest) -> HttpResponse:
    membership = require_active_membership(request)
    if request.method == "GET":
        return _seed_list_response(request, membership, SeedDatasetUploadForm(company=membership.company))
    if not membership.can_write:
        raise PermissionDenied("Your role in this company is read-only.")
    form = SeedDatasetUploadForm(request.POST, request.FILES, company=membership.company)
    if form.is_valid():
        upload = form.cleaned_data["zip_file"]
        try:
            if upload.size > settings.SEED_MAX_UPLOAD_BYTES:
                raise SeedError(f"the ZIP is {upload.size:,} bytes; the limit is {settings.SEED_MAX_UPLOAD_BYTES:,}")
            with zipfile.ZipFile(upload) as archive:
                dataset = seed_dataset_create(
                    company=membership.company, created_by=membership.user, name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"], entries=zip_entries(archive),
                )  # fmt: skip
        except (zipfile.BadZipFile, EOFError, NotImplementedError):
            form.add_error("zip_file", "This is not a valid ZIP file.")
        except SeedError as exc:
            form.add_error("zip_file", f"Refused: {exc}.")
        except QuotaExceeded as exc:
            form.add_error("zip_file", str(exc))
        else:
            messages.success(request, f"Seed dataset '{dataset.name}' created ({dataset.get_dataset_type_display()}).")
            return redirect("runs:seed-dataset-detail", code=dataset.code)
    return _seed_list_response(request, membership, form, status=400)


def _preview(seed_file: SeedFile) -> str:
    try:
        return read_text(seed_file, PREVIEW_BYTES)
    except SeedError as exc:
        return f"[{exc}]"


@login_required
def seed_dataset_detail(request: HttpRequest, code: UUID) -> HttpResponse:
    dataset, membership = get_seed_dataset_for_user(request.user, code)
    files = list(dataset.files.order_by("position"))
    # The first files' text, escaped by the template like every sample on every page.
    previews = [(f, _preview(f)) for f in files[:PREVIEW_FILES]]
    specs = dataset.specs.order_by("-created_at")
    context = {"dataset": dataset, "files": files, "previews": previews, "specs": specs, "membership": membership}
    return render(request, "runs/seed_dataset_detail.html", context)


def _run_progress(request: HttpRequest, run: Run, membership: Membership) -> HttpResponse:
    """The live progress box of a generated run; 286 (stop polling) once the run has ended."""
    response = render(request, "runs/run_detail.html#run-progress", {"run": run, "membership": membership})
    if run.is_terminal:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@require_POST
def seed_dataset_delete_view(request: HttpRequest, code: UUID) -> HttpResponse:
    dataset, _membership = get_rw_seed_dataset_for_user(request.user, code)
    try:
        seed_dataset_delete(dataset=dataset)
    except SeedError as exc:
        messages.error(request, str(exc))
        return redirect("runs:seed-dataset-detail", code=dataset.code)
    messages.success(request, f"Seed dataset '{dataset.name}' deleted.")
    return redirect("runs:seed-dataset-list")


def run_cancel_view(request: HtmxHttpRequest, code: UUID) -> HttpResponse:
    run, membership = get_rw_run_for_user(request.user, code)
    if not run_cancel(run=run):
        messages.error(request, f"Only PENDING or PROCESSING runs can be canceled; this run is {run.status}.")
    if request.htmx:
        run.refresh_from_db()
        response = _run_progress(request, run, membership)
        response.status_code = 200  # a POST answer, not a poll: always swap it in
        return response
    return redirect("runs:detail", code=run.code)
