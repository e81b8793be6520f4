"""Filters live in the URL: pushed into history by HTMX, restored as whole pages, and reached from the heatmaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import Client

from runs.models import Run

HX = {"HX-Request": "true"}
RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


def test_the_sample_filters_push_their_url(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    page = client.get(f"/evaluations/{evaluation.code}/").content.decode()
    assert (
        'hx-target="#classifications-table" hx-swap="outerHTML" hx-trigger="change, submit, input changed delay:500ms from:find input[name=q]" hx-push-url="true"'
        in page
    )


def test_each_heatmap_carries_its_filtered_table_url(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    page = client.get(f"/evaluations/{evaluation.code}/").content.decode()
    for name in ("sentiment", "priority"):
        assert f'data-heatmap-filter="/evaluations/{evaluation.code}/?property={name}"' in page
    script = (Path(settings.BASE_DIR) / "static/js/charts.js").read_text()
    assert "plotly_click" in script
    assert "&assigned=" in script
    assert "&judged=" in script


def test_a_filtered_url_opens_as_a_whole_page(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    url = f"/evaluations/{evaluation.code}/?property=sentiment&assigned=negative&judged=negative"
    page = client.get(url).content.decode()
    assert "<html" in page
    assert '<option value="negative" selected>' in page
    # HTMX asks for the whole page when going back to a URL it no longer has cached.
    restored = client.get(url, headers=RESTORE).content.decode()
    assert "<html" in restored
    partial = client.get(url, headers=HX).content.decode()
    assert "<html" not in partial


def test_lists_restore_whole_pages(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluate(run_a)
    client.force_login(alice)
    for url in ("/evaluations/?sort=score", f"/runs/{run_a.code}/?page=1", "/guardrails/?page=1"):
        assert "<html" in client.get(url, headers=RESTORE).content.decode(), url
        assert "<html" not in client.get(url, headers=HX).content.decode(), url
