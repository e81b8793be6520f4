"""The analyst's walk in a real browser, at a desktop (1280 px) and a phone (390 px) width: home dashboard → an
evaluation → a heatmap cell → the filtered sample table → a sample page, its judge call, the next sample and back
(keys j / k) → the table (URL and table restored); compare two runs of one spec, with the second chosen as the
baseline, and its per-sample diff filtered; a guardrail evaluation created from its form; every page of the main
menu. Each step leaves a screenshot in test-artifacts/walk/<width>/ (CI keeps them in the checkout), and no page
scrolls sideways as a whole. The evaluation page's height is reported (printed, and in
test-artifacts/walk/<width>/heights.txt) and, at 1280 px, held to half of what it was before issue #25."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluations.models import SampleClassification
from runs.models import Run
from runs.services import run_import
from tests.conftest import make_rows, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "walk"
# The evaluation page of this walk at 1280 px before issue #25 (main at a28f5d5: help above the charts, the
# statistics and human review tables before them, two dropdowns per sample row), measured with this walk's data.
EVALUATION_PAGE_BEFORE_1280 = 5223
# A run name longer than a phone is wide: the evaluations list's run filter once grew to fit it (issue #25: 203 px).
LONG_RUN_NAME = "Second run of the support spec, with a name longer than any phone screen is wide"


class Walk:
    def __init__(self, page: Any, width: int) -> None:
        self.page = page
        self.width = width
        self.folder = ARTIFACTS / str(width)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.step = 0

    def shot(self, name: str) -> None:
        """A full-page screenshot, after checking that nothing makes the page wider than the screen."""
        self.page.wait_for_load_state("load")
        overflow = self.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        self.step += 1
        self.page.screenshot(path=str(self.folder / f"{self.step:02d}-{name}.png"), full_page=True)
        assert overflow <= 0, f"{name} at {self.width} px is {overflow} px wider than the screen"

    def height(self, name: str) -> int:
        """The page's height in CSS pixels, printed and kept beside the screenshots."""
        height = int(self.page.evaluate("document.documentElement.scrollHeight"))
        print(f"{name} at {self.width} px: {height} px tall")  # the figure the issue asks to report
        with (self.folder / "heights.txt").open("a") as out:
            out.write(f"{name}\t{self.width}\t{height}\n")
        return height


