"""Outbound delivery against the local fake platforms: retries with back-off, permanent
errors, the attempt log, exactly once under repeated and concurrent runs, rate limits,
the sandbox, redelivery, and the dashboard's channel and delivery-log pages."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from conversations.models import Conversation, Message
from messaging import delivery
from messaging.models import Channel, DeliveryAttempt
from messaging.tasks import message_send
from tests.factories import ContactFactory, ConversationFactory, MessageFactory
from tests.fakes import (
    Answer,
    FakeMessenger,
    FakeTelegram,
    FakeTenantWebhook,
    FakeTwilio,
    FakeWhatsApp,
)
from tests.fakes.channels import make_channel, point_settings_at, signed_post, text_body

pytestmark = pytest.mark.django_db

KINDS = ["whatsapp", "messenger", "telegram", "twilio", "api"]
FAKES = {
    "whatsapp": FakeWhatsApp,
    "messenger": FakeMessenger,
    "telegram": FakeTelegram,
    "twilio": FakeTwilio,
    "api": FakeTenantWebhook,
}
RECIPIENTS = {
    "whatsapp": "16505551234",
    "messenger": "1254477777772919",
    "telegram": "111111111",
    "twilio": "+14155550123",
    "api": "user-7",
}


def busy(fake) -> Answer:
    """A 429 with the platform's own retry hint."""
    if isinstance(fake, FakeTelegram):
        return fake.flood(retry_after=1)
    if isinstance(fake, FakeTwilio):
        return fake.too_many_requests(retry_after=1)
    if isinstance(fake, FakeWhatsApp):
        return fake.too_many_calls(retry_after=1)
    return Answer(429, {"error": {"message": "slow down", "code": 4}}, {"Retry-After": "1"})


def broken(fake) -> Answer:
    if isinstance(fake, FakeTelegram | FakeTwilio | FakeWhatsApp):
        return fake.server_error()
    return Answer(500, {"error": {"message": "oops", "code": 2}})


def refusal(fake) -> tuple[Answer, str]:
    """A permanent error and a word of its reason."""
    if isinstance(fake, FakeTelegram):
        return fake.chat_not_found(), "chat not found"
    if isinstance(fake, FakeTwilio):
        return fake.invalid_to(), "Invalid 'To' Phone Number"
    if isinstance(fake, FakeWhatsApp):
        return fake.undeliverable(), "undeliverable"
    if isinstance(fake, FakeMessenger):
        return fake.user_unavailable(), "isn't available"
    return Answer(410, {"error": "gone"}), "HTTP 410"


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.CHANNEL_RATE_LIMITS = False
    settings.CHANNEL_SEND_TIMEOUT = 2


@pytest.fixture
def platform(request, settings):
    kind = request.getfixturevalue("kind")
    with FAKES[kind]() as fake:
        point_settings_at(settings, kind, fake)
        yield fake


def pending_reply(channel: Channel, text: str = "Plans start at $10.", **data) -> Message:
    contact = ContactFactory(tenant=channel.tenant)
    conversation = ConversationFactory(
        tenant=channel.tenant,
        bot=channel.bot,
        contact=contact,
        channel=channel,
        channel_kind=channel.kind,
        recipient_id=RECIPIENTS[channel.kind],
        bot_version_id=channel.bot.published_version_id,
    )
    return MessageFactory(
        tenant=channel.tenant,
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.OUT,
        sender=Message.Sender.BOT,
        text=text,
        data=data,
        status=Message.Status.PENDING,
    )


def channel_for(kind: str, fake) -> Channel:
    return make_channel(kind, webhook=fake.base_url if kind == "api" else None)


def attempts(message: Message) -> list[tuple[str, int | None]]:
    return [
        (a.outcome, a.status_code)
        for a in DeliveryAttempt.objects.filter(message=message).order_by("number")
    ]


