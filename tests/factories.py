from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from companies.models import Company, Membership

User = get_user_model()


class UserFactory(DjangoModelFactory[User]):  # type: ignore[misc]
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct horse battery staple")


class CompanyFactory(DjangoModelFactory[Company]):  # type: ignore[misc]
    class Meta:
        model = Company
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Company {n}")


class MembershipFactory(DjangoModelFactory[Membership]):  # type: ignore[misc]
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    company = factory.SubFactory(CompanyFactory)
    role = Membership.Role.OWNER
