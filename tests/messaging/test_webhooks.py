"""The channels' HTTP door, ``/hooks/<kind>/<channel id>/``, for every connector: signatures
accepted and refused (nothing written), Meta's handshake, batches, statuses, and the bot's
reply going out to the local fake platform."""

from __future__ import annotations

import json

import pytest

from bots.models import Bot
from contacts.models import Contact
from conversations.models import Conversation, Message
from messaging.models import DeliveryAttempt
from messaging.services import webhook_url
from tests.conversations.payloads import raw
from tests.factories import TenantFactory, launched_bot
from tests.fakes import FakeMessenger, FakeTelegram, FakeTenantWebhook, FakeTwilio, FakeWhatsApp
from tests.fakes.channels import (
    CREDENTIALS,
    TEXT_PAYLOADS,
    hook_path,
    make_channel,
    point_settings_at,
    post,
    signature_headers,
    signed_post,
    text_body,
    twilio_status_body,
)
from tests.regions.config import EU, regions_configure

pytestmark = pytest.mark.django_db

SIGNED_KINDS = ["whatsapp", "messenger", "telegram", "twilio"]
FAKES = {
    "whatsapp": FakeWhatsApp,
    "messenger": FakeMessenger,
    "telegram": FakeTelegram,
    "twilio": FakeTwilio,
    "api": FakeTenantWebhook,
}


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.CHANNEL_RATE_LIMITS = False  # the limiter has its own tests


@pytest.fixture
def platform(request, settings):
    """The fake platform of the test's ``kind`` parameter, with the settings pointing at it."""
    kind = request.getfixturevalue("kind")
    with FAKES[kind]() as fake:
        point_settings_at(settings, kind, fake)
        yield fake


def counts() -> tuple[int, int, int, int]:
    return (
        Message.objects.count(),
        Contact.objects.count(),
        Conversation.objects.count(),
        DeliveryAttempt.objects.count(),
    )


