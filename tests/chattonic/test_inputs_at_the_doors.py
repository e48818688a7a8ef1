"""Issue 15, finding 9: malformed input from an authenticated sender at each door gets a clear
4xx (JSON naming the field) or is cleaned, never a 500, and one bad event of a batch never
costs the others. Through the real doors: signed webhooks and the REST API with the test
client."""

from __future__ import annotations

import copy
import json
import time
from urllib.parse import urlencode

import pytest

from bots.models import Bot
from contacts.models import Contact
from conversations.models import Conversation, Message
from tests.conversations.payloads import load
from tests.fakes.channels import make_channel, signed_post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings):
    """The doors are under test: the bot's turns and deliveries wait in the queue (no
    platform to send to), emptied after each test."""
    from chattonic.celery import app

    settings.CHANNEL_RATE_LIMITS = False
    app.conf.task_always_eager = False
    yield
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("celery")


def whatsapp(*messages: dict) -> bytes:
    payload = load("whatsapp/text.json")
    template = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    payload["entry"][0]["changes"][0]["value"]["messages"] = [
        {**copy.deepcopy(template), **message} for message in messages
    ]
    return json.dumps(payload).encode()


def text(body: str) -> dict:
    return {"type": "text", "text": {"body": body}}


def stored() -> tuple[int, int, int]:
    return Message.objects.count(), Contact.objects.count(), Conversation.objects.count()


# --- Webhooks ---------------------------------------------------------------------------------


