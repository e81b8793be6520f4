"""Anonymization runs: the six calls of pydataframer 0.12.1 in strict mode against a live server, bad input, tenancy
(charlie → 404, bob → 403), the `llm` method through a fake provider behind the real SDK, and one run through a
real worker and the stand-in provider."""

from __future__ import annotations

import io
import json
import time
import zipfile
from http import HTTPStatus
from typing import Any

import httpx
import pytest
from dataframer import BadRequestError, Dataframer, NotFoundError, PermissionDeniedError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from anonymization.models import AnonymizationRun
from companies.models import ApiKey, Company
from llm.models import JudgeCall
from runs.models import SeedDataset
from runs.seeds import upload_entries
from runs.services import seed_dataset_create
from work import runner
from work.models import WorkItem

RUNS = "/api/dataframer/anonymization-runs/"
SONNET = "anthropic/claude-sonnet-4-6"

LETTER = "Dear Ann Lee,\nplease call me on +44 20 7946 0958 or mail ann.lee@example.com.\nOrder #4820193746.\n"
ROWS = "name,email,phone\nAnn Lee,ann.lee@example.com,+44 20 7946 0958\nBo Chan,bo@example.org,(415) 555-0132\n"
RECORD = json.dumps({"customer": "Ann Lee", "email": "ann.lee@example.com", "card": "4111 1111 1111 1111"})
PDF = b"%PDF-1.4 binary"


def make_dataset(company: Company, user: Any, name: str = "Tickets") -> SeedDataset:
    files = [
        SimpleUploadedFile("letter.txt", LETTER.encode()),
        SimpleUploadedFile("rows.csv", ROWS.encode()),
        SimpleUploadedFile("record.json", RECORD.encode()),
        SimpleUploadedFile("scan.pdf", PDF),
    ]
    return seed_dataset_create(
        company=company, created_by=user, name=name, description="", dataset_type="MULTI_FILE",
        entries=upload_entries(files, None),
    )  # fmt: skip


def run_items(kind: str = "anonymization.") -> None:
    for item in WorkItem.objects.filter(kind__startswith=kind, state=WorkItem.State.QUEUED):
        runner.run_item(item.id)


def client_for(live_server: Any, key: str) -> Dataframer:
    return Dataframer(base_url=live_server.url, api_key=key, _strict_response_validation=True, max_retries=0)


@pytest.fixture
def client(live_server: Any, alice_key: str) -> Dataframer:
    return client_for(live_server, alice_key)


@pytest.fixture
def dataset(company_a: Company, alice: Any) -> SeedDataset:
    return make_dataset(company_a, alice)


# --- Every call through the official client ---


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("by_hand")
def test_every_call_through_the_client(client: Dataframer, dataset: SeedDataset) -> None:
    runs = client.dataframer.anonymization_runs
    created = runs.create(
        dataset_id=str(dataset.code),
        detection_method="heuristics",
        pii_types=["email", "phone_number", "credit_card"],
        mask_config={"email": "[email]"},
    )
    assert (created.status, created.results, created.dataset_name) == ("PENDING", None, "Tickets")
    assert created.created_by_email == "alice@alpha.test"
    run_items()

    run = runs.retrieve(str(created.id))
    assert run.status == "SUCCEEDED"
    assert run.results is not None
    assert run.results.samples_processed == 3  # three text files; the PDF is reported and skipped
    assert run.results.entity_summary == {"credit_card": 1, "email": 4, "phone_number": 3}
    assert run.results.model_extra is not None
    assert run.results.model_extra["skipped_files"] == [
        {"path": "scan.pdf", "reason": "binary file (pdf): not anonymized"}
    ]
    files = {str(f.path): f for f in run.anonymized_files or []}
    assert sorted(files) == ["letter.txt", "record.json", "rows.csv"]
    [first, *_] = [e for e in run.results.entities_found or [] if e.label == "email"]
    assert LETTER[first.start or 0 : first.end] == "ann.lee@example.com"

    link = runs.files.download(str(files["letter.txt"].id), run_id=str(run.id))
    assert (link.file_name, link.content_type) == ("letter.txt", "text/plain")
    body = httpx.get(str(link.download_url))  # a presigned-style link: no API key needed
    assert body.text == "Dear Ann Lee,\nplease call me on <PHONE_NUMBER> or mail [email].\nOrder #4820193746.\n"
    assert int(files["letter.txt"].size_in_bytes or 0) == len(body.content)
    record = httpx.get(str(runs.files.download(str(files["record.json"].id), run_id=str(run.id)).download_url))
    assert json.loads(record.text) == {"customer": "Ann Lee", "email": "[email]", "card": "<CREDIT_CARD>"}

    first_answer = runs.files.download_all(str(run.id))
    assert (first_answer.status, first_answer.download_url) == ("generating", None)
    assert runs.files.download_all(str(run.id)).status == "generating"  # asked twice, built once
    assert WorkItem.objects.filter(kind="anonymization.archive").count() == 1
    run_items("anonymization.archive")
    ready = runs.files.download_all(str(run.id))
    assert ready.status == "ready"
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(str(ready.download_url)).content))
    assert sorted(archive.namelist()) == ["letter.txt", "record.json", "rows.csv"]
    assert "ann.lee@example.com" not in archive.read("rows.csv").decode()

    assert [r.id for r in runs.list()] == [run.id]
    runs.delete(str(run.id))
    assert runs.list() == []
    with pytest.raises(NotFoundError):
        runs.retrieve(str(run.id))
    assert AnonymizationRun.objects.filter(deleted_at__isnull=False).count() == 1  # hidden, kept
    assert httpx.get(str(link.download_url)).status_code == HTTPStatus.NOT_FOUND


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("by_hand")
def test_a_run_not_finished_has_no_downloads(client: Dataframer, dataset: SeedDataset) -> None:
    runs = client.dataframer.anonymization_runs
    created = runs.create(dataset_id=str(dataset.code), detection_method="heuristics", pii_types=["email"])
    with pytest.raises(BadRequestError, match="must be SUCCEEDED"):
        runs.files.download_all(str(created.id))


