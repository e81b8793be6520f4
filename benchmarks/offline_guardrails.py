"""What the offline guardrail heuristic (guardrails/offline.py) still scores, and how often it is right, on
hand-labelled pass/fail cases (benchmarks/fixtures/offline_guardrails/cases.jsonl, written by hand for issue 23,
never tuned on).

A case is predicted to pass when its metric is judged and scores at least the `medium` automatic threshold of Defend
(guardrails/defend.py TOLERANCE_THRESHOLDS). Prints per metric: cases, declined (`"judged": false`), accuracy on the
judged ones, and false passes (labelled fail, scored pass: the costly error for a guardrail).

    python offline_guardrails.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES = Path(__file__).resolve().parent / "fixtures" / "offline_guardrails" / "cases.jsonl"


@dataclass
class Tally:
    cases: int = 0
    declined: int = 0
    right: int = 0
    false_passes: list[int] = field(default_factory=list)
    false_fails: list[int] = field(default_factory=list)

    @property
    def judged(self) -> int:
        return self.cases - self.declined


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]


def measure(cases: list[dict[str, Any]]) -> dict[str, Tally]:
    """Grade every case offline (with the same validation as a judge's answer) and tally it under its metric."""
    # Imported here, not at the top: Django is set up in main(), after this module loads (as every benchmark does).
    from guardrails.defend import TOLERANCE_THRESHOLDS
    from guardrails.offline import offline_answer
    from guardrails.rubrics import validate_grade

    tallies: dict[str, Tally] = {}
    for case in cases:
        metric = case["metric"]
        answer = offline_answer(
            metrics=(metric,), model_input=case["model_input"], model_output=case["model_output"], combined=False
        )
        grade = validate_grade(metric, answer)
        tally = tallies.setdefault(metric, Tally())
        tally.cases += 1
        if grade.get("judged") is False:
            tally.declined += 1
            continue
        passed = grade["score"] >= TOLERANCE_THRESHOLDS["medium"]
        if passed == (case["label"] == "pass"):
            tally.right += 1
        elif passed:
            tally.false_passes.append(case["id"])
        else:
            tally.false_fails.append(case["id"])
    return tallies


def main() -> None:
    cases = load_cases()
    tallies = measure(cases)
    print(f"Offline guardrail heuristic on {len(cases)} hand-labelled cases (pass = judged and score >= 0.75)")
    print(f"{'metric':<24}{'cases':>6}{'declined':>10}{'judged':>8}{'accuracy':>10}  false passes / false fails")
    total = Tally()
    for metric, t in tallies.items():
        accuracy = f"{t.right / t.judged:.0%}" if t.judged else "-"
        print(
            f"{metric:<24}{t.cases:>6}{t.declined:>10}{t.judged:>8}{accuracy:>10}  "
            f"{t.false_passes or '-'} / {t.false_fails or '-'}"
        )
        total.cases += t.cases
        total.declined += t.declined
        total.right += t.right
    print(f"{'all':<24}{total.cases:>6}{total.declined:>10}{total.judged:>8}{total.right / total.judged:>10.0%}")


if __name__ == "__main__":
    from common import setup_django  # the benchmarks' own folder is on the path only when run as a script

    setup_django()
    main()
