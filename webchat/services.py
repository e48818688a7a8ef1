"""The web chat's rules: visitor session tokens, allowed origins, frame validation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.http.request import validate_host

from chattonic.core import inputs
from conversations.receive import MAX_TEXT

TOKEN_SALT = "chattonic.webchat.visitor"  # noqa: S105 (a salt, not a secret)
# A frame holds one message of at most MAX_TEXT characters, whatever their encoding
# (4 bytes a character in UTF-8) plus the frame's other fields.
MAX_FRAME_BYTES = 20 * 1024
MAX_CLIENT_ID = 64


def visitor_token(bot_id: int, visitor_id: str) -> str:
    """A signed, opaque token that names the visitor of one bot."""
    return signing.dumps({"b": bot_id, "v": visitor_id}, salt=TOKEN_SALT, compress=True)


def visitor_from_token(token: str, bot_id: int) -> str | None:
    """The visitor id inside a token signed for this bot, or None."""
    claim = visitor_claim(token)
    return claim[1] if claim is not None and claim[0] == bot_id else None


def visitor_claim(token: str) -> tuple[int, str] | None:
    """(bot id, visitor id) of a well-signed token, for any bot; None for a bad token. The
    caller checks the bot (``visitor_from_token``)."""
    if not token:
        return None
    try:
        data = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    bot, visitor = data.get("b"), data.get("v")
    if type(bot) is not int or not isinstance(visitor, str) or len(visitor) != 32:
        return None
    return bot, visitor


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
    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = {field: [message]} if field else {}


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
MAX_PAYLOAD = 1000
MAX_FIELDS = 50  # the pre-chat or away form's fields
MAX_FIELD_VALUE = 1000


def parse_frame(content: object) -> Frame:
    """Validate a visitor's frame (through ``chattonic.core.inputs``: texts cleaned, ids and
    numbers bounded); a FrameError names what is wrong, and the field."""
    if not isinstance(content, dict):
        raise FrameError("bad_frame", "A frame is a JSON object.")
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in FRAME_TYPES:
        types = ", ".join(sorted(FRAME_TYPES))
        raise FrameError("unknown_type", f"Unknown frame type; one of {types}.", field="type")
    try:
        return _FRAMES[kind](kind, content)
    except inputs.InputError as exc:
        raise FrameError("invalid", exc.message, field=exc.field) from None


def _message(kind: str, content: dict) -> Frame:
    client_id = content.get("client_id")
    if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID:
        raise inputs.InputError("client_id", "A string of 1 to 64 characters is required.")
    client_id = inputs.identifier(client_id, field="client_id", max_length=MAX_CLIENT_ID)
    name = "text" if "text" in content else "title"
    text = inputs.text(content.get(name), field=name)
    stripped = text.strip()
    if kind == "message" and not stripped:
        raise inputs.InputError("text", "A message needs some text.")
    if len(stripped) > MAX_TEXT:
        raise inputs.InputError("text", f"At most {MAX_TEXT} characters.")
    payload = content.get("payload")
    if kind == "quick_reply" or payload is not None:
        if not isinstance(payload, str):
            raise inputs.InputError("payload", "A quick reply needs its payload (a string).")
        payload = inputs.text(payload, field="payload", max_length=MAX_PAYLOAD)
    return Frame(type=kind, client_id=client_id, text=text, payload=payload)


def _typing(kind: str, content: dict) -> Frame:
    on = content.get("on", False)
    if not isinstance(on, bool):
        raise inputs.InputError("on", "true or false.")
    return Frame(type=kind, on=on)


def _read(kind: str, content: dict) -> Frame:
    message_id = content.get("id")
    if isinstance(message_id, str) or message_id is None:
        raise inputs.InputError("id", "The id of the last message read is required.")
    return Frame(type=kind, message_id=inputs.key(message_id, field="id"))


def _rating(kind: str, content: dict) -> Frame:
    score = content.get("score")
    if isinstance(score, str):
        raise inputs.InputError("score", "A whole number from 1 to 5.")
    return Frame(type=kind, score=inputs.integer(score, field="score", minimum=1, maximum=5))


def _history(kind: str, content: dict) -> Frame:
    before = content.get("before")
    if isinstance(before, str):
        raise inputs.InputError("before", "A message id.")
    return Frame(type=kind, before=None if before is None else inputs.key(before, field="before"))


def _form(kind: str, content: dict) -> Frame:
    """``start`` (the pre-chat form) and ``contact`` (the away form): their fields."""
    fields = content.get("fields") or {}
    if not isinstance(fields, dict) or len(fields) > MAX_FIELDS:
        raise inputs.InputError("fields", f"An object of at most {MAX_FIELDS} strings.")
    clean: dict[str, str | bool] = {}
    for key, value in fields.items():
        name = inputs.text(key, field="fields", max_length=100)
        if isinstance(value, bool):
            clean[name] = value
        elif isinstance(value, str):
            clean[name] = inputs.text(value, field=f"fields.{name}", max_length=MAX_FIELD_VALUE)
        else:
            raise inputs.InputError(f"fields.{name}", "A string (or true or false).")
    return Frame(type=kind, fields=clean)


_FRAMES = {
    "message": _message,
    "quick_reply": _message,
    "typing": _typing,
    "read": _read,
    "rating": _rating,
    "history": _history,
    "start": _form,
    "contact": _form,
}
