"""Signed download links are short-lived and live only as long as the API key or session that made them."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from companies.models import ApiKey, Membership
from runs.models import Run

RUNS = "/api/dataframer/runs/"


def link(client: APIClient, run: Run, *, one_file: bool = True) -> str:
    path = (
        f"{RUNS}{run.code}/files/{run.samples.first().code}/download/"
        if one_file
        else f"{RUNS}{run.code}/files/download/"
    )  # type: ignore[union-attr]
    response = client.get(path)
    assert response.status_code == HTTPStatus.OK
    return str(response.json()["download_url"])


def test_it_keeps_links_short_lived(alice_api: APIClient, run_a: Run, time_machine: Any) -> None:
    assert settings.DOWNLOAD_URL_MAX_AGE <= 900
    url = link(alice_api, run_a)
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.DOWNLOAD_URL_MAX_AGE - 5))
    assert APIClient().get(url).status_code == HTTPStatus.OK
    time_machine.move_to(timezone.now() + timedelta(seconds=10))
    assert APIClient().get(url).status_code == HTTPStatus.NOT_FOUND


def test_it_ends_links_when_the_key_is_revoked(alice_api: APIClient, run_a: Run) -> None:
    urls = [link(alice_api, run_a), link(alice_api, run_a, one_file=False)]
    assert all(APIClient().get(url).status_code == HTTPStatus.OK for url in urls)
    ApiKey.objects.get(name="test", company=run_a.company).revoke()
    for url in urls:
        response = APIClient().get(url)
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert "no longer valid" in response.json()["detail"]


def test_it_ends_links_when_the_key_is_rotated(alice_api: APIClient, run_a: Run) -> None:
    url = link(alice_api, run_a)
    rotated = alice_api.post("/api/users/api-key/rotate")
    assert rotated.status_code == HTTPStatus.OK
    assert APIClient().get(url).status_code == HTTPStatus.NOT_FOUND


def test_it_ends_links_when_the_user_leaves_the_company(alice_api: APIClient, alice: Any, run_a: Run) -> None:
    url = link(alice_api, run_a)
    Membership.objects.filter(user=alice).delete()
    assert APIClient().get(url).status_code == HTTPStatus.NOT_FOUND


def test_it_binds_session_links_to_the_session(alice: Any, run_a: Run) -> None:
    browser = APIClient()
    browser.force_login(alice)
    url = link(browser, run_a)
    assert browser.get(url).status_code == HTTPStatus.OK
    # Another browser, even alice's own second session, cannot use it: it is not a presigned URL.
    other = APIClient()
    assert other.get(url).status_code == HTTPStatus.NOT_FOUND
    other.force_login(alice)
    assert other.get(url).status_code == HTTPStatus.NOT_FOUND
    browser.logout()
    assert browser.get(url).status_code == HTTPStatus.NOT_FOUND


def test_it_refuses_unbound_links(run_a: Run) -> None:
    from django.core import signing

    from runs.api.downloads import DOWNLOAD_SALT

    # What an older install (or anyone who knew the old constant SECRET_KEY) could make.
    token = signing.dumps({"run": str(run_a.code), "file": None}, salt=DOWNLOAD_SALT)
    assert APIClient().get(f"/api/dataframer/downloads/{token}/").status_code == HTTPStatus.NOT_FOUND
