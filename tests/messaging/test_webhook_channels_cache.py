"""The channel a webhook names is kept per process for CHANNEL_CACHE_SECONDS: changes made in
this process apply to the next webhook at once; a change made elsewhere (another process,
seen here as a bare UPDATE) applies once the entry is older than the setting."""

from __future__ import annotations

import pytest

from bots.models import Bot
from conversations.models import Message
from messaging import services as messaging
from messaging.models import Channel
from messaging.services import channel_credentials_set
from tests.fakes.channels import make_channel, post, signature_headers, text_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch):
    """The cache's clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(messaging.time, "monotonic", lambda: now[0])
    return now


def webhook(client, channel, **kwargs):
    body = text_body("whatsapp")
    return post(client, channel, body, signature_headers(channel, body, **kwargs))


def test_a_channel_disabled_in_this_process_is_refused_at_once(client):
    channel = make_channel("whatsapp")
    assert webhook(client, channel).status_code == 200
    channel.status = Channel.Status.DISABLED
    channel.save(update_fields=["status"])
    Message.objects.all().delete()

    response = webhook(client, channel)
    assert response.status_code == 404
    assert Message.objects.count() == 0


def test_a_secret_rotated_in_this_process_applies_at_once(client):
    channel = make_channel("whatsapp")
    assert webhook(client, channel).status_code == 200
    channel_credentials_set(channel=channel, credentials={"app_secret": "rotated-secret"})
    Message.objects.all().delete()

    assert webhook(client, channel).status_code in (401, 403)
    assert Message.objects.count() == 0
    assert webhook(client, channel, secret="rotated-secret").status_code == 200
    assert Message.objects.count() == 1


def test_a_bot_moved_to_another_region_in_this_process_is_refused_at_once(client, settings):
    settings.CHATTONIC_REGIONS = {
        "us-central": "https://us.chat.example",
        "eu-frankfurt": "https://eu.chat.example",
    }
    settings.CHATTONIC_REGION = "us-central"
    channel = make_channel("whatsapp")
    assert webhook(client, channel).status_code == 200
    bot = Bot.objects.get(pk=channel.bot_id)
    bot.region = "eu-frankfurt"
    bot.save(update_fields=["region"])

    assert webhook(client, channel).status_code == 421


def test_a_change_made_by_another_process_applies_after_the_cache_seconds(client, clock, settings):
    settings.CHANNEL_CACHE_SECONDS = 5
    channel = make_channel("whatsapp")
    assert webhook(client, channel).status_code == 200
    Channel.objects.filter(pk=channel.pk).update(status=Channel.Status.DISABLED)  # no signal

    clock[0] += 4
    assert webhook(client, channel).status_code == 200  # still the cached row: documented
    clock[0] += 2
    assert webhook(client, channel).status_code == 404


def test_with_zero_seconds_every_webhook_reads_the_channel(client, settings):
    settings.CHANNEL_CACHE_SECONDS = 0
    channel = make_channel("whatsapp")
    assert webhook(client, channel).status_code == 200
    Channel.objects.filter(pk=channel.pk).update(status=Channel.Status.DISABLED)

    assert webhook(client, channel).status_code == 404
