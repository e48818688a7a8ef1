"""Fixtures of the support suite: a fake Trello with a board, wired into the settings."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.fakes.trello import FakeTrello

KEY, TOKEN, SECRET = "a" * 32, "b" * 64, "c" * 64
PUBLIC_BASE_URL = "https://chat.example.com"


@pytest.fixture(autouse=True)
def _support_settings(settings):
    """Known support hours, and Trello off unless a test asks for the fake."""
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.SUPPORT_DAYS = ["mon", "tue", "wed", "thu", "fri"]
    settings.SUPPORT_HOURS_START, settings.SUPPORT_HOURS_END = "09:00", "18:00"
    settings.SUPPORT_TIME_ZONE = "-03:00"
    settings.SUPPORT_HOLIDAYS = []
    settings.SUPPORT_INTERRUPTION_TARGET_HOURS = 6
    settings.SUPPORT_RESPONSE_TARGET_HOURS = 6
    settings.TRELLO_KEY = settings.TRELLO_TOKEN = settings.TRELLO_SECRET = ""
    settings.TRELLO_BOARD_ID = ""
    settings.TRELLO_LISTS = {}
    settings.TRELLO_REQUESTS_PER_10S = 90
    settings.ADMINS = [("Operators", "ops@example.com")]


@pytest.fixture
def trello(settings, db):
    """A fake Trello whose board has no lists yet; the mirror is on and points at it."""
    with FakeTrello(key=KEY, token=TOKEN, secret=SECRET) as fake:
        fake.board_id = fake.add_board("Chat-Tonic support")
        settings.TRELLO_API_BASE = fake.allow(settings).root_url
        settings.TRELLO_KEY, settings.TRELLO_TOKEN, settings.TRELLO_SECRET = KEY, TOKEN, SECRET
        settings.TRELLO_BOARD_ID = fake.board_id
        yield fake


def deliver(client, fake: FakeTrello) -> list:
    """Post every pending webhook delivery of the fake to the app, as Trello would."""
    responses = []
    for delivery in fake.take_deliveries():
        response = client.post(
            urlsplit(delivery.callback_url).path,
            data=delivery.body,
            content_type="application/json",
            HTTP_X_TRELLO_WEBHOOK=delivery.signature,
        )
        assert response.status_code == 200, response.content
        responses.append(response.json()["outcome"])
    return responses
