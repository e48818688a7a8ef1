"""The visitor on one ASGI server process, the agent on another, sharing the channel layer.

Two real uvicorn processes on this run's database and Redis (the embedded Redis socket on
the embedded defaults, REDIS_URL in the Redis run). The visitor's web chat socket is on
server 1, the agent's console socket (with a session cookie) on server 2; everything one
hears from the other crossed processes through Redis.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from django.test import Client

from tests.factories import MembershipFactory, launched_bot
from tests.processes import (
    Process,
    free_port,
    http_status,
    uvicorn,
    wait_for,
)
from tests.processes import (
    test_database_env as database_env,
)
from tests.sockets import Frames, says

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

SITE = "https://shop.example.com"
ALWAYS_OPEN = {
    day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
PRICES = "Plans start at $10."


async def exchange(visitor_url: str, agent_url: str, agent_origin: str, cookie: str) -> dict:
    async with (
        websockets.connect(
            agent_url, origin=agent_origin, additional_headers={"Cookie": cookie}
        ) as agent_socket,
        websockets.connect(visitor_url, origin=SITE) as visitor_socket,
    ):
        agent, visitor = Frames(agent_socket), Frames(visitor_socket)
        hello = await agent.until(lambda f: f["type"] == "hello")
        assert hello["views"]["unassigned"] == []
        await visitor.until(lambda f: f["type"] == "session")
        await visitor_socket.send(json.dumps({"type": "start"}))
        await visitor.until(lambda f: f["type"] == "history")

        # The visitor (server 1) asks for a human; the agent (server 2) sees it queued.
        await visitor_socket.send(
            json.dumps({"type": "message", "client_id": "v1", "text": "talk to a person"})
        )
        queued = await agent.until(
            lambda f: (
                f["type"] == "conversation.changed" and f["conversation"]["status"] == "queued"
            )
        )
        cid = queued["conversation"]["id"]
        assert queued["reason"] == "visitor_request"

        await agent_socket.send(json.dumps({"type": "claim", "conversation": cid, "ref": "c"}))
        await agent.until(lambda f: f["type"] == "ack" and f["ref"] == "c")
        await agent_socket.send(json.dumps({"type": "open", "conversation": cid}))
        await agent.until(lambda f: f["type"] == "conversation")
        await visitor.until(lambda f: f["type"] == "conversation" and f["status"] == "assigned")

        # Both ways.
        await agent_socket.send(
            json.dumps({"type": "reply", "conversation": cid, "text": "Hi, I am Ana."})
        )
        await visitor.until(says("agent", "Hi, I am Ana."))
        await visitor_socket.send(
            json.dumps({"type": "message", "client_id": "v2", "text": "My parcel is late"})
        )
        await agent.until(says("contact", "My parcel is late"))
        await agent_socket.send(
            json.dumps({"type": "note", "conversation": cid, "text": "private to agents"})
        )
        await agent.until(lambda f: f["type"] == "note")

        # Back to the bot, which answers the visitor again.
        await agent_socket.send(json.dumps({"type": "hand_back", "conversation": cid}))
        await agent.until(
            lambda f: f["type"] == "conversation.changed" and f["conversation"]["status"] == "bot"
        )
        await visitor.until(lambda f: f["type"] == "conversation" and f["status"] == "bot")
        await visitor_socket.send(
            json.dumps({"type": "message", "client_id": "v3", "text": "how much is it"})
        )
        await visitor.until(says("bot", PRICES))
        return {"visitor": visitor.seen, "agent": agent.seen}


def test_a_visitor_on_one_server_and_an_agent_on_another(tmp_path):
    bot = launched_bot(allowed_origins=[SITE], business_hours=ALWAYS_OPEN)
    ana = MembershipFactory(tenant=bot.tenant, role="agent").user
    client = Client()
    client.force_login(ana)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    ports = free_port(), free_port()
    env = database_env()
    servers = [Process(uvicorn(port), env, tmp_path / f"web{port}.log") for port in ports]
    with servers[0], servers[1]:
        for port, server in zip(ports, servers, strict=True):
            try:
                wait_for(
                    lambda port=port: http_status(f"http://127.0.0.1:{port}/healthz") == 200,
                    60,
                    what=f"the server on port {port}",
                )
            except AssertionError:
                pytest.fail(f"the server did not start:\n{server.output()}")
        visitor_url = f"ws://127.0.0.1:{ports[0]}/ws/webchat/{bot.public_key}/"
        agent_origin = f"http://127.0.0.1:{ports[1]}"
        agent_url = f"ws://127.0.0.1:{ports[1]}/ws/agent/"
        try:
            seen = asyncio.run(exchange(visitor_url, agent_url, agent_origin, cookie))
        except (TimeoutError, websockets.ConnectionClosed, websockets.InvalidStatus) as exc:
            logs = "\n".join(f"--- {s.log.name}:\n{s.output()}" for s in servers)
            pytest.fail(f"{exc!r}\n{logs}")
    assert "private to agents" not in json.dumps(seen["visitor"])
    for server in servers:
        assert "Traceback" not in server.output(), server.output()
