"""Delivery of a visitor's messages to 20 agents watching the conversation, against a bare
group-send baseline in the same run.

    .venv/bin/python bench/agents.py [--messages 200] [--agents 20]

One process, the real ASGI application and the real channel layer (the embedded Redis on
the embedded defaults, REDIS_URL when it is set; the database of DATABASE_URL, else a
SQLite file in a temporary directory):

1. agents: 20 agents sign in (session cookies) and open their consoles (``/ws/agent/``),
   each opens the conversation (which subscribes its socket to the conversation's group);
   one of them has claimed it. A visitor on the web chat socket sends N messages, one after
   the other. Each message goes the whole way: the visitor's frame, the web chat consumer,
   the database (stored, the conversation touched), the broadcast after the commit, and the
   20 console consumers, which send it to their agents. Latency: from the visitor's send to
   each agent's receipt of the ``message`` frame.
   The visitor's own socket gets its ``ack`` once the broadcast is out: its latency (the
   "echo") is the cost of storing and broadcasting; the agents' minus the echo is the
   fan-out's.
2. baseline: 20 plain consumers in one group; ``group_send`` of a message-sized event,
   N times, each consumer sending it on as JSON. Latency: from ``group_send`` to receipt.

Both send the next message once the previous one reached all 20 sockets (or after a second,
when it counts as lost). Prints p50/p99 of each, the share of messages delivered, and the
ratios agents / baseline. Goal for the agents: p99 <= 50 ms, 100 % delivered.

The visitor's rate limit (WEBCHAT_MESSAGES_PER_10S) is lifted for the run. The bench's
tenant, users and conversation are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOST_AFTER = 1.0  # seconds: a message not at every socket by then counts as lost
GOAL_P99_MS = 50.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="messages per phase")
    parser.add_argument("--agents", type=int, default=20, help="agents watching")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured messages first")
    parser.add_argument(
        "--lost-after",
        type=float,
        default=LOST_AFTER,
        help="seconds after which a message not at every socket counts as lost",
    )
    return parser.parse_args(argv)


def setup_django() -> tempfile.TemporaryDirectory | None:
    """Django on this environment; the embedded defaults get a temporary var directory."""
    scratch = None
    if not os.environ.get("CHATTONIC_VAR_DIR"):
        scratch = tempfile.TemporaryDirectory(prefix="bench-agents-")
        os.environ["CHATTONIC_VAR_DIR"] = scratch.name
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["WEBCHAT_MESSAGES_PER_10S"] = "1000000"
    os.environ["DJANGO_SETTINGS_MODULE"] = "chattonic.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return scratch


# --- Measuring ---------------------------------------------------------------------------------


@dataclass
class Phase:
    """Send times and, per message, the arrival times at each socket."""

    name: str
    sockets: int
    sent: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, list[float]] = field(default_factory=dict)
    events: dict[str, asyncio.Event] = field(default_factory=dict)

    def expect(self, key: str) -> asyncio.Event:
        self.arrived[key] = []
        self.events[key] = asyncio.Event()
        return self.events[key]

    def arrive(self, key: str, at: float) -> None:
        if key in self.arrived:
            self.arrived[key].append(at)
            if len(self.arrived[key]) >= self.sockets:
                self.events[key].set()

    def latencies_ms(self) -> list[float]:
        return sorted(
            (at - self.sent[key]) * 1000 for key, ats in self.arrived.items() for at in ats
        )

    def delivered(self) -> float:
        expected = len(self.sent) * self.sockets
        got = sum(min(len(ats), self.sockets) for ats in self.arrived.values())
        return got / expected if expected else 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


async def read_into(communicator, phase_of, text_of) -> None:
    """Read a socket's frames for ever, noting the arrival of each measured message."""
    while True:
        raw = await communicator.output_queue.get()
        at = time.perf_counter()
        if raw.get("type") != "websocket.send" or "text" not in raw:
            continue
        frame = json.loads(raw["text"])
        key = text_of(frame)
        phase = phase_of()
        if key is not None and phase is not None:
            phase.arrive(key, at)


async def drive(
    phase: Phase, count: int, prefix: str, send, *also: Phase, lost_after: float = LOST_AFTER
) -> None:
    """Send ``count`` messages one after the other, each once every socket had the previous
    one (or it was lost); ``also`` measures the same sends on other sockets."""
    for i in range(count):
        key = f"{prefix} {i}"
        events = [p.expect(key) for p in (phase, *also)]
        phase.sent[key] = time.perf_counter()
        for other in also:
            other.sent[key] = phase.sent[key]
        await send(key)
        try:
            async with asyncio.timeout(lost_after):
                for done in events:
                    await done.wait()
        except TimeoutError:
            pass


# --- The two set-ups -------------------------------------------------------------------------


