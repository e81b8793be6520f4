"""The per-company storage quota (issue 22): run samples, seed files and guardrail texts, STORAGE_QUOTA_BYTES.

Every write path that stores them refuses a write that would pass the quota whole (API: 413 naming the quota;
pages: the form again, with the message), stores nothing, and leaves another company's writes alone.
"""

from __future__ import annotations

import io
import json
import zipfile
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from rest_framework.test import APIClient

from companies.models import Company
from companies.quotas import stored_bytes
from guardrails.models import GuardrailEvaluation
from runs.generation import run_delete
from runs.models import Run, Sample, SeedDataset, SeedFile
from tests.conftest import make_rows

IMPORT = "/api/dataframer/runs/import/"
SEEDS = "/api/dataframer/seed-datasets/"
EVALUATE = "/evaluate"
BODY = {
    "model_input": {"user_prompt": "What color is the sky?"},
    "model_output": "The sky is blue.",
    "run_mode": "economy",
}
ROWS = make_rows(12)
ROWS_BYTES = sum(len(row["content"].encode()) for row in ROWS)


def _stored() -> tuple[int, int, int, int, int]:
    return (
        Run.with_importing.count(),
        Sample.objects.count(),
        SeedDataset.objects.count(),
        SeedFile.objects.count(),
        GuardrailEvaluation.objects.count(),
    )


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return buffer.getvalue()


def _jsonl(rows: list[dict[str, Any]]) -> SimpleUploadedFile:
    return SimpleUploadedFile("run.jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())


def _media_files() -> set[Path]:
    return {path for path in django_settings.MEDIA_ROOT.rglob("*") if path.is_file()}


def _refused_413(response: Any) -> None:
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE, response.content
    assert "STORAGE_QUOTA_BYTES" in response.json()["detail"]
    assert "Retry-After" not in response  # waiting frees nothing


def test_it_counts_what_each_write_stores(alice_api: APIClient, spec_a: Any, company_a: Company) -> None:
    assert alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": ROWS}, format="json").status_code == 201
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED
    upload = SimpleUploadedFile("d.zip", _zip({"a.txt": b"12345", "b.txt": b"678"}))
    assert alice_api.post(f"{SEEDS}create-from-zip/", {"name": "D", "zip_file": upload}).status_code == 201
    text = len(b"What color is the sky?") + len(b"The sky is blue.")
    assert stored_bytes(company_a) == ROWS_BYTES + text + 8


@pytest.mark.parametrize("how", ["samples", "file"])
def test_it_refuses_an_import_past_the_quota_and_stores_nothing(
    alice_api: APIClient, charlie_api: APIClient, spec_a: Any, how: str, settings: Any
) -> None:
    settings.STORAGE_QUOTA_BYTES = ROWS_BYTES + 100
    body = {"spec_id": str(spec_a.code), "samples": ROWS}
    assert alice_api.post(IMPORT, body, format="json").status_code == HTTPStatus.CREATED  # fits
    before = _stored()
    if how == "samples":
        response = alice_api.post(IMPORT, body, format="json")
    else:
        response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "file": _jsonl(ROWS)}, format="multipart")
    _refused_413(response)
    assert f"adds {ROWS_BYTES:,}" in response.json()["detail"]
    assert _stored() == before
    # Another company's quota is its own.
    spec_b = charlie_api.post(
        "/api/dataframer/specs/", {"name": "S", "content_yaml": spec_a.latest_version.content_yaml}
    )
    assert spec_b.status_code == HTTPStatus.CREATED
    assert charlie_api.post(IMPORT, {**body, "spec_id": spec_b.json()["id"]}, format="json").status_code == 201


def test_deleting_makes_room(alice_api: APIClient, spec_a: Any, settings: Any) -> None:
    settings.STORAGE_QUOTA_BYTES = ROWS_BYTES
    body = {"spec_id": str(spec_a.code), "samples": ROWS}
    assert alice_api.post(IMPORT, body, format="json").status_code == HTTPStatus.CREATED
    _refused_413(alice_api.post(IMPORT, body, format="json"))
    run_delete(run=Run.objects.get())
    assert alice_api.post(IMPORT, body, format="json").status_code == HTTPStatus.CREATED


