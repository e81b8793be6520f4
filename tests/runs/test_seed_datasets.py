"""Seed datasets: the official client in strict mode against a live server for every call, layouts and limits,
hostile ZIPs, tenancy (charlie → 404, bob → 403), and a memory check on the streamed upload path."""

from __future__ import annotations

import hashlib
import io
import stat
import tracemalloc
import zipfile
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import pytest
from dataframer import BadRequestError, Dataframer, NotFoundError, PermissionDeniedError
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from companies.models import Company
from runs.models import SeedDataset, SeedFile, Spec
from runs.seeds import SeedError, zip_entries
from runs.services import seed_dataset_create

SEEDS = "/api/dataframer/seed-datasets/"


def make_zip(files: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


CSV = b"text,label\nhello,positive\nawful,negative\nfine,neutral\n"
TICKETS = {f"ticket_{i}.txt": f"Ticket {i}: my order is late.".encode() for i in range(3)}


@pytest.fixture
def client(live_server: Any, alice_key: str) -> Dataframer:
    return Dataframer(base_url=live_server.url, api_key=alice_key, _strict_response_validation=True, max_retries=0)


@pytest.fixture
def bob_client(live_server: Any, bob: Any, company_a: Company) -> Dataframer:
    from companies.models import ApiKey

    key = ApiKey.issue(company=company_a, user=bob, name="bob")[1]
    return Dataframer(base_url=live_server.url, api_key=key, _strict_response_validation=True, max_retries=0)


@pytest.fixture
def charlie_client(live_server: Any, charlie: Any, company_b: Company) -> Dataframer:
    from companies.models import ApiKey

    key = ApiKey.issue(company=company_b, user=charlie, name="charlie")[1]
    return Dataframer(base_url=live_server.url, api_key=key, _strict_response_validation=True, max_retries=0)


# --- Every call through the official client ---


@pytest.mark.django_db(transaction=True)
def test_every_seed_dataset_call_through_the_client(client: Dataframer, company_a: Company) -> None:
    seeds = client.dataframer.seed_datasets
    single = seeds.create_from_zip(name="Reviews", zip_file=("reviews.zip", make_zip({"reviews.csv": CSV})))
    assert (single.dataset_type, single.file_count, single.folder_count, single.sample_count) == (
        "SINGLE_FILE", 1, 0, 3,
    )  # fmt: skip
    assert single.created_by_email == "alice@alpha.test"
    [csv_file] = single.files or []
    assert (csv_file.path, csv_file.file_type, csv_file.size_bytes) == ("reviews.csv", "csv", len(CSV))
    assert csv_file.sha256 == hashlib.sha256(CSV).hexdigest()

    multi = seeds.create_with_files(
        name="Tickets", dataset_type="MULTI_FILE", description="Support tickets",
        files=list(TICKETS.items()),
    )  # fmt: skip
    assert (multi.dataset_type, multi.file_count, multi.sample_count, multi.description) == (
        "MULTI_FILE", 3, None, "Support tickets",
    )  # fmt: skip
    folders = seeds.create_with_files(
        name="Threads",
        dataset_type="MULTI_FOLDER",
        files=[("q.md", b"# Question"), ("a.md", b"Answer"), ("q.md", b"# Other question")],
        folder_names=["thread1", "thread1", "thread2"],
    )
    assert (folders.dataset_type, folders.file_count, folders.folder_count) == ("MULTI_FOLDER", 3, 2)
    assert [f.path for f in folders.files or []] == ["thread1/q.md", "thread1/a.md", "thread2/q.md"]

    listed = seeds.list()
    assert [d.name for d in listed] == ["Threads", "Tickets", "Reviews"]  # newest first
    retrieved = seeds.retrieve(str(single.id))
    assert retrieved.files == single.files

    link = seeds.files.download(str(csv_file.id), dataset_id=str(single.id))
    assert (link.filename, link.content_type) == ("reviews.csv", "text/csv")
    body = httpx.get(str(link.download_url))  # a presigned-style link: no API key needed
    assert body.status_code == HTTPStatus.OK
    assert body.content == CSV

    seeds.delete(str(multi.id))
    assert [d.name for d in seeds.list()] == ["Threads", "Reviews"]
    with pytest.raises(NotFoundError):
        seeds.retrieve(str(multi.id))
    stored = SeedFile.objects.filter(dataset__company=company_a).values_list("storage_name", flat=True)
    assert all(default_storage.exists(name) for name in stored)


@pytest.mark.django_db(transaction=True)
def test_a_dataset_in_use_cannot_be_deleted(client: Dataframer, company_a: Company, alice: Any) -> None:
    dataset = client.dataframer.seed_datasets.create_from_zip(
        name="Reviews", zip_file=("r.zip", make_zip({"reviews.csv": CSV}))
    )
    Spec.objects.create(company=company_a, name="From reviews", dataset_id=SeedDataset.objects.get().id)
    with pytest.raises(BadRequestError, match="From reviews"):
        client.dataframer.seed_datasets.delete(str(dataset.id))
    assert SeedDataset.objects.count() == 1
    names = list(SeedFile.objects.values_list("storage_name", flat=True))
    Spec.objects.all().delete()
    client.dataframer.seed_datasets.delete(str(dataset.id))
    assert not SeedDataset.objects.exists()
    assert not any(default_storage.exists(name) for name in names)  # the bytes go with the rows


# --- Tenancy ---


@pytest.mark.django_db(transaction=True)
def test_it_checks_ownership(client: Dataframer, charlie_client: Dataframer, live_server: Any) -> None:
    dataset = client.dataframer.seed_datasets.create_from_zip(name="A", zip_file=("a.zip", make_zip(TICKETS)))
    file_id = str((dataset.files or [])[0].id)
    assert charlie_client.dataframer.seed_datasets.list() == []
    with pytest.raises(NotFoundError):
        charlie_client.dataframer.seed_datasets.retrieve(str(dataset.id))
    with pytest.raises(NotFoundError):
        charlie_client.dataframer.seed_datasets.files.download(file_id, dataset_id=str(dataset.id))
    with pytest.raises(NotFoundError):
        charlie_client.dataframer.seed_datasets.delete(str(dataset.id))
    # Charlie cannot generate a spec from A's dataset either: it does not exist for him.
    with pytest.raises(NotFoundError):
        charlie_client.dataframer.specs.create(name="Stolen", dataset_id=str(dataset.id))
    assert SeedDataset.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_requires_rw_access(client: Dataframer, bob_client: Dataframer) -> None:
    dataset = client.dataframer.seed_datasets.create_from_zip(name="A", zip_file=("a.zip", make_zip(TICKETS)))
    assert [d.name for d in bob_client.dataframer.seed_datasets.list()] == ["A"]  # viewers read
    bob_client.dataframer.seed_datasets.retrieve(str(dataset.id))
    with pytest.raises(PermissionDeniedError):
        bob_client.dataframer.seed_datasets.create_from_zip(name="B", zip_file=("b.zip", make_zip(TICKETS)))
    with pytest.raises(PermissionDeniedError):
        bob_client.dataframer.seed_datasets.create_with_files(
            name="B", dataset_type="MULTI_FILE", files=list(TICKETS.items())
        )
    with pytest.raises(PermissionDeniedError):
        bob_client.dataframer.seed_datasets.delete(str(dataset.id))
    assert SeedDataset.objects.count() == 1


# --- Layouts, limits and hostile input (APIClient: the exact 400 bodies) ---


def upload_zip(api: APIClient, files: dict[str, bytes], name: str = "Data", **kwargs: Any) -> Any:
    upload = SimpleUploadedFile("data.zip", make_zip(files, **kwargs), content_type="application/zip")
    return api.post(f"{SEEDS}create-from-zip/", {"name": name, "zip_file": upload}, format="multipart")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"only.csv": CSV}, ("SINGLE_FILE", ["only.csv"])),
        ({"folder/only.jsonl": b'{"a": 1}\n{"a": 2}\n'}, ("SINGLE_FILE", ["only.jsonl"])),  # a zipped folder
        ({"data/a.txt": b"a", "data/b.md": b"b"}, ("MULTI_FILE", ["a.txt", "b.md"])),
        ({"s1/a.txt": b"a", "s2/b.txt": b"b", "__MACOSX/._a.txt": b"x", ".DS_Store": b"x"},
         ("MULTI_FOLDER", ["s1/a.txt", "s2/b.txt"])),
        ({"root/s1/a.txt": b"a", "root/s2/a.txt": b"b"}, ("MULTI_FOLDER", ["s1/a.txt", "s2/a.txt"])),
    ],
)  # fmt: skip
def test_the_layout_gives_the_type(alice_api: APIClient, files: dict[str, bytes], expected: Any) -> None:
    response = upload_zip(alice_api, files)
    assert response.status_code == HTTPStatus.CREATED, response.json()
    body = response.json()
    assert (body["dataset_type"], [f["path"] for f in body["files"]]) == expected


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "holds no files"),
        ({"../evil.txt": b"x", "b.txt": b"y"}, "'../evil.txt' has a '..' segment"),
        ({"/etc/cron.txt": b"x", "b.txt": b"y"}, "is an absolute path"),
        ({"a.txt": b"x", "s1/b.txt": b"y"}, "mixes files at the root with folders"),
        ({"a/b/c.txt": b"x", "d/e.txt": b"y"}, "in a folder inside a folder"),
        ({"one.txt": b"x"}, "not one of the file types a SINGLE_FILE dataset accepts"),
        ({"a.exe": b"x", "b.txt": b"y"}, "'a.exe' is not one of the file types"),
        ({"only.csv": b"text\nonly one row\n"}, "holds 1 sample(s); a SINGLE_FILE dataset needs at least 2 rows"),
        ({"only.json": b'{"not": "a list"}'}, "must be a JSON array"),
        ({"only.json": b"[1, 2"}, "is not valid JSON"),
        ({"s1/a.txt": b"x", "s1/b.txt": b"y", "s2/c.txt": b"z"} | {f"s3/{i}.txt": b"x" for i in range(21)},
         "folder 's3' holds 21 files; the limit is 20"),
    ],
)  # fmt: skip
def test_bad_layouts_are_refused_saying_why(alice_api: APIClient, files: dict[str, bytes], message: str) -> None:
    response = upload_zip(alice_api, files)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert message in response.json()["detail"]
    assert not SeedDataset.objects.exists()