# --- Retries and permanent errors -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_429_then_500_then_200_delivers_exactly_once(kind, platform):
    message = pending_reply(channel_for(kind, platform))
    platform.script(busy(platform), broken(platform))

    assert message_send.delay(message.pk).get() == "sent"

    message.refresh_from_db()
    assert message.status == "sent" and message.external_id
    got = [r.answered for r in platform.requests]
    assert len(got) == 3 and got[0] == 429 and got[1] >= 500 and got[2] in (200, 201)
    # The 5xx may have reached the platform: the attempt says "unknown" (possibly sent).
    assert attempts(message) == [("retry", 429), ("unknown", got[1]), ("sent", got[2])]
    first = DeliveryAttempt.objects.get(message=message, number=1)
    assert first.retry_after == 1.0  # the platform's hint, recorded


@pytest.mark.parametrize("kind", KINDS)
def test_a_permanent_error_marks_the_message_failed_with_the_reason(kind, platform):
    channel = channel_for(kind, platform)
    message = pending_reply(channel)
    answer, reason = refusal(platform)
    platform.script(answer)

    assert message_send.delay(message.pk).get() == "failed"

    message.refresh_from_db()
    assert message.status == "failed"
    assert reason.lower() in message.error.lower()
    assert len(platform.requests) == 1  # not retried
    assert attempts(message)[0][0] == "failed"
    channel.refresh_from_db()
    assert reason.lower() in channel.last_error.lower()


def test_the_hint_sets_the_least_wait_and_back_off_grows(platform_whatsapp):
    message = pending_reply(platform_whatsapp[0])
    platform_whatsapp[1].script(platform_whatsapp[1].too_many_calls(retry_after=7))
    outcome = delivery.message_send(message_id=message.pk)
    assert outcome.state == "retry" and outcome.retry_in >= 7
    waits = [delivery.backoff(n) for n in range(1, 8)]
    assert all(w <= delivery.BACKOFF_CAP for w in waits)
    assert max(delivery.backoff(6) for _ in range(20)) > delivery.BACKOFF_BASE * 8


def test_the_back_off_doubles_from_2_s_to_15_minutes_each_50_to_100_percent():
    """channels.md: 2 s, 4 s, 8 s, ... up to 15 minutes, each 50-100 % of that."""
    for attempt, full in [(1, 2), (2, 4), (3, 8), (9, 512), (10, 900), (20, 900)]:
        waits = [delivery.backoff(attempt) for _ in range(400)]
        assert all(full * 0.5 <= w <= full for w in waits), (attempt, min(waits), max(waits))
        # Spread over the range, not one value: senders that failed together spread out.
        assert min(waits) < full * 0.6 and max(waits) > full * 0.9, attempt


def test_telegram_retry_after_in_the_body_is_honoured(settings):
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        message = pending_reply(make_channel("telegram"))
        fake.script(fake.flood(retry_after=12))
        outcome = delivery.message_send(message_id=message.pk)
    assert outcome.retry_in >= 12


def test_after_the_last_attempt_the_message_fails_with_the_last_reason(settings, platform_whatsapp):
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 3
    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    fake.script(fake.server_error(), fake.server_error(), fake.server_error())
    assert message_send.delay(message.pk).get() == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and "Gave up after 3 attempts" in message.error
    assert len(fake.requests) == 3


@pytest.fixture
def platform_whatsapp(settings):
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        yield make_channel("whatsapp"), fake


# --- Exactly once -----------------------------------------------------------------------------


def test_running_the_task_again_sends_nothing(platform_whatsapp):
    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    assert message_send.delay(message.pk).get() == "sent"
    assert message_send.delay(message.pk).get() == "done"
    assert message_send.delay(message.pk).get() == "done"
    assert len(fake.requests) == 1


@contextmanager
def live_sender(message: Message):
    """Another process's run sending ``message`` now: on PostgreSQL it holds the message's
    send lock on a connection of its own (delivery._sender); elsewhere only its attempt, fresh
    within its lease, tells."""
    if connection.vendor != "postgresql":
        yield
        return
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        key = delivery._lock_key(message.pk)
        other.execute("SELECT pg_advisory_lock(%s, %s)", [delivery._LOCK_SPACE, key])
        yield


def test_an_attempt_in_flight_holds_other_runs_back(platform_whatsapp):
    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    DeliveryAttempt.objects.create(
        tenant=channel.tenant, channel=channel, message=message, number=1
    )
    with live_sender(message):
        outcome = delivery.message_send(message_id=message.pk)
    assert outcome.state == "busy" and not outcome.counts_as_retry and outcome.retry_in > 0
    assert fake.requests == []
    assert attempts(message) == [("sending", None)]


