"""The anonymization pages (list, run, file before/after, downloads, ZIP), the home card, tenancy (charlie → 404,
bob → 403 on the ZIP's POST), escaping of the files' text, and the admin's retry and cancel."""

from __future__ import annotations

import io
import zipfile
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from anonymization.models import AnonymizationRun
from anonymization.services import anonymization_run_create
from companies.models import Company
from runs.seeds import upload_entries
from runs.services import seed_dataset_create
from tests.anonymization.test_api import make_dataset, run_items
from work import dispatch
from work.models import WorkItem

HOSTILE = "Mail <script>alert(1)</script> to eve@example.com\n"


@pytest.fixture(autouse=True)
def _by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "dispatch", lambda **_: 0)


@pytest.fixture
def run(company_a: Company, alice: Any) -> AnonymizationRun:
    dataset = make_dataset(company_a, alice)
    created = anonymization_run_create(
        company=company_a, created_by=alice, dataset=dataset, detection_method="heuristics",
        pii_types=["email", "phone_number"], mask_config={"email": "[email]"},
    )  # fmt: skip
    run_items()
    created.refresh_from_db()
    return created


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_list_and_home_show_the_companys_runs(run: AnonymizationRun, alice: Any, charlie: Any) -> None:
    page = web(alice).get(reverse("anonymization:list"))
    assert page.status_code == HTTPStatus.OK
    assert reverse("anonymization:detail", args=[run.code]) in page.content.decode()
    home = web(alice).get(reverse("companies:home")).content.decode()
    assert reverse("anonymization:list") in home
    assert reverse("anonymization:detail", args=[run.code]) in home  # the home card's latest run
    assert (
        reverse("anonymization:detail", args=[run.code])
        not in web(charlie).get(reverse("anonymization:list")).content.decode()
    )


def test_the_run_page_shows_entities_by_type_and_files(run: AnonymizationRun, alice: Any) -> None:
    page = web(alice).get(reverse("anonymization:detail", args=[run.code])).content.decode()
    assert "<tr><td>email</td><td>4</td><td><code>[email]</code></td></tr>" in page
    assert "<tr><td>phone_number</td><td>3</td>" in page
    assert "Skipped: binary file (pdf): not anonymized" in page
    assert "Prepare a ZIP of every file" in page


def test_the_file_page_highlights_before_and_after_escaped(company_a: Company, alice: Any) -> None:
    files = [SimpleUploadedFile("a.txt", HOSTILE.encode()), SimpleUploadedFile("b.txt", b"nothing")]
    dataset = seed_dataset_create(
        company=company_a, created_by=alice, name="Hostile", entries=upload_entries(files, None)
    )
    run = anonymization_run_create(
        company=company_a, created_by=alice, dataset=dataset, detection_method="heuristics", pii_types=["email"],
        mask_config={"email": "<b>x</b>"},
    )  # fmt: skip
    run_items()
    row = run.files.get(path="a.txt")
    page = web(alice).get(reverse("anonymization:file", args=[run.code, row.code])).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<mark class="pii" title="email (0.95)">eve@example.com</mark>' in page
    assert '<mark class="pii masked">&lt;b&gt;x&lt;/b&gt;</mark>' in page  # the mask is escaped too


def test_downloads_serve_the_anonymized_files_and_the_zip(run: AnonymizationRun, alice: Any, bob: Any) -> None:
    row = run.files.get(path="letter.txt")
    body = b"".join(web(alice).get(reverse("anonymization:file-download", args=[run.code, row.code])).streaming_content)  # type: ignore[attr-defined]
    assert b"[email]" in body
    assert b"ann.lee@example.com" not in body
    assert web(bob).post(reverse("anonymization:archive-prepare", args=[run.code])).status_code == HTTPStatus.FORBIDDEN
    assert (
        web(alice).get(reverse("anonymization:archive-download", args=[run.code])).status_code == HTTPStatus.NOT_FOUND
    )
    web(alice).post(reverse("anonymization:archive-prepare", args=[run.code]))
    run_items("anonymization.archive")
    page = web(alice).get(reverse("anonymization:detail", args=[run.code])).content.decode()
    assert "Download every file as a ZIP" in page
    archive = web(bob).get(reverse("anonymization:archive-download", args=[run.code]))  # reading is allowed
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()  # type: ignore[attr-defined]
    assert sorted(names) == ["letter.txt", "record.json", "rows.csv"]


def test_it_checks_ownership(run: AnonymizationRun, charlie: Any) -> None:
    row = run.files.first()
    assert row is not None
    for url in (
        reverse("anonymization:detail", args=[run.code]),
        reverse("anonymization:file", args=[run.code, row.code]),
        reverse("anonymization:file-download", args=[run.code, row.code]),
        reverse("anonymization:archive-download", args=[run.code]),
    ):
        assert web(charlie).get(url).status_code == HTTPStatus.NOT_FOUND, url
    assert (
        web(charlie).post(reverse("anonymization:archive-prepare", args=[run.code])).status_code == HTTPStatus.NOT_FOUND
    )


def test_it_requires_rw_access(run: AnonymizationRun, bob: Any) -> None:
    assert web(bob).get(reverse("anonymization:detail", args=[run.code])).status_code == HTTPStatus.OK
    assert web(bob).post(reverse("anonymization:archive-prepare", args=[run.code])).status_code == HTTPStatus.FORBIDDEN
    assert not WorkItem.objects.filter(kind="anonymization.archive").exists()


def test_a_deleted_run_is_gone_from_the_pages(run: AnonymizationRun, alice: Any) -> None:
    AnonymizationRun.objects.filter(id=run.id).update(deleted_at=run.created_at)
    assert web(alice).get(reverse("anonymization:detail", args=[run.code])).status_code == HTTPStatus.NOT_FOUND


# --- Admin ---


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.test", "x"))
    return client


def test_the_admin_cancels_then_retries_a_run(staff: Client, company_a: Company, alice: Any) -> None:
    dataset = make_dataset(company_a, alice)
    run = anonymization_run_create(
        company=company_a, created_by=alice, dataset=dataset, detection_method="heuristics", pii_types=["email"]
    )
    changelist = reverse("admin:anonymization_anonymizationrun_changelist")
    assert staff.get(changelist).status_code == HTTPStatus.OK
    staff.post(changelist, {"action": "cancel", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert (run.status, run.error) == ("FAILED", "Canceled by ops.")
    assert WorkItem.objects.get(kind="anonymization.run").state == "canceled"
    staff.post(changelist, {"action": "retry", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert (run.status, run.error, run.canceled_at) == ("PENDING", "", None)
    run_items()
    run.refresh_from_db()
    assert run.status == "SUCCEEDED"
    assert staff.get(reverse("admin:anonymization_anonymizationrun_change", args=[run.pk])).status_code == HTTPStatus.OK