def test_a_symlink_is_refused(alice_api: APIClient) -> None:
    response = upload_zip(alice_api, {"a.txt": b"x"}, symlinks=("b.txt",))
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "'b.txt' is a symbolic link" in response.json()["detail"]


def test_limits_are_settings_named_in_the_400(alice_api: APIClient, settings: Any) -> None:
    settings.SEED_MAX_FILES = 3
    response = upload_zip(alice_api, {f"{i}.txt": b"x" for i in range(4)})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["detail"] == "The seed dataset was refused: the ZIP holds 4 files; the limit is 3."
    settings.SEED_MAX_FILE_BYTES = 10
    response = upload_zip(alice_api, {"a.txt": b"x" * 11, "b.txt": b"y"})
    assert response.json()["detail"] == "The seed dataset was refused: 'a.txt' is 11 bytes; the limit per file is 10."
    settings.SEED_MAX_TOTAL_BYTES = 15
    response = upload_zip(alice_api, {"a.txt": b"x" * 8, "b.txt": b"y" * 8})
    assert response.json()["detail"] == "The seed dataset was refused: the files unpack to 16 bytes; the limit is 15."
    settings.SEED_MAX_UPLOAD_BYTES = 100
    response = upload_zip(alice_api, {"a.txt": b"x", "b.txt": b"y" * 500})
    assert "the limit is 100" in response.json()["detail"]
    assert not SeedDataset.objects.exists()