def test_it_refuses_a_run_upload_on_the_page(client: Client, alice: Any, spec_a: Any, settings: Any) -> None:
    settings.STORAGE_QUOTA_BYTES = ROWS_BYTES - 1
    client.force_login(alice)
    response = client.post("/runs/import/", {"spec": str(spec_a.code), "name": "Up", "file": _jsonl(ROWS)})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "STORAGE_QUOTA_BYTES" in response.content.decode()
    assert not Run.with_importing.exists()


@pytest.mark.parametrize("path", ["create-from-zip/", "create/"])
def test_it_refuses_a_seed_dataset_past_the_quota(
    alice_api: APIClient, charlie_api: APIClient, path: str, settings: Any
) -> None:
    settings.STORAGE_QUOTA_BYTES = 10
    files = {"a.txt": b"123456", "b.txt": b"789012"}  # 12 bytes
    if path == "create/":
        uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
        data: dict[str, Any] = {"name": "D", "dataset_type": "MULTI_FILE", "files[]": uploads}
    else:
        data = {"name": "D", "zip_file": SimpleUploadedFile("d.zip", _zip(files))}
    before = _media_files()
    _refused_413(alice_api.post(f"{SEEDS}{path}", data, format="multipart"))
    assert not SeedDataset.objects.exists()
    assert _media_files() == before  # the streamed bytes are gone too
    settings.STORAGE_QUOTA_BYTES = 12
    charlie_data = {"name": "D", "zip_file": SimpleUploadedFile("d.zip", _zip(files))}
    assert charlie_api.post(f"{SEEDS}create-from-zip/", charlie_data, format="multipart").status_code == 201


def test_it_refuses_a_seed_dataset_on_the_page(client: Client, alice: Any, settings: Any) -> None:
    settings.STORAGE_QUOTA_BYTES = 5
    client.force_login(alice)
    response = client.post(
        "/seed-datasets/",
        {"name": "D", "zip_file": SimpleUploadedFile("d.zip", _zip({"a.txt": b"123", "b.txt": b"456"}))},
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "STORAGE_QUOTA_BYTES" in response.content.decode()
    assert not SeedDataset.objects.exists()


def test_it_refuses_guardrail_texts_past_the_quota(
    alice_api: APIClient, charlie_api: APIClient, client: Client, alice: Any, settings: Any
) -> None:
    one = len(b"What color is the sky?") + len(b"The sky is blue.")
    settings.STORAGE_QUOTA_BYTES = one
    assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED
    _refused_413(alice_api.post(EVALUATE, BODY, format="json"))
    _refused_413(alice_api.post("/evaluate/batch", {"items": [BODY]}, format="json"))
    client.force_login(alice)
    page = client.post("/guardrails/", {"user_prompt": "Hi?", "model_output": "Hello.", "run_mode": "smart"})
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert "STORAGE_QUOTA_BYTES" in page.content.decode()
    assert GuardrailEvaluation.objects.count() == 1
    assert charlie_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED


@override_settings(STORAGE_QUOTA_BYTES=0)
def test_zero_turns_the_storage_quota_off(alice_api: APIClient, spec_a: Any) -> None:
    for _ in range(3):
        response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": ROWS}, format="json")
        assert response.status_code == HTTPStatus.CREATED
        assert alice_api.post(EVALUATE, BODY, format="json").status_code == HTTPStatus.CREATED


def test_the_usage_page_shows_stored_bytes_and_the_quota(
    client: Client, alice: Any, run_a: Any, company_a: Company, settings: Any
) -> None:
    settings.STORAGE_QUOTA_BYTES = 5_000_000
    client.force_login(alice)
    page = client.get(f"/companies/{company_a.code}/usage/").content.decode()
    row = page.split('id="usage-storage"')[1].split("</tr>")[0]
    assert f"({run_a.stored_bytes} bytes)" in row
    assert run_a.stored_bytes == sum(len(r["content"].encode()) for r in make_rows(12))
    assert "(5000000 bytes)" in row
    settings.STORAGE_QUOTA_BYTES = 0
    row = client.get(f"/companies/{company_a.code}/usage/").content.decode().split('id="usage-storage"')[1]
    assert "∞" in row.split("</tr>")[0]
