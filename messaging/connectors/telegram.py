"""Telegram Bot API.

In: one ``Update`` per POST, set up with ``setWebhook(url, secret_token=...)``; every request
then carries ``X-Telegram-Bot-Api-Secret-Token``. Telegram does not sign the body: the
secret header (over TLS) is the whole proof, so a changed body with the right header passes.
``update_id`` is the dedup key.
Out: ``POST {TELEGRAM_API_BASE}/bot<token>/sendMessage`` (or sendPhoto, sendVideo...).

Credentials: ``bot_token``, ``secret_token`` (1-256 characters of ``A-Za-z0-9_-``).
"""

from __future__ import annotations

import re
from typing import Any

import requests

from chattonic.core import inputs

from .base import (
    BUTTON,
    CONTACTS,
    LOCATION,
    MEDIA,
    TEXT,
    UNSUPPORTED,
    Connector,
    Events,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    PermanentSendError,
    RetryableSendError,
    SendResult,
    VerificationFailed,
    WebhookRequest,
    as_dict,
    constant_time_equals,
    decode_body,
    from_unix,
    now,
    parse_retry_after,
    short_hash,
    truncate,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes

# Telegram's FAQ: about 1 message per second per chat, about 30 per second per bot in bulk,
# at most 20 per minute to the same group.
CHAT_LIMIT = (1, 1.0)
BOT_LIMIT = (30, 1.0)
GROUP_LIMIT = (20, 60.0)

MESSAGE_UPDATES = ("message", "business_message", "channel_post")
EDITED_UPDATES = ("edited_message", "edited_business_message", "edited_channel_post")
MEDIA_FIELDS = (
    "photo",
    "video",
    "audio",
    "voice",
    "document",
    "animation",
    "video_note",
    "sticker",
)
MEDIA_KEYS = (
    "file_id",
    "file_unique_id",
    "mime_type",
    "file_name",
    "file_size",
    "width",
    "height",
    "duration",
    "emoji",
)
SEND_METHODS = {
    "image": ("sendPhoto", "photo"),
    "video": ("sendVideo", "video"),
    "audio": ("sendAudio", "audio"),
    "file": ("sendDocument", "document"),
    "sticker": ("sendSticker", "sticker"),
}
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "business_message"]


class TelegramConnector(Connector):
    kind = "telegram"
    display_name = "Telegram"
    required_credentials = ("bot_token", "secret_token")
    registers_webhook = True
    secret_credentials = ("bot_token", "secret_token")

    def credential_problems(self, credentials):
        secret = credentials.get("secret_token")
        if secret and not SECRET_TOKEN_RE.match(str(secret)):
            return {"secret_token": "1-256 characters of A-Z, a-z, 0-9, _ and - only."}
        return {}

    api_base_setting = "TELEGRAM_API_BASE"

    # --- in ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        secret = credentials.get("secret_token") or ""
        header = request.header(SECRET_HEADER)
        if header is None:
            raise VerificationFailed(
                f"The {SECRET_HEADER} header is missing.", status=401, code="missing_signature"
            )
        if not secret:
            raise VerificationFailed("The channel has no secret token.", code="not_configured")
        if not constant_time_equals(header, secret):
            raise VerificationFailed("The secret token does not match.", code="invalid_token")

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        update = request.json()
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if isinstance(update_id, bool) or not isinstance(update_id, int):
            raise MalformedPayload(
                "Expected an Update object with an integer update_id.", field="update_id"
            )
        events = Events()
        with events.each("update"):
            message = _update(str(update_id), update)
            if message is not None:
                events.messages.append(message)
        return events.parsed()

    # --- out ---------------------------------------------------------------------------------

    def render(self, recipient_id: str, message: OutboundMessage) -> tuple[str, dict]:
        """(method, JSON body) of the Bot API call for ``message``."""
        body: dict[str, Any] = {"chat_id": recipient_id}
        markup = _reply_markup(message.quick_replies)
        if markup:
            body["reply_markup"] = markup
        if message.media:
            method, field = SEND_METHODS.get(message.media.get("kind", ""), SEND_METHODS["file"])
            body[field] = message.media["url"]
            if message.text and method != "sendSticker":
                body["caption"] = truncate(message.text, CAPTION_LIMIT)
            elif message.text:
                raise PermanentSendError(
                    "Telegram cannot attach text to a sticker.", platform_code="unsupported"
                )
            return method, body
        if not message.text:
            raise PermanentSendError("Nothing to send.", platform_code="empty_message")
        body["text"] = truncate(message.text, TEXT_LIMIT)
        return "sendMessage", body

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
        method, payload = self.render(recipient_id, message)
        body, response = self._call(credentials, method, payload, session, timeout)
        result = body.get("result") or {}
        if not isinstance(result, dict) or result.get("message_id") is None:
            raise PermanentSendError(
                "Telegram answered without a message id.",
                status_code=response.status_code,
                response=body,
            )
        return SendResult(str(result["message_id"]), response.status_code, body)

    def set_webhook(
        self, *, credentials: dict, url: str, session: requests.Session, timeout: float
    ) -> dict:
        """Point the bot's webhook at ``url`` with the channel's secret token."""
        secret = self._credential(credentials, "secret_token")
        if not SECRET_TOKEN_RE.match(secret):
            raise PermanentSendError(
                "A Telegram secret token is 1-256 characters of A-Z, a-z, 0-9, _ and -.",
                platform_code="invalid_secret_token",
            )
        payload = {"url": url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES}
        body, _ = self._call(credentials, "setWebhook", payload, session, timeout)
        return body

    def answer_callback_query(
        self,
        *,
        credentials: dict,
        callback_query_id: str,
        session: requests.Session,
        timeout: float,
    ) -> dict:
        """Stop the spinner on a tapped inline button (``data["callback_query_id"]``)."""
        payload = {"callback_query_id": callback_query_id}
        body, _ = self._call(credentials, "answerCallbackQuery", payload, session, timeout)
        return body

    def rate_limits(
        self, credentials: dict, recipient_id: str, message: OutboundMessage | None = None
    ) -> list[tuple[str, int, float]]:
        bot = bot_id(str(credentials.get("bot_token") or ""))
        limits = [
            (f"telegram:chat:{bot}:{recipient_id}", *CHAT_LIMIT),
            (f"telegram:bot:{bot}", *BOT_LIMIT),
        ]
        if str(recipient_id).startswith("-"):  # groups, supergroups and channels
            limits.append((f"telegram:group:{bot}:{recipient_id}", *GROUP_LIMIT))
        return limits

    # --- helpers -----------------------------------------------------------------------------

    def _call(
        self,
        credentials: dict,
        method: str,
        payload: dict,
        session: requests.Session,
        timeout: float,
    ) -> tuple[dict, requests.Response]:
        token = self._credential(credentials, "bot_token")
        response = self._request(
            session, "POST", f"{self.api_base}/bot{token}/{method}", json=payload, timeout=timeout
        )
        body = decode_body(response)
        if response.ok and body.get("ok") is True:
            return body, response
        raise _error(response, body, method)


