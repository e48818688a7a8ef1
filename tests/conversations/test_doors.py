"""Every door, one service: the same two visitors talk to the same flow (every node type)
through the web chat socket, each platform's webhook (WhatsApp, Messenger, Telegram, Twilio
SMS) and the API channel, each door on a tenant of its own. Every row of every tenant-owned
model the talk leaves, and every event it emits, must be the same whatever the door, but for
ids, times and what a door carries by nature (``DOOR_FIELDS``: a platform's message ids,
its sender's name, its channel; the web chat's visitor tabs and its socket's own events).

Rows are compared field by field from the models' own field lists: a field added to any
model is compared without anyone listing it here."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.db import connections, models, transaction

from chattonic.asgi import application
from chattonic.tenancy.models import TenantOwned
from chattonic.tenancy.services import api_key_create
from conversations import realtime
from conversations.receive import write
from tests.conversations.payloads import raw
from tests.conversations.writers import only_the_receive_service_writes_messages
from tests.factories import launched_bot
from tests.fakes.channels import make_channel, post, signed_post
from tests.fakes.server import Answer, FakeServer, Recorded

pytestmark = [pytest.mark.django_db(transaction=True)]

ORIGIN = "https://shop.example.com"
TIMEOUT = 30


class FakeShop(FakeServer):
    name = "shop"

    def handle(self, request: Recorded) -> Answer:
        return Answer(200, {"order": {"status": "shipped"}})


def flow(base_url: str) -> dict:
    """Every node type: router, message, question, set, condition, http, capture_lead,
    handoff, end."""
    return {
        "start": "menu",
        "main": "menu",
        "intents": [
            {"name": "order", "phrases": ["i want to order", "place an order", "order now"]},
            {"name": "pricing", "phrases": ["how much is it", "prices", "pricing"]},
            {"name": "person", "phrases": ["talk to a person", "a human please", "real agent"]},
            {"name": "bye", "phrases": ["bye", "goodbye", "that is all"]},
        ],
        "nodes": {
            "menu": {
                "type": "router",
                "routes": {
                    "order": "welcome",
                    "pricing": "prices",
                    "person": "person",
                    "bye": "bye",
                },
            },
            "welcome": {"type": "message", "text": "Let's order.", "next": "ask"},
            "ask": {"type": "question", "text": "Your name?", "variable": "name", "next": "mark"},
            "mark": {"type": "set", "variables": {"greeting": "Hi {{name}}"}, "next": "check"},
            "check": {
                "type": "condition",
                "rules": [{"when": [{"variable": "name", "op": "set"}], "next": "lookup"}],
                "else": "prices",
            },
            "lookup": {
                "type": "http",
                "method": "POST",
                "url": base_url + "/orders/7",
                "timeout": 5,
                "save": {"state": "order.status"},
                "status_variable": "code",
                "next": "found",
                "on_failure": "found",
            },
            "found": {
                "type": "message",
                "text": "{{greeting}}: order 7 is {{state}}.",
                "next": "lead",
            },
            "lead": {"type": "capture_lead", "variables": ["name"], "next": "menu"},
            "prices": {"type": "message", "text": "Plans start at $10.", "next": "menu"},
            "person": {
                "type": "handoff",
                "reason": "asked_for_a_person_in_the_menu",  # a code of its own, over 20
                "text": "A person comes.",
            },
            "bye": {"type": "end", "text": "Bye!"},
        },
    }


# Two visitors: one walks the order (question, set, condition, http, lead), asks the price and
# ends; the other asks for a person and writes again while the conversation waits for one.
SCRIPTS = (
    ("i want to order", "Ann", "how much is it", "bye"),
    ("talk to a person", "hello?"),
)
DOORS = ("webchat", "whatsapp", "messenger", "telegram", "twilio", "api")

# What a door carries by nature (a platform's ids and statuses, a sender's name): not compared.
DOOR_FIELDS = {
    "Message": {"channel", "external_id", "status", "status_at", "handled_at"},
    "Conversation": {"channel_kind", "channel", "recipient_id"},
    "ContactIdentity": {"kind", "channel", "external_id"},
    "Contact": {"name"},
    "Lead": {"channel_kind"},
}
# The set-up of a door (its bot, channel, key) and its sends out: not what the talk left.
DOOR_MODELS = {"Bot", "BotVersion", "Channel", "DeliveryAttempt", "ApiKey"}


# --- The doors ------------------------------------------------------------------------------------


def webhook_body(kind: str, visitor: int, n: int, text: str) -> bytes:
    sender = f"1650555{visitor:04d}"
    mid = f"m-{visitor}-{n}"
    if kind == "whatsapp":
        body = json.loads(raw("whatsapp/text.json"))
        value = body["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = sender
        value["messages"][0].update(id=mid, timestamp=str(1749416383 + n))
        value["messages"][0]["text"]["body"] = text
    elif kind == "messenger":
        body = json.loads(raw("messenger/text.json"))
        event = body["entry"][0]["messaging"][0]
        event["sender"]["id"] = sender
        event["timestamp"] = 1458692752478 + n
        event["message"] = {"mid": mid, "text": text}
    elif kind == "telegram":
        body = json.loads(raw("telegram/text.json"))
        body["update_id"] = visitor * 1000 + n
        message = body["message"]
        message.update(message_id=visitor * 1000 + n, text=text, date=1749416383 + n)
        message["from"]["id"] = message["chat"]["id"] = int(sender)
        message.pop("entities", None)
    elif kind == "twilio":
        return urlencode(
            {
                "MessageSid": "SM" + mid,
                "SmsSid": "SM" + mid,
                "AccountSid": "AC" + "0" * 31 + "1",
                "From": "+" + sender,
                "To": "+14155550100",
                "Body": text,
                "NumMedia": "0",
            }
        ).encode()
    else:
        body = {"messages": [{"id": mid, "from": sender, "text": text}]}
    return json.dumps(body).encode()


def through_webhooks(kind: str, bot, client) -> None:
    channel = make_channel(kind, bot=bot)
    headers = {}
    if kind == "api":
        _, secret = api_key_create(tenant=bot.tenant, name="door", scopes=["write"])
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    for visitor, script in enumerate(SCRIPTS):
        for n, text in enumerate(script):
            body = webhook_body(kind, visitor, n, text)
            if kind == "api":
                response = post(client, channel, body, headers)
            else:
                response = signed_post(client, channel, body)
            assert response.status_code == 200, response.content


async def _socket_script(bot, script) -> None:
    communicator = WebsocketCommunicator(
        application, f"/ws/webchat/{bot.public_key}/", headers=[(b"origin", ORIGIN.encode())]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "session"
    for n, text in enumerate(script):
        await communicator.send_json_to({"type": "message", "client_id": f"c{n}", "text": text})
        while True:
            frame = await communicator.receive_json_from(timeout=TIMEOUT)
            assert frame["type"] != "error", frame
            if frame["type"] == "ack" and frame["client_id"] == f"c{n}":
                break
    await communicator.disconnect()


def through_the_socket(bot) -> None:
    for script in SCRIPTS:
        async_to_sync(_socket_script)(bot, script)
    connections.close_all()


# --- What the talk left ---------------------------------------------------------------------------


def tenant_models() -> list:
    return sorted(
        (
            m
            for m in apps.get_models()
            if issubclass(m, TenantOwned) and m.__name__ not in DOOR_MODELS
        ),
        key=lambda m: m._meta.label,
    )


def snapshot(tenant_id: int) -> dict[str, list[dict]]:
    """Every row of every tenant-owned model of the tenant, normalised: ids as their rank
    among the tenant's rows of their model, times as present or not, door fields left out."""
    ranks: dict[type, dict[int, int]] = {}
    rows: dict[type, list] = {}
    for model in tenant_models():
        found = list(model.objects.filter(tenant_id=tenant_id).order_by("pk"))
        rows[model] = found
        ranks[model] = {row.pk: n for n, row in enumerate(found)}
    shot = {}
    for model, found in rows.items():
        door = DOOR_FIELDS.get(model.__name__, set())
        shot[model.__name__] = [
            {f.name: _value(f, row, ranks, door) for f in model._meta.concrete_fields}
            for row in found
        ]
    # A platform's message is stored with its webhook, before its conversation's start runs
    # in the task; the web chat's first message opens the conversation, after its start. Each
    # conversation's messages are compared in order within each direction.
    shot["Message"].sort(key=lambda m: (m["conversation"], m["direction"], m.pop("id")))
    for message in shot["Message"]:
        if message["direction"] == "in":  # a platform's own data on it (Telegram's ids...)
            message["data"] = {k: v for k, v in message["data"].items() if k == "payload"}
    return {name: found for name, found in shot.items() if found}


