"""The interface every messaging-platform connector shares, and the helpers they use.

A connector is pure and stateless: it verifies a webhook request, parses it into
platform-neutral events, and sends one outbound message with the guarded ``requests``
session it is given (``chattonic.core.outbound.session()``, which nothing may skip). It never
touches the database or Django's request objects; the webhook view builds a
:class:`WebhookRequest`, the delivery task calls :meth:`Connector.send`.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import hmac
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from requests.structures import CaseInsensitiveDict

from chattonic.core import inputs
from chattonic.core.inputs import InputError
from chattonic.core.outbound import REFUSED, HostUnresolved, OutboundRefused, OutboundSession
from chattonic.core.redact import redact

logger = logging.getLogger(__name__)

# Inbound message kinds.
TEXT = "text"
BUTTON = "button"
MEDIA = "media"
LOCATION = "location"
CONTACTS = "contacts"
UNSUPPORTED = "unsupported"
MESSAGE_KINDS = (TEXT, BUTTON, MEDIA, LOCATION, CONTACTS, UNSUPPORTED)

# Delivery statuses, in the order a message moves through them ("failed" can come at any time).
SENT = "sent"
DELIVERED = "delivered"
READ = "read"
FAILED = "failed"
STATUSES = (SENT, DELIVERED, READ, FAILED)

# Media kinds an OutboundMessage may carry.
MEDIA_KINDS = ("image", "video", "audio", "file", "sticker")


# --- Errors --------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base class of everything a connector raises on purpose."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class VerificationFailed(ConnectorError):
    """The request is not from the platform: answer ``status`` (401 or 403) and write nothing."""

    def __init__(self, message: str, *, status: int = 403, code: str = "invalid_signature"):
        super().__init__(message)
        self.status = status
        self.code = code


class MalformedPayload(ConnectorError):
    """The request is authentic but its body is not what the platform documents (answer 400).
    ``field`` names the part of the body at fault, when one does."""

    code = "malformed_payload"
    status = 400

    def __init__(self, message: str, *, field: str = "body"):
        super().__init__(message)
        self.field = field


class SendError(ConnectorError):
    """An outbound send failed; ``response`` is the platform's decoded answer, if any."""

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        platform_code: str | None = None,
        response: dict | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.platform_code = platform_code
        self.response = response or {}


class RetryableSendError(SendError):
    """Try again later: 429, 5xx, time-outs, connection errors, the platforms' throttling codes.

    ``retry_after`` is the platform's hint in seconds (``Retry-After``, Telegram's
    ``parameters.retry_after``) or None. ``maybe_sent`` is True when the request may have
    reached the platform (a read time-out, a 5xx): a retry could then deliver twice.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        platform_code: str | None = None,
        response: dict | None = None,
        maybe_sent: bool = False,
    ):
        super().__init__(
            reason, status_code=status_code, platform_code=platform_code, response=response
        )
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class PermanentSendError(SendError):
    """Retrying will not help (bad token, unknown recipient, invalid message): mark it failed."""


# --- Data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookRequest:
    """What the webhook view hands over: the raw request, never a Django object.

    ``url`` is the full public URL the platform called (behind a proxy, rebuilt from the
    configured public base URL with :func:`public_url`). ``headers`` is read case-insensitively.
    ``form`` is the parsed POST body for ``application/x-www-form-urlencoded`` requests.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None

    def __post_init__(self):
        object.__setattr__(self, "headers", CaseInsensitiveDict(self.headers or {}))
        object.__setattr__(self, "query", dict(self.query or {}))
        if isinstance(self.body, str):
            object.__setattr__(self, "body", self.body.encode())

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        """The body decoded as JSON (``chattonic.core.inputs``: bounded depth, every string
        cleaned of what no column can store), or MalformedPayload."""
        try:
            return inputs.scrubbed(inputs.loads(self.body, surrogates=True))
        except InputError as exc:
            raise MalformedPayload(f"The body is not JSON we take: {exc.reason}") from None


