"""A deployment serves the bots of its own region: the widget socket of a bot of another region
gets an error frame naming that region's URL (CHATTONIC_REGIONS), and nothing is written.
(The REST API's 421 is in test_api.py; the services' lock in test_lifecycle.py.)"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bots.regions import bot_ensure_local, region_refusal
from chattonic.asgi import application
from chattonic.core.errors import WrongRegion
from conversations.models import Contact, Conversation
from tests.factories import BotFactory, launched_bot

ORIGIN = "https://shop.example.com"
TIMEOUT = 10  # a safety net for a hung socket, not a timing assertion
REGIONS = {
    "us-central": "https://us.chattonic.example",
    "eu-frankfurt": "https://eu.chattonic.example",
}


@pytest.fixture
def regions(settings):
    settings.CHATTONIC_REGION = "us-central"
    settings.CHATTONIC_REGIONS = REGIONS


@pytest.mark.django_db
def test_bot_ensure_local_names_the_right_region_and_url(regions, settings):
    here = BotFactory(region="us-central")
    there = BotFactory(region="eu-frankfurt")
    bot_ensure_local(here)
    with pytest.raises(WrongRegion) as refused:
        bot_ensure_local(there)
    assert refused.value.status == 421
    assert refused.value.extra == {"region": "eu-frankfurt", "url": REGIONS["eu-frankfurt"]}
    settings.CHATTONIC_REGION = "eu-frankfurt"
    bot_ensure_local(there)
    with pytest.raises(WrongRegion) as refused:
        bot_ensure_local(here)
    assert refused.value.extra["url"] == REGIONS["us-central"]
    assert region_refusal(there) is None
    assert region_refusal(here) == {
        "code": "wrong_region",
        "status": 421,
        "message": f"This bot is served in region us-central: use {REGIONS['us-central']}.",
        "region": "us-central",
        "url": REGIONS["us-central"],
    }


@pytest.mark.django_db(transaction=True)
async def test_the_widget_socket_of_a_bot_of_another_region_gets_421_naming_its_url(regions):
    bot = await database_sync_to_async(launched_bot)(
        allowed_origins=[ORIGIN], region="eu-frankfurt"
    )
    communicator = WebsocketCommunicator(
        application, f"/ws/webchat/{bot.public_key}/", headers=[(b"origin", ORIGIN.encode())]
    )
    communicator.scope["client"] = ("203.0.113.9", 50000)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted so that the widget can read why
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error"
    assert (frame["code"], frame["status"]) == ("wrong_region", 421)
    assert (frame["region"], frame["url"]) == ("eu-frankfurt", REGIONS["eu-frankfurt"])
    assert REGIONS["eu-frankfurt"] in frame["message"]
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": 4421,
    }
    counts = await database_sync_to_async(
        lambda: (Conversation.objects.count(), Contact.objects.count())
    )()
    assert counts == (0, 0)