def _value(field, row, ranks, door):
    value = getattr(row, field.attname)
    if field.name == "tenant":
        return "tenant"
    if field.name in door:
        return "door"
    if isinstance(value, datetime | date):
        return value is not None
    if field.primary_key:
        return ranks[type(row)][value]
    if isinstance(field, models.ForeignKey) and value is not None:
        target = field.related_model
        return ranks[target].get(value, "other") if target in ranks else "set"
    return value


def normalised_events(events: list, tenant_id: int) -> list:
    """The events, with their groups and messages' ids as ranks; the web chat's visitor
    tabs' events and its socket's marks (``origin``) are the socket's by nature."""
    conversation_ids: dict[int, int] = {}
    message_ids: dict[int, int] = {}

    def rank(found: dict, key):
        return found.setdefault(key, len(found)) if key is not None else None

    def message(payload: dict) -> dict:
        payload = dict(payload)
        payload["id"] = rank(message_ids, payload["id"])
        payload["conversation"] = rank(conversation_ids, payload["conversation"])
        payload["created_at"] = bool(payload["created_at"])
        payload["client_id"] = "door"  # the widget's own id, or none
        payload["status"] = payload["direction"] == "in" and payload["status"]
        return payload

    found = []
    for group, event in events:
        if group.startswith("visitor."):
            continue
        event = copy.deepcopy(event)
        event.pop("origin", None)
        kind, _, rest = group.partition(".")
        if kind == "conversation":
            group = f"conversation.{rank(conversation_ids, int(rest))}"
        elif group == realtime.agents_group(tenant_id):
            group = "agents"
        if "message" in event:
            event["message"] = message(event["message"])
        if isinstance(event.get("conversation"), dict):
            shown = event["conversation"] = dict(event["conversation"])
            shown["id"] = rank(conversation_ids, shown["id"])
            if "message" in shown:
                shown["message"] = message(shown["message"])
            for key in ("bot", "channel", "channel_label", "contact"):  # each door's own set-up
                if key in shown:
                    shown[key] = "door"
            _times_apart(shown)
        if "id" in event and event["type"] == "message.status":
            event["id"] = rank(message_ids, event["id"])
        found.append((group, event))
    return found


