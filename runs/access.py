from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from companies.access import get_object_for_user, get_rw_object_for_user

from .models import Run, SeedDataset, Spec

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

    from companies.models import Membership


def get_spec_for_user(user: User | AnonymousUser, code: UUID) -> tuple[Spec, Membership]:
    """Return the spec if `user` belongs to its company."""
    return get_object_for_user(Spec.objects.select_related("created_by", "dataset"), user, code=code)


def get_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[Run, Membership]:
    """Return the run if `user` belongs to its company."""
    return get_object_for_user(
        Run.objects.select_related("spec", "spec_version", "created_by"),
        user,
        code=code,
    )


def get_rw_run_for_user(user: User | AnonymousUser, code: UUID) -> tuple[Run, Membership]:
    """Return the run if `user` may change it."""
    return get_rw_object_for_user(Run.objects.select_related("spec", "spec_version"), user, code=code)


def get_seed_dataset_for_user(user: User | AnonymousUser, code: UUID) -> tuple[SeedDataset, Membership]:
    """Return the seed dataset if `user` belongs to its company."""
    return get_object_for_user(SeedDataset.objects.select_related("created_by"), user, code=code)


def get_rw_seed_dataset_for_user(user: User | AnonymousUser, code: UUID) -> tuple[SeedDataset, Membership]:
    """Return the seed dataset if `user` may change it."""
    return get_rw_object_for_user(SeedDataset.objects.all(), user, code=code)
