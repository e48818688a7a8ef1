"""Rotating CHATTONIC_ENCRYPTION_KEY: a new key first, `secrets_rotate`, then the old key
dropped; every channel's credentials and lead webhook secret still read (docs/security.md)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from chattonic.core import credentials
from leads.models import LeadWebhook
from messaging.models import Channel
from messaging.services import channel_credentials
from tests.factories import ChannelFactory, LeadWebhookFactory

pytestmark = pytest.mark.django_db


def test_rotating_the_key_keeps_every_secret_readable(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CHATTONIC_ENCRYPTION_KEYS = [old]
    channel = ChannelFactory(credentials_encrypted=credentials.encrypt({"bot_token": "123:abc"}))
    webhook = LeadWebhookFactory(signing_secret="s3cret")

    settings.CHATTONIC_ENCRYPTION_KEYS = [new, old]
    call_command("secrets_rotate")
    assert "re-encrypted 1 channels' credentials and 1 lead webhooks'" in capsys.readouterr().out

    settings.CHATTONIC_ENCRYPTION_KEYS = [new]  # the old key is gone
    channel = Channel.objects.get(pk=channel.pk)
    assert channel_credentials(channel) == {"bot_token": "123:abc"}
    stored = LeadWebhook.objects.get(pk=webhook.pk).signing_secret_encrypted
    assert credentials.decrypt_secret(stored) == "s3cret"


def test_without_rotating_the_old_keys_secrets_do_not_read(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CHATTONIC_ENCRYPTION_KEYS = [old]
    webhook = LeadWebhookFactory(signing_secret="s3cret")
    settings.CHATTONIC_ENCRYPTION_KEYS = [new]
    with pytest.raises(credentials.CredentialsUnreadable):
        credentials.decrypt_secret(LeadWebhook.objects.get(pk=webhook.pk).signing_secret_encrypted)
