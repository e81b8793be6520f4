from __future__ import annotations

from typing import Any

import pytest

from evaluations.analysis import analyse
from evaluations.models import Evaluation, SampleClassification
from tests.conftest import make_rows
from tests.evaluations.strata import stratum_of


@pytest.fixture
def strata_run(alice: Any, company_a: Any, spec_a: Any, evaluate: Any) -> Evaluation:
    """A finished evaluation of 60 samples whose judged sentiment is set by position (STRATA)."""
    from runs.services import run_import

    evaluation = evaluate(run_import(company=company_a, created_by=alice, spec=spec_a, rows=make_rows(60)))
    for row in SampleClassification.objects.filter(evaluation=evaluation).select_related("sample"):
        stratum = stratum_of(row.sample.position)
        if row.sample.position >= 57:
            row.delete()
        elif stratum == SampleClassification.FAILED:
            row.status, row.classifications = SampleClassification.Status.FAILED, None
            row.save()
        else:
            row.classifications = {"priority": "low"} | (
                {} if stratum == SampleClassification.UNDECIDED else {"sentiment": stratum}
            )
            row.save()
    # The statistics as the judge would have stored them for these classifications.
    evaluation.distribution_analysis, evaluation.statistics, evaluation.conformance_score = analyse(evaluation)
    evaluation.save()
    return evaluation
