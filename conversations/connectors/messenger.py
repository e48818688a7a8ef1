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

from . import _meta
from .base import (
    BUTTON,
    DELIVERED,
    LOCATION,
    MEDIA,
    READ,
    TEXT,
    UNSUPPORTED,
    Connector,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    PermanentSendError,
    SendResult,
    StatusUpdate,
    WebhookRequest,
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
        messages: list[InboundMessage] = []
        statuses: list[StatusUpdate] = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise MalformedPayload("Every entry must be an object.")
            # "standby" events belong to threads another app controls: not ours to answer.
            for event in entry.get("messaging") or []:
                if not isinstance(event, dict):
                    raise MalformedPayload("Every messaging event must be an object.")
                _event(event, messages, statuses)
        return ParsedWebhook(messages=messages, statuses=statuses)

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
        for payload in self.render(recipient_id, message):
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
    sender = event.get("sender") or {}
    sender_id = str(sender.get("id") or sender.get("user_ref") or "")
    if "message" in event:
        message = event["message"] if isinstance(event["message"], dict) else {}
        if message.get("is_echo"):
            return  # our own page's message, echoed back
        if not sender_id or not message.get("mid"):
            raise MalformedPayload("A message event needs a sender and a message id (mid).")
        kind, text, payload, data = _content(message)
        messages.append(
            InboundMessage(
                external_id=str(message["mid"]),
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
        postback = event["postback"] if isinstance(event["postback"], dict) else {}
        if not sender_id:
            raise MalformedPayload("A postback event needs a sender.")
        timestamp = event.get("timestamp")
        messages.append(
            InboundMessage(
                external_id=str(postback.get("mid") or f"postback:{sender_id}:{timestamp}"),
                sender_id=sender_id,
                sender_name=None,
                kind=BUTTON,
                text=str(postback.get("title") or ""),
                payload=postback.get("payload"),
                data={"reply_type": "postback", **_referral(postback)},
                timestamp=from_unix(timestamp, millis=True),
            )
        )
        return
    if "delivery" in event or "read" in event:
        status = DELIVERED if "delivery" in event else READ
        receipt = event.get("delivery") or event.get("read") or {}
        watermark = from_unix(receipt.get("watermark") or event.get("timestamp"), millis=True)
        mids = receipt.get("mids") or []
        for mid in mids:
            statuses.append(StatusUpdate(str(mid), status, watermark, None, sender_id))
        if not mids:
            statuses.append(StatusUpdate("", status, watermark, None, sender_id, up_to=watermark))
        return
    keys = [key for key in event if key not in ENVELOPE_KEYS]
    event_type = keys[0] if keys else "unknown"
    if event_type in IGNORED_EVENTS or not sender_id:
        return
    # Reactions, referrals, opt-ins, edits...: kept as unsupported messages, never dropped.
    timestamp = event.get("timestamp")
    detail = event.get(event_type) if isinstance(event.get(event_type), dict) else {}
    messages.append(
        InboundMessage(
            external_id=f"{event_type}:{sender_id}:{detail.get('mid', '')}:{timestamp}",
            sender_id=sender_id,
            sender_name=None,
            kind=UNSUPPORTED,
            text="",
            payload=None,
            data={"type": event_type, "raw": event},
            timestamp=from_unix(timestamp, millis=True),
        )
    )


def _content(message: dict) -> tuple[str, str, str | None, dict]:
    text = str(message.get("text") or "")
    data: dict[str, Any] = {}
    reply_to = message.get("reply_to")
    if isinstance(reply_to, dict) and reply_to.get("mid"):
        data["reply_to"] = reply_to["mid"]
    quick_reply = message.get("quick_reply")
    if isinstance(quick_reply, dict):
        return BUTTON, text, quick_reply.get("payload"), {**data, "reply_type": "quick_reply"}
    attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
    if attachments:
        first = attachments[0]
        kind = first.get("type")
        content = first.get("payload") if isinstance(first.get("payload"), dict) else {}
        if kind in MEDIA_ATTACHMENTS:
            items = [
                {"media_type": a.get("type"), "url": (a.get("payload") or {}).get("url")}
                for a in attachments
            ]
            data.update({"media_type": kind, "url": content.get("url"), "attachments": items})
            if content.get("sticker_id"):
                data["sticker_id"] = content["sticker_id"]
            return MEDIA, text, None, data
        if kind == "location":
            coordinates = content.get("coordinates") or {}
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
