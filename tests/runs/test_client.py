"""The official pydataframer client, strict mode, against a live server: specs, runs and files."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest
from dataframer import BadRequestError, Dataframer, NotFoundError

from companies.models import Company
from runs.models import Run, Spec
from tests.conftest import SPEC_YAML, make_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server: Any, alice_key: str) -> Dataframer:
    return Dataframer(
        base_url=live_server.url,
        api_key=alice_key,
        _strict_response_validation=True,
        max_retries=0,
    )


def test_specs_through_the_client(client: Dataframer, company_a: Company) -> None:
    created = client.dataframer.specs.create(name="Support", extra_body={"content_yaml": SPEC_YAML})
    assert created.id
    spec = client.dataframer.specs.retrieve(created.id)
    assert (spec.name, spec.status, spec.content_yaml, spec.versions) == (
        "Support",
        "SUCCEEDED",
        SPEC_YAML,
        None,
    )
    assert spec.created_by_email == "alice@alpha.test"
    new_yaml = SPEC_YAML.replace("Overall customer sentiment", "How the customer feels")
    updated = client.dataframer.specs.update(created.id, content_yaml=new_yaml)
    assert updated.content_yaml == new_yaml
    with_versions = client.dataframer.specs.retrieve(created.id, include_versions=True)
    assert [v.content_yaml for v in with_versions.versions or []] == [
        SPEC_YAML,
        new_yaml,
    ]
    assert [s.name for s in client.dataframer.specs.list()] == ["Support"]
    with pytest.raises(BadRequestError):  # no provider configured (tests/runs/test_spec_generation.py has one)
        client.dataframer.specs.create(name="Generated", generation_objectives="support chats")

    run_id = _import(client, created.id)
    with pytest.raises(BadRequestError):
        client.dataframer.specs.delete(created.id)
    client.dataframer.specs.delete(created.id, force=True)
    assert not Spec.objects.exists()
    assert not Run.objects.filter(code=run_id).exists()
    with pytest.raises(NotFoundError):
        client.dataframer.specs.retrieve(created.id)


def test_delete_without_runs(client: Dataframer, company_a: Company) -> None:
    created = client.dataframer.specs.create(name="Empty", extra_body={"content_yaml": SPEC_YAML})
    client.dataframer.specs.delete(created.id)
    assert client.dataframer.specs.list() == []


def _import(client: Dataframer, spec_id: str) -> str:
    response = client.post(
        "/api/dataframer/runs/import/",
        body={"spec_id": spec_id, "samples": make_rows(4)},
        cast_to=httpx.Response,
    )
    assert response.status_code == 201
    return str(response.json()["id"])


def test_runs_through_the_client(client: Dataframer, company_a: Company) -> None:
    spec_id = client.dataframer.specs.create(name="Support", extra_body={"content_yaml": SPEC_YAML}).id
    assert spec_id
    run_id = _import(client, spec_id)

    [listed] = client.dataframer.runs.list()
    assert (listed.id, listed.status, listed.samples_completed, listed.spec_name) == (
        run_id,
        "SUCCEEDED",
        4,
        "Support",
    )
    run = client.dataframer.runs.retrieve(run_id)
    assert run.spec_id == spec_id
    assert run.spec_version == 1
    assert run.total_cost == 0
    assert run.runtime_params
    assert run.runtime_params.number_of_samples == 4
    files = run.generated_files or []
    assert [f.path for f in files] == [
        "sample_1.txt",
        "sample_2.txt",
        "sample_3.txt",
        "sample_4.txt",
    ]

    one = client.dataframer.runs.files.download(files[0].id or "", run_id=run_id)
    assert one.filename == "sample_1.txt"
    assert httpx.get(one.download_url or "").text.startswith("Customer 1:")
    everything = client.dataframer.runs.files.download_all(run_id)
    archive = httpx.get(everything.download_url or "").content
    assert len(archive) == everything.size_bytes
    assert "top_level.metadata" in zipfile.ZipFile(io.BytesIO(archive)).namelist()

    with pytest.raises(BadRequestError, match="Only PENDING or PROCESSING"):
        client.dataframer.runs.cancel(run_id)
    Run.objects.filter(code=run_id).update(status=Run.Status.PENDING)
    client.dataframer.runs.cancel(run_id)
    assert client.dataframer.runs.retrieve(run_id).status == "CANCELED"

    client.dataframer.runs.delete(run_id)
    assert client.dataframer.runs.list() == []
    with pytest.raises(NotFoundError):
        client.dataframer.runs.retrieve(run_id)
