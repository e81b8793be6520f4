from __future__ import annotations

import io
import json
import os
import time
import zipfile
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from runs.models import Run, Sample, Spec
from tests.conftest import make_rows

RUNS = "/api/dataframer/runs/"
IMPORT = f"{RUNS}import/"


def jsonl(rows: list[Any]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_import_json_creates_a_succeeded_run(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(5)}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    run = Run.objects.get(code=response.json()["id"])
    assert (run.status, run.samples_completed, run.spec_version.number) == (
        "SUCCEEDED",
        5,
        1,
    )
    sample = run.samples.get(identifier="sample_2")
    assert sample.properties == {"sentiment": "neutral", "priority": "low"}
    assert (sample.path, sample.file_type) == ("sample_2.txt", "text/plain")
    assert sample.size_bytes == len(sample.content.encode())


def test_import_jsonl_file(alice_api: APIClient, spec_a: Spec) -> None:
    upload = SimpleUploadedFile("samples.jsonl", jsonl(make_rows(7)), content_type="application/jsonl")
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "file": upload}, format="multipart")
    assert response.status_code == HTTPStatus.CREATED
    assert Run.objects.get(code=response.json()["id"]).samples.count() == 7


def test_import_zip_with_manifest_and_files(alice_api: APIClient, spec_a: Spec) -> None:
    rows = make_rows(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for row in rows:
            archive.writestr(
                f"export/texts/{row['identifier']}.md",
                f"# {row['identifier']}\n{row.pop('content')}",
            )
            row["path"] = f"texts/{row['identifier']}.md"
        archive.writestr("export/samples.jsonl", jsonl(rows))
    upload = SimpleUploadedFile("run.zip", buffer.getvalue(), content_type="application/zip")
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "file": upload}, format="multipart")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    sample = Run.objects.get(code=response.json()["id"]).samples.get(identifier="sample_1")
    assert sample.content.startswith("# sample_1\n")
    assert (sample.path, sample.file_type) == ("texts/sample_1.md", "text/markdown")


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda rows: rows[2].pop("identifier"),
            "sample 3: identifier must be a non-empty string",
        ),
        (
            lambda rows: rows[1].update(identifier="sample_1"),
            "sample 2 ('sample_1'): duplicate identifier",
        ),
        (
            lambda rows: rows[0].update(content=42),
            "sample 1 ('sample_1'): content must be a string",
        ),
        (
            lambda rows: rows[3]["properties"].pop("priority"),
            "sample 4 ('sample_4'): property 'priority' is not assigned",
        ),
        (
            lambda rows: rows[4]["properties"].update(sentiment="angry"),
            "sample 5 ('sample_5'): property 'sentiment' is 'angry', not one of ['positive', 'negative', 'neutral']",
        ),
        (
            lambda rows: rows[0]["properties"].update(colour="red"),
            "sample 1 ('sample_1'): 'colour' is not a property",
        ),
        (
            lambda rows: rows[0].update(properties=["x"]),
            "sample 1 ('sample_1'): properties must be an object",
        ),
        (
            lambda rows: rows[0].update(path="../etc/passwd"),
            "sample 1 ('sample_1'): path '../etc/passwd' has a '..' segment",
        ),
        (lambda rows: rows.__setitem__(1, "text"), "sample 2: must be an object"),
    ],
)
def test_a_bad_sample_is_named_and_nothing_is_saved(
    alice_api: APIClient, spec_a: Spec, mutate: Any, problem: str
) -> None:
    rows = make_rows(6)
    mutate(rows)
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": rows}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["samples"][0].startswith(problem)
    assert not Run.objects.exists()
    assert not Sample.objects.exists()


def test_bad_jsonl_and_bad_zip_are_explained(alice_api: APIClient, spec_a: Spec) -> None:
    for name, content, problem in [
        ("s.jsonl", b'{"identifier": "a"}\n{oops\n', "'s.jsonl' line 2: not valid JSON"),
        ("s.zip", b"PK\x03\x04garbage", "the upload is not a valid ZIP file"),
        ("s.bin", b"\xff\xfe\x00bad", "'s.bin' line 1: not UTF-8 text"),
    ]:
        upload = SimpleUploadedFile(name, content)
        response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "file": upload}, format="multipart")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["samples"][0].startswith(problem)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    response = alice_api.post(
        IMPORT,
        {
            "spec_id": str(spec_a.code),
            "file": SimpleUploadedFile("r.zip", buffer.getvalue()),
        },
        format="multipart",
    )
    assert response.json() == {"samples": ["the ZIP has no samples.jsonl manifest"]}
    assert not Run.objects.exists()


