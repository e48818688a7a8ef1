"""Shared fixtures: the embedded Redis for the embedded-defaults run, API clients, staff."""

from __future__ import annotations

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from chattonic.core import embedded

_embedded_redis = None


def pytest_configure(config):
    global _embedded_redis
    if settings.EMBEDDED_REDIS:
        _embedded_redis = embedded.start(settings.EMBEDDED_REDIS_SOCKET)


def pytest_unconfigure(config):
    embedded.stop(_embedded_redis)


@pytest.fixture(autouse=True)
def _isolated_redis_and_tasks(request):
    """Each test starts with an empty Redis (throttle counters, queues); in-process tests
    run Celery tasks eagerly, tests with real worker processes use the real broker."""
    from django.core.cache import cache

    from chattonic.celery import app
    from conversations.channels import channel_forget

    cache.clear()
    channel_forget()  # the webhooks' channel cache: ids come again after a rollback (SQLite)
    eager = request.node.get_closest_marker("processes") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def tenant(db):
    from tests.factories import TenantFactory

    return TenantFactory()


@pytest.fixture
def other_tenant(db):
    from tests.factories import TenantFactory

    return TenantFactory()


@pytest.fixture
def owner(tenant):
    from tests.factories import MembershipFactory

    return MembershipFactory(tenant=tenant, role="owner").user


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def api_client_for(api_key_and_secret) -> APIClient:
    _, secret = api_key_and_secret
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


@pytest.fixture
def api(tenant):
    """An API client with a read/write/admin key of ``tenant``."""
    from chattonic.tenancy.services import api_key_create

    return api_client_for(api_key_create(tenant=tenant, name="test", scopes=["admin"]))
