"""Schema fuzzing: schemathesis loads the schema the service serves at /api/schema/ and sends every documented
operation a bounded number of generated requests (valid and invalid), authenticated as the owner of a company with
a spec, a run, a finished evaluation and a queued guardrail evaluation. Every answer must be a non-5xx and must
match the schema: its status code is documented, its content type is documented and its body validates against the
documented response schema.

Generated requests almost never get past validation, so about half of the cases Hypothesis generates for a write
operation (it chooses which) are replaced by a valid request of that operation (VALID), and each write operation
must get some 2xx answers (its success path and response schema fuzzed too); the 2xx share per write operation is
printed at the end (run with -s). The request quotas are turned off for the module.

`FUZZ_EXAMPLES` (default 50) bounds the generated examples per operation. The requests are the same on every run:
Hypothesis is derandomized, and the fixtures' codes are fixed (a real id is part of a request); two runs, each
under its own random hash seed, gave the same count per operation and status. The request goes through Django's
WSGI handler inside the test's transaction (as the test client does), so each operation starts from the same
fixtures and nothing it writes outlives it: the DELETE operations are fuzzed like the others, since each operation
is its own test and what it deletes is back for the next. For the same reason an evaluation created by POST stays
queued (its on-commit work never runs), which keeps the module fast.
"""

from __future__ import annotations

import functools
import io
import os
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.python._constants.orchestrator import make_constants_value_source

from companies.models import ApiKey
from tests.conftest import SPEC_YAML, make_rows, new_alice, new_company_a, new_run_a, new_spec_a

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))

# Not fuzzed, and why:
# - POST /api/users/api-key/rotate revokes the key the fuzzer authenticates with (every later request a 401);
#   tests/companies covers it, its throttle included.
EXCLUDED = {("POST", "/api/users/api-key/rotate")}


schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler()).exclude(
    func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in EXCLUDED
)
# The test sends its own key: a generated (or mangled) Authorization header would be replaced, and a negative
# case then checked as if it had been sent.
schema.config.generation.update(with_security_parameters=False)

# Identifiers of the fixtures of the running test, by path parameter; a generated id is swapped for a real one
# half of the time (chosen by Hypothesis), so requests also reach the objects and not only the 404 branch.
REAL_IDS: dict[str, dict[str, str]] = {}


def _kind(path: str) -> str:
    for kind in ("evaluations", "anonymization-runs", "runs", "specs"):
        if f"/{kind}/{{id}}" in path:
            return kind
    return ""


def _well_formed(value: Any) -> bool:
    """A UUID, or `<prefix>-<uuid>` (DeepRails' wire ids)."""
    try:
        uuid.UUID(str(value)[-36:])
    except ValueError:
        return False
    return len(str(value)) == 36 or str(value)[:-36].endswith("-")


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    if not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    real = dict(path_parameters)
    for name, value in path_parameters.items():
        key = _kind(path) if name == "id" else name
        # Only a well-formed id is swapped: a malformed one is a negative case, which must stay malformed.
        if key in REAL_IDS.get("current", {}) and _well_formed(value):
            real[name] = REAL_IDS["current"][key]
    if real == path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, real])


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


GUARDRAIL = {"model_input": {"user_prompt": "Hi?"}, "model_output": "Hello.", "run_mode": "economy"}

