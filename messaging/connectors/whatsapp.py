"""WhatsApp Cloud API (Meta).

In: a GET ``hub.*`` handshake, then POSTs signed with ``X-Hub-Signature-256`` carrying
``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {"contacts", "messages", "statuses"}}]}]}``.
Out: ``POST {WHATSAPP_API_BASE}/{phone_number_id}/messages`` with a Bearer access token.

Credentials: ``access_token``, ``app_secret``, ``verify_token``, ``phone_number_id``;
optional ``throughput`` (messages per second of the number, 80 by default, up to 1,000 once
Meta raises it) and ``list_button`` (the label of the button that opens a list, "Options").
"""

from __future__ import annotations

from typing import Any

import requests

from chattonic.core import inputs
from chattonic.core.inputs import InputError

from . import _meta
from .base import (
    BUTTON,
    CONTACTS,
    DELIVERED,
    FAILED,
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
    decode_body,
    from_unix,
    per_second_problem,
    truncate,
    with_numbered_options,
)

# Limits of the Cloud API's message objects.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BUTTONS_MAX = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
BUTTON_BODY_LIMIT = 1024
LIST_ROWS_MAX = 10
LIST_BODY_LIMIT = 4096
LIST_BUTTON_LIMIT = 20
ROW_TITLE_LIMIT = 24
ROW_ID_LIMIT = 200
ROW_DESCRIPTION_LIMIT = 72

# A button's payload we keep (the longest WhatsApp sends back is a row id: 200 characters).
MAX_PAYLOAD = 1000

DEFAULT_THROUGHPUT = 80
MAX_THROUGHPUT = 1000  # Meta's highest tier of a number
# The pair rate limit: about one message every 6 s to the same user, with bursts allowed.
PAIR_LIMIT = (10, 60.0)

# Error codes worth retrying, with a first delay in seconds when no Retry-After comes.
RETRYABLE_CODES: dict[int, float | None] = {
    1: None,  # API Unknown: possibly a temporary problem
    2: None,  # API Service: temporary downtime or overload
    4: 60.0,  # API Too Many Calls: the app's call rate limit
    17: 60.0,  # API User Too Many Calls
    341: 60.0,  # Application limit reached
    613: 60.0,  # Calls to this API have exceeded the rate limit
    80007: 60.0,  # Rate limit issues: the WhatsApp Business Account's rate limit
    130429: 1.0,  # Rate limit hit: the number's throughput
    131000: None,  # Something went wrong
    131016: None,  # Service unavailable
    131056: 6.0,  # (Business account, consumer account) pair rate limit hit
    131057: 60.0,  # Account in maintenance mode (e.g. a throughput upgrade)
    133004: None,  # Server temporarily unavailable
}

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# The types whose content is an object under the type's name.
CONTENT_TYPES = frozenset({"text", "interactive", "button", "location", *MEDIA_TYPES})
OUTBOUND_MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "file": "document",
    "sticker": "sticker",
}
HEADER_MEDIA = ("image", "video", "document")
STATUS_MAP = {"sent": SENT, "delivered": DELIVERED, "read": READ, "failed": FAILED}