def bot_id(token: str) -> str:
    """The public part of a bot token ("<bot id>:<secret>"), or a hash of a malformed one."""
    head, sep, _ = token.partition(":")
    return head if sep and head.isdigit() else short_hash(token)


def _error(response: requests.Response, body: dict, method: str):
    code = body.get("error_code") or response.status_code
    description = body.get("description") or response.reason or f"HTTP {response.status_code}"
    parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    reason = f"Telegram {method} failed: {description}"
    status = response.status_code
    if status == 429 or code == 429 or status >= 500:
        hint = parameters.get("retry_after")
        retry_after = float(hint) if isinstance(hint, int | float) else None
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RetryableSendError(
            reason,
            status_code=status,
            retry_after=retry_after,
            platform_code=str(code),
            response=body,
            maybe_sent=status >= 500,
        )
    if parameters.get("migrate_to_chat_id"):
        reason += f" (the group moved to chat {parameters['migrate_to_chat_id']})"
    return PermanentSendError(reason, status_code=status, platform_code=str(code), response=body)


def _reply_markup(replies: list[dict]) -> dict | None:
    if not replies:
        return None
    if all(0 < len(str(r["payload"]).encode()) <= CALLBACK_DATA_LIMIT for r in replies):
        return {
            "inline_keyboard": [
                [{"text": str(r["title"]), "callback_data": str(r["payload"])}] for r in replies
            ]
        }
    # A payload too long for callback_data: a one-time reply keyboard, whose tap comes back
    # as a text message with the title.
    return {
        "keyboard": [[{"text": str(r["title"])}] for r in replies],
        "one_time_keyboard": True,
        "resize_keyboard": True,
    }


def _update(external_id: str, update: dict) -> InboundMessage | None:
    for key in MESSAGE_UPDATES + EDITED_UPDATES:
        if isinstance(update.get(key), dict):
            return _from_message(external_id, key, update[key])
    if isinstance(update.get("callback_query"), dict):
        return _from_callback(external_id, update["callback_query"])
    # Other updates (inline queries, polls, membership changes...): kept as unsupported
    # when they name a person to answer, else there is no conversation to put them in.
    keys = [key for key in update if key != "update_id"]
    kind = keys[0] if keys else "unknown"
    body = as_dict(update.get(kind))
    chat = body.get("chat") if isinstance(body.get("chat"), dict) else None
    person = body.get("from") if isinstance(body.get("from"), dict) else None
    sender = chat or person
    if not sender or sender.get("id") is None:
        return None
    return InboundMessage(
        external_id=external_id,
        sender_id=inputs.identifier(sender["id"], field=f"{kind}.chat.id"),
        sender_name=_name(person or chat or {}),
        kind=UNSUPPORTED,
        text="",
        payload=None,
        data={"type": kind, "raw": update},
        timestamp=from_unix(body["date"], field=f"{kind}.date") if body.get("date") else now(),
    )