def test_import_needs_exactly_one_source_and_a_known_version(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code)}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    response = alice_api.post(
        IMPORT,
        {"spec_id": str(spec_a.code), "spec_version": 9, "samples": make_rows(2)},
        format="json",
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "spec 'Support' has no version 9"}
    response = alice_api.post(IMPORT, {"spec_id": "nope", "samples": make_rows(2)}, format="json")
    assert response.json() == {"spec_id": ["Must be a valid UUID."]}


@override_settings(IMPORT_MAX_SAMPLES=10)
def test_import_enforces_the_sample_limit(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(11)}, format="json")
    assert response.json() == {"samples": ["too many samples: the limit is 10"]}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000)
def test_an_oversized_body_is_refused(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(50)}, format="json")
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert "larger than 2,000 bytes" in response.json()["detail"]
    assert not Run.objects.exists()


def test_import_of_another_companys_spec_is_404(charlie_api: APIClient, spec_a: Spec) -> None:
    response = charlie_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(2)}, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert not Run.objects.exists()


def test_import_20000_samples(alice_api: APIClient, spec_a: Spec, django_assert_max_num_queries: Any) -> None:
    rows = make_rows(20_000)
    # Bulk inserts, not 20,000 INSERTs: 80 batches of 250 rows (SQLite's 999-parameter cap splits each into 3
    # INSERTs), each batch its own transaction (here, inside the test's: a savepoint and its release): about 415.
    with django_assert_max_num_queries(450):
        response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": rows}, format="json")
    assert response.status_code == HTTPStatus.CREATED
    assert Run.objects.get(code=response.json()["id"]).samples.count() == 20_000


def test_list_and_retrieve(alice_api: APIClient, run_a: Run, django_assert_num_queries: Any) -> None:
    alice_api.get(RUNS)  # records the key's last use, so the count below is stable
    # key lookup, its membership (the active one), runs with spec/version/creator
    with django_assert_num_queries(3):
        body = alice_api.get(RUNS).json()
    assert [r["id"] for r in body] == [str(run_a.code)]
    detail = alice_api.get(f"{RUNS}{run_a.code}/").json()
    assert detail["spec_version"] == 1
    assert detail["status"] == "SUCCEEDED"
    assert len(detail["generated_files"]) == 12
    assert detail["runtime_params"]["number_of_samples"] == 12
    assert detail["runtime_params"]["generation_model"] is None


