from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from companies.access import get_object_for_user, get_rw_object_for_user

from .models import AnonymizationRun

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from companies.models import Membership


def get_anonymization_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[AnonymizationRun, Membership]:
    """Return the run (not deleted) if `user` belongs to its company."""
    return get_object_for_user(AnonymizationRun.objects.visible().select_related("created_by"), user, code=code)


def get_rw_anonymization_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[AnonymizationRun, Membership]:
    """Return the run (not deleted) if `user` may change it."""
    return get_rw_object_for_user(AnonymizationRun.objects.visible(), user, code=code)
