from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_signs_in_sees_home_and_signs_out(live_server: Any, page: Any, alice: Any) -> None:
    page.goto(f"{live_server.url}/")
    assert page.url.startswith(f"{live_server.url}/login/")
    page.fill("#id_username", "alice@alpha.test")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    # Home is the active company's dashboard, with the user's companies below it.
    assert page.locator("h1").inner_text() == "Alpha Corp"
    assert "Alpha Corp" in page.locator("h2:has-text('Your companies') + table").inner_text()
    # htmx loads from our own static files; plotly.js (4.8 MB) only where there is a chart, and a home without
    # runs has none (tests/evaluations/test_layout.py checks the script tags).
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("typeof Plotly") == "undefined"
    page.click("text=Sign out")
    page.wait_for_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