# A valid request for each write operation, from the fixture's ids and a number drawn by Hypothesis (unique names):
# the fuzzer's own requests almost never get past validation (in one run none of them did), so without these the
# success branches and their response schemas would never be fuzzed. Parts: path_parameters, query, body,
# media_type. A new write operation needs an entry here (test_fuzz fails until it gets 2xx answers).
VALID: dict[str, Any] = {
    "POST /api/dataframer/specs/": lambda ids, n: {"body": {"name": f"fuzz {n}", "content_yaml": SPEC_YAML}},
    "PUT /api/dataframer/specs/{id}/": lambda ids, n: {
        "path_parameters": {"id": ids["specs"]},
        "body": {"content_yaml": SPEC_YAML.replace("Customer support", f"Support {n}")},
    },
    "DELETE /api/dataframer/specs/{id}/": lambda ids, n: {
        "path_parameters": {"id": ids["specs"]},
        "query": {"force": "true"},
    },
    "POST /api/dataframer/runs/": lambda ids, n: {"body": {"spec_id": ids["specs"], "number_of_samples": 1 + n % 5}},
    "POST /api/dataframer/runs/import/": lambda ids, n: {
        "body": {"spec_id": ids["specs"], "name": f"fuzz {n}", "samples": make_rows(2)}
    },
    "POST /api/dataframer/runs/{id}/cancel/": lambda ids, n: {"path_parameters": {"id": ids["pending_run"]}},
    "DELETE /api/dataframer/runs/{id}/": lambda ids, n: {"path_parameters": {"id": ids["runs"]}},
    "POST /api/dataframer/evaluations/": lambda ids, n: {"body": {"run_id": ids["runs"]}},
    "POST /api/dataframer/evaluations/{id}/cancel/": lambda ids, n: {
        "path_parameters": {"id": ids["queued_evaluation"]}
    },
    "POST /api/dataframer/evaluations/{evaluation_pk}/reviews/": lambda ids, n: {
        "path_parameters": {"evaluation_pk": ids["evaluations"]},
        "body": {
            "sample_identifier": ids["sample_identifier"],
            "property_name": "sentiment",
            "value": ["positive", "negative", "neutral"][n % 3],
        },
    },
    "DELETE /api/dataframer/evaluations/{evaluation_pk}/reviews/{review_id}/": lambda ids, n: {
        "path_parameters": {"evaluation_pk": ids["evaluations"], "review_id": ids["review_id"]}
    },
    "POST /api/dataframer/seed-datasets/create/": lambda ids, n: {
        "media_type": "multipart/form-data",
        "body": {"name": f"fuzz {n}", "dataset_type": "MULTI_FILE", "files": [b"one ticket", b"another ticket"]},
    },
    "POST /api/dataframer/seed-datasets/create-from-zip/": lambda ids, n: {
        "media_type": "multipart/form-data",
        "body": {"name": f"fuzz {n}", "zip_file": _zip({"data/a.txt": b"a ticket", "data/b.txt": b"another"})},
    },
    "DELETE /api/dataframer/seed-datasets/{id}/": lambda ids, n: {"path_parameters": {"id": ids["seed_dataset"]}},
    "POST /api/dataframer/anonymization-runs/": lambda ids, n: {
        "body": {"dataset_id": ids["seed_dataset"], "detection_method": "heuristics", "pii_types": ["email"]}
    },
    "DELETE /api/dataframer/anonymization-runs/{id}/": lambda ids, n: {
        "path_parameters": {"id": ids["anonymization-runs"]}
    },
    "POST /evaluate": lambda ids, n: {"body": GUARDRAIL},
    "POST /evaluate/batch": lambda ids, n: {"body": {"items": [GUARDRAIL] * (1 + n % 3)}},
    "POST /evaluate/{eval_id}/cancel": lambda ids, n: {"path_parameters": {"eval_id": ids["eval_id"]}},
}


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """About half of the cases of a write operation (Hypothesis chooses which) are replaced by its valid request."""
    valid = VALID.get(context.operation.label)
    if valid is None:
        return st.just(case)

    def build(n: int) -> Any:
        parts = valid(REAL_IDS["current"], n)
        media_type = parts.get("media_type", "application/json" if "body" in parts else None)
        body = {"body": parts["body"]} if "body" in parts else {}
        return context.operation.Case(
            path_parameters=parts.get("path_parameters", {}),
            query=parts.get("query", {}),
            media_type=media_type,
            **body,
        )

    return st.one_of(st.just(case), st.integers(min_value=0, max_value=999).map(build))


