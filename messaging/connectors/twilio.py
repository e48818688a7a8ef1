"""Twilio Programmable Messaging: SMS/MMS, and WhatsApp through Twilio.

In: ``application/x-www-form-urlencoded`` POSTs, both for incoming messages (``MessageSid``,
``From``, ``To``, ``Body``, ``NumMedia``, ``MediaUrl0``...) and for the status callbacks of
messages we sent (``MessageSid``, ``MessageStatus``, ``ErrorCode``). Each carries
``X-Twilio-Signature``: base64 of the HMAC-SHA1, keyed with the auth token, of the full URL
Twilio called followed by every POST parameter's name and value, sorted by name. Behind a
proxy the view must rebuild that URL from the configured public base URL.
Out: ``POST {TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with basic auth.

Credentials: ``account_sid``, ``auth_token``, ``from_number`` (E.164, or ``whatsapp:+...``
for WhatsApp); optional ``messaging_service_sid`` (sends through a Messaging Service
instead of one number), ``sender_mps`` (the sender's messages per second: 1 for a US long
code by default, 80 for a WhatsApp sender) and ``webhook_shared_key`` (when a Twilio
Webhooks Rule signs with a SharedKey and announces it in
``X-Twilio-Webhooks-Signature-Settings``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from chattonic.core import inputs

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
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    PermanentSendError,
    SendResult,
    StatusUpdate,
    VerificationFailed,
    WebhookRequest,
    constant_time_equals,
    decode_body,
    now,
    per_second_problem,
    truncate,
    with_numbered_options,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
ALGORITHMS = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
BODY_LIMIT = 1600
# Statuses of messages we sent; "received"/"receiving" belong to incoming messages.
STATUS_MAP = {
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "failed": FAILED,
    "undelivered": FAILED,
    "canceled": FAILED,
}
PENDING_STATUSES = frozenset({"accepted", "scheduled", "queued", "sending", "partially_delivered"})
RETRYABLE_CODES = frozenset({20429, 20500, 20503})
SMS_MPS = 1  # a US long code sends about one segment per second
WHATSAPP_MPS = 80  # a WhatsApp sender's default throughput through Twilio
VCARD_TYPES = ("text/vcard", "text/x-vcard", "text/directory")
MAX_MEDIA = 10  # Twilio's limit of media in one message
MAX_FIELDS = 200  # parameters of one request (Twilio sends a few dozen)


class TwilioConnector(Connector):
    kind = "twilio"
    display_name = "Twilio (SMS and WhatsApp)"
    required_credentials = ("account_sid", "auth_token", "from_number")
    optional_credentials = ("messaging_service_sid", "sender_mps", "webhook_shared_key")
    secret_credentials = ("auth_token", "webhook_shared_key")

    def credential_problems(self, credentials):
        mps = credentials.get("sender_mps")
        problem = per_second_problem(mps) if mps else None
        return {"sender_mps": problem} if problem else {}

    api_base_setting = "TWILIO_API_BASE"
    reports_reference = True  # the status callback URL carries ?ref=<our id>

    # --- in ----------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest, credentials: dict) -> None:
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise VerificationFailed(
                f"The {SIGNATURE_HEADER} header is missing.", status=401, code="missing_signature"
            )
        algorithm, secret = "HMAC_SHA1", credentials.get("auth_token") or ""
        signature_settings = request.header(SIGNATURE_SETTINGS_HEADER)
        if signature_settings:
            algorithm = _settings_algorithm(signature_settings)
            secret = credentials.get("webhook_shared_key") or ""
            if algorithm not in ALGORITHMS:
                raise VerificationFailed(f"Unsupported signature algorithm {algorithm!r}.")
        if not secret:
            raise VerificationFailed("The channel has no key to check the signature with.")
        params = signed_params(request)
        body_hash = parse_qs(urlsplit(request.url).query).get("bodySHA256")
        if body_hash:  # a JSON webhook: the URL carries the body's hash, the body is not signed
            if not constant_time_equals(hashlib.sha256(request.body).hexdigest(), body_hash[0]):
                raise VerificationFailed("The body does not match its bodySHA256.")
            params = []
        # Like Twilio's own validator: the URL as called, with and without its default port.
        valid = False
        for url in _url_variants(request.url):
            expected = compute_signature(secret, url, params, algorithm)
            valid |= constant_time_equals(expected, signature.strip())
        if not valid:
            raise VerificationFailed("The signature does not match the URL and parameters.")

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        params = _params(request)
        sid = params.get("MessageSid") or params.get("SmsSid") or params.get("SmsMessageSid")
        if not sid:
            raise MalformedPayload("Expected a MessageSid parameter.", field="MessageSid")
        sid = _identifier(sid, "MessageSid")
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        if status in STATUS_MAP:
            error = None
            if params.get("ErrorCode") or status in ("failed", "undelivered", "canceled"):
                error = " ".join(
                    part
                    for part in (params.get("ErrorCode"), params.get("ErrorMessage") or status)
                    if part
                )[:2000]
            return ParsedWebhook(
                statuses=[
                    StatusUpdate(
                        external_id=sid,
                        status=STATUS_MAP[status],
                        timestamp=now(),  # Twilio's callbacks carry no time of the change
                        error=error,
                        recipient_id=_identifier(params["To"], "To") if params.get("To") else None,
                        reference=_identifier(ref, "ref")
                        if (ref := request.query.get("ref"))
                        else None,
                    )
                ]
            )
        if status in PENDING_STATUSES:
            return ParsedWebhook()  # not yet a delivery state
        sender = params.get("From")
        if not sender:
            raise MalformedPayload("An incoming message needs a From parameter.", field="From")
        sender = _identifier(sender, "From")
        kind, text, payload, data = _content(params)
        for key in ("To", "WaId", "AccountSid", "MessagingServiceSid", "NumSegments"):
            if params.get(key):
                data.setdefault("twilio", {})[key] = params[key]
        return ParsedWebhook(
            messages=[
                InboundMessage(
                    external_id=sid,
                    sender_id=sender,
                    sender_name=inputs.optional_text(
                        params.get("ProfileName") or None, field="ProfileName", max_length=200
                    ),
                    kind=kind,
                    text=text,
                    payload=payload,
                    data=data,
                    timestamp=now(),  # Twilio's message webhooks carry no timestamp
                )
            ]
        )

    # --- out ---------------------------------------------------------------------------------

    def render(
        self,
        recipient_id: str,
        message: OutboundMessage,
        credentials: dict,
        callback_url: str | None = None,
    ) -> list[tuple[str, str]]:
        """The form parameters of ``POST .../Messages.json`` for ``message``. Quick replies
        become numbered options: native buttons need pre-approved Content templates."""
        sender = str(credentials.get("from_number") or "")
        to = recipient_id
        if sender.startswith("whatsapp:") and not to.startswith("whatsapp:"):
            to = f"whatsapp:{to}"
        params = [("To", to)]
        if credentials.get("messaging_service_sid"):
            params.append(("MessagingServiceSid", str(credentials["messaging_service_sid"])))
        else:
            params.append(("From", sender))
        text = with_numbered_options(message.text, message.quick_replies)
        if text:
            params.append(("Body", truncate(text, BODY_LIMIT)))
        if message.media:
            params.append(("MediaUrl", message.media["url"]))
        if not text and not message.media:
            raise PermanentSendError("Nothing to send.", platform_code="empty_message")
        if callback_url:
            if message.reference:
                # Twilio calls this very URL (signed with it) for every status: the ref
                # settles a send whose answer was lost.
                sep = "&" if "?" in callback_url else "?"
                callback_url = f"{callback_url}{sep}{urlencode({'ref': message.reference})}"
            params.append(("StatusCallback", callback_url))
        return params

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
        account = self._credential(credentials, "account_sid")
        token = self._credential(credentials, "auth_token")
        if not credentials.get("messaging_service_sid"):
            self._credential(credentials, "from_number")
        params = self.render(recipient_id, message, credentials, callback_url)
        response = self._request(
            session,
            "POST",
            f"{self.api_base}/2010-04-01/Accounts/{account}/Messages.json",
            data=params,
            auth=(account, token),
            timeout=timeout,
        )
        body = decode_body(response)
        if response.ok and body.get("sid"):
            return SendResult(str(body["sid"]), response.status_code, body)
        if response.ok:
            raise PermanentSendError(
                "Twilio answered without a message sid.",
                status_code=response.status_code,
                response=body,
            )
        code = body.get("code")
        message_text = body.get("message") or response.reason or f"HTTP {response.status_code}"
        reason = f"Twilio refused the message: {message_text}" + (f" ({code})" if code else "")
        raise self._http_error(
            response,
            body,
            reason=reason,
            platform_code=str(code) if code else None,
            retryable=(
                response.status_code == 429
                or response.status_code >= 500
                or _int(code) in RETRYABLE_CODES
            ),
        )

    def rate_limits(
        self, credentials: dict, recipient_id: str, message: OutboundMessage | None = None
    ) -> list[tuple[str, int, float]]:
        sender = str(credentials.get("messaging_service_sid") or credentials.get("from_number"))
        default = WHATSAPP_MPS if sender.startswith("whatsapp:") else SMS_MPS
        try:
            mps = int(credentials.get("sender_mps") or default)
        except (TypeError, ValueError):
            mps = default
        return [(f"twilio:sender:{sender}", max(1, mps), 1.0)]


# --- signatures ----------------------------------------------------------------------------


def compute_signature(
    secret: str, url: str, params: Iterable[tuple[str, str]], algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's signature: the URL, then each parameter name followed by its values, names
    sorted and each name's distinct values sorted, HMAC'd with ``secret`` and base64'd."""
    values: dict[str, set[str]] = defaultdict(set)
    for name, value in params:
        values[name].add(value)
    signed = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(secret.encode(), signed.encode(), ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode()


def signed_params(request: WebhookRequest) -> list[tuple[str, str]]:
    """Every POST parameter as (name, value) pairs, repeated names included."""
    if request.method.upper() != "POST":
        return []
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if request.body and content_type in ("", "application/x-www-form-urlencoded"):
        try:
            return parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise VerificationFailed("The body is not UTF-8 form data.") from None
    if request.form is not None and not request.body:
        return [(str(k), str(v)) for k, v in request.form.items()]
    return []


def _settings_algorithm(header: str) -> str:
    for part in header.split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        return [url, urlunsplit(parts._replace(netloc=_netloc(parts, host)))]
    port = 443 if parts.scheme == "https" else 80
    return [url, urlunsplit(parts._replace(netloc=_netloc(parts, f"{host}:{port}")))]


def _netloc(parts, host_and_port: str) -> str:
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{host_and_port}" if userinfo else host_and_port


# --- parsing helpers -----------------------------------------------------------------------


def _params(request: WebhookRequest) -> dict[str, str]:
    """The form's parameters (the first of repeated names), each cleaned as text
    (``chattonic.core.inputs``: NUL dropped, NFC)."""
    if request.form is not None:
        return {
            inputs.clean_text(str(k)): inputs.clean_text(str(v)) for k, v in request.form.items()
        }
    try:
        pairs = parse_qsl(
            request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise MalformedPayload("The body is not UTF-8 form data.") from None
    except ValueError:
        raise MalformedPayload(f"At most {MAX_FIELDS} parameters.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(inputs.clean_text(name), inputs.clean_text(value))
    return params


def _identifier(value: str, field: str) -> str:
    try:
        return inputs.identifier(value, field=field)
    except inputs.InputError as exc:
        raise MalformedPayload(exc.message, field=field) from None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _content(params: dict[str, str]) -> tuple[str, str, str | None, dict]:
    body = params.get("Body", "")
    message_type = (params.get("MessageType") or "").lower()
    if params.get("ButtonPayload") or params.get("ButtonText"):
        title = params.get("ButtonText") or body
        return BUTTON, title, params.get("ButtonPayload") or title, {"reply_type": "button"}
    if params.get("ListId"):
        title = params.get("ListTitle") or body
        return BUTTON, title, params["ListId"], {"reply_type": "list"}
    if params.get("Latitude") and params.get("Longitude"):
        data = {"latitude": _float(params["Latitude"]), "longitude": _float(params["Longitude"])}
        if params.get("Label"):
            data["name"] = params["Label"]
        if params.get("Address"):
            data["address"] = params["Address"]
        return LOCATION, "", None, data
    media = []
    count = params.get("NumMedia") or "0"
    try:
        count = inputs.integer(count, field="NumMedia", minimum=0, maximum=MAX_MEDIA)
    except inputs.InputError as exc:
        raise MalformedPayload(exc.message, field="NumMedia") from None
    for index in range(count):
        url = params.get(f"MediaUrl{index}")
        if url:
            media.append({"url": url, "mime_type": params.get(f"MediaContentType{index}")})
    if media:
        if all((m["mime_type"] or "").lower() in VCARD_TYPES for m in media):
            return CONTACTS, body, None, {"contacts": media}
        first = media[0]
        data = {"media_type": (first["mime_type"] or "").split("/")[0] or "file", **first}
        if len(media) > 1:
            data["attachments"] = media
        return MEDIA, body, None, data
    if message_type and message_type != "text":
        return UNSUPPORTED, body, None, {"type": message_type, "raw": dict(params)}
    return TEXT, body, None, {}


def _float(value: str) -> float | str:
    """A coordinate as a number when it is a finite one; else the text as it came."""
    try:
        number = float(value) if len(value) <= 40 else math.nan
    except ValueError:
        return value
    return number if math.isfinite(number) else value
