"""Imports are written in bounded transactions behind a hidden run (issue 22): on the default SQLite setup one
company's 20,000-sample import no longer holds the one write lock that every other company's write waits for.
benchmarks/noisy_neighbour.py measures the effect; these tests prove the mechanism on both CI legs."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
import rest_framework.fields
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

import config.api
from companies.quotas import stored_bytes
from config.sqlite import base as sqlite_base
from runs import services
from runs.api.serializers import RunImportSerializer
from runs.models import Run, Sample
from runs.services import run_import, spec_create
from tests.conftest import SPEC_YAML, make_rows
from work.dispatch import reconcile

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


def test_parsing_a_large_body_lets_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # runserver serves every request as a thread of one process: json.loads alone holds the GIL for a whole 4 MB
    # import body, and every other company's request stands still meanwhile.
    body = json.dumps({"samples": make_rows(20_000)})
    ticks: list[float] = []
    done = threading.Event()
    decoded: list[float] = []
    check_text = config.api._check_text

    def first_check_after_decoding(*args: Any) -> None:
        if not decoded:  # the walk after json.loads begins
            decoded.append(time.perf_counter())
        check_text(*args)

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0)

    monkeypatch.setattr(config.api, "_check_text", first_check_after_decoding)
    # The interpreter offers the GIL every 0.5 ms rather than 5; no garbage collection (its finalizers run Python,
    # which would hand the GIL over by chance).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    gc.disable()
    thread = threading.Thread(target=ticker)
    thread.start()
    started = time.perf_counter()
    try:
        config.api.loads_strict(body)
    finally:
        done.set()
        gc.enable()
        sys.setswitchinterval(interval)
    thread.join(10)
    assert sum(started < tick < decoded[0] for tick in ticks) >= 3  # the other thread ran during json.loads


def test_the_import_serializer_takes_the_parsed_samples_as_they_are(
    spec_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DRF's JSONField json.dumps the whole value to check it: tens of ms holding the GIL for a 20,000-sample import.
    class NoDumps:
        @staticmethod
        def dumps(*args: Any, **kwargs: Any) -> str:
            raise AssertionError("the samples were serialized again")

    monkeypatch.setattr(rest_framework.fields, "json", NoDumps)
    rows = make_rows(ROWS)
    serializer = RunImportSerializer(data={"spec_id": str(spec_a.code), "samples": rows})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["samples"] is rows


def test_an_abandoned_import_stops_counting_and_the_reconciler_deletes_it(
    alice: Any, spec_a: Any, settings: Any
) -> None:
    # A process killed between batches leaves its hidden run and the samples written so far, which the storage quota
    # counted and nothing removed.
    abandoned = run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
    in_progress = run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_ABANDONED_SECONDS + 60)
    Run.with_importing.filter(pk=abandoned.pk).update(importing=True, created_at=long_ago)
    Run.with_importing.filter(pk=in_progress.pk).update(importing=True)
    assert stored_bytes(spec_a.company) == in_progress.stored_bytes  # an import in progress counts at once
    settings.IMPORT_ABANDONED_SECONDS = 0  # off: every hidden run counts, and stays
    assert stored_bytes(spec_a.company) == abandoned.stored_bytes + in_progress.stored_bytes
    reconcile()
    assert Run.with_importing.filter(pk=abandoned.pk).exists()
    settings.IMPORT_ABANDONED_SECONDS = 3600
    reconcile()  # what every worker process runs every WORK_RECONCILE_SECONDS
    assert not Run.with_importing.filter(pk=abandoned.pk).exists()
    assert not Sample.objects.filter(run_id=abandoned.pk).exists()
    assert Run.with_importing.filter(pk=in_progress.pk, importing=True).exists()
    assert Sample.objects.filter(run_id=in_progress.pk).count() == ROWS


@pytest.mark.parametrize(("configured", "interval"), [(None, 0.0005), ("0", 0.005)])
def test_the_process_offers_the_gil_as_configured(configured: str | None, interval: float) -> None:
    # make run serves every request as a thread of one process: a short request gives the GIL up at each query and
    # waits up to the switch interval to get it back from a thread checking an import. In a process of its own:
    # the interval is the interpreter's, and this one's tests change it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_SWITCH_INTERVAL_US"}
    if configured is not None:
        env["PYTHON_SWITCH_INTERVAL_US"] = configured
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    script = "import sys, django; django.setup(); print(sys.getswitchinterval())"
    shown = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert float(shown.stdout.strip()) == pytest.approx(interval)


@pytest.mark.parametrize(("configured", "threshold"), [(None, 10_000), ("0", 700)])
def test_the_web_process_collects_garbage_as_configured(configured: str | None, threshold: int) -> None:
    # A collection stalls every request thread: the web process collects every PYTHON_GC_THRESHOLD allocations
    # (0: Python's own 700), and what it loaded at start-up is frozen out of every collection (config/wsgi.py).
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GC_THRESHOLD"}
    if configured is not None:
        env["PYTHON_GC_THRESHOLD"] = configured
    script = "import gc; import config.wsgi; print(gc.get_threshold()[0], gc.get_freeze_count())"
    shown = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    first, frozen = (int(part) for part in shown.stdout.split())
    assert first == threshold
    assert frozen > 100_000  # Django, the apps and every view: what a full collection no longer walks


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("limit", [1, 0])
def test_imports_take_turns_in_a_process_unless_the_limit_is_off(
    alice: Any, spec_a: Any, settings: Any, limit: int
) -> None:
    """IMPORTS_AT_ONCE_PER_PROCESS: while one import holds the process's only turn, another waits for it (1); with
    0, nothing waits."""
    settings.IMPORTS_AT_ONCE_PER_PROCESS = limit
    done = threading.Event()

    def second_import() -> None:
        try:
            run_import(company=spec_a.company, created_by=alice, spec=spec_a, rows=make_rows(ROWS))
            done.set()
        finally:
            connection.close()

    importer = threading.Thread(target=second_import)
    with services._import_turn():  # a first import, checking its samples
        importer.start()
        finished_meanwhile = done.wait(timeout=3 if limit == 0 else 1)
        samples_meanwhile = Sample.objects.filter(run__company=spec_a.company).count()
    importer.join(timeout=30)
    assert done.is_set()
    if limit:
        assert (finished_meanwhile, samples_meanwhile) == (False, 0)  # it waited, writing nothing
    else:
        assert (finished_meanwhile, samples_meanwhile) == (True, ROWS)


def test_an_imports_sample_codes_come_from_one_read_of_the_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each read gives the GIL up, and a 20,000-sample import under runserver waited for it back once per sample.
    from runs import imports
    from runs.specfile import parse_spec

    reads: list[int] = []
    real_urandom = os.urandom

    def urandom(size: int) -> bytes:
        reads.append(size)
        return real_urandom(size)

    monkeypatch.setattr(imports.os, "urandom", urandom)
    samples = imports.build_samples(make_rows(ROWS), parse_spec(SPEC_YAML).properties)
    assert reads == [16 * ROWS]
    codes = [sample.code for sample in samples]
    assert len(set(codes)) == ROWS
    assert {(code.version, code.variant) for code in codes} == {(4, "specified in RFC 4122")}