class WhatsAppConnector(Connector):
    kind = "whatsapp"
    display_name = "WhatsApp Cloud API"
    required_credentials = ("access_token", "app_secret", "verify_token", "phone_number_id")
    optional_credentials = ("throughput", "list_button")
    secret_credentials = ("access_token", "app_secret", "verify_token")

    def credential_problems(self, credentials):
        throughput = credentials.get("throughput")
        problem = per_second_problem(throughput, most=MAX_THROUGHPUT) if throughput else None
        return {"throughput": problem} if problem else {}

    api_base_setting = "WHATSAPP_API_BASE"
    reports_reference = True  # biz_opaque_callback_data comes back on every status

    # --- in ----------------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest, credentials: dict) -> str:
        return _meta.handshake(request, credentials.get("verify_token") or "")

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        _meta.verify(request, credentials.get("app_secret") or "")

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        payload = request.json()
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            raise MalformedPayload('Expected {"object": "whatsapp_business_account", ...}.')
        entries = payload.get("entry")
        if not isinstance(entries, list):
            raise MalformedPayload('Expected an "entry" list.', field="entry")
        events = Events()
        for e, entry in enumerate(entries):
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise MalformedPayload(
                    'Expected a "changes" list in every entry.', field=f"entry.{e}.changes"
                )
            for c, change in enumerate(changes):
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue  # template, account and quality updates are not conversations
                where = f"entry.{e}.changes.{c}.value"
                value = change.get("value")
                if not isinstance(value, dict):
                    raise MalformedPayload(
                        'Expected a "value" object in a messages change.', field=where
                    )
                names = _contact_names(value.get("contacts"))
                # Each message and status on its own: one that cannot be taken is refused,
                # and the others of the batch are kept.
                for m, raw in enumerate(_items(value.get("messages"))):
                    with events.each(f"{where}.messages.{m}"):
                        events.messages.append(_inbound(raw, names))
                for s, raw in enumerate(_items(value.get("statuses"))):
                    with events.each(f"{where}.statuses.{s}"):
                        status = _status(raw)
                        if status is not None:
                            events.statuses.append(status)
        return events.parsed()

    # --- out ---------------------------------------------------------------------------------

    def render(self, recipient_id: str, message: OutboundMessage, credentials: dict) -> dict:
        """The JSON body of ``POST /{phone_number_id}/messages`` for ``message``."""
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": recipient_id,
        }
        replies = message.quick_replies
        media = message.media
        media_type = (
            OUTBOUND_MEDIA.get((media or {}).get("kind", ""), "document") if media else None
        )
        if replies and _fits_buttons(message.text, replies, media_type):
            interactive: dict[str, Any] = {
                "type": "button",
                "body": {"text": message.text or "Please choose:"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": r["payload"], "title": r["title"]}}
                        for r in replies
                    ]
                },
            }
            if media:
                interactive["header"] = {"type": media_type, media_type: {"link": media["url"]}}
            return {**body, "type": "interactive", "interactive": interactive}
        if replies and not media and _fits_list(message.text, replies):
            label = str(credentials.get("list_button") or "Options")
            return {
                **body,
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": message.text or "Please choose:"},
                    "action": {
                        "button": truncate(label, LIST_BUTTON_LIMIT),
                        "sections": [{"rows": [_row(r) for r in replies]}],
                    },
                },
            }
        # No native rendering fits (too many options, or media a list cannot carry):
        # the options become numbered lines of the text or caption.
        text = with_numbered_options(message.text, replies)
        if media:
            if media_type in ("audio", "sticker") and text:
                raise PermanentSendError(
                    "WhatsApp cannot attach text or quick replies to audio or a sticker.",
                    platform_code="unsupported_message",
                )
            content: dict[str, Any] = {"link": media["url"]}
            if text:
                content["caption"] = truncate(text, CAPTION_LIMIT)
            return {**body, "type": media_type, media_type: content}
        if not text:
            raise PermanentSendError("Nothing to send.", platform_code="empty_message")
        return {
            **body,
            "type": "text",
            "text": {"body": truncate(text, TEXT_LIMIT), "preview_url": False},
        }

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
        number = self._credential(credentials, "phone_number_id")
        token = self._credential(credentials, "access_token")
        payload = self.render(recipient_id, message, credentials)
        if message.reference:
            # Handed back on the message's status webhooks (up to 512 characters): a send
            # whose answer was lost is settled by its "sent" status, not sent again.
            payload["biz_opaque_callback_data"] = message.reference[:512]
        response = self._request(
            session,
            "POST",
            f"{self.api_base}/{number}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        body = decode_body(response)
        if response.ok:
            sent = body.get("messages") or []
            if sent and isinstance(sent[0], dict) and sent[0].get("id"):
                return SendResult(str(sent[0]["id"]), response.status_code, body)
            raise PermanentSendError(
                "WhatsApp answered without a message id.",
                status_code=response.status_code,
                response=body,
            )
        raise _meta.graph_error(
            response, body, retryable_codes=RETRYABLE_CODES, what="WhatsApp refused the message"
        )

    def rate_limits(
        self, credentials: dict, recipient_id: str, message: OutboundMessage | None = None
    ) -> list[tuple[str, int, float]]:
        number = str(credentials.get("phone_number_id") or "")
        try:
            throughput = int(credentials.get("throughput") or DEFAULT_THROUGHPUT)
        except (TypeError, ValueError):
            throughput = DEFAULT_THROUGHPUT
        count, per = PAIR_LIMIT
        return [
            (f"whatsapp:number:{number}", throughput, 1.0),
            (f"whatsapp:pair:{number}:{recipient_id}", count, per),
        ]


# --- parsing helpers -----------------------------------------------------------------------


def _items(value: Any) -> list:
    """A list of events; anything else (a number, an object) is one event to refuse."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _contact_names(contacts: Any) -> dict[str, str]:
    names = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if isinstance(contact, dict):
            name = as_dict(contact.get("profile")).get("name")
            wa_id = contact.get("wa_id")
            if isinstance(wa_id, str | int) and wa_id and isinstance(name, str) and name:
                names[str(wa_id)] = name
    return names


def _inbound(raw: Any, names: dict[str, str]) -> InboundMessage:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("from"):
        raise MalformedPayload("Every message needs an id and a sender (from).")
    external_id = inputs.identifier(raw["id"], field="id")
    sender = inputs.identifier(raw["from"], field="from")
    kind, text, payload, data = _content(raw)
    context = as_dict(raw.get("context"))
    if context.get("id"):
        data["reply_to"] = context["id"]
    name = names.get(sender) or (next(iter(names.values())) if len(names) == 1 else None)
    return InboundMessage(
        external_id=external_id,
        sender_id=sender,
        sender_name=inputs.optional_text(name, field="contacts.profile.name", max_length=200),
        kind=kind,
        text=inputs.text(text, field=f"{raw.get('type')}.text"),
        payload=inputs.optional_text(payload, field="payload", max_length=MAX_PAYLOAD),
        data=data,
        timestamp=from_unix(raw.get("timestamp")),
    )


def _content(raw: dict) -> tuple[str, str, str | None, dict]:
    """(kind, text, payload, data) of one message object."""
    kind = raw.get("type")
    if not isinstance(kind, str):
        kind = None
    content = as_dict(raw.get(kind)) if kind else {}
    if kind in CONTENT_TYPES and not isinstance(raw.get(kind), dict):
        raise InputError(kind, "Must be an object.")
    if kind == "text":
        return TEXT, _str(content.get("body")), None, {}
    if kind == "interactive":
        reply_type = content.get("type")
        reply = content.get(reply_type) if isinstance(reply_type, str) else None
        if reply_type in ("button_reply", "list_reply") and isinstance(reply, dict) and reply:
            data = {"reply_type": reply_type}
            if reply.get("description"):
                data["description"] = reply["description"]
            return BUTTON, _str(reply.get("title")), _str(reply.get("id")), data
        return UNSUPPORTED, "", None, {"type": f"interactive.{reply_type}", "raw": raw}
    if kind == "button":  # a template's quick-reply button
        payload = content.get("payload")
        return (
            BUTTON,
            _str(content.get("text")),
            _str(payload) if payload is not None else None,
            {"reply_type": kind},
        )
    if kind in MEDIA_TYPES:
        data = {"media_type": kind}
        for key in ("id", "mime_type", "sha256", "caption", "filename", "animated", "voice"):
            if key in content:
                data[key] = content[key]
        return MEDIA, _str(content.get("caption")), None, data
    if kind == "location":
        data = {
            key: content[key]
            for key in ("latitude", "longitude", "name", "address", "url")
            if key in content
        }
        return LOCATION, "", None, data
    if kind == "contacts":
        contacts = raw.get("contacts") if isinstance(raw.get("contacts"), list) else []
        return CONTACTS, "", None, {"contacts": contacts}
    data = {"type": kind or "unknown", "raw": raw}
    if raw.get("errors"):
        data["errors"] = raw["errors"]
    return UNSUPPORTED, "", None, data


def _str(value: Any) -> str:
    """A text the platform documents as a string; a number is taken as its digits."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InputError("text", "Must be a string.")


def _status(raw: Any) -> StatusUpdate | None:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise MalformedPayload("Every status needs an id.")
    status = raw.get("status")
    status = STATUS_MAP.get(status) if isinstance(status, str) else None
    if status is None:
        return None  # e.g. "deleted": not a delivery state
    error = None
    errors = raw.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        details = as_dict(first.get("error_data")).get("details")
        title = first.get("title") or first.get("message") or "error"
        error = f"{first.get('code')}: {title}" + (f" ({details})" if details else "")
        error = inputs.text(error, field="errors.0", max_length=2000, cut=True)
    elif status == FAILED:
        error = "failed"
    recipient = raw.get("recipient_id")
    reference = raw.get("biz_opaque_callback_data")
    return StatusUpdate(
        external_id=inputs.identifier(raw["id"], field="id"),
        status=status,
        timestamp=from_unix(raw.get("timestamp")),
        error=error,
        recipient_id=inputs.identifier(recipient, field="recipient_id") if recipient else None,
        reference=(
            inputs.identifier(reference, field="biz_opaque_callback_data") if reference else None
        ),
    )


# --- rendering helpers ---------------------------------------------------------------------


def _unique(values: list[str]) -> bool:
    return len(set(values)) == len(values)


def _fits_buttons(text: str, replies: list[dict], media_type: str | None) -> bool:
    titles = [str(r["title"]) for r in replies]
    payloads = [str(r["payload"]) for r in replies]
    return (
        len(replies) <= BUTTONS_MAX
        and all(0 < len(t) <= BUTTON_TITLE_LIMIT for t in titles)
        and all(0 < len(p) <= BUTTON_ID_LIMIT for p in payloads)
        and _unique(titles)
        and _unique(payloads)
        and len(text) <= BUTTON_BODY_LIMIT
        and (media_type is None or media_type in HEADER_MEDIA)
    )


def _fits_list(text: str, replies: list[dict]) -> bool:
    payloads = [str(r["payload"]) for r in replies]
    return (
        len(replies) <= LIST_ROWS_MAX
        and all(0 < len(p) <= ROW_ID_LIMIT for p in payloads)
        and all(str(r["title"]) for r in replies)
        and _unique(payloads)
        and len(text) <= LIST_BODY_LIMIT
    )


def _row(reply: dict) -> dict:
    title = str(reply["title"])
    row = {"id": str(reply["payload"]), "title": truncate(title, ROW_TITLE_LIMIT)}
    if len(title) > ROW_TITLE_LIMIT:
        row["description"] = truncate(title, ROW_DESCRIPTION_LIMIT)
    return row