def _times_apart(shown: dict) -> None:
    """Times (``..._at``, ``..._since``) as present or not, at any depth."""
    for key, value in shown.items():
        if isinstance(value, dict):
            _times_apart(value)
        elif key.endswith(("_at", "_since")):
            shown[key] = bool(value)


@pytest.fixture
def shop(settings):
    with FakeShop() as fake:
        fake.allow(settings)
        yield fake


@pytest.fixture
def emitted(monkeypatch):
    """Every event the service (and what it calls) emits, by tenant, as committed."""
    sent: list = []
    original = realtime.send_on_commit

    def recording(group, event):
        transaction.on_commit(lambda: sent.append((group, copy.deepcopy(event))))
        original(group, event)

    monkeypatch.setattr(realtime, "send_on_commit", recording)
    original_collect = write._collect

    def collecting(into, events):
        transaction.on_commit(lambda: sent.extend(copy.deepcopy(events)))
        original_collect(into, events)

    monkeypatch.setattr(write, "_collect", collecting)
    # A platform's replies are sent by the delivery worker, not the receive service.
    monkeypatch.setattr(write, "_send_later", lambda message_id: None)
    return sent


def test_every_door_stores_and_emits_the_same(client, settings, shop, emitted):
    settings.CHANNEL_RATE_LIMITS = False
    shots, events = {}, {}
    for door in DOORS:
        bot = launched_bot(draft_definition=flow(shop.base_url), allowed_origins=[ORIGIN])
        start = len(emitted)
        with only_the_receive_service_writes_messages():
            if door == "webchat":
                through_the_socket(bot)
            else:
                through_webhooks(door, bot, client)
        shots[door] = snapshot(bot.tenant_id)
        events[door] = normalised_events(emitted[start:], bot.tenant_id)

    reference = shots["webchat"]
    # The walk reached every node type: the lead, the handoff, the end, the HTTP call.
    assert reference["Lead"][0]["fields"] == {"name": "Ann"}
    assert [c["status"] for c in reference["Conversation"]] == ["resolved", "queued"]
    texts = [m["text"] for m in reference["Message"]]
    assert "Hi Ann: order 7 is shipped." in texts and "Bye!" in texts
    assert len(shop.requests) == len(DOORS)
    differences = [
        (door, name, shots[door].get(name), reference.get(name))
        for door in DOORS[1:]
        for name in sorted(set(reference) | set(shots[door]))
        if shots[door].get(name) != reference.get(name)
    ]
    assert [_fields_apart(d) for d in differences] == []
    for door in DOORS[1:]:
        apart = [
            (n, a, b)
            for n, (a, b) in enumerate(zip(events[door], events["webchat"], strict=False))
            if a != b
        ]
        assert (door, len(events[door]), apart[:3]) == (door, len(events["webchat"]), [])


def _fields_apart(difference) -> tuple:
    """(door, model, the fields whose values differ from the web chat's, by row)."""
    door, name, theirs, ours = difference
    if len(theirs or []) != len(ours or []):
        return door, name, f"{len(theirs or [])} rows, the web chat {len(ours or [])}"
    return (
        door,
        name,
        [
            {key: (a[key], b[key]) for key in a if a[key] != b.get(key)}
            for a, b in zip(theirs, ours, strict=True)
            if a != b
        ],
    )
