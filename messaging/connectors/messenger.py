"""Messenger Platform (Meta).

In: a GET ``hub.*`` handshake, then POSTs signed with ``X-Hub-Signature-256`` carrying
``{"object": "page", "entry": [{"id", "time", "messaging": [events]}]}``; the events are
messages (text, quick replies, attachments), postbacks, deliveries and reads.
Out: ``POST {MESSENGER_API_BASE}/me/messages`` (the Send API) with the page access token.

Credentials: ``page_access_token``, ``app_secret``, ``verify_token``; optional ``page_id``
(names the page's rate-limit bucket; without it a hash of the token does).
"""

from __future__ import annotations

from typing import Any

import requests

from chattonic.core import inputs

from . import _meta
from .base import (
    BUTTON,
    DELIVERED,
    LOCATION,
    MEDIA,
    READ,
    SENT,
    TEXT,
    UNSUPPORTED,
    Connector,
    Events,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    PermanentSendError,
    SendResult,
    StatusUpdate,
    WebhookRequest,
    as_dict,
    as_list,
    decode_body,
    from_unix,
    short_hash,
    truncate,
    with_numbered_options,
)

TEXT_LIMIT = 2000
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_LIMIT = 20
QUICK_REPLY_PAYLOAD_LIMIT = 1000

# The Send API's documented limits per page: text, links, reactions and stickers; audio/video.
PAGE_LIMIT = 300
AUDIO_VIDEO_LIMIT = 10

RETRYABLE_CODES: dict[int, float | None] = {
    2: None,  # An unexpected error has occurred. Please retry your request later.
    4: 60.0,  # Application request limit reached / too many send requests
    17: 60.0,  # User request limit reached
    32: 60.0,  # Page request limit reached
    613: 60.0,  # Calls to this API have exceeded the rate limit
    1200: None,  # Temporary send message failure. Please try again later.
}

MEDIA_ATTACHMENTS = ("image", "audio", "video", "file", "reel", "ig_reel")
OUTBOUND_ATTACHMENT = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "file",
    "sticker": "image",
}
# Events that are not a person writing: thread control between apps, and the like.
IGNORED_EVENTS = frozenset(
    {
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
        "app_roles",
        "policy_enforcement",
    }
)
ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})