def test_create_without_a_provider_says_how_to_configure_one(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(RUNS, {"spec_id": str(spec_a.code), "number_of_samples": 5}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "ANTHROPIC_API_KEY" in response.json()["detail"]


def test_cancel_only_pending_or_processing(alice_api: APIClient, run_a: Run) -> None:
    response = alice_api.post(f"{RUNS}{run_a.code}/cancel/")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "Only PENDING or PROCESSING runs can be canceled; this run is SUCCEEDED."}
    Run.objects.filter(pk=run_a.pk).update(status=Run.Status.PROCESSING)
    assert alice_api.post(f"{RUNS}{run_a.code}/cancel/").status_code == HTTPStatus.OK
    run_a.refresh_from_db()
    assert run_a.status == Run.Status.CANCELED
    assert run_a.completed_at is not None


def test_delete_removes_samples(alice_api: APIClient, run_a: Run) -> None:
    assert alice_api.delete(f"{RUNS}{run_a.code}/").status_code == HTTPStatus.NO_CONTENT
    assert not Sample.objects.exists()


def test_file_download_links_are_signed_and_work_without_a_key(alice_api: APIClient, run_a: Run) -> None:
    sample = run_a.samples.get(identifier="sample_3")
    body = alice_api.get(f"{RUNS}{run_a.code}/files/{sample.code}/download/").json()
    assert body["filename"] == "sample_3.txt"
    assert body["content_type"] == "text/plain"
    response = APIClient().get(body["download_url"])
    assert response.status_code == HTTPStatus.OK
    assert response.content.decode() == sample.content
    tampered = body["download_url"].replace("/downloads/", "/downloads/x")
    assert APIClient().get(tampered).status_code == HTTPStatus.NOT_FOUND
    assert alice_api.get(f"{RUNS}{run_a.code}/files/{run_a.code}/download/").status_code == HTTPStatus.NOT_FOUND


def test_download_links_expire(alice_api: APIClient, run_a: Run, time_machine: Any) -> None:
    body = alice_api.get(f"{RUNS}{run_a.code}/files/download/").json()
    time_machine.move_to(timezone.now() + timedelta(seconds=3601))
    assert APIClient().get(body["download_url"]).status_code == HTTPStatus.NOT_FOUND


def test_download_all_is_a_zip_with_metadata(alice_api: APIClient, run_a: Run) -> None:
    body = alice_api.get(f"{RUNS}{run_a.code}/files/download/").json()
    response = APIClient().get(body["download_url"])
    payload = b"".join(response.streaming_content)
    assert len(payload) == body["size_bytes"]
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = set(archive.namelist())
        assert {"sample_1.txt", "sample_1.txt.metadata", "top_level.metadata"} <= names
        assert len(names) == 12 * 2 + 1
        meta = json.loads(archive.read("sample_1.txt.metadata"))
        assert meta["assigned_properties"] == {
            "sentiment": "negative",
            "priority": "medium",
        }
        assert json.loads(archive.read("top_level.metadata"))["run_id"] == str(run_a.code)


def test_it_checks_ownership(charlie_api: APIClient, run_a: Run) -> None:
    sample = run_a.samples.first()
    for url in [
        f"{RUNS}{run_a.code}/",
        f"{RUNS}{run_a.code}/files/download/",
        f"{RUNS}{run_a.code}/files/{sample.code}/download/",  # type: ignore[union-attr]
    ]:
        assert charlie_api.get(url).status_code == HTTPStatus.NOT_FOUND, url
    assert charlie_api.post(f"{RUNS}{run_a.code}/cancel/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.delete(f"{RUNS}{run_a.code}/").status_code == HTTPStatus.NOT_FOUND
    assert charlie_api.get(RUNS).json() == []
    assert Run.objects.filter(pk=run_a.pk).exists()


def test_it_requires_rw_access(bob_api: APIClient, run_a: Run, spec_a: Spec) -> None:
    assert bob_api.get(f"{RUNS}{run_a.code}/").status_code == HTTPStatus.OK
    assert bob_api.delete(f"{RUNS}{run_a.code}/").status_code == HTTPStatus.FORBIDDEN
    response = bob_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(2)}, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_the_zip_carries_the_latest_classifications(alice_api: APIClient, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    body = alice_api.get(f"{RUNS}{run_a.code}/files/download/").json()
    payload = b"".join(APIClient().get(body["download_url"]).streaming_content)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        meta = json.loads(archive.read("sample_1.txt.metadata"))
        top = json.loads(archive.read("top_level.metadata"))
    judged = evaluation.classifications.get(sample__identifier="sample_1").classifications
    assert meta["classifications"] == judged
    assert top["classifications_from_evaluation"] == str(evaluation.code)


def test_it_stamps_an_imported_run_no_earlier_than_its_creation(alice_api: APIClient, spec_a: Spec) -> None:
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": make_rows(2)}, format="json")
    run = Run.objects.get(code=response.json()["id"])
    assert run.started_at == run.created_at <= run.completed_at  # it ends once its last batch is in
    body = alice_api.get(f"{RUNS}{run.code}/").json()
    assert body["created_at"] <= body["completed_at"]


def test_it_keeps_an_identifier_s_own_extension_as_the_default_path(alice_api: APIClient, spec_a: Spec) -> None:
    rows = make_rows(4)
    for row, identifier in zip(rows, ["conv_00.txt", "notes.md", "ticket.123", "plain"], strict=True):
        row["identifier"] = identifier
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": rows}, format="json")
    assert response.status_code == HTTPStatus.CREATED, response.json()
    run = Run.objects.get(code=response.json()["id"])
    assert list(run.samples.values_list("path", flat=True)) == [
        "conv_00.txt",
        "notes.md",
        "ticket.123.txt",
        "plain.txt",
    ]


def test_it_gives_duplicate_paths_unique_names_in_the_zip(alice_api: APIClient, spec_a: Spec) -> None:
    rows = make_rows(5)
    for row, path in zip(rows, ["a.txt", "a.txt", "A.TXT", "a-2.txt", "top_level.metadata"], strict=True):
        row["path"] = path
    response = alice_api.post(IMPORT, {"spec_id": str(spec_a.code), "samples": rows}, format="json")
    run_code = response.json()["id"]
    body = alice_api.get(f"{RUNS}{run_code}/files/download/").json()
    payload = b"".join(APIClient().get(body["download_url"]).streaming_content)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = archive.namelist()
        files = names[0:10:2]  # each sample's file, then its .metadata; top_level.metadata last
        # In sample order: the first keeps its path, later ones count up, skipping names already taken.
        assert files == ["a.txt", "a-2.txt", "A-3.TXT", "a-2-2.txt", "top_level-2.metadata"]
        assert names[1:10:2] == [f"{name}.metadata" for name in files]
        assert len(names) == len({n.casefold() for n in names}) == 11
        assert names[-1] == "top_level.metadata"
        assert archive.read("a-2.txt").decode() == rows[1]["content"]
        assert json.loads(archive.read("a-2.txt.metadata"))["identifier"] == "sample_2"


def test_it_builds_the_download_all_zip_once(
    alice_api: APIClient, run_a: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, settings: Any
) -> None:
    from runs import exports

    settings.DOWNLOAD_ARCHIVE_DIR = tmp_path
    builds: list[int] = []
    write = exports._write_run_zip

    def counted(run: Run, target: Any) -> None:
        builds.append(run.pk)
        write(run, target)

    monkeypatch.setattr(exports, "_write_run_zip", counted)
    body = alice_api.get(f"{RUNS}{run_a.code}/files/download/").json()
    for _ in range(2):
        payload = b"".join(APIClient().get(body["download_url"]).streaming_content)
        assert len(payload) == body["size_bytes"]
    assert builds == [run_a.pk]
    # A link served where its stored file is gone still works: it builds the archive again.
    for stored in tmp_path.glob("*.zip"):
        stored.unlink()
    payload = b"".join(APIClient().get(body["download_url"]).streaming_content)
    assert zipfile.ZipFile(io.BytesIO(payload)).testzip() is None
    assert builds == [run_a.pk, run_a.pk]


def test_it_prunes_archives_whose_links_expired(alice_api: APIClient, run_a: Run, tmp_path: Any, settings: Any) -> None:
    settings.DOWNLOAD_ARCHIVE_DIR = tmp_path
    alice_api.get(f"{RUNS}{run_a.code}/files/download/")
    [first] = tmp_path.glob("*.zip")
    old = time.time() - 3601
    os.utime(first, (old, old))
    alice_api.get(f"{RUNS}{run_a.code}/files/download/")
    assert first not in set(tmp_path.glob("*.zip"))
    assert len(list(tmp_path.glob("*.zip"))) == 1


def test_it_signs_https_download_links_behind_a_tls_proxy(alice_api: APIClient, run_a: Run, settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # what BEHIND_TLS_PROXY=true sets
    sample = run_a.samples.get(identifier="sample_1")
    for url in [f"{RUNS}{run_a.code}/files/download/", f"{RUNS}{run_a.code}/files/{sample.code}/download/"]:
        # A proxy passes the Host header on as the browser sent it: no port.
        body = alice_api.get(url, HTTP_HOST="testserver", HTTP_X_FORWARDED_PROTO="https").json()
        assert body["download_url"].startswith("https://testserver/api/dataframer/downloads/"), url
    # Without the proxy's word, the link is as plain as the request was.
    settings.SECURE_PROXY_SSL_HEADER = None
    body = alice_api.get(f"{RUNS}{run_a.code}/files/download/", HTTP_HOST="testserver", HTTP_X_FORWARDED_PROTO="https")
    body = body.json()
    assert body["download_url"].startswith("http://testserver/")
