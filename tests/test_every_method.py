"""Every page and API path answers every HTTP method with a 2xx, 3xx, 405 or other 4xx, never a 500 (OPTIONS
/api/docs/ once did): the URL configuration is walked, each pattern filled with real ids of company A's objects
(so requests reach the views, not only the 404 branch), and sent every method as a stranger and as who can
reach the view: alice signed in (pages), alice's API key (API) or a superuser (admin).

The walk is cut into PARTS tests (every PARTS-th path each), which pytest-xdist spreads over its processes: whole,
it was the suite's longest test (about 3,200 requests, 351 s on a loaded machine), ending `make test` alone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from companies.models import ApiKey
from config.errors import is_api_path

METHODS = ["get", "head", "post", "put", "patch", "delete", "options", "trace"]
# Sent last, as they end the session or revoke the key the later requests use.
LAST = {"logout", "api-key-rotate"}
UNUSUAL = ["put", "patch", "delete", "options", "trace"]
PARTS = 4


def patterns(resolvers: list[Any], namespace: str = "", route: str = "") -> Iterator[tuple[str, str, list[str]]]:
    """(name with namespaces, route, parameter names) of every named pattern."""
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from patterns(entry.url_patterns, inner, route + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", route + str(entry.pattern), list(entry.pattern.regex.groupindex)


@pytest.mark.parametrize("part", range(PARTS))
def test_every_path_answers_every_method_without_a_500(
    db: None, alice: Any, company_a: Any, spec_a: Any, run_a: Any, evaluate: Any, alice_api: APIClient, part: int
) -> None:
    from guardrails.services import guardrail_evaluation_create

    evaluation = evaluate(run_a)
    guardrail = guardrail_evaluation_create(
        company=company_a, created_by=alice, model_input={"user_prompt": "Hi"}, model_output="Hello"
    )
    sample = run_a.samples.order_by("position").first()
    other_key, _secret = ApiKey.issue(company=company_a, user=alice, name="revoked by the walk")
    by_kind = {
        "specs": spec_a.code, "runs": run_a.code, "evaluations": evaluation.code, "companies": company_a.code,
        "api-keys": other_key.code,
    }  # fmt: skip
    fixed = {
        "sample_code": sample.code, "file_id": sample.code, "run_pk": run_a.code, "evaluation_pk": evaluation.code,
        "review_id": uuid.uuid4(), "eval_id": guardrail.eval_id, "fmt": "csv", "token": "not-a-token",
        "object_id": "1", "app_label": "runs", "content_type_id": "1",
    }  # fmt: skip

    def value(route: str, name: str) -> Any:
        if name in fixed:
            return fixed[name]
        kind = re.sub(r"^(api/dataframer/\^?)", "", route).split("/")[0]
        return by_kind.get(kind, uuid.uuid4())

    urls = []
    for name, route, params in patterns(get_resolver().url_patterns):
        if "url" in params:  # the admin's catch-all: any path, already covered by the others
            continue
        urls.append((name.split(":")[-1] in LAST, reverse(name, kwargs={p: value(route, p) for p in params})))
    assert len(urls) > 150  # the walk found the admin's and our patterns
    stranger, signed_in, staff = Client(), Client(), Client()
    signed_in.force_login(alice)
    staff.force_login(User.objects.create_superuser("ops", "ops@example.test", "x"))
    failures = []
    # Sorted, then every PARTS-th: each part sends its own LAST paths after the others (its clients are its own).
    for _last, url in sorted(urls)[part::PARTS]:
        # Who can reach each view's code: a stranger everywhere, then alice's key (API), her session (pages) or, in
        # the admin, a superuser with the unusual methods (its GET and POST pages are Django's, and tests/test_admin
        # opens ours; rendering all ~110 of them costs a minute).
        if url.startswith("/admin/"):
            walks = [(stranger, METHODS), (staff, UNUSUAL)]
        else:
            walks = [(stranger, METHODS), (alice_api if is_api_path(url) else signed_in, METHODS)]
        for client, methods in walks:
            client.raise_request_exception = False
            for method in methods:
                status = getattr(client, method)(url).status_code
                if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                    failures.append(f"{method.upper()} {url} as {client.__class__.__name__}: {status}")
    assert failures == []
