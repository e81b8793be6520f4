from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import ApiKey, Company, Membership


class ApiKeyError(Exception):
    pass


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey) -> tuple[ApiKey, str]:
    """Revoke `api_key` and issue its successor (same company, user and name); the old key dies at once."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if not locked.is_active:
        raise ApiKeyError("This API key is no longer active.")
    locked.revoke()
    return ApiKey.issue(company=locked.company, user=locked.user, name=locked.name)


@transaction.atomic
def member_ensure(*, company_name: str, email: str, role: str = Membership.Role.OWNER) -> Membership:
    """Get or create the company, the user (username = email) and the membership; an existing role is kept.

    The company is matched like the user, ignoring case and the spaces around it (`Company.objects.named`): an
    operator typing "Demo company" for "Demo Company" gets the existing company, not a second, empty one."""
    company = Company.objects.named(company_name).first()
    if company is None:
        company = Company.objects.create(name=company_name.strip())
    user_model = get_user_model()
    user = user_model.objects.filter(email__iexact=email).first()
    if user is None:
        user = user_model.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    membership, _ = Membership.objects.get_or_create(user=user, company=company, defaults={"role": role})
    return membership
