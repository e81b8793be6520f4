"""The review queue in a real browser (Debian's Chromium via Playwright): ten blind labels with the keyboard (the
judged value is not on the page before the answer and is after it), an undo, then kappa on the evaluation page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evaluations import agreement
from evaluations.models import Review, SampleClassification
from runs.models import Sample
from tests.conftest import make_rows, sign_in_browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VALUES = ["positive", "negative", "neutral"]
LABELS = 10
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The card's text less its label buttons (they name every value), the previous sample's reveal and an "Undone:"
# line (the reviewer's own label): what is left must name no value, judged or assigned.
CARD_TEXT = """() => {
  const card = document.querySelector('#review-card').cloneNode(true);
  card.querySelectorAll('form.review-values, #review-reveal, #review-undone').forEach((node) => node.remove());
  return card.textContent;
}"""
EVERY_VALUE = [*VALUES, "high", "medium", "low", SampleClassification.UNDECIDED, SampleClassification.FAILED]


def test_ten_labels_with_the_keyboard_then_kappa(
    live_server: Any, page: Any, alice: Any, company_a: Any, spec_a: Any, evaluate: Any, monkeypatch: Any
) -> None:
    # Ten labels are enough for the estimates in this test (the real minimum is 30).
    monkeypatch.setattr(agreement, "MIN_REVIEWS", LABELS)
    from runs.services import run_import

    run = run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(30))
    evaluation = evaluate(run, "local/embeddings")
    url = live_server.url
    sign_in_browser(page, url)

    # The evaluation page links to the queue.
    page.goto(f"{url}/evaluations/{evaluation.code}/")
    page.click("text=Open the review queue")
    page.wait_for_selector("#review-progress")
    page.wait_for_load_state("load")  # review.js and htmx are ready
    assert f"0 of {LABELS} reviews for sentiment" in page.inner_text("#review-progress")

    def press_the_true_value() -> None:
        identifier = page.inner_text("#review-sample").split()[0]
        sample = Sample.objects.get(run=run, identifier=identifier)
        truth = sample.properties["sentiment"]
        judged = SampleClassification.objects.get(evaluation=evaluation, sample=sample).stratum("sentiment")
        # Blind: neither the judged nor the assigned value (nor any other) is on the card before the answer.
        card = page.evaluate(CARD_TEXT)
        assert identifier in card
        assert "what the judge said appears once you answer" in card
        assert not [value for value in EVERY_VALUE if value in card], card
        page.keyboard.press(str(VALUES.index(truth) + 1))
        # The answer: what the judge said of this sample, then the next card.
        reveal = page.wait_for_selector(f"#review-reveal:has-text('{identifier}: you said')")
        assert f"judged {judged} · assigned {truth}" in reveal.inner_text()

    for done in range(1, LABELS + 1):
        press_the_true_value()
        page.wait_for_selector(f"#review-progress:has-text('{done} of {LABELS} reviews')")
    assert Review.objects.filter(selection="random").count() == LABELS

    # u undoes the last label (the sample comes back); a key labels it again.
    page.keyboard.press("u")
    page.wait_for_selector(f"#review-progress:has-text('{LABELS - 1} of {LABELS} reviews')")
    # Waited for: on a loaded machine the key can reach the undo button before HTMX has taken over the new card; the
    # form then posts plainly, and the page after the redirect shows the same line (CI saw that path twice).
    page.wait_for_selector("#review-undone")
    assert "Undone: sentiment = " in page.inner_text("#review-undone")
    press_the_true_value()
    page.wait_for_selector(f"#review-progress:has-text('{LABELS} of {LABELS} reviews')")
    # → skips without labelling.
    before = page.inner_text("#review-sample")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("before => document.querySelector('#review-sample').innerText !== before", arg=before)
    assert Review.objects.count() == LABELS
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

    page.click("text=Done: see the results")
    page.wait_for_selector("#human-review")
    kappa = page.inner_text("#human-review tbody tr:first-child .kappa")
    assert "[" in kappa  # the kappa and its interval
    assert "fit for use" in page.inner_text("#human-review")
    page.wait_for_selector("#chart-distribution-1 .main-svg")
    page.locator("#human-review").screenshot(path=str(ARTIFACTS / "human-review.png"))
    page.locator("#property-1").screenshot(path=str(ARTIFACTS / "corrected-bars.png"))
