"""A strict Content-Security-Policy on every page (config/security.py), and the pages working under it: no inline
script or handler in any page we render, and in a real browser no violation while charts, HTMX and the API docs
draw."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client

from tests.conftest import sign_in_browser

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def pages(run: Any, evaluation: Any) -> list[str]:
    return [
        "/", "/specs/", f"/specs/{run.spec.code}/", "/runs/", f"/runs/{run.code}/", "/evaluations/",
        f"/evaluations/{evaluation.code}/", f"/evaluations/{evaluation.code}/review/", "/guardrails/", "/api-keys/",
        "/usage/", "/seed-datasets/", "/api/docs/", "/admin/",
    ]  # fmt: skip


def test_every_page_sends_the_policy_and_has_no_inline_script(
    client: Client, alice: Any, run_a: Any, evaluate: Any
) -> None:
    evaluation = evaluate(run_a)
    for path in ["/login/", "/admin/login/"]:  # signed out
        assert "script-src 'self'" in client.get(path)["Content-Security-Policy"]
    client.force_login(alice)
    for path in pages(run_a, evaluation):
        response = client.get(path, follow=True)
        assert response.status_code == HTTPStatus.OK, path
        assert "script-src 'self';" in response["Content-Security-Policy"], path
        html = response.content.decode()
        assert not INLINE_SCRIPT.findall(html), (path, INLINE_SCRIPT.findall(html))
        assert not INLINE_HANDLER.findall(html), (path, INLINE_HANDLER.findall(html))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_pages_work_under_the_policy_in_a_browser(
    live_server: Any, page: Any, alice: Any, run_a: Any, evaluate: Any
) -> None:
    evaluation = evaluate(run_a)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    sign_in_browser(page, live_server.url)
    page.wait_for_selector("#chart-score-trend .main-svg")  # Plotly, loaded by charts.js, drawn
    page.goto(f"{live_server.url}/evaluations/{evaluation.code}/", wait_until="domcontentloaded")
    page.wait_for_selector("#chart-confusion-1 .main-svg")
    page.goto(f"{live_server.url}/api/docs/", wait_until="domcontentloaded")
    page.wait_for_selector(".swagger-ui .info")  # the split view's script ran
    for path in pages(run_a, evaluation):
        page.goto(f"{live_server.url}{path}", wait_until="domcontentloaded")
    page.wait_for_timeout(500)  # the last page's deferred scripts run
    assert violations == []
