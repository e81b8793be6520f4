"""One call to every API endpoint, on one representative object of each type: the responses the wire-shape
tests in test_schema.py pin, key by key and in order."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from runs.models import Run
from tests.conftest import SPEC_YAML, make_rows

SPECS = "/api/dataframer/specs/"
RUNS = "/api/dataframer/runs/"
EVALUATIONS = "/api/dataframer/evaluations/"
SEEDS = "/api/dataframer/seed-datasets/"
EVALUATE = "/evaluate"
GUARDRAIL_BODY = {
    "model_input": {"system_prompt": "Answer briefly.", "user_prompt": "What color is the sky?"},
    "model_output": "The sky is blue.",
    "run_mode": "economy",
    "guardrail_metrics": ["correctness", "completeness"],
    "nametag": "tour",
}


def api_tour(alice_api: APIClient, bob_api: APIClient, capture: Any) -> dict[str, Any]:
    """Name → response. `capture` is django_capture_on_commit_callbacks (tasks run inline, so evaluations finish)."""
    responses: dict[str, Any] = {}

    def call(name: str, method: str, url: str, data: Any = None, client: APIClient = alice_api) -> Any:
        responses[name] = (
            getattr(client, method)(url, data, format="json") if data is not None else getattr(client, method)(url)
        )
        return responses[name]

    # Specs
    spec_id = call("spec-create", "post", SPECS, {"name": "Support", "content_yaml": SPEC_YAML}).json()["id"]
    call("spec-update", "put", f"{SPECS}{spec_id}/", {"content_yaml": SPEC_YAML + "\n"})
    call("spec-list", "get", SPECS)
    call("spec-retrieve", "get", f"{SPECS}{spec_id}/")
    call("spec-retrieve-versions", "get", f"{SPECS}{spec_id}/?include_versions=true")
    call("spec-create-400", "post", SPECS, {"name": "Generated"})
    call("spec-create-400-fields", "post", SPECS, {"name": "Support", "content_yaml": SPEC_YAML})
    call("spec-retrieve-404", "get", f"{SPECS}00000000-0000-0000-0000-000000000000/")
    spare = alice_api.post(SPECS, {"name": "Spare", "content_yaml": SPEC_YAML}, format="json").json()["id"]
    call("spec-destroy", "delete", f"{SPECS}{spare}/")

    # Runs
    run_id = call("run-import", "post", f"{RUNS}import/", {"spec_id": spec_id, "samples": make_rows(6)}).json()["id"]
    call("run-list", "get", RUNS)
    run = call("run-retrieve", "get", f"{RUNS}{run_id}/").json()
    # Generation: the embedded judge does not write data (400); a provider's model does (the fakes play it).
    call(
        "run-create-400",
        "post",
        RUNS,
        {"spec_id": spec_id, "number_of_samples": 2, "generation_model": "local/embeddings"},
    )
    with capture(execute=True):
        generated = call("run-create", "post", RUNS, {"spec_id": spec_id, "number_of_samples": 2}).json()["id"]
    call("run-retrieve-generated", "get", f"{RUNS}{generated}/")
    alice_api.delete(f"{RUNS}{generated}/")  # the tour's other calls see the imported run alone
    call("run-file-download", "get", f"{RUNS}{run_id}/files/{run['generated_files'][0]['id']}/download/")
    call("run-files-download", "get", f"{RUNS}{run_id}/files/download/")
    call("run-cancel-400", "post", f"{RUNS}{run_id}/cancel/")
    call("run-import-400", "post", f"{RUNS}import/", {"spec_id": spec_id})

    # Evaluations: one created (PENDING, nothing run yet) and one run to the end.
    call("evaluation-create", "post", EVALUATIONS, {"run_id": run_id})
    with capture(execute=True):
        # The offline judge: it classifies every sample without a provider.
        body = {"run_id": run_id, "evaluation_model": "local/embeddings"}
        done = alice_api.post(EVALUATIONS, body, format="json").json()["id"]
    call("evaluation-retrieve", "get", f"{EVALUATIONS}{done}/")
    call("evaluation-list", "get", EVALUATIONS)
    call("evaluation-statistics", "get", f"{EVALUATIONS}{done}/statistics/")
    call("evaluation-compare", "get", f"{EVALUATIONS}{done}/compare/?baseline={done}")
    call("evaluation-meta", "patch", f"{EVALUATIONS}{done}/meta/", {"name": "Tour", "note": "Why it ran."})
    call("run-evaluations", "get", f"{RUNS}{run_id}/evaluations/")

    # Human reviews of the finished evaluation's samples.
    reviews = f"{EVALUATIONS}{done}/reviews/"
    label = {"sample_identifier": "sample_1", "property_name": "sentiment", "value": "neutral"}
    review_id = call("review-create", "post", reviews, label).json()["id"]
    call("review-create-list", "post", reviews, [{**label, "sample_identifier": "sample_2", "selection": "manual"}])
    call("review-list", "get", reviews)
    call("review-create-400", "post", reviews, [label, {**label, "value": "ecstatic"}])
    call("review-destroy", "delete", f"{reviews}{review_id}/")

    # A run canceled while it is being processed.
    Run.objects.filter(code=run_id).update(status=Run.Status.PROCESSING)
    call("run-cancel", "post", f"{RUNS}{run_id}/cancel/")
    spare_run = alice_api.post(f"{RUNS}import/", {"spec_id": spec_id, "samples": make_rows(1)}, format="json")
    call("run-destroy", "delete", f"{RUNS}{spare_run.json()['id']}/")

    # Guardrails: one created (queued), one run to the end, the list, a batch and the error shapes.
    call("guardrail-create", "post", EVALUATE, GUARDRAIL_BODY)
    with capture(execute=True):
        eval_id = alice_api.post(EVALUATE, GUARDRAIL_BODY, format="json").json()["eval_id"]
    call("guardrail-retrieve", "get", f"{EVALUATE}/{eval_id}")
    call("guardrail-list", "get", f"{EVALUATE}?page_size=1")
    call("guardrail-batch", "post", f"{EVALUATE}/batch", {"items": [GUARDRAIL_BODY]})
    call("guardrail-create-422", "post", EVALUATE, {"model_input": {"user_prompt": "q"}})
    call("guardrail-list-422", "get", f"{EVALUATE}?status=nope")
    call("guardrail-create-400", "post", EVALUATE, {**GUARDRAIL_BODY, "model_input": {}})
    call("guardrail-retrieve-404", "get", f"{EVALUATE}/eval-nope")

    # Seed datasets: multipart uploads (a ZIP, and files), the reads, a refused upload and a delete.
    seed_zip = io.BytesIO()
    with zipfile.ZipFile(seed_zip, "w") as archive:
        archive.writestr("reviews.csv", "text,label\ngreat,positive\nawful,negative\n")
    upload = SimpleUploadedFile("reviews.zip", seed_zip.getvalue(), content_type="application/zip")
    responses["seed-dataset-create-from-zip"] = alice_api.post(
        f"{SEEDS}create-from-zip/", {"name": "Reviews", "zip_file": upload}, format="multipart"
    )
    dataset = responses["seed-dataset-create-from-zip"].json()
    files = [SimpleUploadedFile(f"t{i}.txt", b"A ticket.") for i in range(2)]
    body = {"name": "Tickets", "dataset_type": "MULTI_FILE", "files[]": files}
    responses["seed-dataset-create"] = alice_api.post(f"{SEEDS}create/", body, format="multipart")
    call("seed-dataset-list", "get", SEEDS)
    call("seed-dataset-retrieve", "get", f"{SEEDS}{dataset['id']}/")
    call("seed-dataset-file-download", "get", f"{SEEDS}{dataset['id']}/files/{dataset['files'][0]['id']}/")
    not_zip = SimpleUploadedFile("bad.zip", b"not a zip")
    responses["seed-dataset-create-400"] = alice_api.post(
        f"{SEEDS}create-from-zip/", {"name": "Bad", "zip_file": not_zip}, format="multipart"
    )
    call("seed-dataset-destroy", "delete", f"{SEEDS}{responses['seed-dataset-create'].json()['id']}/")

    # Access errors, then the key rotation last (it revokes alice's key).
    call("spec-destroy-403", "delete", f"{SPECS}{spec_id}/", client=bob_api)
    call("spec-list-401", "get", SPECS, client=APIClient())
    call("api-key-rotate", "post", "/api/users/api-key/rotate")
    return responses