def test_on_postgresql_an_attempt_whose_sender_died_is_lost_at_once_not_after_its_lease(
    platform_whatsapp, settings
):
    """The sender's lock went with its connection (the process died): its attempt, seconds
    old, is "lost" now, and the sweep sees it at once, without waiting out the lease."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no advisory locks: the lease tells (the test above)")
    from messaging.tasks import message_send_sweep

    channel, fake = platform_whatsapp
    settings.CHANNEL_SETTLE_SECONDS = 0  # (WhatsApp would wait for its status first)
    message = pending_reply(channel)
    with live_sender(message):
        DeliveryAttempt.objects.create(
            tenant=channel.tenant, channel=channel, message=message, number=1
        )
        assert message_send_sweep.delay().get() == 0  # alive: left alone
    # The connection holding the lock closed, as when the worker is killed.
    assert message_send_sweep.delay().get() == 1
    assert attempts(message) == [("lost", None), ("sent", 200)]
    assert len(fake.requests) == 1


def test_an_attempt_abandoned_by_a_dead_worker_is_marked_lost_and_the_message_sent(
    platform_whatsapp, settings
):
    """Past its lease the attempt is "lost" (possibly sent); WhatsApp hands our reference
    back on its statuses, so the message waits CHANNEL_SETTLE_SECONDS for one, then is sent."""
    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    DeliveryAttempt.objects.create(
        tenant=channel.tenant,
        channel=channel,
        message=message,
        number=1,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    outcome = delivery.message_send(message_id=message.pk)
    assert outcome.state == "waiting"
    assert 0 < outcome.retry_in <= settings.CHANNEL_SETTLE_SECONDS
    assert attempts(message) == [("lost", None)] and fake.requests == []
    DeliveryAttempt.objects.filter(message=message).update(retry_at=timezone.now())
    assert message_send.delay(message.pk).get() == "sent"
    assert attempts(message) == [("lost", None), ("sent", 200)]
    assert len(fake.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_send_deliver_once(settings):
    """Ten runs of the task for one message at once (a redelivered broker message, a retry
    racing): the attempt claim lets one through."""
    if connection.vendor == "sqlite":
        settings.CHANNEL_SEND_TIMEOUT = 2  # SQLite serialises writers: still one send
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        message = pending_reply(make_channel("whatsapp"))
        barrier = threading.Barrier(10)
        outcomes = []

        def run():
            barrier.wait()
            try:
                outcomes.append(delivery.message_send(message_id=message.pk).state)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes.count("sent") == 1, outcomes
    assert len(fake.sent.all()) == 1
    assert Message.objects.get(pk=message.pk).status == "sent"


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_redeliveries_of_a_webhook_give_one_message_and_one_reply(settings):
    """The platform redelivers one message ten times at once (threads, real transactions;
    the second CI pass runs this on PostgreSQL)."""
    from django.test import Client

    settings.CHANNEL_RATE_LIMITS = False
    with FakeWhatsApp() as fake:
        settings.WHATSAPP_API_BASE = fake.allow(settings).base_url
        channel = make_channel("whatsapp")
        body = text_body("whatsapp")
        barrier = threading.Barrier(10)
        statuses = []

        def run():
            barrier.wait()
            try:
                statuses.append(signed_post(Client(), channel, body).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        replies = Message.objects.filter(direction="out")
        assert statuses == [200] * 10
        assert Message.objects.filter(direction="in").count() == 1
        assert Conversation.objects.count() == 1
        assert replies.count() >= 1
        # One bot turn: its replies, each sent once.
        assert replies.filter(status="sent").count() == replies.count()
        assert len(fake.sent.all()) == replies.count()
        texts = [r.text for r in replies]
        assert len(texts) == len(set(texts)), texts


# --- Rate limits ------------------------------------------------------------------------------


def test_the_limiter_gives_slots_up_to_the_limit_then_says_how_long_to_wait(settings):
    settings.CHANNEL_RATE_LIMITS = True
    limit = [("test:chat", 1, 1.0)]
    assert delivery.rate_limit_take(limit) == 0
    wait = delivery.rate_limit_take(limit)
    assert 0 < wait <= 1.0
    bot = [("test:bot", 30, 1.0)]
    assert [delivery.rate_limit_take(bot) for _ in range(30)] == [0] * 30
    assert delivery.rate_limit_take(bot) > 0
    # All buckets or none: a full bot bucket takes no slot of another chat.
    assert delivery.rate_limit_take([("test:chat2", 1, 1.0), ("test:bot", 30, 1.0)]) > 0
    assert delivery.rate_limit_take([("test:chat2", 1, 1.0)]) == 0


def test_telegram_sends_to_one_chat_at_most_one_per_second(settings):
    settings.CHANNEL_RATE_LIMITS = True
    settings.CHANNEL_RATE_LIMIT_MAX_SLEEP_MS = 0  # re-queue rather than wait in place
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        channel = make_channel("telegram")
        first = pending_reply(channel, "one")
        second = MessageFactory(
            tenant=channel.tenant,
            conversation=first.conversation,
            channel=channel,
            direction="out",
            sender="bot",
            text="two",
            status="pending",
        )
        assert delivery.message_send(message_id=first.pk).state == "sent"
        outcome = delivery.message_send(message_id=second.pk)
    assert outcome.state == "throttled" and 0 < outcome.retry_in <= 1.0
    assert not outcome.counts_as_retry
    assert len(fake.requests) == 1
    assert not DeliveryAttempt.objects.filter(message=second).exists()


def test_whatsapp_keeps_to_its_numbers_throughput(settings):
    settings.CHANNEL_RATE_LIMITS = True
    from messaging.connectors import get_connector

    limits = get_connector("whatsapp").rate_limits({"phone_number_id": "1"}, "2")
    assert ("whatsapp:number:1", 80, 1.0) in limits
    taken = [delivery.rate_limit_take([limits[0]]) for _ in range(81)]
    assert taken[:80] == [0] * 80 and taken[80] > 0


def test_replies_go_out_in_order(platform_whatsapp):
    channel, fake = platform_whatsapp
    first = pending_reply(channel, "one")
    second = MessageFactory(
        tenant=channel.tenant,
        conversation=first.conversation,
        channel=channel,
        direction="out",
        sender="bot",
        text="two",
        status="pending",
    )
    assert delivery.message_send(message_id=second.pk).state == "waiting"
    assert fake.requests == []
    assert message_send.delay(first.pk).get() == "sent"
    assert message_send.delay(second.pk).get() == "sent"
    assert [s["text"]["body"] for s in fake.sent.all()] == ["one", "two"]


# --- Sandbox, redelivery, the dashboard -------------------------------------------------------


def test_sandbox_conversations_are_never_sent_to_channels(platform_whatsapp):
    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    Conversation.objects.filter(pk=message.conversation_id).update(is_sandbox=True)
    assert message_send.delay(message.pk).get() == "failed"
    assert fake.requests == []
    message.refresh_from_db()
    assert "Sandbox" in message.error


def test_quick_replies_are_rendered_natively(platform_whatsapp):
    channel, fake = platform_whatsapp
    replies = [{"title": "Prices", "payload": "prices"}, {"title": "Email me", "payload": "e"}]
    message = pending_reply(channel, "What can I do for you?", quick_replies=replies)
    assert message_send.delay(message.pk).get() == "sent"
    sent = fake.sent.all()[0]
    assert sent["type"] == "interactive"
    assert [b["reply"]["title"] for b in sent["interactive"]["action"]["buttons"]] == [
        "Prices",
        "Email me",
    ]


def test_the_dashboard_redelivers_a_failed_message(
    platform_whatsapp, owner_client, tenant, django_capture_on_commit_callbacks
):
    channel, fake = platform_whatsapp
    channel = make_channel("whatsapp", tenant=tenant)
    message = pending_reply(channel)
    fake.script(fake.undeliverable())
    message_send.delay(message.pk)
    attempt = DeliveryAttempt.objects.get(message=message)
    page = owner_client.get("/dashboard/messaging/deliveryattempt/")
    assert page.status_code == 200 and b"undeliverable" in page.content.lower()

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/dashboard/messaging/deliveryattempt/",
            {"action": "redeliver", "_selected_action": [attempt.pk]},
        )
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == "sent"
    assert [outcome for outcome, _ in attempts(message)] == ["failed", "sent"]


def test_the_channel_page_shows_the_webhook_url_and_set_up_steps(owner_client, tenant):
    channel = make_channel("telegram", tenant=tenant)
    page = owner_client.get(f"/dashboard/messaging/channel/{channel.pk}/change/")
    assert page.status_code == 200
    assert f"/hooks/telegram/{channel.pk}/".encode() in page.content
    assert b"setWebhook" in page.content
    assert b"tg-secret-token" not in page.content  # secrets are never shown


def test_a_channel_added_in_the_dashboard_has_encrypted_credentials(owner_client, tenant, settings):
    from messaging.services import channel_credentials
    from tests.factories import launched_bot

    settings.PUBLIC_BASE_URL = "https://chat.example.com"  # Telegram calls HTTPS only
    bot = launched_bot(tenant=tenant)
    with FakeTelegram() as telegram:  # saving registers the webhook with it
        settings.TELEGRAM_API_BASE = telegram.allow(settings).base_url
        response = owner_client.post(
            "/dashboard/messaging/channel/add/",
            {
                "name": "Support line",
                "bot": bot.pk,
                "kind": "telegram",
                "telegram__bot_token": telegram.bot_token,
                "telegram__secret_token": "s3cret",
            },
        )
    assert response.status_code == 302, response.content[:2000]
    channel = Channel.objects.get(name="Support line")
    assert channel.tenant == tenant and "s3cret" not in channel.credentials_encrypted
    assert channel_credentials(channel) == {
        "bot_token": telegram.bot_token,
        "secret_token": "s3cret",
    }


def test_missing_credentials_are_refused_naming_the_field(owner_client, tenant):
    from tests.factories import launched_bot

    bot = launched_bot(tenant=tenant)
    response = owner_client.post(
        "/dashboard/messaging/channel/add/",
        {
            "name": "Half done",
            "bot": bot.pk,
            "kind": "whatsapp",
            "whatsapp__access_token": "x",
        },
    )
    assert response.status_code == 200  # the form again, as typed, with its errors
    errors = response.context["adminform"].form.errors
    assert set(errors) == {
        "whatsapp__app_secret",
        "whatsapp__verify_token",
        "whatsapp__phone_number_id",
    }
    assert not Channel.objects.filter(name="Half done").exists()


def test_an_api_channel_gets_a_signing_secret_shown_once(owner_client, tenant):
    from messaging.services import channel_credentials
    from tests.factories import launched_bot

    bot = launched_bot(tenant=tenant)
    response = owner_client.post(
        "/dashboard/messaging/channel/add/",
        {
            "name": "Our app",
            "bot": bot.pk,
            "kind": "api",
            "api__webhook_url": "https://example.com/hook",
        },
        follow=True,
    )
    secret = channel_credentials(Channel.objects.get(name="Our app"))["signing_secret"]
    assert len(secret) >= 32
    assert secret.encode() in response.content
    page = owner_client.get(f"/dashboard/messaging/channel/{Channel.objects.get().pk}/change/")
    assert secret.encode() not in page.content


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/hook", "http://169.254.169.254/", "gopher://example.com/"]
)
def test_an_api_channel_with_an_internal_webhook_url_is_refused_naming_it(
    owner_client, tenant, url
):
    from chattonic.core.errors import ValidationFailed
    from tests.factories import launched_bot

    bot = launched_bot(tenant=tenant)
    with pytest.raises(ValidationFailed) as caught:
        make_channel("api", bot=bot, webhook=url)
    assert list(caught.value.fields) == ["credentials.webhook_url"]
    response = owner_client.post(
        "/dashboard/messaging/channel/add/",
        {
            "name": "Inside",
            "bot": bot.pk,
            "kind": "api",
            "api__webhook_url": url,
        },
    )
    assert response.context["adminform"].form.errors["api__webhook_url"] == [caught.value.message]
    assert not Channel.objects.exists()


def test_the_sweep_queues_again_what_a_lost_task_left_behind(platform_whatsapp):
    from messaging.tasks import channel_sweep, message_send_sweep

    channel, fake = platform_whatsapp
    long_ago = timezone.now() - timedelta(minutes=15)
    reply = pending_reply(channel, "Your order shipped.")
    Message.objects.filter(pk=reply.pk).update(created_at=long_ago)
    fresh = pending_reply(channel, "Just written: its task is on its way.")
    inbound = MessageFactory(
        tenant=channel.tenant,
        conversation=reply.conversation,
        channel=channel,
        text="how much is it",
        external_id="wamid.LOST",
        created_at=long_ago,
    )

    assert channel_sweep.delay().get() == {"handled": 1}
    assert message_send_sweep.delay().get() >= 1

    reply.refresh_from_db()
    inbound.refresh_from_db()
    fresh.refresh_from_db()
    assert reply.status == "sent" and inbound.handled_at is not None
    assert fresh.status == "pending"  # not old enough to be presumed lost
    texts = [sent["text"]["body"] for sent in fake.sent.all() if sent.get("type") == "text"]
    assert "Your order shipped." in texts
    assert channel_sweep.delay().get() == {"handled": 0}


def test_the_sweep_leaves_a_reply_whose_task_waits_in_the_queue(platform_whatsapp):
    """Under a backlog, a reply's task waits in the queue longer than the sweep's grace: the
    sweep must not queue it again (the queue would fill with repeats); once its task started
    and left it pending, the sweep queues it."""
    from django.core.cache import cache

    from messaging.tasks import message_send_sweep

    channel, fake = platform_whatsapp
    reply = pending_reply(channel, "Behind a long queue.")
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    cache.set(delivery._in_queue_key(reply.pk), time.time(), timeout=delivery.IN_QUEUE_SECONDS)

    assert message_send_sweep.delay().get() == 0
    reply.refresh_from_db()
    assert reply.status == "pending" and not fake.requests

    delivery.send_dequeued(reply.pk)  # its task started (and was lost with its worker)
    assert message_send_sweep.delay().get() == 1
    reply.refresh_from_db()
    assert reply.status == "sent" and len(fake.requests) == 1
    assert cache.get(delivery._in_queue_key(reply.pk)) is None  # taken off as the task ran


def test_the_sweep_queues_a_reply_whose_task_a_dead_worker_took_before_starting_it(
    platform_whatsapp,
):
    """A worker took the task from the queue and died before it started it: its mark stays
    (the broker would hand the task out again only after its visibility time-out). Once
    nothing waits in the queue, a mark older than a few seconds is such a one."""
    from django.core.cache import cache

    from chattonic.celery import app
    from messaging.tasks import message_send_sweep

    channel, fake = platform_whatsapp
    reply = pending_reply(channel, "Taken by a worker that died.")
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    marked_at = time.time() - delivery.IN_QUEUE_STALE_SECONDS - 1
    cache.set(delivery._in_queue_key(reply.pk), marked_at, timeout=delivery.IN_QUEUE_SECONDS)

    with app.connection_for_write() as conn:
        app.send_task("messaging.tasks.sends_due_queue", connection=conn)  # a backlog
        assert not delivery._send_queue_empty()
        assert message_send_sweep.delay().get() == 0  # it may wait behind it
        conn.default_channel.queue_purge(app.conf.task_default_queue)
    assert delivery._send_queue_empty()
    assert message_send_sweep.delay().get() == 1
    reply.refresh_from_db()
    assert reply.status == "sent" and len(fake.requests) == 1


def test_a_wait_goes_in_the_due_set_and_is_queued_when_it_ends(platform_whatsapp):
    """A retry's wait is ours (a sorted set in Redis), not a countdown a worker holds: queued
    only once due, and left alone by the sweep until then."""
    from messaging.tasks import message_send_sweep, sends_due_queue

    channel, fake = platform_whatsapp
    later = pending_reply(channel, "In a minute.")
    now = pending_reply(channel, "Due now.")
    for reply in (later, now):  # old enough for the sweep, were it not in the due set
        Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    delivery.send_later(later.pk, 60)
    delivery.send_later(now.pk, 0)
    delivery.send_later(later.pk, 120)  # an earlier due time already there stays

    assert sends_due_queue.delay().get() == 1
    assert [body["text"]["body"] for body in fake.sent.all()] == ["Due now."]
    assert message_send_sweep.delay().get() == 0  # "In a minute." waits in the due set
    later.refresh_from_db()
    assert later.status == "pending" and len(fake.requests) == 1
    assert sends_due_queue.delay().get() == 0  # not due yet, nor taken out


def test_a_retry_of_the_worker_waits_in_the_due_set_not_on_the_broker(platform_whatsapp, settings):
    """The task run by a worker (not eagerly): a 429 leaves no countdown on the broker; the
    wait is in the due set, due after the platform's hint."""
    from unittest import mock

    from messaging.tasks import message_send as task

    channel, fake = platform_whatsapp
    message = pending_reply(channel)
    fake.script(busy(fake))
    task.push_request(is_eager=False)  # as a worker runs it
    try:
        with mock.patch.object(task, "apply_async") as publish:
            assert task.run(message.pk) == "retry"
    finally:
        task.pop_request()
    publish.assert_not_called()
    due = delivery._redis().zscore(delivery._later_key(), message.pk)
    seconds, micros = delivery._redis().time()
    assert 900 <= due - (seconds * 1000 + micros / 1000) <= 2200  # retry_after=1, jittered


