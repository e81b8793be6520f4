"""Drill-down in a real browser: heatmap cell → filtered sample table → sample page → back."""

from __future__ import annotations

from typing import Any

import pytest

from runs.models import Run
from tests.conftest import sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_heatmap_cell_filters_the_table_and_back_returns(
    live_server: Any, page: Any, alice: Any, run_a: Run, evaluate: Any
) -> None:
    evaluation = evaluate(run_a)
    url = live_server.url
    sign_in_browser(page, url)

    page.goto(f"{url}/evaluations/{evaluation.code}/")
    page.wait_for_selector("#chart-confusion-1 .main-svg")
    # The centre of the 3 × 3 sentiment matrix (positive, negative, neutral): assigned and judged negative.
    page.click("#chart-confusion-1 .nsewdrag")
    page.wait_for_url(lambda u: "property=sentiment&assigned=negative&judged=negative" in u)
    assert page.locator("select[name=assigned] option[selected]").inner_text() == "negative"
    rows = page.locator("#classifications-table tbody a")
    assert rows.count() >= 1
    filtered = page.url

    rows.first.click()
    page.wait_for_selector("#sample-values")
    assert "/samples/" in page.url
    page.go_back()
    page.wait_for_selector("#classifications-table")
    assert page.url == filtered
