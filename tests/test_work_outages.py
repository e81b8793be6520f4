"""A claim that an outage of the database or the cache interrupts is handed back uncounted; any other failure
counts (work/runner.py). In-process: the handler raises what the outage would."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from companies.models import Company
from work import runner
from work.models import WorkItem
from work.registry import HANDLERS, Handler


@pytest.mark.parametrize(
    ("raised", "attempts", "said"),
    [
        (OperationalError("connection to server at 127.0.0.1 failed: Connection refused"), 0, "database outage"),
        (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), 0, "cache outage"),
        (ValueError("a bug"), 1, "ValueError: a bug"),
    ],
)
def test_an_outage_never_consumes_an_attempt(
    company_a: Company, monkeypatch: pytest.MonkeyPatch, raised: Exception, attempts: int, said: str
) -> None:
    def run(item: WorkItem, ctx: Any) -> Any:
        raise raised

    monkeypatch.setitem(HANDLERS, "test.outage", Handler(run, lambda item, reason: None))
    item = WorkItem.objects.create(company=company_a, kind="test.outage", subject_id=1, key="test.outage:1")
    runner.run_item(item.id)
    item.refresh_from_db()
    assert item.state == "queued"
    assert item.attempts == attempts
    assert said in item.last_error
