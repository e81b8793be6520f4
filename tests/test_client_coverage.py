"""Every call of both official clients is listed in the README's table "What the official clients can call", and
answers as listed: a served call is answered by its view (whatever the status for the made-up arguments used
here, never a 5xx), an unserved one with the JSON 404 `not_implemented` of config/unserved.py.

The calls are found by walking the clients' resources, so a call the table forgets fails here.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import dataframer
import deeprails
import httpx
import pytest
from dataframer._resource import SyncAPIResource as DataframerResource
from deeprails._resource import SyncAPIResource as DeeprailsResource

from companies.models import ApiKey, Company
from tests.test_readme import README, markdown_table_after

CLIENTS = {
    "df": (dataframer.Dataframer, DataframerResource, dataframer.APIStatusError),
    "dr": (deeprails.Deeprails, DeeprailsResource, deeprails.APIStatusError),
}


def calls(obj: Any, path: str, resource: type) -> Iterator[tuple[str, Any]]:
    """(dotted name, bound method) of every call under `obj`: public methods of its resources, depth first."""
    for name in sorted(dir(obj)):
        if name.startswith(("_", "with_")):
            continue
        static = inspect.getattr_static(obj, name)
        if inspect.isfunction(static):
            if isinstance(obj, resource):
                yield f"{path}.{name}", getattr(obj, name)
        elif isinstance(static, property | resource) or type(static).__name__ == "cached_property":
            child = getattr(obj, name)
            if isinstance(child, resource):
                yield from calls(child, f"{path}.{name}", resource)


def made_up(parameter: inspect.Parameter) -> Any:
    """Some value of the parameter's type: enough for the client to send the request."""
    kind = str(parameter.annotation)
    if parameter.name.endswith("_id") or parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
        return str(uuid.uuid4())
    if "Literal[" in kind:
        return kind.split("Literal[", 1)[1].split("'")[1]
    if "FileTypes" in kind:
        return ("upload.zip", b"not a zip")
    for marker, value in (("List", []), ("SequenceNotStr", []), ("Dict", {}), ("ModelInput", {}), ("int", 1)):
        if marker in kind:
            return value
    return "x"


def listed() -> dict[str, tuple[str, str]]:
    """The README's table: call -> (answer, what the service does)."""
    return {
        row[0].strip("`"): (row[1], row[2]) for row in markdown_table_after("## What the official clients can call")
    }


def every_call() -> list[str]:
    names = []
    for prefix, (client_class, resource, _error) in CLIENTS.items():
        client = client_class(base_url="http://127.0.0.1:1", api_key="unused")
        names += [name for name, _method in calls(client, prefix, resource)]
    return names


def test_the_table_lists_every_call_of_both_clients_once() -> None:
    table = [row[0].strip("`") for row in markdown_table_after("## What the official clients can call")]
    assert len(table) == len(set(table))
    assert sorted(table) == sorted(every_call())
    # The counts in the paragraph above the table are the table's.
    served = sum(1 for answer, _what in listed().values() if answer == "served")
    if served == len(table):
        assert f"{len(table)} in all, and all {served} are served." in README
        assert f"for all {served} of their calls" in README  # the introduction's figure
    else:
        assert f"{len(table)} in all: {served} are served; the other {len(table) - served} " in README
        assert f"for {served} of their {len(table)} calls" in README


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefix", CLIENTS)
def test_every_call_answers_as_the_table_says(live_server: Any, alice: Any, company_a: Company, prefix: str) -> None:
    client_class, resource, api_error = CLIENTS[prefix]
    table = listed()
    template = client_class(base_url=live_server.url, api_key="unused", max_retries=0)
    wrong = []
    for name, _method in calls(template, prefix, resource):
        # A key per call: the key rotation revokes the key it is called with.
        key = ApiKey.issue(company=company_a, user=alice, name=name)[1]
        client = client_class(base_url=live_server.url, api_key=key, max_retries=0)
        method = dict(calls(client, prefix, resource))[name]
        parameters = inspect.signature(method).parameters.values()
        args = [made_up(p) for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
        kwargs = {p.name: made_up(p) for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
        try:
            method(*args, **kwargs)
            answer: httpx.Response | None = None
        except api_error as exc:
            answer = exc.response
        assert answer is None or answer.status_code < 500, (name, answer.text)
        unserved = answer is not None and answer.status_code == 404 and _code(answer) == "not_implemented"
        says, what = table.get(name, ("not listed", ""))
        if (says == "served") == unserved:
            wrong.append((name, says, answer.status_code if answer else 200))
        elif unserved:
            assert answer is not None
            assert f"issue #{answer.json()['issue']}" in what, (name, what)  # the table names the same issue
    assert not wrong


def _code(answer: httpx.Response) -> Any:
    try:
        return answer.json().get("code")
    except ValueError:
        return None  # not JSON: Django's HTML 404, what the unserved calls answered before