# --- Bad input ---


@pytest.mark.usefixtures("by_hand")
def test_bad_input_is_a_400_that_says_why(
    alice_api: APIClient, dataset: SeedDataset, charlie: Any, company_b: Company
) -> None:
    good = {"dataset_id": str(dataset.code), "detection_method": "heuristics", "pii_types": ["email"]}
    cases: list[tuple[Any, str]] = [
        ({**good, "pii_types": "email"}, "pii_types"),
        ({**good, "pii_types": ["Email"]}, "must be lowercase"),
        ({**good, "pii_types": ["passport"]}, "Unknown pii_types 'passport'"),
        ({**good, "pii_types": []}, "pii_types is empty"),
        ({**good, "detection_method": "aimon_pii_m1"}, "heuristics, llm, llm+heuristics, all"),
        ({**good, "detection_method": "aimon_pii_m1+heuristics"}, "AIMon's private model"),
        ({**good, "detection_method": "regex"}, "detection_method"),
        ({**good, "detection_method": "llm"}, "needs llm_model_name"),
        ({**good, "detection_method": "llm", "llm_model_name": SONNET}, "ANTHROPIC_API_KEY"),
        ({**good, "llm_model_name": "nope/nope", "detection_method": "llm"}, "nope/nope"),
        ({**good, "pii_types": ["first_name"]}, "can only be found by an LLM"),
        ({**good, "threshold": 2}, "threshold"),
        ({**good, "threshold": "high"}, "threshold"),
        ({**good, "mask_config": {"phone_number": "x"}}, "mask_config names 'phone_number'"),
        ({**good, "mask_config": ["x"]}, "mask_config"),
        ({**good, "dataset_id": "not-a-uuid"}, "dataset_id"),
        ([1, 2], "non_field_errors"),
    ]
    for body, says in cases:
        response = alice_api.post(RUNS, body, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST, (body, response.content)
        assert says in response.content.decode(), (body, response.content)
    malformed = alice_api.post(RUNS, "{nope", content_type="application/json")
    assert malformed.status_code == HTTPStatus.BAD_REQUEST
    others = make_dataset(company_b, charlie, "Theirs")
    for dataset_id in (str(others.code), "00000000-0000-0000-0000-000000000000"):
        response = alice_api.post(RUNS, {**good, "dataset_id": dataset_id}, format="json")
        assert response.status_code == HTTPStatus.NOT_FOUND
    assert not AnonymizationRun.objects.exists()
    for path in (f"{RUNS}nope/", f"{RUNS}nope/download/", f"{RUNS}nope/files/nope/download/"):
        assert alice_api.get(path).status_code == HTTPStatus.NOT_FOUND


# --- Tenancy ---


@pytest.mark.usefixtures("by_hand")
def test_it_checks_ownership(alice_api: APIClient, charlie_api: APIClient, dataset: SeedDataset) -> None:
    body = {"dataset_id": str(dataset.code), "detection_method": "heuristics", "pii_types": ["email"]}
    run_id = alice_api.post(RUNS, body, format="json").json()["id"]
    run_items()
    file_id = alice_api.get(f"{RUNS}{run_id}/").json()["anonymized_files"][0]["id"]
    assert charlie_api.get(RUNS).json() == []
    for path in (f"{RUNS}{run_id}/", f"{RUNS}{run_id}/download/", f"{RUNS}{run_id}/files/{file_id}/download/"):
        assert charlie_api.get(path).status_code == HTTPStatus.NOT_FOUND, path
    assert charlie_api.delete(f"{RUNS}{run_id}/").status_code == HTTPStatus.NOT_FOUND
    assert alice_api.get(f"{RUNS}{run_id}/").status_code == HTTPStatus.OK


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("by_hand")
def test_it_requires_rw_access(live_server: Any, bob: Any, company_a: Company, dataset: SeedDataset) -> None:
    bob_client = client_for(live_server, ApiKey.issue(company=company_a, user=bob, name="bob")[1])
    runs = bob_client.dataframer.anonymization_runs
    with pytest.raises(PermissionDeniedError):
        runs.create(dataset_id=str(dataset.code), detection_method="heuristics", pii_types=["email"])
    assert runs.list() == []  # reading is allowed
    AnonymizationRun.objects.create(
        company=company_a, dataset=dataset, dataset_name="x", detection_method="heuristics", threshold=0.5
    )
    with pytest.raises(PermissionDeniedError):
        runs.delete(str(AnonymizationRun.objects.get().code))


# --- The llm method ---


def names_and_places(schema: dict[str, Any], user: str) -> dict[str, Any]:
    """A fake LLM that marks "Ann Lee" and "Bo Chan" wherever the document holds them."""
    assert schema["properties"]["entities"]["items"]["properties"]["label"]["enum"] == ["email", "full_name"]
    document = user.split("<document>", 1)[1]
    found = [{"text": name, "label": "full_name", "score": 0.9} for name in ("Ann Lee", "Bo Chan") if name in document]
    return {"entities": found + [{"text": "not in the text", "label": "full_name", "score": 0.9}]}


@pytest.mark.usefixtures("by_hand")
def test_the_llm_method_adds_what_patterns_cannot_find(
    alice_api: APIClient, dataset: SeedDataset, fake_anthropic: Any
) -> None:
    fake_anthropic.answer = names_and_places
    body = {
        "dataset_id": str(dataset.code), "detection_method": "llm+heuristics", "llm_model_name": SONNET,
        "pii_types": ["email", "full_name"],
    }  # fmt: skip
    run_id = alice_api.post(RUNS, body, format="json").json()["id"]
    run_items()
    run = alice_api.get(f"{RUNS}{run_id}/").json()
    assert (run["status"], run["llm_model_name"]) == ("SUCCEEDED", SONNET)
    assert run["results"]["entity_summary"] == {"email": 4, "full_name": 4}
    rows = AnonymizationRun.objects.get().files.get(path="rows.csv")
    from django.core.files.storage import default_storage

    with default_storage.open(rows.storage_name) as stored:
        assert stored.read().decode().splitlines()[1:] == [
            "<FULL_NAME>,<EMAIL>,+44 20 7946 0958",  # phone_number was not asked for
            "<FULL_NAME>,<EMAIL>,(415) 555-0132",
        ]
    calls = JudgeCall.objects.filter(purpose="anonymization")
    assert calls.count() == 3  # one per text file; the PDF is never sent


@pytest.mark.usefixtures("by_hand")
def test_all_runs_llm_and_heuristics_and_says_so(
    alice_api: APIClient, dataset: SeedDataset, fake_anthropic: Any
) -> None:
    fake_anthropic.answer = lambda schema, user: {"entities": []}
    body = {
        "dataset_id": str(dataset.code), "detection_method": "all", "llm_model_name": SONNET, "pii_types": ["email"],
    }  # fmt: skip
    run = alice_api.post(RUNS, body, format="json").json()
    assert "aimon_pii_m1 is AIMon's private model" in run["notes"]
    run_items()
    assert alice_api.get(f"{RUNS}{run['id']}/").json()["results"]["entity_summary"] == {"email": 4}


@pytest.mark.usefixtures("by_hand")
def test_an_llm_that_keeps_failing_fails_the_run(
    alice_api: APIClient, dataset: SeedDataset, fake_anthropic: Any
) -> None:
    fake_anthropic.answer = lambda schema, user: {"entities": [{"text": "x", "label": "password", "score": 1}]}
    body = {
        "dataset_id": str(dataset.code), "detection_method": "llm", "llm_model_name": SONNET, "pii_types": ["email"],
    }  # fmt: skip
    run_id = alice_api.post(RUNS, body, format="json").json()["id"]
    run_items()
    run = alice_api.get(f"{RUNS}{run_id}/").json()
    assert run["status"] == "FAILED"
    assert "The LLM could not read 'letter.txt'" in run["results"]["error"]
    assert run["anonymized_files"] == []  # nothing half-masked is offered for download


# --- A real worker ---


def test_a_real_worker_anonymizes_the_dataset(
    start_worker: Any, standin: Any, alice_api: APIClient, alice: Any, company_a: Company
) -> None:
    from tests.conftest import STANDIN_MODEL

    standin.policy = lambda request: {"entities": [{"text": "Ann Lee", "label": "full_name", "score": 0.9}]}
    dataset = make_dataset(company_a, alice)
    start_worker()
    body = {
        "dataset_id": str(dataset.code), "detection_method": "llm+heuristics", "llm_model_name": STANDIN_MODEL,
        "pii_types": ["email", "full_name"],
    }  # fmt: skip
    response = alice_api.post(RUNS, body, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.content
    run_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while alice_api.get(f"{RUNS}{run_id}/").json()["status"] in {"PENDING", "PROCESSING"}:
        assert time.monotonic() < deadline, "the worker did not anonymize the dataset within 60 s"
        time.sleep(0.2)
    run = alice_api.get(f"{RUNS}{run_id}/").json()
    assert run["status"] == "SUCCEEDED", run["results"]
    assert run["results"]["entity_summary"] == {"email": 4, "full_name": 3}
