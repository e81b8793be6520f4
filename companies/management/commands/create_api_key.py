from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from companies.models import ApiKey, Membership
from companies.services import member_ensure


class Command(BaseCommand):
    help = "Create an API key (and the company, user and membership if missing). The key is the last line printed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--company", required=True, help="company name (case and surrounding spaces ignored; created if missing)"
        )
        parser.add_argument("--email", required=True, help="the key's user")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument(
            "--role",
            default=Membership.Role.OWNER,
            choices=Membership.Role.values,
            help="role given if the membership is new (default owner)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        membership = member_ensure(
            company_name=options["company"],
            email=options["email"],
            role=options["role"],
        )
        key, secret = ApiKey.issue(company=membership.company, user=membership.user, name=options["name"])
        self.stdout.write(
            f"Created API key {key.masked_key} for {membership.user.email} in {membership.company.name}, "
            f"expires {key.expires_at:%Y-%m-%d}. It is shown only now:"
        )
        self.stdout.write(secret)
