"""The analyst's day in a real browser (Debian's Chromium via Playwright) against a live server and a real worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluations.models import Evaluation
from runs.models import Run
from tests.conftest import make_rows, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_import_evaluate_filter_export_and_manage_keys(
    live_server: Any, page: Any, alice: Any, spec_a: Any, worker: Any, tmp_path: Path
) -> None:
    url = live_server.url
    sign_in_browser(page, url)

    # Import a run through the upload form.
    samples = tmp_path / "samples.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in make_rows(40)))
    page.goto(f"{url}/runs/")
    page.select_option("#id_spec", label="Support")
    page.fill("#id_name", "Browser run")
    page.set_input_files("#id_file", str(samples))
    page.click("#import button[type=submit]")
    page.wait_for_selector("text=Imported 40 samples.")
    run = Run.objects.get(name="Browser run")
    assert page.url == f"{url}/runs/{run.code}/"

    # Start an evaluation; the worker runs it; progress is polled into the page until it completes. (Wait for the
    # page's scripts: a click before htmx is ready posts the form plainly, which lands on the evaluation page.)
    page.wait_for_load_state("load")
    page.select_option("#id_evaluation_model", "local/embeddings")
    page.click("button:has-text('Evaluate')")
    page.wait_for_selector("#evaluation-live .evaluation-progress")
    page.wait_for_selector("#evaluation-live .badge.SUCCEEDED", timeout=60_000)
    evaluation = Evaluation.objects.get(run=run)
    assert evaluation.status == "SUCCEEDED"
    assert evaluation.task_id

    # The evaluation page draws its charts (Plotly's SVG is in the page).
    page.click("#evaluation-live a")
    page.wait_for_selector("#chart-distribution-1 .main-svg")
    page.wait_for_selector("#chart-confusion-2 .main-svg")
    assert "Embedded judge (local/embeddings), not an LLM." in page.inner_text(".banner")

    # Filter the sample table to mismatches (an HTMX swap, no reload).
    total = page.inner_text("#classifications-count")
    assert total == "40 samples"
    # A mismatch is a judged value other than the assigned one; an undecided property is not one.
    expected = sum(
        1
        for c in evaluation.classifications.select_related("sample")
        if any(c.sample.properties[name] != value for name, value in (c.classifications or {}).items())
    )
    assert expected > 0
    with page.expect_response(lambda response: "mismatch=1" in response.url):
        page.check("input[name=mismatch]")
    page.wait_for_selector("input[name=mismatch]:checked")
    assert page.inner_text("#classifications-count") == f"{expected} sample{'s' if expected != 1 else ''}"
    assert page.locator("#classifications-table tbody tr").count() == min(expected, 25)
    assert page.locator("#classifications-table .mismatch").count() >= min(expected, 25)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "evaluation-page.png"), full_page=True)

    # Export CSV.
    with page.expect_download() as download_info:
        page.click("text=CSV")
    download = download_info.value
    exported = Path(download.path()).read_text().splitlines()
    assert exported[0].startswith("sample_identifier,status,assigned_sentiment")
    assert len(exported) == 41

    # Create an API key (shown once) and revoke it.
    page.click("text=API keys")
    page.fill("#id_name", "browser")
    page.click("text=Create key")
    secret = page.inner_text("#new-key-secret")
    assert len(secret) == 48
    page.goto(f"{url}/api-keys/")
    assert secret not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())  # revoking asks first
    page.click("#api-keys-table button:has-text('Revoke')")
    page.wait_for_selector("#api-keys-table .badge:has-text('revoked')")
