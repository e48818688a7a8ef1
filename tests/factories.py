"""Factories for every model, one per model.

The tenant-isolation test (tests/chattonic/test_isolation.py) finds the factory of each
tenant-owned model here; a model without one fails that test until it gets one.
"""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from chattonic.tenancy.models import ApiKey, Membership, Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ADMIN

    @factory.post_generation
    def staff_flag(obj, create, extracted, **kwargs):
        obj.user.is_staff = obj.role in (Membership.Role.OWNER, Membership.Role.ADMIN)
        obj.user.save(update_fields=["is_staff"])


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    prefix = factory.Sequence(lambda n: f"p{n:011d}")
    secret_hash = "0" * 64
    scopes = ["read"]