def make_data(agents: int) -> dict:
    from django.test import Client

    from bots.models import Bot
    from bots.services import bot_launch, bot_publish, bot_version_train
    from chattonic.tenancy.models import Membership, Tenant

    tag = uuid.uuid4().hex[:10]
    tenant = Tenant.objects.create(name=f"Bench {tag}", slug=f"bench-agents-{tag}")
    always = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    bot = Bot.objects.create(
        tenant=tenant,
        name="Bench",
        allowed_origins=["https://bench.example.com"],
        business_hours=always,
    )
    bot_version_train(version_id=bot_publish(bot=bot).pk)  # no worker runs here
    bot_launch(bot=bot)
    from django.contrib.auth import get_user_model

    users, cookies = [], []
    for i in range(agents):
        user = get_user_model().objects.create_user(username=f"bench-{tag}-{i}@example.com")
        Membership.objects.create(tenant=tenant, user=user, role=Membership.Role.AGENT)
        client = Client()
        client.force_login(user)
        users.append(user.pk)
        cookies.append(f"sessionid={client.cookies['sessionid'].value}")
    return {"tenant": tenant.pk, "bot_key": bot.public_key, "users": users, "cookies": cookies}


def delete_data(data: dict) -> None:
    """The bench's tenant and everything of it (some keys protect: a few passes)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.db import IntegrityError, transaction
    from django.db.models import ProtectedError, RestrictedError

    from chattonic.tenancy.models import Tenant

    owned = [
        model
        for model in apps.get_models()
        if any(f.name == "tenant" and f.related_model is Tenant for f in model._meta.fields)
    ]
    refused = (ProtectedError, RestrictedError, IntegrityError)
    for _ in range(5):
        for model in owned:
            try:
                with transaction.atomic():
                    model._base_manager.filter(tenant_id=data["tenant"]).delete()
            except refused:
                pass
        try:
            with transaction.atomic():
                Tenant.objects.filter(pk=data["tenant"]).delete()
            break
        except refused:
            continue
    get_user_model().objects.filter(pk__in=data["users"]).delete()


def hand_to_agent(conversation_id: int, user_id: int) -> None:
    from django.contrib.auth import get_user_model

    from agents import services
    from conversations.models import Conversation

    conversation = Conversation.objects.select_related("bot").get(pk=conversation_id)
    services.conversation_take_over(
        conversation=conversation, agent=get_user_model().objects.get(pk=user_id)
    )


async def frame_of(communicator, kind: str, timeout: float = 10) -> dict:
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame.get("type") == kind:
            return frame
        if frame.get("type") == "error":
            raise RuntimeError(f"error frame: {frame}")


async def agents_phase(args, data) -> tuple[Phase, Phase]:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from chattonic.asgi import application

    visitor = WebsocketCommunicator(
        application,
        f"/ws/webchat/{data['bot_key']}/",
        headers=[(b"origin", b"https://bench.example.com")],
    )
    visitor.scope["client"] = ("198.51.100.1", 40000)
    assert (await visitor.connect(timeout=10))[0], "the visitor's socket was refused"
    await frame_of(visitor, "session")
    await visitor.send_json_to({"type": "start"})
    history = await frame_of(visitor, "history")
    conversation_id = history["conversation"]
    await database_sync_to_async(hand_to_agent)(conversation_id, data["users"][0])

    consoles = []
    for cookie in data["cookies"]:
        console = WebsocketCommunicator(
            application,
            "/ws/agent/",
            headers=[(b"origin", b"http://localhost"), (b"cookie", cookie.encode())],
        )
        assert (await console.connect(timeout=10))[0], "a console was refused"
        await frame_of(console, "hello")
        await console.send_json_to({"type": "open", "conversation": conversation_id})
        await frame_of(console, "conversation")
        consoles.append(console)

    current: list[Phase | None] = [None]

    def text_of(frame):
        if frame.get("type") == "message" and frame["message"]["sender"] == "contact":
            return frame["message"]["text"]
        return None

    readers = [asyncio.create_task(read_into(c, lambda: current[0], text_of)) for c in consoles]
    echo: list[Phase | None] = [None]

    def acked_text(frame):
        return frame["message"]["text"] if frame.get("type") == "ack" else None

    visitor_reader = asyncio.create_task(read_into(visitor, lambda: echo[0], acked_text))

    async def send(key: str) -> None:
        await visitor.send_json_to({"type": "message", "client_id": key, "text": key})

    try:
        current[0] = Phase("warmup", len(consoles))
        await drive(current[0], args.warmup, "warm", send, lost_after=args.lost_after)
        current[0] = phase = Phase("agents", len(consoles))
        echo[0] = Phase("echo", 1)
        await drive(phase, args.messages, "visitor", send, echo[0], lost_after=args.lost_after)
    finally:
        for task in [*readers, visitor_reader]:
            task.cancel()
        for communicator in [*consoles, visitor]:
            await communicator.disconnect()
    return phase, echo[0]


async def baseline_phase(args) -> Phase:
    from channels.generic.websocket import AsyncJsonWebsocketConsumer
    from channels.layers import get_channel_layer
    from channels.testing import WebsocketCommunicator

    group = f"bench.baseline.{uuid.uuid4().hex[:8]}"

    class Plain(AsyncJsonWebsocketConsumer):
        async def connect(self):
            await self.accept()
            await self.channel_layer.group_add(group, self.channel_name)

        async def disconnect(self, code):
            await self.channel_layer.group_discard(group, self.channel_name)

        async def message_created(self, event):
            await self.send_json({"type": "message", "message": event["message"]})

    sockets = []
    for _ in range(args.agents):
        communicator = WebsocketCommunicator(Plain.as_asgi(), "/bench/")
        assert (await communicator.connect(timeout=10))[0]
        sockets.append(communicator)
    layer = get_channel_layer()
    current: list[Phase | None] = [None]
    readers = [
        asyncio.create_task(read_into(c, lambda: current[0], lambda f: f["message"]["text"]))
        for c in sockets
    ]

    async def send(key: str) -> None:
        # A payload of the same shape and size as the agents' message frames.
        message = {
            "id": 1,
            "conversation": 1,
            "direction": "in",
            "sender": "contact",
            "agent": None,
            "kind": "text",
            "text": key,
            "quick_replies": [],
            "media": None,
            "client_id": key,
            "away": False,
            "status": "received",
            "created_at": "2026-01-01T00:00:00+00:00",
        }
        await layer.group_send(group, {"type": "message.created", "message": message})

    try:
        current[0] = Phase("warmup", len(sockets))
        await drive(current[0], args.warmup, "warm", send, lost_after=args.lost_after)
        current[0] = phase = Phase("baseline", len(sockets))
        await drive(phase, args.messages, "bare", send, lost_after=args.lost_after)
    finally:
        for task in readers:
            task.cancel()
        for communicator in sockets:
            await communicator.disconnect()
    return phase


# --- Main --------------------------------------------------------------------------------------


def report(baseline: Phase, agents: Phase, echo: Phase, args) -> dict:
    rows = {}
    for phase in (baseline, agents, echo):
        values = phase.latencies_ms()
        rows[phase.name] = {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "delivered": phase.delivered(),
        }
    b, a = rows["baseline"], rows["agents"]
    print(
        f"{args.messages} messages to {args.agents} sockets each "
        f"(database {connection_vendor()}, channel layer {layer_name()})"
    )
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'delivered':>10}")
    labels = {
        "baseline": "baseline: group_send to 20 plain consumers",
        "agents": "agents: visitor's message to 20 agent consoles",
        "echo": "echo: the visitor's ack, once stored and broadcast",
    }
    for name, row in rows.items():
        print(
            f"{name:10} {row['p50']:8.2f} {row['p99']:8.2f} {row['delivered']:10.1%}"
            f"   {labels[name]}"
        )
    print(f"ratio agents/baseline: p50 {a['p50'] / b['p50']:.1f}x, p99 {a['p99'] / b['p99']:.1f}x")
    e = rows["echo"]
    print(
        f"of which storing and broadcasting (echo): p50 {e['p50']:.2f} ms; "
        f"the fan-out to {args.agents} consoles adds p50 {a['p50'] - e['p50']:.2f} ms"
    )
    ok = a["p99"] <= GOAL_P99_MS and a["delivered"] == 1.0
    print(f"goal p99 <= {GOAL_P99_MS:.0f} ms and 100 % delivered: {'met' if ok else 'NOT met'}")
    return rows


def connection_vendor() -> str:
    from django.db import connection

    return connection.vendor


def layer_name() -> str:
    from django.conf import settings

    return "embedded Redis" if settings.EMBEDDED_REDIS else "REDIS_URL"


async def run(args) -> dict:
    from channels.db import database_sync_to_async

    data = await database_sync_to_async(make_data)(args.agents)
    try:
        baseline = await baseline_phase(args)
        agents, echo = await agents_phase(args, data)
        return report(baseline, agents, echo, args)
    finally:
        await database_sync_to_async(delete_data)(data)


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from chattonic.core import embedded

    redis = embedded.start(settings.EMBEDDED_REDIS_SOCKET) if settings.EMBEDDED_REDIS else None
    try:
        call_command("migrate", verbosity=0, interactive=False)
        asyncio.run(run(args))
    finally:
        embedded.stop(redis)
        if scratch is not None:
            scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
