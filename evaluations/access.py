from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from companies.access import get_object_for_user

from .models import Evaluation

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from companies.models import Membership


def get_evaluation_for_user(user: User | AnonymousUser, code: UUID | str) -> tuple[Evaluation, Membership]:
    """Return the evaluation if `user` belongs to its company."""
    return get_object_for_user(
        Evaluation.objects.select_related("run__spec", "run__spec_version", "created_by"), user, code=code
    )
