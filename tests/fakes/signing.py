"""Build the signed webhook requests the platforms send, for tests and benchmarks.

Each helper follows the platform's documentation, independently of the connectors; the
Twilio one uses Twilio's own ``RequestValidator``, the reference implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from messaging.connectors.base import WebhookRequest


def meta_signature(body: bytes, app_secret: str) -> str:
    """``X-Hub-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(url: str, params: dict[str, Any], auth_token: str) -> str:
    """``X-Twilio-Signature``, computed by Twilio's own library."""
    return RequestValidator(auth_token).compute_signature(url, params)


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload).encode() if not isinstance(payload, bytes) else payload


def meta_request(
    url: str, payload: Any, app_secret: str, *, signature: str | None = None
) -> WebhookRequest:
    """A POST as WhatsApp or Messenger sends it."""
    body = encode_json(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature
        if signature is not None
        else meta_signature(body, app_secret),
    }
    return WebhookRequest(method="POST", url=url, headers=headers, body=body)


def meta_handshake(url: str, verify_token: str, challenge: str = "1158201444") -> WebhookRequest:
    query = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
    return WebhookRequest(
        method="GET", url=f"{url}?{urlencode(query)}", headers={}, body=b"", query=query
    )


def telegram_request(url: str, update: Any, secret_token: str | None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if secret_token is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret_token
    return WebhookRequest(method="POST", url=url, headers=headers, body=encode_json(update))


def twilio_request(
    url: str, params: dict[str, str] | bytes, auth_token: str, *, signature: str | None = None
) -> WebhookRequest:
    """A form POST as Twilio sends it; ``params`` may be the raw body of a recording."""
    if isinstance(params, bytes):
        body = params
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    else:
        fields = dict(params)
        body = urlencode(fields).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature
        if signature is not None
        else twilio_signature(url, fields, auth_token),
    }
    return WebhookRequest(method="POST", url=url, headers=headers, body=body, form=fields)
