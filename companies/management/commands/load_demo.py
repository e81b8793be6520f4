from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from companies.models import ApiKey, Membership
from companies.services import member_ensure
from runs.services import demo_run_ensure

DEMO_COMPANY = "Demo Company"
DEMO_EMAIL = "demo@example.com"
DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = "Load the demo company, user and data. Safe to run again: it refreshes the password and key it prints."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        membership = member_ensure(company_name=DEMO_COMPANY, email=DEMO_EMAIL, role=Membership.Role.OWNER)
        user = membership.user
        # Passwords and keys are stored hashed, so a re-run cannot print the old ones: it issues fresh ones
        # and retires the previous demo key, leaving exactly one.
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        ApiKey.objects.filter(
            company=membership.company,
            user=user,
            name=DEMO_KEY_NAME,
            revoked_at__isnull=True,
        ).update(revoked_at=timezone.now())
        _key, secret = ApiKey.issue(company=membership.company, user=user, name=DEMO_KEY_NAME)
        run = demo_run_ensure(company=membership.company, created_by=user)

        self.stdout.write(self.style.SUCCESS(f"Demo company: {DEMO_COMPANY}"))
        self.stdout.write(f"  sign in at /login/ as {DEMO_EMAIL} with password: {password}")
        self.stdout.write(f"  demo run: /runs/{run.code}/ ({run.samples_completed} samples)")
        self.stdout.write(f"  API key (Authorization: Bearer ...): {secret}")
