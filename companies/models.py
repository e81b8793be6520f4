from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import IntegrityError, models, transaction
from django.utils import timezone

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class CompanyQuerySet(models.QuerySet["Company"]):
    def for_user(self, user: User) -> CompanyQuerySet:
        """Every company list starts here: the companies `user` is a member of."""
        return self.filter(memberships__user=user)

    def named(self, name: str) -> CompanyQuerySet:
        """The company an operator means by `name`: case and the spaces around it ignored, so "demo company " finds
        "Demo Company". Every management command matches a company through this, the oldest first."""
        return self.filter(name__iexact=name.strip()).order_by("id")


class Company(models.Model):
    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Staff set it in the admin; empty falls back to MONTHLY_BUDGET_USD (companies/quotas.py). 0 is unlimited.
    monthly_budget_usd = models.DecimalField(
        "monthly LLM budget (USD)",
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Empty: the MONTHLY_BUDGET_USD setting. 0: unlimited.",
        validators=[MinValueValidator(Decimal(0))],
    )

    objects = CompanyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        ANALYST = "analyst", "Analyst"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANALYST)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "company"], name="membership_unique_user_company")]

    def __str__(self) -> str:
        return f"{self.user} in {self.company} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role != self.Role.VIEWER

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage the company's API keys and members."""
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


def _hash_key(secret: str) -> str:
    # Keys are 192 random bits, so a fast digest is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def for_company(self, company: Company) -> ApiKeyQuerySet:
        return self.filter(company=company)


class ApiKey(models.Model):
    PREFIX_LENGTH = 8

    code = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="api_keys")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.masked_key} ({self.name or 'unnamed'})"

    @classmethod
    def issue(
        cls,
        *,
        company: Company,
        user: User,
        name: str = "",
        expires_at: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Create a key and return it with its secret, which is never stored and cannot be shown again."""
        expires_at = expires_at or timezone.now() + settings.API_KEY_LIFETIME
        for _ in range(5):
            secret = secrets.token_hex(24)
            try:
                with transaction.atomic():
                    key = cls.objects.create(
                        company=company,
                        user=user,
                        name=name,
                        prefix=secret[: cls.PREFIX_LENGTH],
                        key_hash=_hash_key(secret),
                        last4=secret[-4:],
                        expires_at=expires_at,
                    )
                return key, secret
            except IntegrityError:  # a prefix collision (1 in 4 billion): draw again
                continue
        raise RuntimeError("could not draw a unique API key prefix")

    @classmethod
    def find(cls, secret: str) -> ApiKey | None:
        """Return the key whose secret this is (active or not), comparing hashes in constant time."""
        key = cls.objects.select_related("company", "user").filter(prefix=secret[: cls.PREFIX_LENGTH]).first()
        if key is None or not hmac.compare_digest(key.key_hash, _hash_key(secret)):
            return None
        return key

    @property
    def masked_key(self) -> str:
        return f"{self.prefix[:4]}****{self.last4}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return not self.is_revoked and not self.is_expired

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def touch(self) -> None:
        """Record use, at most once a minute, so a busy key does not write on every request."""
        now = timezone.now()
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
