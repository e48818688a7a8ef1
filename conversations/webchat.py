"""The web chat's rules: visitor session tokens, allowed origins, frame validation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http.request import validate_host

TOKEN_SALT = "chattonic.webchat.visitor"  # noqa: S105 (a salt, not a secret)
# A frame holds one message of at most MAX_TEXT characters, whatever their encoding
# (4 bytes a character in UTF-8) plus the frame's other fields.
MAX_TEXT = 4096  # as conversations.services.MAX_TEXT
MAX_FRAME_BYTES = 20 * 1024
MAX_CLIENT_ID = 64


def visitor_token(bot_id: int, visitor_id: str) -> str:
    """A signed, opaque token that names the visitor of one bot."""
    return signing.dumps({"b": bot_id, "v": visitor_id}, salt=TOKEN_SALT, compress=True)


def visitor_from_token(token: str, bot_id: int) -> str | None:
    """The visitor id inside a token signed for this bot, or None."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("b") != bot_id:
        return None
    visitor = data.get("v")
    return visitor if isinstance(visitor, str) and len(visitor) == 32 else None


def new_visitor_id() -> str:
    return uuid.uuid4().hex


def is_own_origin(origin: str) -> bool:
    """An origin on one of this deployment's own hosts (the demo and sandbox pages)."""
    host = urlsplit(origin).hostname or ""
    allowed = settings.ALLOWED_HOSTS or (
        ["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []
    )
    return bool(host) and validate_host(host, allowed)


def origin_allowed(allowed_origins: list[str], origin: str | None) -> bool:
    """The bot's allowed origins, plus our own pages; a socket without Origin is refused."""
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    return origin in allowed_origins or is_own_origin(origin)


# Refusals of a socket before anything else is read: said in an error frame, then the socket
# is closed with 4000 + status (a handshake refused with HTTP 403 looks to a browser like a
# network error, which a widget would retry for ever, and tells the site's owner nothing).
UNKNOWN_BOT = {
    "code": "unknown_bot",
    "status": 404,
    "message": "No bot has this key: check the data-bot attribute of the widget's <script> tag.",
}


def origin_refusal(origin: str | None) -> dict:
    """The error frame's fields for an origin the bot does not allow: it names the origin, so
    that the site's owner knows what to add to the bot's allowed origins."""
    shown = (origin or "").rstrip("/").lower()[:200] or None
    where = "the bot's Allowed origins in the dashboard (Bots, the bot, Web chat widget)"
    return {
        "code": "origin_not_allowed",
        "status": 403,
        "origin": shown,
        "message": (
            f"This page's origin {shown} may not open this chat: add {shown} to {where}."
            if shown
            else f"The socket has no Origin header: only web pages listed in {where} may open it."
        ),
    }


class FrameError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Frame:
    type: str
    client_id: str = ""
    text: str = ""
    payload: str | None = None
    on: bool = False
    message_id: int | None = None
    before: int | None = None
    fields: dict | None = None
    score: int | None = None


FRAME_TYPES = {
    "start", "message", "quick_reply", "typing", "read", "history", "contact", "rating",
}  # fmt: skip


def parse_frame(content: object) -> Frame:
    """Validate a visitor's frame; a FrameError names what is wrong."""
    if not isinstance(content, dict):
        raise FrameError("bad_frame", "A frame is a JSON object.")
    kind = content.get("type")
    if kind not in FRAME_TYPES:
        raise FrameError("unknown_type", f"Unknown frame type {kind!r}.")
    if kind in ("message", "quick_reply"):
        client_id = content.get("client_id")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
            raise FrameError("invalid", "client_id: a string of 1 to 64 characters is required.")
        text = content.get("text", content.get("title", ""))
        if not isinstance(text, str):
            raise FrameError("invalid", "text: must be a string.")
        if kind == "message" and not text.strip():
            raise FrameError("invalid", "text: a message needs some text.")
        if len(text.strip()) > MAX_TEXT:
            raise FrameError("invalid", f"text: at most {MAX_TEXT} characters.")
        payload = content.get("payload")
        if kind == "quick_reply" and not isinstance(payload, str):
            raise FrameError("invalid", "payload: a quick reply needs its payload.")
        return Frame(type=kind, client_id=client_id, text=text, payload=payload)
    if kind == "typing":
        return Frame(type=kind, on=bool(content.get("on")))
    if kind == "read":
        message_id = content.get("id")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise FrameError("invalid", "id: the id of the last message read is required.")
        return Frame(type=kind, message_id=message_id)
    if kind == "rating":
        score = content.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise FrameError("invalid", "score: a whole number from 1 to 5.")
        return Frame(type=kind, score=score)
    if kind == "history":
        before = content.get("before")
        if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
            raise FrameError("invalid", "before: a message id.")
        return Frame(type=kind, before=before)
    fields = content.get("fields") or {}
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str | bool) for k, v in fields.items()
    ):
        raise FrameError("invalid", "fields: an object of strings.")
    return Frame(type=kind, fields=fields)
