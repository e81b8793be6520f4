from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from runs.models import Run

PLOTLY_TAG = '<script src="/static/vendor/plotly.min.js"'


def test_plotly_loads_only_on_pages_with_charts(client: Client, alice: Any, run_a: Run, evaluate: Any) -> None:
    evaluation = evaluate(run_a)
    client.force_login(alice)
    keys = client.get(reverse("companies:api-keys"))
    assert keys.status_code == HTTPStatus.OK
    assert PLOTLY_TAG not in keys.content.decode()
    for url in (f"/evaluations/{evaluation.code}/", f"/runs/{run_a.code}/", "/evaluations/"):
        page = client.get(url).content.decode()
        assert (PLOTLY_TAG in page) == (url != "/evaluations/"), url


def test_every_page_links_the_favicon(client: Client, alice: Any) -> None:
    client.force_login(alice)
    page = client.get(reverse("companies:api-keys")).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert finders.find("favicon.svg")
    login = Client().get(reverse("login")).content.decode()
    assert 'rel="icon"' in login