@pytest.fixture
def _keep_connection() -> Any:
    """Requests run in the test's transaction, on its connection: the end of a request must not close it (what
    django.test.Client does too)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _fixed_code(model: Any, pk: int, number: int) -> str:
    """Give a fixture row a fixed code: the requests, real ids included, are then the same on every run."""
    code = uuid.UUID(int=number)
    model._default_manager.filter(pk=pk).update(code=code)
    return str(code)


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, str]]:
    """The company the fuzzer acts for, built once for the module (it was 8.7 s of the module's 59 s of CPU when
    each of the 63 operations built its own): a spec, a run, a finished evaluation with a review, a queued guardrail
    evaluation, a queued evaluation, a pending run, a seed dataset and an anonymization run. Returns their ids (and
    the API key's secret). Built in a transaction of its own that is rolled back at the end of the module: each
    operation's test runs in a savepoint inside it (pytest-django's), so what one operation deletes or changes is
    back for the next, as when each built its own."""
    from django.db import transaction
    from django.test import TestCase

    from anonymization.models import AnonymizationRun
    from evaluations.models import Evaluation, Review
    from evaluations.reviewing import ReviewInput, review_save
    from evaluations.services import evaluation_create
    from guardrails.models import GuardrailEvaluation
    from guardrails.services import guardrail_evaluation_create
    from runs.generation import run_generate
    from runs.models import Run, SeedDataset, Spec

    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as env, transaction.atomic():
        for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            env.delenv(name, raising=False)  # the finished evaluation is judged offline, never by a provider
        company = new_company_a()
        alice = new_alice(company)
        spec = new_spec_a(company, alice)
        run = new_run_a(company, alice, spec)
        with TestCase.captureOnCommitCallbacks(execute=True):  # completed, by the offline judge
            evaluation = evaluation_create(company=company, created_by=alice, run=run)
        # Created outside captureOnCommitCallbacks: their on-commit work never runs, so they stay queued (or
        # pending) and can be canceled.
        guardrail = guardrail_evaluation_create(
            company=company, created_by=alice, model_input={"user_prompt": "Hi"}, model_output="Hello"
        )
        queued = evaluation_create(company=company, created_by=alice, run=run)
        env.setenv("ANTHROPIC_API_KEY", "test-anthropic-key")  # a writer is configured (its work never runs)
        pending = run_generate(company=company, created_by=alice, spec=spec, number_of_samples=3)
        dataset = SeedDataset.objects.create(company=company, name="Spare", dataset_type="MULTI_FILE")
        anonymization = AnonymizationRun.objects.create(
            company=company, dataset=dataset, dataset_name=dataset.name, detection_method="heuristics", threshold=0.5,
            pii_types=["email"], status=AnonymizationRun.Status.SUCCEEDED,
        )  # fmt: skip
        sample = run.samples.order_by("position").first()
        [review] = review_save(
            evaluation=evaluation, reviewer=alice, items=[ReviewInput(sample.identifier, "sentiment", "neutral")]
        )
        run_code = _fixed_code(Run, run.pk, 1)
        evaluation_code = _fixed_code(Evaluation, evaluation.pk, 3)
        yield {
            "specs": _fixed_code(Spec, spec.pk, 2),
            "runs": run_code,
            "run_pk": run_code,
            "file_id": _fixed_code(type(sample), sample.pk, 4),
            "evaluations": evaluation_code,
            "evaluation_pk": evaluation_code,
            "review_id": _fixed_code(Review, review.pk, 5),
            "eval_id": GuardrailEvaluation.ID_PREFIX + _fixed_code(GuardrailEvaluation, guardrail.pk, 9),
            "anonymization-runs": _fixed_code(AnonymizationRun, anonymization.pk, 10),
            # Only for the valid cases of the write operations (VALID above):
            "queued_evaluation": _fixed_code(Evaluation, queued.pk, 6),
            "pending_run": _fixed_code(Run, pending.pk, 7),
            "seed_dataset": _fixed_code(SeedDataset, dataset.pk, 8),
            "sample_identifier": sample.identifier,
            "key": ApiKey.issue(company=company, user=alice, name="fuzz")[1],
        }
        transaction.set_rollback(True)


@pytest.fixture
def fuzz_key(
    _keep_connection: None,
    fuzz_world: dict[str, str],
    fake_anthropic: Any,  # a provider is configured: a valid POST runs/ is accepted (its work never runs here)
    settings: Any,
) -> Any:
    # The request quotas would answer most of the fuzzer's requests 429 (tests/companies/test_quotas.py tests them).
    settings.API_REQUESTS_PER_MINUTE = settings.API_REQUESTS_PER_MINUTE_PER_KEY = 0
    settings.API_CONCURRENT_REQUESTS_PER_COMPANY = settings.MAX_EVALUATIONS_IN_FLIGHT = 0
    REAL_IDS["current"] = fuzz_world
    yield fuzz_world["key"]
    REAL_IDS.pop("current", None)


# Requests sent and 2xx answers, by operation, and answers by status code: printed at the end of the module (run
# with -s to see them).
SENT: Counter[str] = Counter()
SUCCEEDED: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _figure() -> Iterator[None]:
    yield
    shares = ", ".join(f"{label} {SUCCEEDED[label]}/{SENT[label]}" for label in sorted(VALID) if SENT[label])
    print(  # noqa: T201
        f"\nschema fuzzing: {len(SENT)} operations, {sum(SENT.values())} requests; "
        f"statuses {dict(sorted(STATUSES.items()))}; FUZZ_EXAMPLES={FUZZ_EXAMPLES}\n2xx per write operation: {shares}"
    )


@pytest.fixture(autouse=True)
def _a_write_gets_through() -> Iterator[None]:
    """After each operation's examples (one test each): a write operation got some 2xx answers, so its success
    path and response schema were fuzzed too, not only its validation errors."""
    sent_before = SENT.copy()
    yield
    for label in SENT - sent_before:
        if label in VALID and SUCCEEDED[label] == 0:
            pytest.fail(f"{label}: none of {SENT[label]} requests got a 2xx answer")


# Every check schemathesis has (issue 22): the answer's own conformance, what the schema forbids is refused, auth
# is not ignored, an undocumented method gets a 405 with Allow, headers as documented; but positive_data_acceptance
# (whatever the schema allows gets a 2xx): the business rules answer a 400 naming the rule for requests no schema
# can rule out (spec YAML without a `spec:` root, canceling a finished run, a guardrail request with no prompt).
schemathesis.checks.load_all_checks()
CHECKS = [check for check in schemathesis.checks.CHECKS.get_all() if check.__name__ != "positive_data_acceptance"]


@settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def _send(case: Any, fuzz_key: str) -> None:
    response = case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS)
    SENT[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    if HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
        SUCCEEDED[case.operation.label] += 1


def _operations() -> list[Any]:
    """The schema's operations; one it cannot describe fails the collection with schemathesis's reason."""
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


@functools.cache
def _feedback() -> FeedbackSources:
    return FeedbackSources(constants_value_source=make_constants_value_source(schema))


# One test per operation, as `@schema.parametrize()` makes them, but each operation's Hypothesis test (its
# coverage cases included) is built when it runs, not at collection: the plugin built all 63 in every xdist process
# before any test could start (1.4 s of CPU each, six processes on two cores), though each process runs a few.
# The build is the plugin's own (`build_operation_test`, schemathesis is pinned): the same operations and the same
# number of requests each. The examples differ from the plugin's, since Hypothesis derandomizes from the test
# function (here `_send`), and are the same on every run.
@pytest.mark.django_db
@pytest.mark.parametrize("operation", _operations(), ids=lambda operation: operation.label)
def test_fuzz(operation: Any, fuzz_key: str) -> None:
    test = build_operation_test(
        config=schema.config, operation=operation, test_func=_send, given_kwargs={}, feedback=_feedback()
    )
    test(fuzz_key=fuzz_key)
