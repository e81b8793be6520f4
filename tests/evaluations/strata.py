"""A finished evaluation whose judged values are set by sample position: every stratum of the review queue
(judged values, undecided, failed with and without a row) has at least 3 samples."""

from __future__ import annotations

from evaluations.models import SampleClassification

# Judged sentiment by sample position in `strata_run`: every stratum has at least 3 samples, so equal allocation
# gives each exactly 3 of 15 labels (issue #27: the old fixture had an empty stratum, and the check an escape).
STRATA = {
    "positive": range(1, 21),
    "negative": range(21, 36),
    "neutral": range(36, 46),
    SampleClassification.UNDECIDED: range(46, 53),  # the judge abstained on sentiment
    SampleClassification.FAILED: range(53, 61),  # 53-56 failed; 57-60 have no row at all (a canceled chunk)
}


def stratum_of(position: int) -> str:
    return next(stratum for stratum, positions in STRATA.items() if position in positions)
