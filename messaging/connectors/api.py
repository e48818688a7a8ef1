"""The API channel: the tenant's own system is the "platform".

In: the tenant's system POSTs JSON messages to ``/hooks/api/<channel id>/`` with its tenant
API key; the webhook view authenticates the key, so :meth:`ApiConnector.verify` adds nothing.
The body is ``{"messages": [{"id", "from", "name"?, "text"?, "payload"?, "timestamp"?,
"data"?}]}`` (or one such message object).

Out: every reply and event is POSTed as JSON to the channel's ``webhook_url``::

    X-ChatTonic-Event: message.created
    X-ChatTonic-Event-Id: <id, the same on every retry>
    X-ChatTonic-Timestamp: <Unix seconds>
    X-ChatTonic-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the
                           signing secret>

    {"id": ..., "type": "message.created", "created": <Unix seconds>, "data": {...}}

Tenants check it with :func:`verify_signature` (docs/channels.md has a copy to paste).

Credentials: ``signing_secret``, ``webhook_url``; optional ``previous_signing_secret``
(during a rotation, deliveries carry a signature with each secret).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests

from chattonic.core import inputs
from chattonic.core.inputs import InputError
from chattonic.core.signing import (  # noqa: F401  (re-exported: the API channel's contract)
    DEFAULT_TOLERANCE,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_VERSION,
    TIMESTAMP_HEADER,
    USER_AGENT,
    sign,
    verify_signature,
)

from .base import (
    BUTTON,
    CONTACTS,
    LOCATION,
    MEDIA,
    MESSAGE_KINDS,
    TEXT,
    Connector,
    Events,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    SendResult,
    WebhookRequest,
    decode_body,
    from_unix,
)
from .base import now as utc_now

MESSAGES_MAX = 100


class ApiConnector(Connector):
    kind = "api"
    display_name = "API channel"
    required_credentials = ("signing_secret", "webhook_url")
    optional_credentials = ("previous_signing_secret",)
    secret_credentials = ("signing_secret", "previous_signing_secret")
    url_credentials = ("webhook_url",)

    # --- in ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        """Nothing to check here: the webhook view authenticates the tenant API key."""

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        payload = request.json()
        items = payload.get("messages") if isinstance(payload, dict) else None
        if items is None and isinstance(payload, dict) and "id" in payload:
            items = [payload]
        if not isinstance(items, list) or not items:
            raise MalformedPayload('Expected {"messages": [{"id", "from", "text"}, ...]}.')
        if len(items) > MESSAGES_MAX:
            raise MalformedPayload(
                f"At most {MESSAGES_MAX} messages per request.", field="messages"
            )
        events = Events()
        for index, item in enumerate(items):
            # Each message on its own: one that cannot be taken is refused, the others kept.
            with events.each(f"messages.{index}"):
                events.messages.append(_inbound(item, index))
        return events.parsed()

    # --- out ---------------------------------------------------------------------------------

    def event(self, message: OutboundMessage, recipient_id: str) -> tuple[str, str, dict]:
        """(event id, type, data) of the ``message.created`` event for an outbound message."""
        data: dict[str, Any] = {
            "recipient_id": recipient_id,
            "text": message.text,
            "quick_replies": [
                {"title": str(r["title"]), "payload": str(r["payload"])}
                for r in message.quick_replies
            ],
            "media": message.media,
            "sender": message.sender,
            "agent": message.agent,
        }
        if message.reference:
            data["message_id"] = message.reference
        return message.reference or uuid.uuid4().hex, "message.created", data

    def send(
        self,
        *,
        credentials: dict,
        recipient_id: str,
        message: OutboundMessage,
        session: requests.Session,
        timeout: float,
        callback_url: str | None = None,
    ) -> SendResult:
        event_id, event_type, data = self.event(message, recipient_id)
        return self.deliver_event(
            credentials=credentials,
            event_type=event_type,
            data=data,
            event_id=event_id,
            session=session,
            timeout=timeout,
        )

    def deliver_event(
        self,
        *,
        credentials: dict,
        event_type: str,
        data: dict,
        event_id: str,
        session: requests.Session,
        timeout: float,
        timestamp: int | None = None,
    ) -> SendResult:
        """POST one signed event to the tenant's webhook URL. Pass the same ``event_id`` on
        every retry: tenants drop repeats by it."""
        url = self._credential(credentials, "webhook_url")
        secret = self._credential(credentials, "signing_secret")
        timestamp = int(time.time()) if timestamp is None else timestamp
        body = json.dumps(
            {"id": event_id, "type": event_type, "created": timestamp, "data": data},
            separators=(",", ":"),
            sort_keys=True,
            default=str,
        ).encode()
        signatures = [f"{SIGNATURE_VERSION}={sign(secret, timestamp, body)}"]
        if credentials.get("previous_signing_secret"):
            previous = sign(str(credentials["previous_signing_secret"]), timestamp, body)
            signatures.append(f"{SIGNATURE_VERSION}={previous}")
        response = self._request(
            session,
            "POST",
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                EVENT_HEADER: event_type,
                EVENT_ID_HEADER: event_id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: ",".join(signatures),
            },
            timeout=timeout,
            allow_redirects=False,
        )
        answer = decode_body(response)
        if 200 <= response.status_code < 300:
            return SendResult(event_id, response.status_code, answer)
        reason = f"The webhook URL answered HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            reason += " (redirects are not followed: use the final URL)"
        retryable = response.status_code in (408, 409, 425, 429) or response.status_code >= 500
        raise self._http_error(
            response,
            answer,
            reason=reason,
            platform_code=str(response.status_code),
            retryable=retryable,
        )


def _inbound(item: Any, index: int) -> InboundMessage:
    if not isinstance(item, dict):
        raise MalformedPayload(f"messages[{index}] must be an object.")
    if item.get("id") in (None, ""):
        raise MalformedPayload(f'messages[{index}] needs an "id" (your message id).', field="id")
    if item.get("from") in (None, ""):
        raise MalformedPayload(f'messages[{index}] needs a "from" (your user id).', field="from")
    external_id = inputs.identifier(item["id"], field="id")
    sender = inputs.identifier(item["from"], field="from")
    text = inputs.text(item.get("text"), field="text")
    payload = item.get("payload")
    if payload is not None:
        payload = inputs.text(payload, field="payload", max_length=1000)
    data = item.get("data")
    if data is not None and not isinstance(data, dict):
        raise InputError("data", "Must be an object.")
    data = data or {}
    kind = item.get("kind") or (BUTTON if payload else TEXT)
    if not isinstance(kind, str) or kind not in MESSAGE_KINDS:
        raise InputError("kind", f"Must be one of {', '.join(MESSAGE_KINDS)}.")
    if kind in (MEDIA, LOCATION, CONTACTS) and not data:
        raise InputError("data", f'A {kind} message needs "data".')
    timestamp = item.get("timestamp")
    return InboundMessage(
        external_id=external_id,
        sender_id=sender,
        sender_name=inputs.optional_text(item.get("name"), field="name", max_length=200)
        if isinstance(item.get("name"), str)
        else None,
        kind=kind,
        text=text,
        payload=payload,
        data=data,
        timestamp=from_unix(timestamp) if timestamp is not None else utc_now(),
    )
