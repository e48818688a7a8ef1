"""Trello's webhook deliveries: verify the signature and parse the action (pure, no database).

Trello signs each delivery in ``X-Trello-Webhook``: the base64 of an HMAC-SHA1, keyed
with the application's secret, of the raw request body followed by the callback URL
exactly as it was given when the webhook was created.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

SIGNATURE_HEADER = "X-Trello-Webhook"


class Refused(Exception):
    """Not a delivery from Trello: answer ``status`` with ``code``, and write nothing."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def signature(secret: str, body: bytes, callback_url: str) -> str:
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(*, secret: str, body: bytes, callback_url: str, header: str | None) -> None:
    """Raise Refused unless ``header`` is Trello's signature of ``body`` for the URL."""
    if not secret:
        raise Refused(
            "Trello webhooks are off: TRELLO_SECRET is not set.", status=403, code="trello_off"
        )
    if not header:
        raise Refused(
            f"The {SIGNATURE_HEADER} header is missing.", status=401, code="missing_signature"
        )
    expected = signature(secret, body, callback_url)
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise Refused(
            "The signature does not match the body.", status=403, code="invalid_signature"
        )


@dataclass(frozen=True)
class CardMoved:
    action_id: str
    card_id: str
    list_before_id: str
    list_after_id: str
    list_after_name: str
    date: datetime | None = None  # when the person moved it (Trello's clock)


@dataclass(frozen=True)
class CardCommented:
    action_id: str
    card_id: str
    text: str
    author_name: str


class Malformed(ValueError):
    pass


def parse(body: bytes) -> CardMoved | CardCommented | None:
    """The action the mirror acts on, or None for every other kind of action."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Malformed("The body is not JSON.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
        raise Malformed("The body has no action.")
    action = payload["action"]
    data = action.get("data") or {}
    card = data.get("card") or {}
    kind = action.get("type")
    if not isinstance(card, dict) or not card.get("id") or not action.get("id"):
        return None
    if kind == "updateCard" and data.get("listAfter") and data.get("listBefore"):
        return CardMoved(
            action_id=str(action["id"]),
            card_id=str(card["id"]),
            list_before_id=str(data["listBefore"].get("id", "")),
            list_after_id=str(data["listAfter"].get("id", "")),
            list_after_name=str(data["listAfter"].get("name", "")),
            date=_date(action.get("date")),
        )
    if kind == "commentCard" and isinstance(data.get("text"), str):
        member = action.get("memberCreator") or {}
        return CardCommented(
            action_id=str(action["id"]),
            card_id=str(card["id"]),
            text=data["text"],
            author_name=str(member.get("fullName") or member.get("username") or "Trello"),
        )
    return None


def _date(value) -> datetime | None:
    """An action's ``date`` (ISO 8601, ``Z`` for UTC), or None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
