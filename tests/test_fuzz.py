"""Schema fuzzing: schemathesis loads the schema the service serves at /api/schema/ and sends every documented
operation a bounded number of generated requests (valid and invalid), authenticated as the owner of a company with
a spec, a run, a finished evaluation and a queued guardrail evaluation. Every answer must be a non-5xx and must match the schema: its status code
is documented, its content type is documented and its body validates against the documented response schema.

`FUZZ_EXAMPLES` (default 50) bounds the generated examples per operation; Hypothesis is derandomized, so CI sees the
same requests on every run. The request goes through Django's WSGI handler inside the test's transaction (as the
test client does), so each operation starts from the same fixtures and nothing it writes outlives it: the DELETE
operations are fuzzed like the others, since each operation is its own test and what it deletes is back for the
next. For the same reason an evaluation created by POST stays queued (its on-commit work never runs), which keeps
the module fast.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from companies.models import ApiKey

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))

# Not fuzzed, and why:
# - POST /api/users/api-key/rotate revokes the key the fuzzer authenticates with (every later request a 401);
#   tests/companies covers it, its throttle included.
EXCLUDED = {("POST", "/api/users/api-key/rotate")}


schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler()).exclude(
    func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED
)

# Identifiers of the fixtures of the running test, by path parameter; a generated id is swapped for a real one
# half of the time (chosen by Hypothesis), so requests also reach the objects and not only the 404 branch.
REAL_IDS: dict[str, dict[str, str]] = {}


def _kind(path: str) -> str:
    for kind in ("evaluations", "runs", "specs"):
        if f"/{kind}/{{id}}" in path:
            return kind
    return ""


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    real = dict(path_parameters)
    for name in path_parameters:
        key = _kind(path) if name == "id" else name
        if key in REAL_IDS.get("current", {}):
            real[name] = REAL_IDS["current"][key]
    if real == path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, real])


@pytest.fixture
def _keep_connection() -> Any:
    """Requests run in the test's transaction, on its connection: the end of a request must not close it (what
    django.test.Client does too)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_key(_keep_connection: None, alice: Any, company_a: Any, spec_a: Any, run_a: Any, evaluate: Any) -> Any:
    from guardrails.services import guardrail_evaluation_create

    evaluation = evaluate(run_a)  # completed, by the offline judge
    guardrail = guardrail_evaluation_create(  # stays queued: its on-commit work is not run here
        company=company_a, created_by=alice, model_input={"user_prompt": "Hi"}, model_output="Hello"
    )
    sample = run_a.samples.order_by("position").first()
    from evaluations.services import ReviewInput, review_save

    [review] = review_save(
        evaluation=evaluation, reviewer=alice, items=[ReviewInput(sample.identifier, "sentiment", "neutral")]
    )
    REAL_IDS["current"] = {
        "specs": str(spec_a.code),
        "runs": str(run_a.code),
        "run_pk": str(run_a.code),
        "file_id": str(sample.code),
        "evaluations": str(evaluation.code),
        "evaluation_pk": str(evaluation.code),
        "review_id": str(review.code),
        "eval_id": guardrail.eval_id,
    }
    yield ApiKey.issue(company=company_a, user=alice, name="fuzz")[1]
    REAL_IDS.pop("current", None)


# Requests sent, by operation and by status code: printed at the end of the module (run with -s to see them).
SENT: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _figure() -> Iterator[None]:
    yield
    print(  # noqa: T201
        f"\nschema fuzzing: {len(SENT)} operations, {sum(SENT.values())} requests; "
        f"statuses {dict(sorted(STATUSES.items()))}; FUZZ_EXAMPLES={FUZZ_EXAMPLES}"
    )


CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz(case: Any, fuzz_key: str) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS)
    SENT[case.operation.label] += 1
    STATUSES[response.status_code] += 1