class MessengerConnector(Connector):
    kind = "messenger"
    display_name = "Facebook Messenger"
    required_credentials = ("page_access_token", "app_secret", "verify_token")
    optional_credentials = ("page_id",)
    secret_credentials = ("page_access_token", "app_secret", "verify_token")

    api_base_setting = "MESSENGER_API_BASE"
    reports_reference = True  # the message echo carries the metadata we sent

    # --- in ----------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: dict) -> str:
        return _meta.handshake(request, credentials.get("verify_token") or "")

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        _meta.verify(request, credentials.get("app_secret") or "")

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        payload = request.json()
        if not isinstance(payload, dict) or payload.get("object") not in ("page", "instagram"):
            raise MalformedPayload('Expected {"object": "page", ...}.')
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise MalformedPayload('Expected an "entry" list.')
        events = Events()
        for e, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise MalformedPayload("Every entry must be an object.", field=f"entry.{e}")
            # "standby" events belong to threads another app controls: not ours to answer.
            messaging = entry.get("messaging")
            for m, event in enumerate(messaging if isinstance(messaging, list) else []):
                # Each event on its own: one that cannot be taken is refused, the others kept.
                with events.each(f"entry.{e}.messaging.{m}"):
                    if not isinstance(event, dict):
                        raise MalformedPayload("Every messaging event must be an object.")
                    _event(event, events.messages, events.statuses)
        return events.parsed()

    # --- out ---------------------------------------------------------------------------------

    def render(self, recipient_id: str, message: OutboundMessage) -> list[dict]:
        """The Send API bodies for ``message``: one, or two when it has both media and text
        (Messenger attachments carry no caption; the text follows the attachment)."""
        replies = message.quick_replies
        native = _fits_quick_replies(replies)
        text = message.text if native else with_numbered_options(message.text, replies)
        quick_replies = (
            [
                {
                    "content_type": "text",
                    "title": truncate(str(r["title"]), QUICK_REPLY_TITLE_LIMIT),
                    "payload": str(r["payload"]),
                }
                for r in replies
            ]
            if native and replies
            else []
        )
        bodies: list[dict[str, Any]] = []
        if message.media:
            kind = OUTBOUND_ATTACHMENT.get(message.media.get("kind", ""), "file")
            attachment = {
                "attachment": {
                    "type": kind,
                    "payload": {"url": message.media["url"], "is_reusable": True},
                }
            }
            if not text and quick_replies:
                attachment["quick_replies"] = quick_replies
            bodies.append(attachment)
        if text:
            content: dict[str, Any] = {"text": truncate(text, TEXT_LIMIT)}
            if quick_replies:
                content["quick_replies"] = quick_replies
            bodies.append(content)
        if not bodies:
            raise PermanentSendError("Nothing to send.", platform_code="empty_message")
        return [
            {"recipient": {"id": recipient_id}, "messaging_type": "RESPONSE", "message": body}
            for body in bodies
        ]

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
        token = self._credential(credentials, "page_access_token")
        sent: list[str] = []
        result: SendResult | None = None
        payloads = self.render(recipient_id, message)
        if message.reference:
            # Echoed back on the page's message_echoes webhook: a send whose answer was lost
            # is settled by its echo. On the last body: its echo means all of them went.
            payloads[-1]["message"]["metadata"] = message.reference[:1000]
        for payload in payloads:
            response = self._request(
                session,
                "POST",
                f"{self.api_base}/me/messages",
                json=payload,
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout,
            )
            body = decode_body(response)
            if not response.ok:
                error = _meta.graph_error(
                    response,
                    body,
                    retryable_codes=RETRYABLE_CODES,
                    what="Messenger refused the message",
                )
                if sent:
                    error.response = {**error.response, "sent_message_ids": sent}
                raise error
            if not body.get("message_id"):
                raise PermanentSendError(
                    "Messenger answered without a message id.",
                    status_code=response.status_code,
                    response=body,
                )
            sent.append(str(body["message_id"]))
            result = SendResult(str(body["message_id"]), response.status_code, body)
        assert result is not None  # render() never returns an empty list
        if len(sent) > 1:
            result = SendResult(
                result.external_id, result.status_code, {**result.response, "message_ids": sent}
            )
        return result

    def rate_limits(
        self, credentials: dict, recipient_id: str, message: OutboundMessage | None = None
    ) -> list[tuple[str, int, float]]:
        page = str(
            credentials.get("page_id") or short_hash(str(credentials.get("page_access_token")))
        )
        limits = [(f"messenger:page:{page}", PAGE_LIMIT, 1.0)]
        if message and message.media and message.media.get("kind") in ("audio", "video"):
            limits.append((f"messenger:page:{page}:audio-video", AUDIO_VIDEO_LIMIT, 1.0))
        return limits


# --- parsing helpers -----------------------------------------------------------------------


