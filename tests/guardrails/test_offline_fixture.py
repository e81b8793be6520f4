"""The offline guardrail heuristic on the hand-labelled cases of benchmarks/offline_guardrails.py (issue 23): what it
still scores, it scores mostly right; where it cannot check a metric it declines instead of passing it."""

from __future__ import annotations

from collections import Counter

from benchmarks.offline_guardrails import load_cases, measure
from guardrails.metrics import METRICS
from guardrails.offline import offline_answer


def test_the_fixture_has_at_least_40_labelled_cases_of_both_kinds_for_every_metric() -> None:
    cases = load_cases()
    assert len(cases) >= 40
    assert len({c["id"] for c in cases}) == len(cases)
    kinds = Counter((c["metric"], c["label"]) for c in cases)
    for metric in METRICS:
        assert kinds[(metric, "pass")] >= 2
        assert kinds[(metric, "fail")] >= 2


def test_what_it_still_scores_it_mostly_gets_right() -> None:
    tallies = measure(load_cases())
    judged = sum(t.judged for t in tallies.values())
    right = sum(t.right for t in tallies.values())
    assert right / judged >= 0.9  # measured 92% (36 of 39) when written
    # The checks it can make mechanically never pass an output a person failed.
    for metric in ("completeness", "instruction_adherence", "ground_truth_adherence"):
        assert tallies[metric].false_passes == []


def test_the_issue_s_example_is_no_longer_a_perfect_answer() -> None:
    """'About two weeks' against a system prompt saying refunds take 5 days: declined on instruction adherence,
    failed on context adherence (it was 1.00 and 1.00 on instruction adherence and completeness before)."""
    cases = {c["id"]: c for c in load_cases()}
    assert cases[24]["model_output"] == cases[25]["model_output"] == "Refunds take about two weeks."
    instruction = measure([cases[24]])["instruction_adherence"]
    context = measure([cases[25]])["context_adherence"]
    assert (instruction.declined, instruction.false_passes) == (1, [])
    assert (context.right, context.false_passes) == (1, [])
    # Failed for the right reason: "two" is read as the number 2, which the prompt's 5 contradicts.
    answer = offline_answer(
        metrics=("context_adherence",),
        model_input=cases[25]["model_input"],
        model_output=cases[25]["model_output"],
        combined=False,
    )
    assert [v["verdict"] for v in answer["verdicts"]] == ["contradicted"]
