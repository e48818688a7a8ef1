"""Every door answers another region's identifier with 421 and that region's URL from the
identifier alone (no query), and serves its own region's as before. The deployments
themselves, two processes with their own databases, are in test_two_deployments.py."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail
from django.test import Client

from bots import services as bot_services
from bots.models import Bot
from bots.regions import bot_ensure_local, region_refusal
from chattonic.asgi import application
from chattonic.core.errors import WrongRegion
from chattonic.regions import region_of_api_key, region_of_id, region_of_token
from chattonic.tenancy import services as tenancy_services
from contacts.models import Contact
from conversations.models import Conversation
from messaging.connectors import CONNECTORS
from tests.factories import BotFactory, TenantFactory, launched_bot
from tests.regions.config import ACME, EU, US, regions_configure

ORIGIN = "https://shop.example.com"
TIMEOUT = 10  # a safety net for a hung socket, not a timing assertion
EU_BOT_ID = 10**13 + 5  # in eu-frankfurt's block of ids
EU_KEY = "eu.Zm9yZWlnbi1rZXktb2YtZXU"
EU_API_KEY = "ct_eu.0a1b2c3d4e5f_c2VjcmV0LW9mLWFuLWV1LWtleQ"


@pytest.fixture
def regions(settings):
    regions_configure(settings, "us-central")


def refused_with(response, url: str) -> dict:
    assert response.status_code == 421, response.content
    error = response.json()["error"]
    assert (error["code"], error["url"]) == ("wrong_region", url)
    assert url in error["message"]
    # docs/regions.md: it names nothing but a public URL, so any origin may read it.
    assert response["Access-Control-Allow-Origin"] == "*"
    return error


@pytest.mark.django_db
def test_new_identifiers_name_this_region(regions, settings):
    tenant = TenantFactory()
    bot = bot_services.bot_create(tenant=tenant, name="Support")
    assert bot.public_key.startswith("us.") and bot.region == "us-central"
    _, secret = tenancy_services.api_key_create(tenant=tenant, name="CRM", scopes=["read"])
    assert secret.startswith("ct_us.")
    tenancy_services.invitation_create(
        tenant=tenant, email="ana@example.com", role="agent", invited_by=None
    )
    assert tenant.region == "us-central"
    regions_configure(settings, "eu-frankfurt")
    assert bot_services.bot_create(tenant=tenant, name="Europe").public_key.startswith("eu.")
    assert region_of_token(bot.public_key).name == "us-central"
    assert region_of_api_key(secret).name == "us-central"
    assert region_of_id(5).name == "us-central"
    assert region_of_id(10**13).name == "eu-frankfurt"
    assert region_of_id(2 * 10**13 + 1).name == "acme-private"
    assert region_of_id(3 * 10**13) is None  # no region's block: the door's own 404
    assert region_of_token("legacyKeyWithoutPrefix") is None  # looked up here, as before


@pytest.mark.django_db(transaction=True)
def test_the_invitation_link_names_its_region(regions, mailoutbox):
    tenant = TenantFactory()
    tenancy_services.invitation_create(
        tenant=tenant, email="ana@example.com", role="agent", invited_by=None
    )
    assert "/accounts/invitation/us." in mail.outbox[0].body


@pytest.mark.django_db
def test_another_regions_identifiers_are_421_at_every_door_without_a_query(
    regions, django_assert_num_queries
):
    client = Client()
    with django_assert_num_queries(0):
        for path in (
            f"/api/v1/bots/{EU_BOT_ID}/",
            f"/api/v1/bots/{EU_BOT_ID}/versions/",
            f"/api/v1/conversations/{EU_BOT_ID}/",
            f"/accounts/invitation/{EU_KEY}/",
            f"/demo/{EU_KEY}/",
            f"/webchat/{EU_KEY}/region/",
        ):
            refused_with(client.get(path), EU)
        refused_with(client.get("/api/v1/bots/", HTTP_AUTHORIZATION=f"Bearer {EU_API_KEY}"), EU)
        refused_with(
            client.post(
                f"/api/v1/bots/{EU_BOT_ID}/move/",
                {"region": "us-central"},
                content_type="application/json",
            ),
            EU,
        )
        for kind in CONNECTORS:
            refused_with(client.get(f"/hooks/{kind}/{EU_BOT_ID}/"), EU)
            refused_with(
                client.post(f"/hooks/{kind}/{EU_BOT_ID}/", b"{}", content_type="application/json"),
                EU,
            )
        refused_with(client.get(f"/hooks/whatsapp/{2 * 10**13 + 9}/"), ACME)
    response = client.get(f"/webchat/{EU_KEY}/region/")
    assert response["Access-Control-Allow-Origin"] == "*"  # the widget reads it from any page


@pytest.mark.django_db
def test_this_regions_identifiers_are_served_here(regions):
    client = Client()
    response = client.get("/webchat/us.anything/region/")
    assert response.status_code == 200
    assert response.json() == {"region": "us-central", "url": US}
    assert client.get("/api/v1/bots/", HTTP_AUTHORIZATION="Bearer ct_us.00_x").status_code == 401
    assert client.get("/api/v1/bots/", HTTP_AUTHORIZATION="Bearer ct_zz.00_x").status_code == 401
    assert client.get("/hooks/whatsapp/5/").status_code == 404  # looked up: no such channel
    assert client.get(f"/hooks/whatsapp/{3 * 10**13}/").status_code == 404  # no region's


@pytest.mark.django_db
def test_a_bot_row_of_another_region_is_still_refused_as_a_guard(regions, settings):
    # A bot's row names its region; a row that is not this deployment's (a copy restored
    # into the wrong one) is refused by the doors that found it, naming its region's URL.
    there = BotFactory(region="eu-frankfurt")
    bot_ensure_local(BotFactory(region="us-central"))
    with pytest.raises(WrongRegion) as refused:
        bot_ensure_local(there)
    assert refused.value.status == 421
    assert refused.value.extra == {"region": "eu-frankfurt", "url": EU}
    assert region_refusal(there)["url"] == EU


@pytest.mark.django_db(transaction=True)
async def test_the_widget_socket_of_another_regions_key_is_refused_at_the_handshake(regions):
    bot = await database_sync_to_async(launched_bot)(allowed_origins=[ORIGIN])
    key = "eu." + bot.public_key.partition(".")[2]
    communicator = WebsocketCommunicator(
        application, f"/ws/webchat/{key}/", headers=[(b"origin", ORIGIN.encode())]
    )
    communicator.scope["client"] = ("203.0.113.9", 50000)
    # As uvicorn offers it: the handshake is answered with an HTTP response of our own.
    communicator.scope["extensions"] = {"websocket.http.response": {}}
    await communicator.send_input({"type": "websocket.connect"})
    start = await communicator.receive_output(timeout=TIMEOUT)
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 421)
    body = await communicator.receive_output(timeout=TIMEOUT)
    error = json.loads(body["body"])["error"]
    assert (error["code"], error["region"], error["url"]) == ("wrong_region", "eu-frankfurt", EU)
    counts = await database_sync_to_async(
        lambda: (Conversation.objects.count(), Contact.objects.count())
    )()
    assert counts == (0, 0)

    # Without the extension (another ASGI server): a plain refused handshake.
    plain = WebsocketCommunicator(
        application, f"/ws/webchat/{key}/", headers=[(b"origin", ORIGIN.encode())]
    )
    plain.scope["client"] = ("203.0.113.9", 50001)
    connected, _ = await plain.connect(timeout=TIMEOUT)
    assert not connected


@pytest.mark.django_db(transaction=True)
async def test_a_legacy_bot_row_of_another_region_gets_an_error_frame_naming_its_url(regions):
    bot = await database_sync_to_async(launched_bot)(
        allowed_origins=[ORIGIN], region="eu-frankfurt"
    )
    await database_sync_to_async(Bot.objects.filter(pk=bot.pk).update)(public_key="legacyKey1")
    communicator = WebsocketCommunicator(
        application, "/ws/webchat/legacyKey1/", headers=[(b"origin", ORIGIN.encode())]
    )
    communicator.scope["client"] = ("203.0.113.9", 50000)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected  # accepted so that the widget can read where to go
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["code"], frame["status"], frame["url"]) == ("wrong_region", 421, EU)
    assert await communicator.receive_output(timeout=TIMEOUT) == {
        "type": "websocket.close",
        "code": 4421,
    }
