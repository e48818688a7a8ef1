"""Web and worker are separate processes: a task the worker runs must reach a visitor's socket
on the web process. Runs on whatever this run's channel layer and broker are: the embedded
Redis on the embedded defaults, the real Redis when REDIS_URL is set (the second CI pass).

The path: the demo bot's HTTP request node. The web process stores the visitor's answer and
queues the request; the worker performs it (against the web process's demo endpoint), resumes
the engine and sends the bot's answer through the channel layer to the visitor's socket."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from chattonic.demo import demo_load
from tests.processes import (
    Process,
    celery_worker,
    free_port,
    http_status,
    uvicorn,
    wait_for,
)
from tests.processes import (
    test_database_env as database_env,
)
from tests.sockets import said

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


class BotMessages:
    """The bot's messages on a socket, in order, each once (whether it came live, with an
    ack, or in the history that follows a start)."""

    def __init__(self, socket):
        self.socket = socket
        self.seen: set[int] = set()
        self.pending: list[str] = []

    async def next_text(self, timeout: float = 60.0) -> str:
        async with asyncio.timeout(timeout):
            while not self.pending:
                frame = json.loads(await self.socket.recv())
                if frame["type"] == "error":
                    raise AssertionError(f"error frame: {frame}")
                messages = frame.get("messages") or said(frame)  # history, message, ack
                for message in messages:
                    if message.get("sender") == "bot" and message["id"] not in self.seen:
                        self.seen.add(message["id"])
                        self.pending.append(message["text"])
            return self.pending.pop(0)


async def _order_lookup(base: str, public_key: str, texts: list[str]) -> list[str]:
    url = base.replace("http", "ws") + f"/ws/webchat/{public_key}/"
    async with websockets.connect(url, origin=base) as socket:
        session = json.loads(await socket.recv())
        assert session["type"] == "session"
        await socket.send(json.dumps({"type": "start"}))
        bot = BotMessages(socket)
        texts += [await bot.next_text(), await bot.next_text()]
        steps = [
            {"type": "quick_reply", "client_id": "c1", "payload": "track_order"},
            {"type": "message", "client_id": "c2", "text": "ana@example.com"},
            {"type": "message", "client_id": "c3", "text": "1001"},
        ]
        for frame in steps:
            await socket.send(json.dumps(frame))
            texts.append(await bot.next_text())
        return texts


def test_a_task_run_by_the_worker_reaches_the_visitor_socket_on_the_web_process(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = demo_load(base)
    # The demo's order lookup calls the web process on 127.0.0.1: the worker may reach it.
    env = {**database_env(), "OUTBOUND_ALLOWED_HOSTS": f"127.0.0.1:{port}"}
    web = Process(uvicorn(port), env, tmp_path / "web.log")
    worker = Process(celery_worker("socket"), env, tmp_path / "worker.log")
    with web, worker:
        wait_for(lambda: http_status(f"{base}/healthz") == 200, 30, what="the web process")
        wait_for(lambda: " ready." in worker.output(), 60, what="the worker")
        texts = []
        try:
            asyncio.run(_order_lookup(base, demo.bot.public_key, texts))
        except (TimeoutError, websockets.ConnectionClosed):
            pytest.fail(f"got {texts}\nweb:\n{web.output()}\nworker:\n{worker.output()}")
        assert texts[1] == "What can I do for you?"
        assert texts[2:4] == [
            "What's the email address on the order?",
            "And the order number? (try 1001 or 1002)",
        ]
        # Only the worker could have answered this: the web process does no HTTP requests.
        assert texts[4] == "Order 1001 is shipped; it arrives tomorrow."
        assert "bots.tasks.bot_http_request" in worker.output()
