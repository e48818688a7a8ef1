"""Rotating SECRET_KEY with the old key in SECRET_KEY_FALLBACKS keeps visitors' chats and
staff sessions; without it, everything the old key signed stops working."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client, override_settings

from chattonic.asgi import application
from tests.factories import MembershipFactory, launched_bot
from tests.sockets import TIMEOUT, of_type, until

OLD = "old-secret-key-" + "o" * 40
NEW = "new-secret-key-" + "n" * 40
ORIGIN = "https://shop.example.com"
PASSWORD = "correct horse battery staple"  # UserFactory's


@pytest.mark.django_db
def test_staff_stay_signed_in_across_a_rotation_with_the_old_key_as_fallback(tenant):
    owner = MembershipFactory(tenant=tenant, role="owner").user
    kept, dropped = Client(), Client()
    with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[]):
        for client in (kept, dropped):
            response = client.post(
                "/dashboard/login/",
                {"username": owner.username, "password": PASSWORD, "next": "/dashboard/"},
            )
            assert response.status_code == 302
            assert client.get("/dashboard/").status_code == 200

    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
        assert kept.get("/dashboard/").status_code == 200
    with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
        response = dropped.get("/dashboard/")
        assert response.status_code == 302 and "/dashboard/login/" in response["Location"]


def widget(bot, query: str = "") -> WebsocketCommunicator:
    path = f"/ws/webchat/{bot.public_key}/" + (f"?{query}" if query else "")
    communicator = WebsocketCommunicator(application, path, headers=[(b"origin", ORIGIN.encode())])
    communicator.scope["client"] = ("203.0.113.7", 50000)
    return communicator


async def session_of(communicator) -> dict:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "session", frame
    return frame


@pytest.mark.django_db(transaction=True)
async def test_a_visitor_keeps_their_chat_across_a_rotation_with_the_old_key_as_fallback():
    bot = await database_sync_to_async(launched_bot)(allowed_origins=[ORIGIN])
    try:
        with override_settings(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS=[]):
            first = widget(bot)
            token = (await session_of(first))["token"]
            await first.send_json_to({"type": "message", "client_id": "c1", "text": "hello"})
            ack, _ = await until(first, of_type("ack", client_id="c1"))
            conversation = ack["message"]["conversation"]
            await first.disconnect()

        with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[OLD]):
            again = widget(bot, f"session={token}")
            assert (await session_of(again))["conversation"] == conversation
            await again.disconnect()

        with override_settings(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=[]):
            stranger = widget(bot, f"session={token}")
            assert (await session_of(stranger))["conversation"] is None
            await stranger.disconnect()
    finally:
        await database_sync_to_async(connections.close_all)()
