from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from companies.access import get_object_for_user, get_rw_object_for_user

from .models import RedTeamRun, RedTeamSpec

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from companies.models import Membership


def get_red_team_spec_for_user(user: User | AnonymousUser, code: UUID) -> tuple[RedTeamSpec, Membership]:
    """Return the red team spec if `user` belongs to its company."""
    return get_object_for_user(RedTeamSpec.objects.select_related("created_by"), user, code=code)


def get_red_team_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[RedTeamRun, Membership]:
    """Return the red team run if `user` belongs to its company."""
    return get_object_for_user(RedTeamRun.objects.select_related("spec", "created_by"), user, code=code)


def get_rw_red_team_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[RedTeamRun, Membership]:
    """Return the red team run if `user` may change it."""
    return get_rw_object_for_user(RedTeamRun.objects.select_related("spec"), user, code=code)