def test_a_nul_in_one_message_of_a_batch_costs_nobody_and_a_redelivery_is_a_no_op(client):
    channel = make_channel("whatsapp")
    body = whatsapp(
        {"id": "wamid.1", **text("first")},
        {"id": "wamid.2", **text("bad\x00text")},
        {"id": "wamid.3", **text("third")},
    )
    response = signed_post(client, channel, body)
    assert response.status_code == 200, response.content
    assert response.json()["received"] == 3
    texts = list(Message.objects.order_by("external_id").values_list("text", flat=True))
    assert texts == ["first", "badtext", "third"]

    again = signed_post(client, channel, body)
    assert again.json()["duplicates"] == 3 and Message.objects.count() == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"timestamp": "1e20"},
        {"timestamp": "nan"},
        {"timestamp": 1e300},
        {"from": "1" * 10_000},
        {"id": "w" * 201},
        {"text": 12},
        {"type": "text", "text": {"body": ["a list"]}},
    ],
    ids=["1e20", "nan", "1e300", "long-sender", "long-id", "text-int", "body-list"],
)
def test_a_bad_message_is_refused_naming_its_field_and_the_rest_of_the_batch_is_stored(client, bad):
    channel = make_channel("whatsapp")
    body = whatsapp({"id": "wamid.good1"}, {"id": "wamid.bad", **bad}, {"id": "wamid.good2"})
    response = signed_post(client, channel, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["received"] == 2
    [refused] = answer["refused"]
    assert refused["event"] == "entry.0.changes.0.value.messages.1"
    assert refused["field"].startswith(refused["event"])
    assert set(Message.objects.values_list("external_id", flat=True)) == {
        "wamid.good1",
        "wamid.good2",
    }

    # Alone, it is a 400 naming the field, and nothing is written.
    before = stored()
    alone = signed_post(client, channel, whatsapp({"id": "wamid.bad2", **bad}))
    assert alone.status_code == 400, alone.content
    error = alone.json()["error"]
    assert error["code"] == "malformed_payload" and error["fields"]
    assert stored() == before


def test_a_status_with_error_data_as_a_string_is_applied(client):
    channel = make_channel("whatsapp")
    payload = load("whatsapp/text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    del value["messages"]
    value["statuses"] = [
        {
            "id": "wamid.out",
            "status": "failed",
            "timestamp": "1749416383",
            "recipient_id": "16505551234",
            "errors": [{"code": 131026, "title": "Undeliverable", "error_data": "a string"}],
        }
    ]
    response = signed_post(client, channel, json.dumps(payload).encode())
    assert response.status_code == 200, response.content
    assert response.json()["refused"] == []


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deep_json_is_a_400_at_the_webhook_and_the_api(client, api, depth):
    channel = make_channel("whatsapp")
    body = b"[" * depth + b"]" * depth
    response = signed_post(client, channel, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"
    answer = api.post("/api/v1/tickets/", body, content_type="application/json")
    assert answer.status_code == 400
    assert list(answer.json()["error"]["fields"]) == ["body"]


@pytest.mark.parametrize(("depth", "refused"), [(32, False), (33, True)])
def test_json_nests_at_most_32_levels(api, depth, refused):
    """docs/api.md: bodies nested at most 32 levels; one more is a 400 ``too_deep``."""
    body = json.dumps({"title": "t", "description": "d", "extra": nested(depth - 1)})
    answer = api.post("/api/v1/tickets/", body, content_type="application/json")
    if refused:
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "too_deep"
        assert list(answer.json()["error"]["fields"]) == ["body"]
    else:
        assert answer.status_code == 201, answer.content


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("count", ["11", "2e7", "20000000", "1000000000", "-1", "٣"])  # docs: 0-10
def test_twilio_num_media_is_bounded(client, count):
    channel = make_channel("twilio")
    form = {"MessageSid": "SM1", "From": "+14155550123", "Body": "hi", "NumMedia": count}
    start = time.monotonic()
    response = signed_post(client, channel, urlencode(form).encode())
    assert time.monotonic() - start < 1
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"NumMedia": [response.json()["error"]["message"]]}
    assert stored() == (0, 0, 0)


def test_a_body_past_the_upload_limit_is_a_json_413_at_the_webhook(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    channel = make_channel("whatsapp")
    response = signed_post(client, channel, whatsapp({"id": "w", **text("x" * 2000)}))
    assert response.status_code == 413
    assert response.json()["error"]["fields"]["body"]
    assert stored() == (0, 0, 0)


# --- The REST API ----------------------------------------------------------------------------


def test_a_body_past_the_upload_limit_is_a_json_413_naming_the_body(api, tenant):
    body = json.dumps({"title": "x", "description": "y" * 3_000_000}).encode()
    response = api.post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "too_large"
    assert "body" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "raw",
    [b'{"name": "a", "definition": {"x": "\\u0000"}}', b'{"name": "a\\u0000"}'],
    ids=["in-a-json-field", "in-a-string"],
)
def test_nul_anywhere_in_a_body_is_a_400_naming_where(api, tenant, raw):
    response = api.post("/api/v1/bots/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) & {"definition.x", "name"}
    assert not Bot.objects.exists()


@pytest.mark.parametrize(
    "raw", [b'{"name": NaN}', b'"\\ud800"', b"{"], ids=["nan", "surrogate", "cut"]
)
def test_bodies_that_are_not_json_we_take_are_a_400_on_the_body(api, tenant, raw):
    response = api.post("/api/v1/bots/", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"
    assert "body" in response.json()["error"]["fields"]


def test_a_500_deep_set_value_is_refused_before_it_is_saved(api, tenant):
    from tests.factories import BotFactory

    bot = BotFactory(tenant=tenant)
    before = copy.deepcopy(bot.draft_definition)
    deep: object = "x"
    for _ in range(500):
        deep = [deep]
    definition = copy.deepcopy(before)
    definition.setdefault("variables", {})["deep"] = deep
    response = api.patch(
        f"/api/v1/bots/{bot.pk}/", {"definition": definition}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_deep"
    bot.refresh_from_db()
    assert bot.draft_definition == before


@pytest.mark.parametrize(
    "segment", ["²", "٣", "1.5", "99999999999999999999", "9223372036854775808", "abc"]
)
def test_ids_in_urls_that_are_not_ascii_digits_in_range_are_a_json_404(api, tenant, segment):
    for path in (
        f"/api/v1/bots/{segment}/",
        f"/api/v1/conversations/{segment}/messages/",
        f"/api/v1/bots/{segment}/versions/",
        f"/hooks/whatsapp/{segment}/",
    ):
        response = api.get(path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "٣", "-1"])
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/conversations/", "bot"),
        ("/api/v1/conversations/", "contact"),
        ("/api/v1/leads/", "bot"),
        ("/api/v1/stats/", "bot"),
    ],
)
def test_ids_in_queries_are_bounded_and_a_400_names_them(api, tenant, path, field, value):
    response = api.get(path, {field: value})
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"end": "0001-01-01"}, "end"),
        ({"start": "9999-12-31", "end": "9999-12-31"}, "start"),  # the fuzz bench's 500
        ({"end": "9999-12-31"}, "end"),
    ],
)
def test_a_stats_range_out_of_the_calendar_is_a_400(api, tenant, params, field):
    response = api.get("/api/v1/stats/", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.parametrize("value", [2**63, 10**30, "99999999999999999999", 1.5, True])
def test_ids_in_bodies_are_bounded_and_a_400_names_them(api, tenant, value):
    from tests.factories import BotFactory, ContactFactory, ConversationFactory

    contact = ContactFactory(tenant=tenant)
    bot = BotFactory(tenant=tenant)
    conversation = ConversationFactory(tenant=tenant, bot=bot, contact=contact)
    before = stored()
    for path, body, field in [
        (f"/api/v1/contacts/{contact.pk}/merge/", {"source": value}, "source"),
        ("/api/v1/leads/", {"contact": value}, "contact"),
        ("/api/v1/tickets/", {"title": "t", "description": "d", "bot": value}, "bot"),
        (
            f"/api/v1/conversations/{conversation.pk}/messages/",
            {"text": "hi", "agent": value},
            "agent",
        ),
        (f"/api/v1/bots/{bot.pk}/rollback/", {"version": value}, "version"),
    ]:
        response = api.post(path, body, format="json")
        assert response.status_code == 400, (path, response.content)
        assert field in response.json()["error"]["fields"], (path, response.content)
    assert stored() == before
    assert api.get(f"/api/v1/bots/{bot.pk}/versions/2147483648/").status_code == 404


def test_an_error_of_the_csv_export_is_json(api, tenant):
    response = api.get("/api/v1/leads/export/", {"bot": "x", "format": "csv"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "bot" in response.json()["error"]["fields"]


def test_a_deep_definition_is_refused_at_the_dashboards_editor_too(owner_client, tenant):
    from tests.factories import BotFactory

    bot = BotFactory(tenant=tenant)
    before = copy.deepcopy(bot.draft_definition)
    deep = "[" * 100_000 + "]" * 100_000
    flow_page = f"/dashboard/bots/bot/{bot.pk}/flow/"
    response = owner_client.post(flow_page, {"definition": deep})
    assert response.status_code == 200  # the form again, with its error
    assert b"Nested deeper" in response.content or b"depth limit" in response.content
    definition = copy.deepcopy(before)
    definition["variables"] = {"deep": json.loads("[" * 40 + "]" * 40)}
    response = owner_client.post(flow_page, {"definition": json.dumps(definition)})
    assert response.status_code == 200
    assert b"Nested deeper than 32 levels" in response.content
    bot.refresh_from_db()
    assert bot.draft_definition == before
