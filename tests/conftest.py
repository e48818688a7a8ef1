"""Shared fixtures: the embedded Redis for the embedded-defaults run, API clients, staff."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from chattonic.core import embedded

_embedded_redis = None


def pytest_configure(config):
    global _embedded_redis
    # No test's import of chattonic.asgi reads the database from a thread of its own (the
    # servers the tests start as processes do, as in production).
    settings.NLU_WARM_BOTS = 0
    # Nor does it start the web chat lane's worker processes: the tests' lanes write from a
    # database thread, on the test's database (tests/webchat/test_lane_workers.py starts
    # real web processes with their workers).
    settings.WEBCHAT_LANE_PROCESSES = 0
    # Under xdist the controller runs no test: only its workers need a Redis (tests/parallel.py).
    controller = config.getoption("numprocesses", None) and not hasattr(config, "workerinput")
    if settings.EMBEDDED_REDIS and not controller:
        _embedded_redis = embedded.start(settings.EMBEDDED_REDIS_SOCKET)


def pytest_collection_modifyitems(config, items):
    """A test marked ``embedded_only`` starts its child processes on the embedded defaults,
    whatever this run's configuration (it drops DATABASE_URL and REDIS_URL from their
    environment): on PostgreSQL and Redis it would run the very same thing again, so it runs
    in the embedded pass only (.ci/run runs both)."""
    if not os.environ.get("DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="runs on the embedded defaults: the embedded pass runs it")
    for item in items:
        if item.get_closest_marker("embedded_only") is not None:
            item.add_marker(skip)


def pytest_unconfigure(config):
    embedded.stop(_embedded_redis)


@pytest.fixture(autouse=True)
def _isolated_redis_and_tasks(request):
    """Each test starts with an empty Redis (throttle counters, queues); in-process tests
    run Celery tasks eagerly, tests with real worker processes use the real broker."""
    from django.core.cache import cache

    from chattonic.celery import app
    from messaging.services import channel_forget

    cache.clear()
    channel_forget()  # the webhooks' channel cache: ids come again after a rollback (SQLite)
    eager = request.node.get_closest_marker("processes") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _no_outbound_allowance(settings):
    """Outbound requests start with no host allowed (not even DEBUG's own base URL): a test
    that talks to a fake on 127.0.0.1 names it (``fake.allow(settings)``)."""
    settings.OUTBOUND_ALLOWED_HOSTS = []


@pytest.fixture(autouse=True)
def _this_machine_only(monkeypatch):
    """The tests reach only this machine. A connection to any other address (a broken
    outbound guard, a mistaken URL) is refused before a packet leaves, and fails the test."""
    real_connect = socket.socket.connect
    tried: list[str] = []

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
            if not (host.is_loopback or host.is_unspecified):
                tried.append(str(host))
                raise ConnectionRefusedError(f"the tests reach only this machine, not {host}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert not tried, f"a test tried to connect to {tried}"


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
