"""Per-company quotas (issue 12): evaluations and samples in flight, the monthly LLM spend budget, and (issue 22)
the bytes of text and files stored.

The API request rates are DRF throttles (companies/api/throttles.py); this module holds the checks made when
work is created, in one place. companies owns no evaluation or ledger rows, so the apps that do fill the
counting slots below in their `AppConfig.ready()` (as runs/extensions.py does): companies never imports them.
Over a limit, `QuotaExceeded` is raised; the API layer answers it 429 with `Retry-After` (config/api.py), or 413
for the storage quota, which waiting does not lift.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from .models import Company

# When an evaluation will finish is unknown; a client told to wait this long asks again then.
IN_FLIGHT_RETRY_AFTER = 30


class QuotaExceeded(Exception):  # noqa: N818  # named for what happened, like Django's PermissionDenied
    """A company is over one of its limits; the message names the limit and its value."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageQuotaExceeded(QuotaExceeded):
    """A write would take the company past STORAGE_QUOTA_BYTES: a 413, since only deleting makes room."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=0)


@dataclass(frozen=True)
class InFlight:
    evaluations: int = 0
    samples: int = 0

    def __add__(self, other: InFlight) -> InFlight:
        return InFlight(self.evaluations + other.evaluations, self.samples + other.samples)


@dataclass
class UsageSources:
    # Each owning app adds a function under its name: company id -> its unfinished evaluations and their samples.
    in_flight: dict[str, Callable[[int], InFlight]] = field(default_factory=dict)
    # The ledger's owner (llm) sets this: company id, start of the month (UTC) -> USD spent since.
    spend_since: Callable[[int, datetime], Decimal] = lambda company_id, since: Decimal(0)
    # Each owning app adds a function under its name: company id -> bytes of text and files it stores for it.
    stored_bytes: dict[str, Callable[[int], int]] = field(default_factory=dict)


sources = UsageSources()


def month_start(now: datetime | None = None) -> datetime:
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def seconds_to_next_month(now: datetime | None = None) -> int:
    now = (now or timezone.now()).astimezone(UTC)
    next_month = (month_start(now) + timedelta(days=32)).replace(day=1)
    return max(1, math.ceil((next_month - now).total_seconds()))


def in_flight(company: Company) -> InFlight:
    total = InFlight()
    for count in sources.in_flight.values():
        total += count(company.id)
    return total


def stored_bytes(company: Company) -> int:
    return sum(count(company.id) for count in sources.stored_bytes.values())


def month_spend(company: Company) -> Decimal:
    return sources.spend_since(company.id, month_start())


def monthly_budget(company: Company) -> Decimal:
    """The company's own budget when staff set one, else MONTHLY_BUDGET_USD; 0 means unlimited."""
    if company.monthly_budget_usd is not None:
        return company.monthly_budget_usd
    return Decimal(settings.MONTHLY_BUDGET_USD)


@dataclass(frozen=True)
class Usage:
    """What the usage page and the admin show."""

    in_flight: InFlight
    max_evaluations: int
    max_samples: int
    spend: Decimal
    budget: Decimal
    requests_per_minute: int
    requests_per_minute_per_key: int
    stored_bytes: int
    storage_quota_bytes: int

    @property
    def over_budget(self) -> bool:
        return bool(self.budget) and self.spend >= self.budget


def company_usage(company: Company) -> Usage:
    return Usage(
        in_flight=in_flight(company),
        max_evaluations=settings.MAX_EVALUATIONS_IN_FLIGHT,
        max_samples=settings.MAX_SAMPLES_IN_FLIGHT,
        spend=month_spend(company),
        budget=monthly_budget(company),
        requests_per_minute=settings.API_REQUESTS_PER_MINUTE,
        requests_per_minute_per_key=settings.API_REQUESTS_PER_MINUTE_PER_KEY,
        stored_bytes=stored_bytes(company),
        storage_quota_bytes=settings.STORAGE_QUOTA_BYTES,
    )


def _lock(company: Company) -> None:
    # On PostgreSQL two concurrent writes cannot both pass on the same count; SQLite serialises writers anyway.
    list(Company.objects.select_for_update().filter(pk=company.pk).values_list("pk", flat=True))


def storage_check(*, company: Company, adding: int, what: str) -> None:
    """Raise StorageQuotaExceeded unless `company` may store `adding` more bytes (`what` names them).

    Call it inside the transaction that writes the rows counted by `sources.stored_bytes`, before writing them.
    """
    limit = settings.STORAGE_QUOTA_BYTES
    if not limit:  # 0: off
        return
    _lock(company)
    used = stored_bytes(company)
    if used + adding > limit:
        raise StorageQuotaExceeded(
            f"Storage quota reached: {used:,} bytes stored, {what} adds {adding:,}, the limit is {limit:,} bytes "
            "(STORAGE_QUOTA_BYTES). Delete runs, seed datasets or guardrail evaluations to make room."
        )


def quota_check(*, company: Company, evaluations: int, samples: int) -> None:
    """Raise QuotaExceeded unless `company` may start `evaluations` more evaluations holding `samples` samples.

    Call it inside the creating transaction, before the rows are written.
    """
    _lock(company)
    # 1. Budget: once spent, no new work (work already running is left to finish).
    budget = monthly_budget(company)
    if budget > 0:
        spent = month_spend(company)
        if spent >= budget:
            raise QuotaExceeded(
                f"Monthly LLM budget reached: ${spent:.2f} spent of ${budget:.2f} this month (UTC); "
                "new evaluations can start next month or once the budget is raised.",
                retry_after=seconds_to_next_month(),
            )
    # 2. Evaluations and samples in flight (0 = unlimited).
    current = in_flight(company)
    max_evaluations, max_samples = settings.MAX_EVALUATIONS_IN_FLIGHT, settings.MAX_SAMPLES_IN_FLIGHT
    if max_evaluations and current.evaluations + evaluations > max_evaluations:
        raise QuotaExceeded(
            f"Evaluations in flight limit reached: {current.evaluations} unfinished, {evaluations} more asked, "
            f"the limit is {max_evaluations} (MAX_EVALUATIONS_IN_FLIGHT).",
            retry_after=IN_FLIGHT_RETRY_AFTER,
        )
    if max_samples and current.samples + samples > max_samples:
        raise QuotaExceeded(
            f"Samples in flight limit reached: {current.samples:,} samples in unfinished evaluations, "
            f"{samples:,} more asked, the limit is {max_samples:,} (MAX_SAMPLES_IN_FLIGHT).",
            retry_after=IN_FLIGHT_RETRY_AFTER,
        )