def _event(event: dict, messages: list[InboundMessage], statuses: list[StatusUpdate]) -> None:
    sender = as_dict(event.get("sender"))
    sender_id = sender.get("id") or sender.get("user_ref") or ""
    sender_id = inputs.identifier(sender_id, field="sender.id") if sender_id else ""
    if "message" in event:
        message = as_dict(event["message"])
        if message.get("is_echo"):
            # Our own page's message, echoed back: with our metadata, it says that a send of
            # ours reached Messenger (it settles one whose answer was lost); else ignored.
            reference = message.get("metadata")
            if isinstance(reference, str) and reference and message.get("mid"):
                statuses.append(
                    StatusUpdate(
                        external_id=inputs.identifier(message["mid"], field="message.mid"),
                        status=SENT,
                        timestamp=from_unix(event.get("timestamp"), millis=True),
                        reference=inputs.identifier(reference, field="message.metadata"),
                    )
                )
            return
        if not sender_id or not message.get("mid"):
            raise MalformedPayload("A message event needs a sender and a message id (mid).")
        kind, text, payload, data = _content(message)
        messages.append(
            InboundMessage(
                external_id=inputs.identifier(message["mid"], field="message.mid"),
                sender_id=sender_id,
                sender_name=None,
                kind=kind,
                text=text,
                payload=payload,
                data=data,
                timestamp=from_unix(event.get("timestamp"), millis=True),
            )
        )
        return
    if "postback" in event:
        postback = as_dict(event["postback"])
        if not sender_id:
            raise MalformedPayload("A postback event needs a sender.")
        timestamp = from_unix(event.get("timestamp"), millis=True)
        mid = postback.get("mid") or f"postback:{sender_id}:{event.get('timestamp')}"
        messages.append(
            InboundMessage(
                external_id=inputs.identifier(mid, field="postback.mid"),
                sender_id=sender_id,
                sender_name=None,
                kind=BUTTON,
                text=_text(postback.get("title"), "postback.title"),
                payload=_payload(postback.get("payload"), "postback.payload"),
                data={"reply_type": "postback", **_referral(postback)},
                timestamp=timestamp,
            )
        )
        return
    if "delivery" in event or "read" in event:
        status = DELIVERED if "delivery" in event else READ
        name = "delivery" if "delivery" in event else "read"
        receipt = as_dict(event.get(name))
        watermark = from_unix(
            receipt.get("watermark") or event.get("timestamp"),
            millis=True,
            field=f"{name}.watermark",
        )
        mids = as_list(receipt.get("mids"), field=f"{name}.mids")
        for i, mid in enumerate(mids):
            external_id = inputs.identifier(mid, field=f"{name}.mids.{i}")
            statuses.append(StatusUpdate(external_id, status, watermark, None, sender_id or None))
        if not mids:
            statuses.append(
                StatusUpdate("", status, watermark, None, sender_id or None, up_to=watermark)
            )
        return
    keys = [key for key in event if key not in ENVELOPE_KEYS]
    event_type = keys[0] if keys else "unknown"
    if event_type in IGNORED_EVENTS or not sender_id:
        return
    # Reactions, referrals, opt-ins, edits...: kept as unsupported messages, never dropped.
    timestamp = event.get("timestamp")
    when = from_unix(timestamp, millis=True)
    detail = as_dict(event.get(event_type))
    messages.append(
        InboundMessage(
            external_id=inputs.identifier(
                f"{event_type}:{sender_id}:{detail.get('mid', '')}:{timestamp}", field=event_type
            ),
            sender_id=sender_id,
            sender_name=None,
            kind=UNSUPPORTED,
            text="",
            payload=None,
            data={"type": event_type, "raw": event},
            timestamp=when,
        )
    )


def _text(value: Any, field: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return inputs.text(value, field=field)


def _payload(value: Any, field: str) -> str | None:
    return None if value is None else inputs.text(_text(value, field), field=field, max_length=1000)


def _content(message: dict) -> tuple[str, str, str | None, dict]:
    text = _text(message.get("text"), "message.text")
    data: dict[str, Any] = {}
    reply_to = message.get("reply_to")
    if isinstance(reply_to, dict) and reply_to.get("mid"):
        data["reply_to"] = reply_to["mid"]
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict):
        payload = _payload(quick_reply.get("payload"), "message.quick_reply.payload")
        return BUTTON, text, payload, {**data, "reply_type": "quick_reply"}
    attachments = [
        a
        for a in as_list(message.get("attachments"), field="message.attachments")
        if isinstance(a, dict)
    ]
    if attachments:
        first = attachments[0]
        kind = first.get("type")
        content = as_dict(first.get("payload"))
        if isinstance(kind, str) and kind in MEDIA_ATTACHMENTS:
            items = [
                {"media_type": a.get("type"), "url": as_dict(a.get("payload")).get("url")}
                for a in attachments
            ]
            data.update({"media_type": kind, "url": content.get("url"), "attachments": items})
            if content.get("sticker_id"):
                data["sticker_id"] = content["sticker_id"]
            return MEDIA, text, None, data
        if kind == "location":
            coordinates = as_dict(content.get("coordinates"))
            data.update(
                {
                    "latitude": coordinates.get("lat"),
                    "longitude": coordinates.get("long"),
                    "name": first.get("title"),
                    "url": first.get("url"),
                }
            )
            return LOCATION, text, None, data
        return UNSUPPORTED, text, None, {**data, "type": kind or "attachment", "raw": message}
    if "text" in message:
        return TEXT, text, None, data
    return UNSUPPORTED, "", None, {**data, "type": "message", "raw": message}


def _referral(postback: dict) -> dict:
    referral = postback.get("referral")
    return {"referral": referral} if isinstance(referral, dict) else {}


def _fits_quick_replies(replies: list[dict]) -> bool:
    return len(replies) <= QUICK_REPLIES_MAX and all(
        str(r.get("title", "")) and 0 < len(str(r["payload"])) <= QUICK_REPLY_PAYLOAD_LIMIT
        for r in replies
    )