@pytest.mark.parametrize("width", [1280, 390])
def test_the_analysts_walk(
    live_server: Any, page: Any, alice: Any, company_a: Any, spec_a: Any, run_a: Run, evaluate: Any, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
    second_run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(12), name=LONG_RUN_NAME)
    first, second = evaluate(run_a), evaluate(second_run)
    # The second judge differs on one sample, so the comparison has a changed sample to show.
    judged = SampleClassification.objects.get(evaluation=first, sample__identifier="sample_3").classifications or {}
    SampleClassification.objects.filter(evaluation=second, sample__identifier="sample_3").update(
        classifications={**judged, "sentiment": "positive" if judged.get("sentiment") != "positive" else "neutral"}
    )
    url = live_server.url
    walk = Walk(page, width)
    sign_in_browser(page, url)

    # Home dashboard → the older evaluation (of run_a), from the recent evaluations.
    page.wait_for_selector("#chart-score-trend .main-svg")  # Plotly, loaded on demand by charts.js
    walk.shot("home")
    page.click(f"#recent-evaluations a[href='/evaluations/{first.code}/']")
    page.wait_for_selector("#chart-confusion-1 .main-svg")
    walk.shot("evaluation")
    height = walk.height("evaluation")
    if width == 1280:
        assert height <= EVALUATION_PAGE_BEFORE_1280 / 2, f"the evaluation page is {height} px tall at 1280 px"

    # The run page: its evaluations table with exact times, models and the compare picker.
    page.goto(f"{url}/runs/{run_a.code}/")
    page.wait_for_selector("#run-evaluations-table time")
    walk.shot("run")
    page.go_back()
    page.wait_for_selector("#chart-confusion-1 .main-svg")

    # A heatmap cell (assigned and judged negative: the second column of the middle row; the columns after the
    # values are "(undecided)" and, when some failed, "(failed)") filters the sample table.
    page.locator("#chart-confusion-1").scroll_into_view_if_needed()
    columns = page.evaluate("document.querySelector('#chart-confusion-1').data[0].x.length")
    box = page.locator("#chart-confusion-1 .nsewdrag").bounding_box()
    page.click("#chart-confusion-1 .nsewdrag", position={"x": box["width"] * 1.5 / columns, "y": box["height"] / 2})
    page.wait_for_url(lambda u: "property=sentiment&assigned=negative&judged=negative" in u)
    page.wait_for_selector("#chart-confusion-1 .main-svg")
    assert page.locator("select[name=assigned] option[selected]").inner_text() == "negative"
    filtered = page.url
    rows = page.locator("#classifications-table tbody td:first-child > a")
    count = rows.count()
    assert count >= 1
    page.locator("#classifications-table").scroll_into_view_if_needed()
    walk.shot("filtered-table")

    # A sample page: its judge call, then the next sample of the filtered set and back (keys), then the table
    # again: the same URL and the same filtered table.
    rows.first.click()
    page.wait_for_selector("#sample-values")
    assert "/samples/" in page.url
    assert "property=sentiment&assigned=negative&judged=negative" in page.url  # the table's filters came along
    assert page.locator("#sample-values .judge-rationale").count() >= 1
    assert page.inner_text("#sample-position") == f"1 of {count}"
    walk.shot("sample")
    page.click("#judge-call details.judge-call summary")
    assert "Classify this sample." in page.inner_text("#judge-call")
    walk.shot("judge-call")
    first_sample = page.url
    assert count >= 2  # four samples are assigned negative and judged so by the embedded judge
    page.keyboard.press("j")
    page.wait_for_url(lambda u: u != first_sample)
    page.wait_for_selector("#sample-values")
    assert page.inner_text("#sample-position") == f"2 of {count}"
    assert "judged=negative" in page.url
    walk.shot("sample-next")
    page.keyboard.press("k")
    page.wait_for_url(first_sample)
    for _ in range(3):  # the first sample (k), the next one (j), the first sample: the table is before them
        page.go_back()
    page.wait_for_selector("#classifications-table")
    assert page.url == filtered
    assert page.locator("select[name=judged] option[selected]").inner_text() == "negative"
    assert page.locator("#classifications-table tbody td:first-child > a").count() == count

    # Compare the two runs of the spec: tick both on the evaluations list.
    page.goto(f"{url}/evaluations/")
    page.check(f"input[name=e][value='{first.code}']")
    page.check(f"input[name=e][value='{second.code}']")
    walk.shot("evaluations-list")
    if width == 390:
        # The table scrolls within itself; its key column (the date, linking to the evaluation) stays in view.
        table = page.locator("#evaluations-table table")
        table.evaluate("t => { t.scrollLeft = t.scrollWidth; }")
        assert table.evaluate("t => t.scrollLeft") > 0
        key = page.locator("#evaluations-table tbody td.key").first.bounding_box()
        box = table.bounding_box()
        assert box["x"] - 1 <= key["x"] <= box["x"] + 1, (key, box)
        walk.shot("evaluations-list-scrolled")
    page.click("#compare-picker button[type=submit]")
    page.wait_for_selector("#compare-properties")
    page.wait_for_selector("#chart-compare-1 .main-svg")
    walk.shot("compare")
    # Choose the second evaluation as the baseline: it becomes A, and the diff is measured against it.
    page.click(f"a.rebase[href*='baseline={second.code}']")
    page.wait_for_url(lambda u: f"baseline={second.code}" in u)
    page.wait_for_selector("#chart-compare-1 .main-svg")
    assert second_run.name in page.inner_text(".compare-labels tbody tr:first-child")
    walk.shot("compare-baseline-chosen")
    # The per-sample diff: sample_3 changed; filtered to its kind, it is still there, and the CSV link follows.
    diff = page.inner_text("#diff-table")
    assert "sample_3" in diff
    kind = page.inner_text("#diff-table tbody tr:first-child td:nth-child(3)")
    page.select_option("#diff-filters select[name=kind]", kind)
    page.click("#diff-filters button[type=submit]")
    page.wait_for_url(lambda u: f"kind={kind}" in u)
    assert "sample_3" in page.inner_text("#diff-table")
    assert f"kind={kind}" in (page.get_attribute("#diff-filters a[download]", "href") or "")
    page.locator("#sample-diff").scroll_into_view_if_needed()
    walk.shot("sample-diff")

    # A guardrail evaluation from the list page's form.
    page.goto(f"{url}/guardrails/")
    page.fill("#id_user_prompt", "What is the capital of France?")
    page.fill("#id_model_output", "Paris is the capital of France.")
    page.fill("#id_nametag", f"walk-{width}")
    walk.shot("guardrail-form")
    page.click("#create-guardrail button[type=submit]")
    page.wait_for_url(lambda u: "/guardrails/eval-" in u)
    assert f"walk-{width}" in page.content()
    walk.shot("guardrail")

    # Every page of the main menu, none wider than the screen.
    for link in page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        if link.startswith("/api/"):
            continue  # the API's browsable docs: not our layout
        page.goto(f"{url}{link}")
        walk.shot("menu" + link.replace("/", "-").rstrip("-"))


def test_keyboard_tabs_past_the_charts(live_server: Any, page: Any, alice: Any, run_a: Run, evaluate: Any) -> None:
    """Plotly's toolbar buttons are out of the tab order: tabbing from before the first chart reaches the sample
    table's search box without landing on a single toolbar button."""
    evaluation = evaluate(run_a)
    url = live_server.url
    sign_in_browser(page, url)
    page.goto(f"{url}/evaluations/{evaluation.code}/")
    page.wait_for_selector("#chart-confusion-2 .main-svg")
    page.hover("#chart-distribution-1")  # the toolbar shows on hover
    page.wait_for_selector("#chart-distribution-1 .modebar-btn")
    assert page.locator(".modebar-btn").count() > 8  # several charts, several buttons each
    assert page.locator(".modebar-btn:not([tabindex='-1'])").count() == 0
    page.focus("a[href$='export.jsonl']")  # the last link before the charts
    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement;"
            " return [e.tagName, e.className && e.className.baseVal !== undefined ? '' : e.className,"
            " e.name || '', !!e.closest('.modebar')]; })()"
        )
        seen.append(focused)
        assert not focused[3], f"a chart toolbar button took the focus: {focused}"
        if focused[2] == "q":
            break
    assert seen[-1][2] == "q", seen