@dataclass(frozen=True)
class InboundMessage:
    """One message a platform user sent, in neutral form.

    ``external_id`` is the platform's message id (the dedup key); ``sender_id`` is whom to
    reply to; ``kind`` is one of :data:`MESSAGE_KINDS`; ``text`` is the text, caption or
    button title ("" when none); ``payload`` the button's payload; ``data`` holds media
    metadata, a location, contacts, or for "unsupported" the raw ``type`` and message.
    """

    external_id: str
    sender_id: str
    sender_name: str | None
    kind: str
    text: str
    payload: str | None
    data: dict
    timestamp: datetime


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery status of a message we sent: "sent", "delivered", "read" or "failed".

    Messenger sometimes reports only a watermark ("everything sent to this person up to this
    time was read"): then ``external_id`` is "" and ``up_to`` holds the watermark.
    ``reference`` is our own id of the message (``OutboundMessage.reference``) when the
    platform hands it back with the status (WhatsApp's ``biz_opaque_callback_data``,
    Messenger's echo ``metadata``, the ``ref`` of Twilio's status callback URL): it settles a
    send whose answer we never read.
    """

    external_id: str
    status: str
    timestamp: datetime
    error: str | None = None
    recipient_id: str | None = None
    up_to: datetime | None = None
    reference: str | None = None


@dataclass(frozen=True)
class Refusal:
    """One event of a webhook that could not be taken: where it is in the body (``event``,
    e.g. ``entry.0.changes.0.value.messages.1``), the field at fault and why."""

    event: str
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"event": self.event, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ParsedWebhook:
    """Every message and status of a request, and the events refused one by one (a bad
    event of a batch never costs the others)."""

    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class Events:
    """What a connector's parse collects, event by event: ``with events.each(path):``
    around one event turns its refusal (MalformedPayload, InputError, or a value of another
    shape than the platform documents) into a :class:`Refusal`, and parsing goes on."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.statuses: list[StatusUpdate] = []
        self.refused: list[Refusal] = []

    @contextlib.contextmanager
    def each(self, where: str) -> Iterator[None]:
        try:
            yield
        except InputError as exc:
            self.refused.append(Refusal(where, f"{where}.{exc.field}", exc.reason))
        except MalformedPayload as exc:
            at = where if exc.field == "body" else f"{where}.{exc.field}"
            self.refused.append(Refusal(where, at, exc.message))
        except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:
            # A value of another type than documented (a number where an object belongs...).
            logger.info("webhook event %s not readable: %r", where, exc)
            self.refused.append(Refusal(where, where, "Not in the platform's documented form."))

    def parsed(self) -> ParsedWebhook:
        return ParsedWebhook(messages=self.messages, statuses=self.statuses, refused=self.refused)


@dataclass(frozen=True)
class OutboundMessage:
    """One reply to send. ``quick_replies`` is ``[{"title", "payload"}]``; ``media`` is
    ``{"url", "kind"}`` with a kind of :data:`MEDIA_KINDS`; ``reference`` is our own id of the
    message (the API channel sends it as the event id so that tenants can drop repeats);
    ``sender`` is ``bot``, ``agent`` or ``system``, with the agent's name in ``agent``."""

    text: str = ""
    quick_replies: list[dict] = field(default_factory=list)
    media: dict | None = None
    reference: str | None = None
    sender: str = "bot"
    agent: str | None = None


@dataclass(frozen=True)
class SendResult:
    external_id: str
    status_code: int
    response: dict


# --- Helpers -------------------------------------------------------------------------------


def public_url(public_base_url: str, full_path: str) -> str:
    """The URL a platform called, rebuilt from the configured public base URL and the
    request's path with its query string (``request.get_full_path()``)."""
    return public_base_url.rstrip("/") + "/" + full_path.lstrip("/")


def per_second_problem(value: Any, *, most: int | None = None) -> str | None:
    """Why a credential of messages per second is not a whole number from 1 (to ``most``),
    or None. (Stored, words or 0 would be replaced by another rate without a word.)"""
    text = str(value).strip()
    number = int(text) if text.isdigit() else 0
    if number < 1 or (most is not None and number > most):
        upper = f" to {most:,}" if most is not None else " or more"
        return f"A whole number of messages per second, 1{upper}."
    return None


def hmac_hex(secret: str | bytes, message: bytes, digestmod=hashlib.sha256) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, digestmod).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def from_unix(value: Any, *, millis: bool = False, field: str = "timestamp") -> datetime:
    """An aware UTC datetime from a Unix timestamp (seconds, or milliseconds), from 1970 to a
    day ahead of our clock; InputError naming ``field`` otherwise."""
    return inputs.timestamp(value, field=field, millis=millis)