def test_a_send_recorded_as_sent_by_a_worker_that_then_died_is_finished_not_sent_again(
    platform_whatsapp, django_capture_on_commit_callbacks
):
    """The worker recorded the platform's acceptance (the attempt "sent", one statement right
    after the answer) and was killed before the rest: the next run, which the sweep queues,
    finishes the record and queues the next reply, sending nothing again."""
    from messaging.tasks import message_send_sweep

    channel, fake = platform_whatsapp
    first = pending_reply(channel, "Your order shipped.")
    second = MessageFactory(
        tenant=channel.tenant,
        conversation=first.conversation,
        channel=channel,
        direction=Message.Direction.OUT,
        sender=Message.Sender.BOT,
        text="Anything else?",
        status=Message.Status.PENDING,
    )
    DeliveryAttempt.objects.create(
        tenant=channel.tenant,
        channel=channel,
        message=first,
        number=1,
        outcome=DeliveryAttempt.Outcome.SENT,
        status_code=200,
        external_id="wamid.TAKEN",
        finished_at=timezone.now(),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert message_send_sweep.delay().get() == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "sent" and first.external_id == "wamid.TAKEN"
    assert second.status == "sent"  # queued when the first was settled
    assert [body["text"]["body"] for body in fake.sent.all()] == ["Anything else?"]
    assert attempts(first) == [("sent", 200)]


def test_bad_credentials_put_the_channel_in_error_a_blocked_user_does_not(settings):
    with FakeTelegram() as fake:
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
        channel = make_channel("telegram")
        fake.blocked_chats.add(RECIPIENTS["telegram"])
        assert message_send.delay(pending_reply(channel).pk).get() == "failed"
        channel.refresh_from_db()
        assert channel.status == "active" and "blocked" in channel.last_error
        fake.blocked_chats.clear()
        bad = make_channel("telegram", bot_token="123456789:not-the-token")
        assert message_send.delay(pending_reply(bad).pk).get() == "failed"
        bad.refresh_from_db()
        assert bad.status == "error"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_sweep_reads_only_the_replies_still_to_send(platform_whatsapp):
    """The sweep runs every few seconds: its query goes through the index of pending platform
    replies (built concurrently by its migration, so valid), not through every platform
    message of the day."""
    channel, _ = platform_whatsapp
    waiting = pending_reply(channel, "Your order shipped.")
    sent = pending_reply(channel, "Delivered already.")
    Message.objects.filter(pk=sent.pk).update(status=Message.Status.SENT)
    since = timezone.now() - timedelta(hours=24)

    assert list(delivery.pending_heads(since=since)) == [waiting.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test's tables are tiny
        plan = delivery.pending_heads(since=since).explain()
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'message_pending_send'::regclass"
        )
        assert cursor.fetchone() == (True,)
    assert "message_pending_send" in plan
