"""Secrets out of stored and logged errors (chattonic/core/redact.py): the one function, the
log records of the process, and a Telegram send whose network error names the URL with the
bot token (finding: the token was kept in attempts, the message, the channel and the log)."""

from __future__ import annotations

import logging

import pytest
import requests

from chattonic.core.redact import MASK, redact
from conversations.models import Message
from messaging.models import Channel, DeliveryAttempt
from messaging.tasks import message_send
from tests.factories import ConversationFactory, MessageFactory
from tests.fakes.channels import make_channel
from tests.fakes.platforms import FakeTelegram

TOKEN = "123456789:AAFakeTokenForTests_abcdefghijkl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Max retries exceeded with url: /bot{TOKEN}/sendMessage (Caused by ...)", TOKEN),
        ("GET https://graph.example/v25.0/me?fields=id&access_token=EAAG12345xyz", "EAAG12345xyz"),
        ("https://api.trello.example/1/cards?key=k-12345678&token=t-87654321", "t-87654321"),
        ("https://api.trello.example/1/cards?key=k-12345678&token=t-87654321", "k-12345678"),
        ("connect to https://ana:hunter2-pass@crm.example/hook failed", "hunter2-pass"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "eyJhbGciOiJIUzI1NiJ9"),
        ('OAuth oauth_consumer_key="k-secret-1", oauth_token="t-secret-2"', "t-secret-2"),
    ],
)
def test_what_looks_like_a_secret_is_masked(text, secret):
    cleaned = redact(text)
    assert secret not in cleaned and MASK in cleaned


def test_the_secrets_given_are_masked_wherever_they_are_even_url_encoded():
    secret = "tw1l10/auth+token"
    text = f"failed: {secret} and %2F: {requests.utils.quote(secret, safe='')}"
    assert redact(text, [secret]) == f"failed: {MASK} and %2F: {MASK}"


def test_ordinary_text_stays():
    text = "Telegram sendMessage failed: Bad Request: chat not found (code=400, 1 s)"
    assert redact(text, ["1", "", None]) == text


def test_every_log_record_is_redacted(caplog):
    logger = logging.getLogger("chattonic.tests")
    with caplog.at_level(logging.INFO):
        logger.warning("calling %s", f"https://api.telegram.org/bot{TOKEN}/getMe")
        try:
            raise requests.ConnectionError(f"Max retries exceeded with url: /bot{TOKEN}/getMe")
        except requests.ConnectionError:
            logger.exception("the call failed")
    assert "AAFakeTokenForTests" not in caplog.text
    assert caplog.text.count(MASK) >= 2  # the message and the traceback both held it


@pytest.mark.django_db
@pytest.mark.parametrize("token", [TOKEN, "a-token-of-another-shape-0123456789"])
def test_a_telegram_network_error_stores_and_logs_no_token(token, settings, caplog):
    settings.CHANNEL_RATE_LIMITS = False
    settings.CHANNEL_SEND_MAX_ATTEMPTS = 1
    with FakeTelegram() as fake:  # started for a free port, stopped: nothing listens there
        settings.TELEGRAM_API_BASE = fake.allow(settings).base_url
    channel = make_channel("telegram", bot_token=token)
    conversation = ConversationFactory(
        tenant=channel.tenant,
        bot=channel.bot,
        channel=channel,
        channel_kind=channel.kind,
        recipient_id="111111111",
    )
    message = MessageFactory(
        tenant=channel.tenant,
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.OUT,
        sender=Message.Sender.BOT,
        status=Message.Status.PENDING,
    )
    with caplog.at_level(logging.INFO):
        assert message_send.delay(message.pk).get() == "failed"
    attempt = DeliveryAttempt.objects.get(message=message)
    stored = [
        attempt.error,
        Message.objects.get(pk=message.pk).error,
        Channel.objects.get(pk=channel.pk).last_error,
    ]
    assert "Connection failed" in attempt.error and f"{MASK}/sendMessage" in attempt.error
    assert all(text and token not in text for text in stored), stored
    assert "attempt 1 failed" in caplog.text and token not in caplog.text
