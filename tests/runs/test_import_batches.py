"""Imports are written in bounded transactions behind a hidden run (issue 22): on the default SQLite setup one
company's 20,000-sample import no longer holds the one write lock that every other company's write waits for.
benchmarks/noisy_neighbour.py measures the effect; these tests prove the mechanism on both CI legs."""

from __future__ import annotations

import threading
from http import HTTPStatus
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from config.sqlite import base as sqlite_base
from runs import services
from runs.models import Run, Sample
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows

ROWS = 20


@pytest.mark.django_db(transaction=True)
def test_another_companys_write_goes_between_the_batches_of_an_import(
    alice: Any, spec_a: Any, charlie: Any, company_b: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "IMPORT_BATCH_SIZE", 5)
    seen: dict[str, Any] = {}
    real_bulk_create = Sample.objects.bulk_create

    def company_b_writes() -> None:
        try:
            # Under SQLite's one write lock this waits for any import transaction still open.
            spec_create(company=company_b, created_by=charlie, name="B's spec", content_yaml=SPEC_YAML)
            seen["b_wrote"] = True
            seen["a_visible"] = Run.objects.filter(company=spec_a.company).exists()
            seen["a_importing"] = Run.with_importing.filter(company=spec_a.company, importing=True).exists()
            seen["a_samples"] = Sample.objects.filter(run__company=spec_a.company).count()
        finally:
            connection.close()

    def after_first_batch() -> None:
        if "b_wrote" in seen:
            return
        writer = threading.Thread(target=company_b_writes)
        writer.start()
        writer.join(10)
        seen.setdefault("b_wrote", False)

    def bulk_create(objs: Any, *args: Any, **kwargs: Any) -> Any:
        created = real_bulk_create(objs, *args, **kwargs)
        transaction.on_commit(after_first_batch)  # once this batch's transaction has committed
        return created

    monkeypatch.setattr(Sample.objects, "bulk_create", bulk_create)
    run = run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
    # B's write went through while A's import was in its loop: one batch of 5 written, its run hidden.
    assert seen == {"b_wrote": True, "a_visible": False, "a_importing": True, "a_samples": 5}
    run.refresh_from_db()
    assert (run.importing, run.samples.count(), run.status) == (False, ROWS, Run.Status.SUCCEEDED)
    assert Run.objects.filter(pk=run.pk).exists()


def test_a_failed_import_keeps_nothing(alice: Any, spec_a: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "IMPORT_BATCH_SIZE", 5)
    real_bulk_create = Sample.objects.bulk_create
    calls = []

    def bulk_create(objs: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(objs))
        if len(calls) == 3:
            raise OSError("disk full")
        return real_bulk_create(objs, *args, **kwargs)

    monkeypatch.setattr(Sample.objects, "bulk_create", bulk_create)
    with pytest.raises(OSError, match="disk full"):
        run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
    assert not Run.with_importing.exists()
    assert not Sample.objects.exists()


def test_a_run_being_imported_is_hidden_everywhere(alice_api: APIClient, client: Any, alice: Any, spec_a: Any) -> None:
    hidden = Run.with_importing.create(
        company=spec_a.company, spec=spec_a, spec_version=spec_a.latest_version, importing=True
    )
    assert alice_api.get("/api/dataframer/runs/").json() == []
    response = alice_api.get(f"/api/dataframer/runs/{hidden.code}/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    client.force_login(alice)
    assert client.get(f"/runs/{hidden.code}/").status_code == HTTPStatus.NOT_FOUND
    assert str(hidden.code) not in client.get("/runs/").content.decode()
    response = alice_api.post("/api/dataframer/evaluations/", {"run_id": str(hidden.code)}, format="json")
    assert response.status_code in {HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND}


def test_an_imports_batches_are_bulk_writes(alice: Any, spec_a: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bulk: on SQLite a short write waiting for the write lock goes before the import's next batch (config/sqlite).
    monkeypatch.setattr(services, "IMPORT_BATCH_SIZE", 5)
    real_bulk_create = Sample.objects.bulk_create
    marks = []

    def bulk_create(objs: Any, *args: Any, **kwargs: Any) -> Any:
        marks.append(getattr(sqlite_base._bulk, "on", False))
        return real_bulk_create(objs, *args, **kwargs)

    monkeypatch.setattr(Sample.objects, "bulk_create", bulk_create)
    run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
    assert marks == [True] * 4
    assert not getattr(sqlite_base._bulk, "on", False)  # the request's later writes are short again
