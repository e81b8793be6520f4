"""`manage.py gate --company NAME --baseline ID --candidate ID`: the regression gate for CI (README: Regression gate).

Exit status: 0 PASS, 1 REGRESSION, 2 the gate could not run (unknown company or evaluation, unfinished, another
spec), so a pipeline tells "worse" from "misconfigured".
"""

from __future__ import annotations

import json
import sys
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandParser

from companies.models import Company
from evaluations.gate import REGRESSION, GateError, gate_compare
from evaluations.models import Evaluation

EXIT_REGRESSION, EXIT_UNUSABLE = 1, 2


class Command(BaseCommand):
    help = "Compare a candidate evaluation with a baseline; exit 1 on a regression (thresholds: GATE_* settings)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", required=True, help="company name (case and surrounding spaces ignored)")
        parser.add_argument("--baseline", required=True, help="the baseline evaluation's id")
        parser.add_argument("--candidate", required=True, help="the candidate evaluation's id")
        parser.add_argument("--json", action="store_true", help="print the API's compare answer instead of a table")

    def _fail(self, message: str) -> None:
        self.stderr.write(f"gate: {message}")
        sys.exit(EXIT_UNUSABLE)

    def _evaluation(self, company: Company, role: str, raw: str) -> Evaluation:
        try:
            code = UUID(raw)
        except ValueError:
            self._fail(f"--{role} {raw!r} is not an evaluation id.")
        found = Evaluation.objects.for_company(company).select_related("run").filter(code=code).first()
        if found is None:
            self._fail(f"no evaluation {raw} in {company.name}.")
        return found  # type: ignore[return-value]

    def handle(self, *args: Any, **options: Any) -> None:
        company = Company.objects.named(options["company"]).first()
        if company is None:
            self._fail(f"no company named {options['company']!r}.")
        assert company is not None  # _fail exits; this tells mypy
        baseline = self._evaluation(company, "baseline", options["baseline"])
        candidate = self._evaluation(company, "candidate", options["candidate"])
        try:
            changes = gate_compare(baseline=baseline, candidate=candidate)
        except GateError as exc:
            self._fail(str(exc))
        if options["json"]:
            self.stdout.write(json.dumps(changes, indent=2))
        else:
            self.stdout.write(report(changes, baseline=baseline, candidate=candidate))
        if changes["verdict"] == REGRESSION:
            sys.exit(EXIT_REGRESSION)


def _pp(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def report(changes: dict[str, Any], *, baseline: Evaluation, candidate: Evaluation) -> str:
    """The changes as text: the score, per property TVD and agreement (with its 95% interval), every check."""
    score = changes["score"]
    lines = [
        f"baseline   {baseline.display_name} ({changes['baseline']})",
        f"candidate  {candidate.display_name} ({changes['candidate']})",
        f"score      {score['baseline']} -> {score['candidate']} ({_pp(score['delta'])} points)",
    ]
    for prop in changes["properties"]:
        agreement = prop["agreement"]
        interval = agreement["interval"]
        ci = f" [{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else ""
        mark = " *" if agreement["significant"] else ""
        lines.append(
            f"{prop['property_name']}: TVD {_pp(prop['tvd']['delta'])} pp, agreement {_pp(agreement['delta'])} pp{ci}{mark}"
        )
    for check in changes["checks"]:
        where = f" {check['property_name']}" if check["property_name"] else ""
        outcome = "FAIL" if check["failed"] else "ok"
        lines.append(f"  {outcome:4} {check['check']}{where}: {_pp(check['change'])} (limit {check['threshold']:g})")
    lines.append(f"verdict: {changes['verdict']}")
    return "\n".join(lines)
