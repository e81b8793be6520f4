"""Which human labels teach the embedded judge, and the rule that keeps them out of that judge's error estimate.

The rule (cross-fitting, issue #20):
- Every sample belongs to one of two halves, fixed forever by its code: the *teaching* half when the first byte of
  sha256(sample code) is even, the *measuring* half otherwise. The split depends on nothing else (not the value,
  the judge, the stratum or the reviewer), so the measuring half's random labels stay a random subsample within
  every stratum, with the inclusion probabilities the design gave them halved alike.
- An evaluation by the embedded judge of a run of spec S may learn from the blind random labels
  (`selection == "random"`, `blind == True`) on teaching-half samples of any run of S, in this company, taken when
  it starts, one per sample and property (the oldest). They are listed in `evaluation.judge_plan["taught_review_ids"]` (and again in
  `statistics["embedded_judge"]["taught_review_ids"]` once it finishes): an estimate of *that* evaluation's error
  must leave those review ids out. Labels on the measuring half never teach, so they can always measure.
- Labels chosen by hand, by disagreement, through the API, or shown the judge's answer never teach: they are not a
  random sample of anything, and a taught judge would learn the reviewer's anchoring.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from uuid import UUID

from llm.embedded_plan import Taught
from runs.specfile import Property

from .models import Evaluation, Review

# Labels read per property: enough for the centroids, and a bound on the plan's cost (the oldest labels first,
# so a label added later never pushes out one that taught earlier evaluations).
MAX_TAUGHT = 400


def teaches(sample_code: UUID) -> bool:
    """Whether a sample's labels may teach the embedded judge (the teaching half), by its code alone."""
    return hashlib.sha256(str(sample_code).encode()).digest()[0] % 2 == 0


def teaching_labels(evaluation: Evaluation, properties: list[Property]) -> dict[str, Taught]:
    """Per property, the labels that may teach the judge of this evaluation (see the module's rule).

    Labels of values no longer in the property (an older spec version) are left out. Queries: one.
    """
    allowed = {p.name: set(p.values) for p in properties}
    rows = (
        Review.objects.filter(
            company_id=evaluation.company_id,
            sample__run__spec_id=evaluation.run.spec_id,
            selection=Review.Selection.RANDOM,
            blind=True,
            property_name__in=list(allowed),
        )
        .order_by("id")
        .values_list("id", "property_name", "value", "sample__code", "sample__content")
    )
    by_property: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    seen: set[tuple[str, UUID]] = set()
    for review_id, name, value, code, content in rows.iterator(chunk_size=2000):
        # One label per sample and property (the oldest): a second reviewer's label on the same text would sit in
        # the centroids while its twin is left out, and flatter the leave-one-out measure.
        if (
            value in allowed[name]
            and teaches(code)
            and (name, code) not in seen
            and len(by_property[name]) < MAX_TAUGHT
        ):
            seen.add((name, code))
            by_property[name].append((review_id, content, value))
    return {
        name: Taught(tuple(r[0] for r in labels), tuple(r[1] for r in labels), tuple(r[2] for r in labels))
        for name, labels in by_property.items()
    }