def stored_files(company: Company) -> list[str]:
    """Every file in storage under the company's seed folder."""
    root = Path(settings.MEDIA_ROOT) / "seed-datasets" / str(company.code)
    return [str(p) for p in root.rglob("*") if p.is_file()]


def test_a_member_that_lies_about_its_size_is_stopped_and_nothing_is_left(company_a: Company, settings: Any) -> None:
    settings.SEED_MAX_FILE_BYTES = 1000
    archive = zipfile.ZipFile(io.BytesIO(make_zip({"b.txt": b"y", "a.txt": b"x" * 5000})))
    archive.getinfo("a.txt").file_size = 10  # what a forged directory would declare: only inflating tells
    entries = zip_entries(archive)
    with pytest.raises(SeedError, match="'a.txt'"):
        seed_dataset_create(company=company_a, created_by=None, name="Lie", entries=entries)
    assert not SeedDataset.objects.exists()
    assert stored_files(company_a) == []  # b.txt, stored first, was deleted


def test_bad_requests(alice_api: APIClient) -> None:
    # Not a ZIP, missing file, wrong type, a duplicate name, folder_names that do not match.
    not_zip = SimpleUploadedFile("data.zip", b"hello, not a zip")
    response = alice_api.post(f"{SEEDS}create-from-zip/", {"name": "X", "zip_file": not_zip}, format="multipart")
    assert (response.status_code, response.json()) == (400, {"detail": "The upload is not a valid ZIP file."})
    response = alice_api.post(f"{SEEDS}create-from-zip/", {"name": "X"}, format="multipart")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "zip_file" in response.json()
    response = alice_api.post(f"{SEEDS}create-from-zip/", {"name": "X", "zip_file": "text"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "zip_file" in response.json()
    response = alice_api.post(f"{SEEDS}create/", {"name": "X", "dataset_type": "MULTI_FILE"}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "files" in response.json()
    files = [SimpleUploadedFile(n, d) for n, d in TICKETS.items()]
    response = alice_api.post(
        f"{SEEDS}create/", {"name": "X", "dataset_type": "SIDEWAYS", "files[]": files}, format="multipart"
    )
    assert "dataset_type" in response.json()
    files = [SimpleUploadedFile(n, d) for n, d in TICKETS.items()]
    response = alice_api.post(
        f"{SEEDS}create/",
        {"name": "X", "dataset_type": "MULTI_FOLDER", "files[]": files, "folder_names[]": ["a", "b"]},
        format="multipart",
    )
    assert response.json()["detail"] == (
        "The seed dataset was refused: folder_names has 2 names for 3 files: give one folder name per file."
    )
    files = [SimpleUploadedFile(n, d) for n, d in TICKETS.items()]
    response = alice_api.post(
        f"{SEEDS}create/", {"name": "X", "dataset_type": "SINGLE_FILE", "files[]": files}, format="multipart"
    )
    assert response.json()["detail"] == (
        "The seed dataset was refused: the files make a MULTI_FILE dataset, not the SINGLE_FILE that was asked for."
    )
    assert upload_zip(alice_api, TICKETS, name="Same").status_code == HTTPStatus.CREATED
    response = upload_zip(alice_api, TICKETS, name="Same")
    assert response.json() == {"name": ["A seed dataset named 'Same' already exists."]}
    assert alice_api.get(f"{SEEDS}not-a-uuid/").status_code == HTTPStatus.NOT_FOUND
    dataset = SeedDataset.objects.get()
    response = alice_api.get(f"{SEEDS}{dataset.code}/files/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert alice_api.post(SEEDS, {}, format="json").status_code == HTTPStatus.METHOD_NOT_ALLOWED
    for path in ("create/", "create-from-zip/"):  # a JSON array, not an object: field errors, never a 500
        response = alice_api.post(f"{SEEDS}{path}", [1, 2], format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST


# --- Memory: the upload path streams ---


def test_a_20_mb_zip_is_ingested_without_holding_it(tmp_path: Any, company_a: Company) -> None:
    """The ZIP is read from disk (as Django spools a large upload) and each member streamed into storage: peak
    Python allocation stays a small fraction of the 20 MB file."""
    rows = b"".join(b"%d,a sample sentence of some length for the seed set %d\n" % (i, i) for i in range(330_000))
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("big.csv", b"id,text\n" + rows)
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        with zipfile.ZipFile(path) as archive:
            dataset = seed_dataset_create(company=company_a, created_by=None, name="Big", entries=zip_entries(archive))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dataset.sample_count == 330_000
    assert dataset.files.get().size_bytes == len(b"id,text\n" + rows)
    assert peak < size / 20, f"peak {peak:,} bytes for a {size:,}-byte upload"


# --- Pages ---


@pytest.fixture
def web() -> Client:
    """A browser's client (`client` is the official API client in this module)."""
    return Client()


def test_the_pages_list_upload_show_and_delete(web: Any, alice: Any, company_a: Company) -> None:
    web.force_login(alice)
    hostile = b"<script>alert(1)</script> a ticket"
    upload = SimpleUploadedFile("t.zip", make_zip({"a.txt": hostile, "b.txt": b"two"}))
    response = web.post("/seed-datasets/", {"name": "Tickets", "zip_file": upload})
    dataset = SeedDataset.objects.get()
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"/seed-datasets/{dataset.code}/"
    page = web.get(response["Location"]).content.decode()
    assert "MULTI_FILE" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a ticket" in page  # file content is escaped
    assert "<script>alert(1)" not in page
    listing = web.get("/seed-datasets/").content.decode()
    assert f"/seed-datasets/{dataset.code}/" in listing
    bad = web.post("/seed-datasets/", {"name": "Bad", "zip_file": SimpleUploadedFile("x.zip", make_zip({}))})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    assert "Refused: the ZIP holds no files." in bad.content.decode()
    response = web.post(f"/seed-datasets/{dataset.code}/delete/")
    assert response.status_code == HTTPStatus.FOUND
    assert not SeedDataset.objects.exists()


def test_the_pages_check_ownership_and_rw_access(web: Any, alice: Any, bob: Any, charlie: Any) -> None:
    web.force_login(alice)
    web.post("/seed-datasets/", {"name": "A", "zip_file": SimpleUploadedFile("t.zip", make_zip(TICKETS))})
    dataset = SeedDataset.objects.get()
    web.force_login(charlie)
    assert web.get(f"/seed-datasets/{dataset.code}/").status_code == HTTPStatus.NOT_FOUND
    assert web.post(f"/seed-datasets/{dataset.code}/delete/").status_code == HTTPStatus.NOT_FOUND
    assert "No seed datasets yet." in web.get("/seed-datasets/").content.decode()
    web.force_login(bob)
    assert web.get(f"/seed-datasets/{dataset.code}/").status_code == HTTPStatus.OK
    assert web.post(f"/seed-datasets/{dataset.code}/delete/").status_code == HTTPStatus.FORBIDDEN
    upload = SimpleUploadedFile("t.zip", make_zip(TICKETS))
    assert web.post("/seed-datasets/", {"name": "B", "zip_file": upload}).status_code == HTTPStatus.FORBIDDEN
    assert "Upload a seed dataset" not in web.get("/seed-datasets/").content.decode()
    assert SeedDataset.objects.count() == 1


def test_the_prompt_quotes_a_bounded_sample(company_a: Company, settings: Any) -> None:
    from runs.spec_generation import dataset_excerpt

    settings.SEED_MAX_FILE_BYTES = 1024 * 1024
    files = {f"t{i:02d}.txt": (f"ticket {i} " * 300).encode() for i in range(40)}
    with zipfile.ZipFile(io.BytesIO(make_zip(files))) as archive:
        dataset = seed_dataset_create(company=company_a, created_by=None, name="T", entries=zip_entries(archive))
    excerpt = dataset_excerpt(dataset, 8000)
    assert len(excerpt.encode()) < 8000 + 40 * 100  # the budget, plus each quoted file's fence and path
    assert excerpt.count("<seed_file>") == 4  # ~2 kB each: the first four files
    assert "4 are quoted below; 36 more are not." in excerpt
    assert "[... cut: the file goes on]" in excerpt


def test_a_name_taken_after_the_check_is_a_400_and_leaves_no_file(
    alice_api: APIClient, company_a: Company, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A concurrent upload that saves the name between the serializer's check and our save, played in sequence:
    # the check lets the name through (as it did before the other upload saved it); the save then finds it taken.
    from runs.api.serializers import SeedDatasetInputSerializer

    monkeypatch.setattr(SeedDatasetInputSerializer, "validate_name", lambda self, value: value)
    SeedDataset.objects.create(company=company_a, name="Taken", dataset_type="MULTI_FILE")
    response = upload_zip(alice_api, TICKETS, name="Taken")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json() == {"detail": "The seed dataset was refused: a seed dataset named 'Taken' already exists."}
    assert stored_files(company_a) == []
    assert SeedDataset.objects.count() == 1


def test_a_dataset_whose_stored_files_vanished_says_so(alice_api: APIClient, web: Any, alice: Any) -> None:
    dataset = SeedDataset.objects.get(code=upload_zip(alice_api, {"a.txt": b"one", "b.txt": b"two"}).json()["id"])
    first = dataset.files.order_by("position").first()
    assert first is not None
    default_storage.delete(first.storage_name)  # the storage was wiped or moved under the service
    link = alice_api.get(f"{SEEDS}{dataset.code}/files/{first.code}/").json()["download_url"]
    gone = alice_api.get(httpx.URL(link).path)
    assert gone.status_code == HTTPStatus.NOT_FOUND
    assert gone.json()["detail"] == (
        "The stored copy of 'a.txt' is missing; delete the seed dataset and upload it again."
    )
    web.force_login(alice)
    page = web.get(f"/seed-datasets/{dataset.code}/")
    assert page.status_code == HTTPStatus.OK
    assert "the stored copy of &#x27;a.txt&#x27; is missing" in page.content.decode()
