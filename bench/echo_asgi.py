"""The platform's ASGI application plus a bare Channels echo consumer at ``/ws/echo/`` and,
at ``/ws/stored-echo/?tenant=<id>``, an echo that first stores each frame as one row.

Only for bench/webchat.py: the echo is the baseline, served by the same server process and
the same Channels stack (its consumer gets a channel name on the same channel layer), so
the two are measured side by side. Production routing never mounts it.

    uvicorn bench.echo_asgi:application
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from chattonic.asgi import application as chattonic_application

ECHO_PATH = "/ws/echo/"
STORED_ECHO_PATH = "/ws/stored-echo/"


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class StoredEchoConsumer(AsyncWebsocketConsumer):
    """The floor of any chat that stores a message before it answers: one INSERT per frame
    (in a database thread, as the platform's socket does), then the echo."""

    async def connect(self):
        from urllib.parse import parse_qs

        query = parse_qs(self.scope["query_string"].decode())
        self.tenant_id = int(query["tenant"][0])
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        from contacts.models import Contact
        from webchat.consumers import message_sync_to_async

        def store():
            Contact.objects.create(tenant_id=self.tenant_id, name=(text_data or "")[:200])

        await message_sync_to_async(store)()
        await self.send(text_data=text_data, bytes_data=bytes_data)


echo = EchoConsumer.as_asgi()
stored_echo = StoredEchoConsumer.as_asgi()


async def application(scope, receive, send):
    if scope["type"] == "websocket" and scope["path"] == ECHO_PATH:
        return await echo(scope, receive, send)
    if scope["type"] == "websocket" and scope["path"] == STORED_ECHO_PATH:
        return await stored_echo(scope, receive, send)
    return await chattonic_application(scope, receive, send)