def as_dict(value: Any) -> dict:
    """An optional object of a payload: {} when it is missing or of another type."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any, *, field: str) -> list:
    """An optional list of a payload: [] when missing; InputError when of another type."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(field, "Must be a list.")
    return value


def now() -> datetime:
    return datetime.now(tz=UTC)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: either delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


def decode_body(response: requests.Response) -> dict:
    """The response body as a dict: JSON when it is JSON, else ``{"raw": <text>}``."""
    try:
        body = response.json()
    except ValueError:
        return {"raw": response.text[:2000]} if response.content else {}
    return body if isinstance(body, dict) else {"result": body}


def numbered_options(quick_replies: list[dict]) -> str:
    """Quick replies as numbered lines, for platforms without buttons (SMS)."""
    return "\n".join(f"{i}. {reply['title']}" for i, reply in enumerate(quick_replies, 1))


def with_numbered_options(text: str, quick_replies: list[dict]) -> str:
    if not quick_replies:
        return text
    options = numbered_options(quick_replies)
    return f"{text}\n\n{options}" if text else options


def resolve_numbered_reply(text: str, quick_replies: list[dict]) -> dict | None:
    """The quick reply a user chose by answering with its number or its title, or None.

    For channels that render quick replies as numbered options (SMS): the bot engine can map
    "2" (or "2.", or the title itself) back to the offered reply and its payload.
    """
    answer = (text or "").strip().rstrip(".").strip()
    if answer.isdigit():
        index = int(answer)
        if 1 <= index <= len(quick_replies):
            return quick_replies[index - 1]
        return None
    folded = answer.casefold()
    for reply in quick_replies:
        if str(reply.get("title", "")).strip().casefold() == folded and folded:
            return reply
    return None


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def short_hash(value: str) -> str:
    """A short, stable, non-reversible id for a secret (rate-limit keys must not hold tokens)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


# --- The connector -------------------------------------------------------------------------


class Connector:
    """One instance per platform, stateless; subclasses implement the platform's contract."""

    kind: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    # Credential keys the channel must hold, and the ones it may hold.
    required_credentials: ClassVar[tuple[str, ...]] = ()
    optional_credentials: ClassVar[tuple[str, ...]] = ()
    # The credentials that are secrets: masked in every error text that is stored or logged.
    secret_credentials: ClassVar[tuple[str, ...]] = ()
    # The credentials that are URLs we call (checked when saved, and guarded when called).
    url_credentials: ClassVar[tuple[str, ...]] = ()
    # The setting holding the platform's API base URL (a test points it at a local fake).
    api_base_setting: ClassVar[str] = ""
    # True when the platform reports a sent message's status with our reference on it, so that
    # a send whose answer was lost (a time-out, a worker killed mid-request) can be settled
    # from the status webhook instead of sent again blind (messaging/delivery.py).
    reports_reference: ClassVar[bool] = False
    # True when we point the platform at the channel's webhook ourselves, through its API
    # (``set_webhook``), when the channel is saved; elsewhere the tenant pastes the URL into
    # the platform's console.
    registers_webhook: ClassVar[bool] = False

    def __init__(self, api_base: str | None = None):
        self._api_base = api_base

    @property
    def api_base(self) -> str:
        """The API base URL: the one given to the constructor, else the setting's."""
        return (self._api_base or getattr(settings, self.api_base_setting)).rstrip("/")

    def missing_credentials(self, credentials: Mapping[str, Any]) -> list[str]:
        return [key for key in self.required_credentials if not credentials.get(key)]

    def credential_problems(self, credentials: Mapping[str, Any]) -> dict[str, str]:
        """What is wrong with the given credentials' values, by key (checked when saved)."""
        return {}

    def secrets(self, credentials: Mapping[str, Any]) -> list[str]:
        """The channel's secret values, for :func:`chattonic.core.redact.redact`."""
        return [str(credentials[k]) for k in self.secret_credentials if credentials.get(k)]

    def handshake(self, request: WebhookRequest, credentials: dict) -> str | None:
        """Answer a subscription handshake (a GET): the challenge to echo, or raise
        VerificationFailed. None when the platform has no handshake."""
        return None

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        """Raise VerificationFailed unless the request comes from the platform."""
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        """Every message and status of the request; raise MalformedPayload."""
        raise NotImplementedError

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
        """Send one message; raise RetryableSendError or PermanentSendError.

        ``callback_url`` is the channel's public webhook URL, for platforms that need it per
        message to report statuses (Twilio's StatusCallback); the others ignore it.
        """
        raise NotImplementedError

    def rate_limits(
        self, credentials: dict, recipient_id: str, message: OutboundMessage | None = None
    ) -> list[tuple[str, int, float]]:
        """(bucket key, count, per seconds) limits a sender must respect for this send."""
        return []

    # --- helpers for subclasses --------------------------------------------------------------

    def _credential(self, credentials: Mapping[str, Any], key: str) -> str:
        value = credentials.get(key)
        if not value:
            raise PermanentSendError(
                f"The {self.display_name or self.kind} channel has no {key!r} credential.",
                platform_code="missing_credentials",
            )
        return str(value)

    @staticmethod
    def _request(
        session: requests.Session, method: str, url: str, *, timeout: float, **kwargs
    ) -> requests.Response:
        """``session.request`` with network failures turned into RetryableSendError, and a
        refused address into PermanentSendError. The texts keep no secret of the URL (a
        Telegram token is in its path), and the network error is not chained to them."""
        if not isinstance(session, OutboundSession):  # no send may skip the guard
            raise TypeError("Connectors send with chattonic.core.outbound.session().")
        try:
            return session.request(method, url, timeout=timeout, **kwargs)
        except OutboundRefused:
            raise PermanentSendError(REFUSED, platform_code="refused_address") from None
        except requests.ConnectTimeout as exc:
            raise RetryableSendError(redact(f"Connection timed out: {exc}")) from None
        except requests.ReadTimeout as exc:
            raise RetryableSendError(
                redact(f"No answer within {timeout} s: {exc}"), maybe_sent=True
            ) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise RetryableSendError(
                redact(f"Connection failed: {exc}"), maybe_sent=not _never_connected(exc)
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise PermanentSendError(
                redact(f"Invalid URL: {exc}"), platform_code="invalid_url"
            ) from None
        except requests.RequestException as exc:
            raise RetryableSendError(redact(f"Request failed: {exc}"), maybe_sent=True) from None

    @staticmethod
    def _http_error(
        response: requests.Response,
        body: dict,
        *,
        reason: str,
        platform_code: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> SendError:
        """The error for a failed response: retryable on 429, 5xx or when ``retryable``."""
        status = response.status_code
        if retryable is None:
            retryable = status == 429 or status >= 500
        if retryable:
            hint = parse_retry_after(response.headers.get("Retry-After"))
            return RetryableSendError(
                reason,
                status_code=status,
                retry_after=hint if hint is not None else retry_after,
                platform_code=platform_code,
                response=body,
                maybe_sent=status >= 500,
            )
        return PermanentSendError(
            reason, status_code=status, platform_code=platform_code, response=body
        )


def _never_connected(exc: Exception) -> bool:
    """True when the connection was never made (refused, unresolvable): nothing was sent."""
    if isinstance(exc, HostUnresolved):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def hostname(url: str) -> str:
    return urlsplit(url).hostname or ""
