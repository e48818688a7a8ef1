"""The platform's ASGI application plus a bare Channels echo consumer at ``/ws/echo/``.

Only for bench/webchat.py: the echo is the baseline, served by the same server process and
the same Channels stack (its consumer gets a channel name on the same channel layer), so
the two are measured side by side. Production routing never mounts it.

    uvicorn bench.echo_asgi:application
"""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

from chattonic.asgi import application as chattonic_application

ECHO_PATH = "/ws/echo/"


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


echo = EchoConsumer.as_asgi()


async def application(scope, receive, send):
    if scope["type"] == "websocket" and scope["path"] == ECHO_PATH:
        return await echo(scope, receive, send)
    return await chattonic_application(scope, receive, send)