def _name(person: dict) -> str | None:
    parts = [person.get("first_name"), person.get("last_name")]
    name = " ".join(p for p in parts if isinstance(p, str) and p)
    for candidate in (name, person.get("title"), person.get("username")):
        if isinstance(candidate, str) and candidate:
            return inputs.optional_text(candidate, field="from.first_name", max_length=200)
    return None


def _from_message(external_id: str, update_kind: str, message: dict) -> InboundMessage:
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else None
    if not chat or chat.get("id") is None:
        raise MalformedPayload("A message needs a chat with an id.", field=f"{update_kind}.chat")
    person = message.get("from") if isinstance(message.get("from"), dict) else chat
    kind, text, data = _content(message)
    data["message_id"] = message.get("message_id")
    if update_kind in EDITED_UPDATES:
        # An edit of an earlier message: stored and shown, not answered as a new message.
        data = {"type": update_kind, "text": text, "raw": message, **data}
        kind, text = UNSUPPORTED, ""
    date = message.get("date")
    return InboundMessage(
        external_id=external_id,
        sender_id=inputs.identifier(chat["id"], field=f"{update_kind}.chat.id"),
        sender_name=_name(person),
        kind=kind,
        text=inputs.text(text, field=f"{update_kind}.text"),
        payload=None,
        data=data,
        timestamp=from_unix(date, field=f"{update_kind}.date") if date else now(),
    )


def _content(message: dict) -> tuple[str, str, dict]:
    caption = message.get("caption")
    caption = caption if isinstance(caption, str) else ""
    if isinstance(message.get("text"), str):
        return TEXT, message["text"], {}
    for field in MEDIA_FIELDS:
        value = message.get(field)
        if not value:
            continue
        item = value[-1] if isinstance(value, list) else value  # photo: the largest size
        item = as_dict(item)
        data = {"media_type": field}
        data.update({key: item[key] for key in MEDIA_KEYS if key in item})
        return MEDIA, caption, data
    if isinstance(message.get("venue"), dict):
        venue = message["venue"]
        location = as_dict(venue.get("location"))
        return (
            LOCATION,
            "",
            {
                "latitude": location.get("latitude"),
                "longitude": location.get("longitude"),
                "name": venue.get("title"),
                "address": venue.get("address"),
            },
        )
    if isinstance(message.get("location"), dict):
        location = message["location"]
        data = {key: location[key] for key in ("latitude", "longitude") if key in location}
        if "horizontal_accuracy" in location:
            data["accuracy"] = location["horizontal_accuracy"]
        return LOCATION, "", data
    if isinstance(message.get("contact"), dict):
        return CONTACTS, "", {"contacts": [message["contact"]]}
    known = {"message_id", "from", "chat", "date", "sender_chat", "message_thread_id"}
    known |= {"is_topic_message", "reply_to_message", "entities", "business_connection_id"}
    content_keys = [key for key in message if key not in known]
    raw_type = content_keys[0] if content_keys else "message"
    return UNSUPPORTED, "", {"type": raw_type, "raw": message}


def _from_callback(external_id: str, query: dict) -> InboundMessage:
    person = as_dict(query.get("from"))
    message = as_dict(query.get("message"))
    chat = as_dict(message.get("chat"))
    sender = chat.get("id", person.get("id"))
    if sender is None:
        raise MalformedPayload("A callback query needs a chat or a sender.")
    payload = query.get("data")
    payload = (
        inputs.text(payload, field="callback_query.data", max_length=1000, default=None)
        if payload is not None
        else None
    )
    return InboundMessage(
        external_id=external_id,
        sender_id=inputs.identifier(sender, field="callback_query.message.chat.id"),
        sender_name=_name(person),
        kind=BUTTON,
        text=inputs.text(
            _button_title(message, payload) or payload or "", field="callback_query.text"
        ),
        payload=payload,
        data={
            "reply_type": "callback_query",
            "callback_query_id": query.get("id"),
            "message_id": message.get("message_id"),
        },
        # A callback query has no date of its own; it happens now.
        timestamp=now(),
    )


def _button_title(message: dict, payload: Any) -> str | None:
    """The text of the tapped button, found in the keyboard of the message it was under."""
    keyboard = as_dict(message.get("reply_markup")).get("inline_keyboard")
    for row in keyboard if isinstance(keyboard, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == payload:
                title = button.get("text")
                return title if isinstance(title, str) else None
    return None
