"""Channels wired to the local fake platforms, and signed webhook posts for the HTTP door.

``make_channel(kind, ...)`` creates a channel of a launched bot whose credentials match the
fakes in platforms.py; ``signed_post(client, channel, body)`` posts a body to the channel's
``/hooks/<kind>/<id>/`` signed as the platform signs it (or tampered, per the arguments).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.test import RequestFactory

from chattonic.core.public_urls import public_base_url
from messaging.models import Channel
from messaging.services import channel_create
from tests.conversations.payloads import raw
from tests.fakes.signing import meta_signature, twilio_signature

API_BASE_KEYS = {
    "whatsapp": "WHATSAPP_API_BASE",
    "messenger": "MESSENGER_API_BASE",
    "telegram": "TELEGRAM_API_BASE",
    "twilio": "TWILIO_API_BASE",
}

CREDENTIALS: dict[str, dict[str, str]] = {
    "whatsapp": {
        "access_token": "wa-access-token",
        "app_secret": "wa-app-secret",
        "verify_token": "wa-verify-token",
        "phone_number_id": "106540352242922",
    },
    "messenger": {
        "page_access_token": "page-access-token",
        "app_secret": "fb-app-secret",
        "verify_token": "fb-verify-token",
    },
    "telegram": {
        "bot_token": "123456789:AAFakeTokenForTests_abcdefghijkl",
        "secret_token": "tg-secret-token",
    },
    "twilio": {
        "account_sid": "AC" + "0" * 31 + "1",
        "auth_token": "twilio-auth-token",
        "from_number": "+14155550100",
    },
    "api": {
        "signing_secret": "tenant-signing-secret",
        "webhook_url": "https://tenant.example/chattonic/events",
    },
}

# A recorded text message per platform, and who sent it (where the bot's reply goes).
TEXT_PAYLOADS = {
    "whatsapp": ("whatsapp/text.json", "16505551234"),
    "messenger": ("messenger/text.json", None),
    "telegram": ("telegram/text.json", "111111111"),
    "twilio": ("twilio/sms_text.form", "+14155550123"),
}
API_BODY = b'{"messages": [{"id": "ext-1", "from": "user-7", "name": "Ana", "text": "prices"}]}'


def text_body(kind: str) -> bytes:
    return API_BODY if kind == "api" else raw(TEXT_PAYLOADS[kind][0])


def make_channel(kind: str, *, bot=None, tenant=None, webhook: str | None = None, **creds):
    """A channel of kind ``kind`` on a launched bot, with credentials matching the fakes."""
    from tests.factories import launched_bot

    if bot is None:
        bot = launched_bot(**({"tenant": tenant} if tenant is not None else {}))
    credentials = {**CREDENTIALS[kind], **creds}
    if webhook is not None:
        credentials["webhook_url"] = webhook
    return channel_create(
        tenant=bot.tenant, bot=bot, kind=kind, name=f"{kind} channel", credentials=credentials
    )


def hook_path(channel: Channel) -> str:
    return f"/hooks/{channel.kind}/{channel.pk}/"


def signature_headers(
    channel: Channel, body: bytes, *, secret: str | None = None, url: str | None = None
) -> dict[str, str]:
    """The headers the platform sends with ``body`` (signed with ``secret``, default the
    channel's own), as Django test-client keyword arguments."""
    kind = channel.kind
    creds = CREDENTIALS[kind]
    if kind in ("whatsapp", "messenger"):
        signature = meta_signature(body, secret if secret is not None else creds["app_secret"])
        return {"HTTP_X_HUB_SIGNATURE_256": signature}
    if kind == "telegram":
        token = secret if secret is not None else creds["secret_token"]
        return {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": token}
    if kind == "twilio":
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        token = secret if secret is not None else creds["auth_token"]
        return {
            "HTTP_X_TWILIO_SIGNATURE": twilio_signature(
                url or public_base() + hook_path(channel), params, token
            )
        }
    raise ValueError(kind)


def content_type(kind: str) -> str:
    return "application/x-www-form-urlencoded" if kind == "twilio" else "application/json"


def post(client, channel: Channel, body: bytes, headers: dict[str, Any] | None = None):
    return client.generic(
        "POST",
        hook_path(channel),
        body,
        content_type=content_type(channel.kind),
        **(headers or {}),
    )


def signed_post(client, channel: Channel, body: bytes, **kwargs):
    return post(client, channel, body, signature_headers(channel, body, **kwargs))


def twilio_status_body(sid: str, status: str) -> bytes:
    return urlencode(
        {
            "MessageSid": sid,
            "MessageStatus": status,
            "AccountSid": CREDENTIALS["twilio"]["account_sid"],
            "From": CREDENTIALS["twilio"]["from_number"],
            "To": "+14155550123",
        }
    ).encode()


def point_settings_at(settings_fixture, kind: str, fake) -> None:
    """Send ``kind``'s requests to ``fake`` (a tenant's webhook for "api"), allowed by
    OUTBOUND_ALLOWED_HOSTS for the test."""
    fake.allow(settings_fixture)
    if kind in API_BASE_KEYS:
        setattr(settings_fixture, API_BASE_KEYS[kind], fake.base_url)


def public_base() -> str:
    """The base URL the test client's requests arrive on, as the webhook view reads it (the
    configured PUBLIC_BASE_URL, else the request's host): what a platform signs."""
    return public_base_url(RequestFactory().get("/"))
