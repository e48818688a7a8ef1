"""pytest fixtures: each starts a fake platform, points the settings at it, and stops it.

Use them from a test module with ``from tests.fakes.fixtures import *  # noqa: F403``, or
for a whole suite with ``pytest_plugins = ["tests.fakes.fixtures"]`` in the root conftest.
"""

from __future__ import annotations

import pytest

from chattonic.core import outbound

from .platforms import FakeMessenger, FakeTelegram, FakeTenantWebhook, FakeTwilio, FakeWhatsApp

__all__ = [
    "fake_messenger",
    "fake_telegram",
    "fake_tenant_webhook",
    "fake_twilio",
    "fake_whatsapp",
    "http_session",
]


@pytest.fixture
def fake_whatsapp(settings):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        yield fake


@pytest.fixture
def fake_messenger(settings):
    with FakeMessenger() as fake:
        settings.MESSENGER_API_BASE = fake.allow(settings).base_url
        yield fake


@pytest.fixture
def fake_telegram(settings):
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        yield fake


@pytest.fixture
def fake_twilio(settings):
    with FakeTwilio() as fake:
        settings.TWILIO_API_BASE = fake.allow(settings).base_url
        yield fake


@pytest.fixture
def fake_tenant_webhook(settings):
    """A tenant's event receiver on 127.0.0.1 (outbound requests may reach it)."""
    with FakeTenantWebhook() as fake:
        yield fake.allow(settings)


@pytest.fixture
def http_session():
    """A guarded session, as the worker's (chattonic/core/outbound.py)."""
    with outbound.session() as session:
        yield session