def api_headers(tenant, scopes=("write",)) -> dict:
    from chattonic.tenancy.services import api_key_create

    _, secret = api_key_create(tenant=tenant, name="system", scopes=list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def deliver(client, channel, body, capture, **kwargs):
    with capture(execute=True):
        if channel.kind == "api":
            return post(client, channel, body, api_headers(channel.tenant))
        return signed_post(client, channel, body, **kwargs)


# --- Accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*SIGNED_KINDS, "api"])
def test_a_signed_message_is_stored_answered_and_the_reply_sent(
    kind, platform, client, django_capture_on_commit_callbacks
):
    channel = make_channel(kind, webhook=platform.base_url if kind == "api" else None)
    response = deliver(client, channel, text_body(kind), django_capture_on_commit_callbacks)

    assert response.status_code == 200, response.content
    inbound = Message.objects.get(direction="in")
    assert inbound.channel == channel and inbound.tenant_id == channel.tenant_id
    assert inbound.external_id and inbound.handled_at is not None
    conversation = inbound.conversation
    assert conversation.channel == channel and conversation.channel_kind == kind
    replies = list(Message.objects.filter(direction="out").order_by("id"))
    assert replies, "the bot answered"
    assert all(reply.status == "sent" for reply in replies), [r.error for r in replies]
    assert all(reply.external_id for reply in replies)
    requests = platform.requests
    assert len(requests) == len(replies)  # one platform request per reply, no repeats
    expected_recipient = TEXT_PAYLOADS.get(kind, (None, "user-7"))[1]
    if expected_recipient:
        assert conversation.recipient_id == expected_recipient
    if kind == "twilio":
        assert response["Content-Type"].startswith("text/xml")
        # The channel's webhook URL, with our reference for settling a lost answer.
        assert requests[0].form["StatusCallback"] == f"{webhook_url(channel)}?ref={replies[0].pk}"
    else:
        assert response.json() == {
            "ok": True,
            "received": 1,
            "duplicates": 0,
            "statuses": 0,
            "refused": [],
        }


@pytest.mark.parametrize("kind", SIGNED_KINDS)
def test_a_redelivered_webhook_stores_nothing_new_and_answers_once(
    kind, platform, client, django_capture_on_commit_callbacks
):
    channel = make_channel(kind)
    first = deliver(client, channel, text_body(kind), django_capture_on_commit_callbacks)
    before = counts()
    sent = len(platform.requests)
    again = deliver(client, channel, text_body(kind), django_capture_on_commit_callbacks)
    assert first.status_code == again.status_code == 200
    assert counts() == before
    assert len(platform.requests) == sent
    if kind != "twilio":
        assert again.json()["duplicates"] == 1


def test_every_message_of_a_batch_is_taken_and_its_statuses_applied(
    client, settings, django_capture_on_commit_callbacks
):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        channel = make_channel("whatsapp")
        response = deliver(
            client, channel, raw("whatsapp/batch.json"), django_capture_on_commit_callbacks
        )
    assert response.status_code == 200
    inbound = list(Message.objects.filter(direction="in").order_by("created_at", "id"))
    assert [m.external_id for m in inbound] == [
        "wamid.BATCH-TEXT-1",
        "wamid.BATCH-BUTTON-2",
        "wamid.BATCH-LIST-3",
        "wamid.BATCH-IMAGE-4",
        "wamid.BATCH-LOCATION-5",
        "wamid.BATCH-CONTACTS-6",
        "wamid.BATCH-REACTION-7",
        "wamid.BATCH-UNSUPPORTED-8",
    ]
    kinds = [m.kind for m in inbound]
    assert kinds[:6] == ["text", "button", "button", "media", "location", "contacts"]
    assert kinds[7] == "unsupported"
    assert inbound[1].data["payload"] == "change-button"
    # Three people wrote: three conversations, each answered.
    assert Conversation.objects.count() == 3
    assert all(m.handled_at for m in inbound)


@pytest.mark.parametrize(
    "name", ["whatsapp/media.json", "telegram/location.json", "telegram/dice.json"]
)
def test_media_locations_and_unsupported_updates_are_stored_not_dropped(
    name, client, settings, django_capture_on_commit_callbacks
):
    kind = name.split("/")[0]
    with FAKES[kind]() as fake:
        point_settings_at(settings, kind, fake)
        channel = make_channel(kind)
        response = deliver(client, channel, raw(name), django_capture_on_commit_callbacks)
    assert response.status_code == 200
    message = Message.objects.filter(direction="in").first()
    assert message.kind in ("media", "location", "unsupported")
    assert message.data


# --- Refused: nothing written -----------------------------------------------------------------


def tampered(body: bytes) -> bytes:
    if body.startswith(b"{"):
        return body.replace(b"1", b"2", 1)
    return body.replace(b"Sunday", b"Monday")


def reserialised(body: bytes) -> bytes:
    if body.startswith(b"{"):
        return json.dumps(json.loads(body), separators=(",", ":")).encode()
    return body.replace(b"%2B", b"+")  # "+" decodes to a space: other values


REFUSALS = {
    "tampered body": lambda ch, body: (tampered(body), signature_headers(ch, body)),
    "wrong secret": lambda ch, body: (body, signature_headers(ch, body, secret="not-it")),
    "missing header": lambda ch, body: (body, {}),
    "re-serialised body": lambda ch, body: (reserialised(body), signature_headers(ch, body)),
}


@pytest.mark.parametrize("kind", SIGNED_KINDS)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_requests_get_json_401_or_403_and_write_nothing(kind, case, client, settings):
    if kind == "telegram" and case in ("tampered body", "re-serialised body"):
        pytest.skip("Telegram signs no body: its secret header is the proof (docs/channels.md)")
    channel = make_channel(kind)
    body = text_body(kind)
    sent_body, headers = REFUSALS[case](channel, body)
    assert sent_body != body or case in ("wrong secret", "missing header")
    before = counts()

    response = post(client, channel, sent_body, headers)

    assert response.status_code == (401 if case == "missing header" else 403)
    error = response.json()["error"]
    assert error["code"] and error["message"]
    assert counts() == before


def test_the_right_signature_over_the_wrong_url_is_refused_for_twilio(client):
    """Twilio signs the public URL: a signature for another URL (a proxy rewriting the host,
    another channel) fails."""
    channel = make_channel("twilio")
    body = text_body("twilio")
    headers = signature_headers(channel, body, url="http://10.0.0.5:8000" + hook_path(channel))
    response = post(client, channel, body, headers)
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_a_channel_signed_with_another_channels_secret_is_refused(client):
    mine = make_channel("whatsapp")
    theirs = make_channel("whatsapp", app_secret="their-app-secret")
    body = text_body("whatsapp")
    response = post(client, theirs, body, signature_headers(mine, body))
    assert response.status_code == 403
    assert Message.objects.count() == 0


@pytest.mark.parametrize("kind", [*SIGNED_KINDS, "api"])
def test_an_unknown_channel_is_a_json_404(kind, client):
    channel = make_channel(kind)
    body = text_body(kind)
    for path in (f"/hooks/{kind}/999999/", f"/hooks/nope/{channel.pk}/"):
        response = client.generic("POST", path, body, content_type="application/json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    other_kind = "telegram" if kind != "telegram" else "whatsapp"
    response = client.generic(
        "POST", f"/hooks/{other_kind}/{channel.pk}/", body, content_type="application/json"
    )
    assert response.status_code == 404
    assert Message.objects.count() == 0


def test_a_webhook_for_another_regions_bot_is_a_421_naming_its_url(client, settings):
    channel = make_channel("whatsapp")
    # A bot row that names another region (the doors refuse a URL of another region's
    # ids before any lookup: tests/regions): the row's region is checked as a guard.
    regions_configure(settings, "us-central")
    Bot.objects.filter(pk=channel.bot_id).update(region="eu-frankfurt")
    body = text_body("whatsapp")

    response = post(client, channel, body, signature_headers(channel, body))

    assert response.status_code == 421
    error = response.json()["error"]
    assert (error["code"], error["region"], error["url"]) == (
        "wrong_region",
        "eu-frankfurt",
        EU,
    )
    assert Message.objects.count() == 0


def test_a_malformed_but_signed_body_is_a_400_and_writes_nothing(client):
    channel = make_channel("whatsapp")
    response = signed_post(client, channel, b'{"object": "page", "entry": []}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_payload"
    assert Message.objects.count() == 0


# --- The API channel's key --------------------------------------------------------------------


def test_the_api_channel_needs_a_key_of_its_own_tenant_with_the_write_scope(client):
    channel = make_channel("api")
    body = text_body("api")
    assert post(client, channel, body).status_code == 401
    bad = post(client, channel, body, {"HTTP_AUTHORIZATION": "Bearer ct_nope_nope"})
    assert bad.status_code == 401
    other = post(client, channel, body, api_headers(TenantFactory()))
    assert other.status_code == 404  # another tenant's channel looks missing
    read_only = post(client, channel, body, api_headers(channel.tenant, scopes=["read"]))
    assert read_only.status_code == 403
    assert Message.objects.count() == 0


# --- Meta's handshake -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["whatsapp", "messenger"])
def test_the_handshake_echoes_the_challenge_for_the_right_token_only(kind, client):
    channel = make_channel(kind)
    token = CREDENTIALS[kind]["verify_token"]
    query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    response = client.get(hook_path(channel), query)
    assert response.status_code == 200
    assert response.content == b"1158201444"
    wrong = client.get(hook_path(channel), {**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "invalid_verify_token"
    assert b"1158201444" not in wrong.content


def test_platforms_without_a_handshake_refuse_get(client):
    channel = make_channel("telegram")
    assert client.get(hook_path(channel)).status_code == 405


# --- Statuses ---------------------------------------------------------------------------------


def whatsapp_status(wamid: str, status: str, ts: int) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "106540352242922"},
                            "statuses": [
                                {
                                    "id": wamid,
                                    "status": status,
                                    "timestamp": str(ts),
                                    "recipient_id": "16505551234",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def test_statuses_move_forward_and_never_back(client, settings, django_capture_on_commit_callbacks):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        channel = make_channel("whatsapp")
        deliver(client, channel, text_body("whatsapp"), django_capture_on_commit_callbacks)
    reply = Message.objects.filter(direction="out").first()
    assert reply.status == "sent" and reply.external_id.startswith("wamid.FAKE")

    def status(name, ts):
        body = json.dumps(whatsapp_status(reply.external_id, name, ts)).encode()
        return deliver(client, channel, body, django_capture_on_commit_callbacks)

    assert status("read", 1749416500).json()["statuses"] == 1
    assert status("delivered", 1749416450).json()["statuses"] == 0  # late and out of order
    assert status("sent", 1749416440).json()["statuses"] == 0
    assert status("failed", 1749416600).json()["statuses"] == 0
    reply.refresh_from_db()
    assert reply.status == "read"


def test_a_messenger_read_watermark_marks_what_that_person_was_sent_up_to_then(
    client, django_capture_on_commit_callbacks
):
    """channels.md: Messenger's read/delivered watermarks: every message to that person up
    to the watermark (and only forward: a failed one stays failed)."""
    from datetime import UTC, datetime, timedelta

    from tests.factories import ConversationFactory, MessageFactory

    channel = make_channel("messenger")
    watermark = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def sent(person: str, seconds: int, status: str = "sent") -> Message:
        conversation = ConversationFactory(
            tenant=channel.tenant,
            bot=channel.bot,
            channel=channel,
            channel_kind="messenger",
            recipient_id=person,
        )
        return MessageFactory(
            tenant=channel.tenant,
            conversation=conversation,
            channel=channel,
            direction="out",
            sender="bot",
            status=status,
            external_id=f"m_{person}_{seconds}",
            created_at=watermark + timedelta(seconds=seconds),
        )

    earlier, at_it = sent("PSID1", -60), sent("PSID1", 0)
    later, failed = sent("PSID1", 60), sent("PSID1", -30, status="failed")
    someone_else = sent("PSID2", -60)
    event = {
        "sender": {"id": "PSID1"},
        "recipient": {"id": "682498302938465"},
        "timestamp": int(watermark.timestamp() * 1000) + 500,
        "read": {"watermark": int(watermark.timestamp() * 1000)},
    }
    body = json.dumps(
        {"object": "page", "entry": [{"id": "682498302938465", "time": 1, "messaging": [event]}]}
    ).encode()
    deliver(client, channel, body, django_capture_on_commit_callbacks)

    status = {m.pk: m.status for m in Message.objects.filter(direction="out")}
    assert status[earlier.pk] == status[at_it.pk] == "read"
    assert status[later.pk] == "sent" and status[failed.pk] == "failed"
    assert status[someone_else.pk] == "sent"


def test_an_unknown_status_is_looked_up_three_times_five_seconds_apart_then_let_go(monkeypatch):
    """channels.md: a status for an id we do not know yet is looked up again by a task three
    times, five seconds apart, then let go."""
    from celery.exceptions import Retry

    from messaging.tasks import channel_status_later

    channel = make_channel("whatsapp")
    status = {"external_id": "wamid.NEVER", "status": "read", "timestamp": None}
    retried = []

    def retry(**kwargs):
        retried.append(channel_status_later.request.retries)
        raise Retry()

    monkeypatch.setattr(channel_status_later, "retry", retry)
    assert (channel_status_later.max_retries, channel_status_later.default_retry_delay) == (3, 5)
    for attempt in range(3):
        channel_status_later.push_request(retries=attempt, is_eager=False)
        try:
            with pytest.raises(Retry):
                channel_status_later.run(channel.pk, status)
        finally:
            channel_status_later.pop_request()
    channel_status_later.push_request(retries=3, is_eager=False)
    try:
        assert channel_status_later.run(channel.pk, status) == 0  # let go
    finally:
        channel_status_later.pop_request()
    assert retried == [0, 1, 2]


def test_twilio_status_callbacks_update_the_message(
    client, settings, django_capture_on_commit_callbacks
):
    with FakeTwilio() as fake:
        settings.TWILIO_API_BASE = fake.allow(settings).base_url
        channel = make_channel("twilio")
        deliver(client, channel, text_body("twilio"), django_capture_on_commit_callbacks)
    reply = Message.objects.filter(direction="out").first()
    for name in ("sent", "undelivered"):
        response = deliver(
            client,
            channel,
            twilio_status_body(reply.external_id, name),
            django_capture_on_commit_callbacks,
        )
        assert response.status_code == 200
    reply.refresh_from_db()
    assert reply.status == "failed"


def test_a_bot_without_a_published_version_still_stores_the_message(
    client, django_capture_on_commit_callbacks
):
    from tests.factories import BotFactory

    bot = BotFactory()
    channel = make_channel("telegram", bot=bot)
    response = deliver(client, channel, text_body("telegram"), django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert Message.objects.filter(direction="in").count() == 1
    assert Message.objects.filter(direction="out").count() == 0


def test_credentials_are_encrypted_at_rest():
    channel = make_channel("whatsapp")
    stored = type(channel).objects.values_list("credentials_encrypted", flat=True).get()
    assert "wa-app-secret" not in stored and "wa-access-token" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token


def test_the_tenant_comes_from_the_channel(client):
    bot = launched_bot()
    channel = make_channel("telegram", bot=bot)
    response = signed_post(client, channel, text_body("telegram"))
    assert response.status_code == 200
    assert set(Message.objects.values_list("tenant_id", flat=True)) == {bot.tenant_id}


def test_a_status_that_overtakes_our_record_of_the_send_is_applied_later(
    client, django_capture_on_commit_callbacks
):
    from tests.factories import ConversationFactory, MessageFactory

    channel = make_channel("whatsapp")
    conversation = ConversationFactory(
        tenant=channel.tenant, bot=channel.bot, channel=channel, channel_kind="whatsapp"
    )
    reply = MessageFactory(
        tenant=channel.tenant,
        conversation=conversation,
        channel=channel,
        direction="out",
        sender="bot",
        status="pending",
    )
    body = json.dumps(whatsapp_status("wamid.EARLY", "delivered", 1749416450)).encode()
    with django_capture_on_commit_callbacks() as queued:
        response = signed_post(client, channel, body)
    assert response.json()["statuses"] == 0  # not known yet
    # Meanwhile the send task records the platform's id and marks it sent.
    Message.objects.filter(pk=reply.pk).update(external_id="wamid.EARLY", status="sent")
    for callback in queued:
        callback()
    reply.refresh_from_db()
    assert reply.status == "delivered"


def test_an_sms_answer_by_number_picks_the_offered_quick_reply(
    client, settings, django_capture_on_commit_callbacks
):
    from urllib.parse import urlencode

    with FakeTwilio() as fake:
        settings.TWILIO_API_BASE = fake.allow(settings).base_url
        channel = make_channel("twilio")

        def sms(sid: str, text: str):
            body = urlencode(
                {
                    "MessageSid": sid,
                    "AccountSid": CREDENTIALS["twilio"]["account_sid"],
                    "From": "+14155550123",
                    "To": CREDENTIALS["twilio"]["from_number"],
                    "Body": text,
                    "NumMedia": "0",
                }
            ).encode()
            return deliver(client, channel, body, django_capture_on_commit_callbacks)

        sms("SM" + "1" * 32, "hello")
        offered = Message.objects.filter(direction="out").order_by("-id").first()
        assert [r["title"] for r in offered.data["quick_replies"]] == ["Prices", "Email me"]
        assert "1. Prices\n2. Email me" in fake.sent.all()[-1]["Body"]
        sms("SM" + "2" * 32, "1")
    answer = Message.objects.filter(direction="out").order_by("-id").first()
    assert answer.text == "Plans start at $10."


def test_a_first_message_that_asks_something_is_answered_after_the_greeting(
    client, settings, django_capture_on_commit_callbacks
):
    body = json.dumps({"messages": [{"id": "q1", "from": "u1", "text": "how much is it"}]})
    with FakeTenantWebhook() as fake:
        fake.allow(settings)
        channel = make_channel("api", webhook=fake.base_url)
        deliver(client, channel, body.encode(), django_capture_on_commit_callbacks)
        texts = [event["data"]["text"] for event in fake.events]
    assert "What can I do for you?" in texts[:-1]  # the greeting first
    assert texts[-1] == "Plans start at $10."
    assert not any("did not understand" in text for text in texts)


def test_a_tapped_telegram_button_is_answered_and_its_payload_reaches_the_bot(
    client, settings, django_capture_on_commit_callbacks
):
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        channel = make_channel("telegram")
        response = deliver(
            client, channel, raw("telegram/callback_query.json"), django_capture_on_commit_callbacks
        )
        methods = [r.path.rsplit("/", 1)[-1] for r in fake.requests]
    assert response.status_code == 200
    tapped = Message.objects.get(direction="in")
    assert tapped.kind == "button" and tapped.data["payload"]
    assert "answerCallbackQuery" in methods


def test_the_api_channel_tells_the_bots_replies_from_an_agents(
    client, settings, django_capture_on_commit_callbacks
):
    from agents.services import agent_reply, conversation_claim, conversation_hand_off
    from tests.factories import MembershipFactory

    with FakeTenantWebhook() as platform:
        point_settings_at(settings, "api", platform)
        channel = make_channel("api", webhook=platform.base_url)
        deliver(client, channel, text_body("api"), django_capture_on_commit_callbacks)
        conversation = Conversation.objects.get()
        agent = MembershipFactory(tenant=channel.tenant, role="agent").user
        agent.first_name, agent.last_name = "Ana", "Lima"
        agent.save()
        with django_capture_on_commit_callbacks(execute=True):
            conversation_hand_off(conversation=conversation, reason="visitor")
            conversation_claim(conversation=conversation, agent=agent)
            agent_reply(conversation=conversation, agent=agent, text="Ana here, how can I help?")
        events = platform.events

    senders = [(event["data"]["sender"], event["data"]["agent"]) for event in events]
    assert senders[0] == ("bot", None)
    assert senders[-1] == ("agent", "Ana")  # the first name: never the email or full name
    assert agent.email not in str(events)
    assert events[-1]["data"]["text"] == "Ana here, how can I help?"
