"""Fakes of the platforms' send APIs, each following its documented contract: the paths,
the authentication, the success bodies, the error bodies, and builders for the answers a
test scripts (429 with retry hints, 5xx, permanent errors).

``sent`` lists the messages each fake accepted (what a user would have received).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import secrets
import threading
import time
from typing import Any

from .server import Answer, FakeServer, Recorded

GRAPH_VERSION = "v25.0"


class _Sent:
    """Thread-safe record of accepted messages, with the ids the fake gave them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items: list[dict] = []
        self._counter = itertools.count(1)

    def add(self, item: dict) -> int:
        with self._lock:
            number = next(self._counter)
            self._items.append(item)
            return number

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class StatusReporter:
    """Posts the platform's signed status webhooks for the messages a fake accepted, as Meta
    does (a "sent" status for WhatsApp, a message echo for Messenger), to ``url`` once set
    with :meth:`report_to`; ``delay`` seconds after the acceptance, from a thread of its own.
    ``posted`` counts the webhooks our server answered 200."""

    def __init__(self):
        self.url: str | None = None
        self.app_secret = ""
        self.delay = 0.0
        self.posted = 0
        self._lock = threading.Lock()

    def report_to(self, url: str, app_secret: str, *, delay: float = 0.0) -> None:
        self.url, self.app_secret, self.delay = url, app_secret, delay

    def post(self, payload: dict) -> None:
        if not self.url:
            return
        threading.Thread(target=self._post, args=(payload,), daemon=True).start()

    def _post(self, payload: dict) -> None:
        import json

        import requests

        if self.delay:
            time.sleep(self.delay)  # the platform's own pace, not a test's wait
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        for _ in range(20):  # Meta retries a webhook that failed
            try:
                answer = requests.post(
                    self.url,
                    data=body,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                    timeout=10,
                )
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code == 200:
                with self._lock:
                    self.posted += 1
                return
            time.sleep(0.5)


def _bearer(request: Recorded) -> str | None:
    header = request.headers.get("Authorization") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.param("access_token")


# --- Meta: WhatsApp Cloud API and Messenger --------------------------------------------------


def graph_error(
    code: int,
    message: str,
    *,
    status: int = 400,
    details: str | None = None,
    subcode: int | None = None,
    retry_after: float | None = None,
    whatsapp: bool = True,
) -> Answer:
    """A Graph API error answer: ``{"error": {"message", "type", "code", ...}}``."""
    error: dict[str, Any] = {
        "message": f"(#{code}) {message}",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(12),
    }
    if whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or message}
    elif details:
        error["error_data"] = {"details": details}
    if subcode:
        error["error_subcode"] = subcode
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Answer(status, {"error": error}, headers=headers)


class FakeWhatsApp(FakeServer):
    """``POST /{version}/{phone_number_id}/messages`` with ``Authorization: Bearer``."""

    name = "whatsapp"

    def __init__(self, *, access_token: str = "wa-access-token", version: str = GRAPH_VERSION):
        super().__init__()
        self.access_token = access_token
        self.prefix = f"/{version}"
        self.sent = _Sent()
        self.unknown_recipients: set[str] = set()
        self.statuses = StatusReporter()

    # scripted answers
    def rate_limited(self, retry_after: float | None = None) -> Answer:
        return graph_error(
            130429,
            "Rate limit hit",
            details="Cloud API message throughput has been reached.",
            retry_after=retry_after,
        )

    def pair_rate_limited(self) -> Answer:
        return graph_error(
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            details="Message failed to send because there were too many messages sent from "
            "this phone number to the same phone number in a short period of time.",
        )

    def too_many_calls(self, retry_after: float | None = None) -> Answer:
        return graph_error(
            4, "Application request limit reached", status=429, retry_after=retry_after
        )

    def server_error(self, status: int = 500) -> Answer:
        return graph_error(131000, "Something went wrong", status=status)

    def expired_token(self) -> Answer:
        return graph_error(190, "Error validating access token", status=401)

    def undeliverable(self) -> Answer:
        return graph_error(131026, "Message undeliverable")

    def handle(self, request: Recorded) -> Answer:
        match = re.fullmatch(rf"{re.escape(self.prefix)}/([^/]+)/messages", request.path)
        if request.method != "POST" or not match:
            return graph_error(100, "Unsupported request", status=400)
        if _bearer(request) != self.access_token:
            return graph_error(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        body = request.json
        problem = _whatsapp_problem(body) if isinstance(body, dict) else "The body is not JSON."
        if problem:
            return graph_error(131009, "Parameter value is not valid", details=problem)
        if body["to"] in self.unknown_recipients:
            return graph_error(131026, "Message undeliverable")
        number = self.sent.add(body)
        message_id = f"wamid.FAKE{number:06d}{secrets.token_hex(4)}"
        status = {
            "id": message_id,
            "status": "sent",
            "timestamp": str(int(time.time())),
            "recipient_id": re.sub(r"\D", "", body["to"]),
        }
        if body.get("biz_opaque_callback_data"):  # handed back as sent (up to 512 characters)
            status["biz_opaque_callback_data"] = body["biz_opaque_callback_data"]
        self.statuses.post(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "WHATSAPP_BUSINESS_ACCOUNT_ID",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {"phone_number_id": match.group(1)},
                                    "statuses": [status],
                                },
                            }
                        ],
                    }
                ],
            }
        )
        return Answer(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": re.sub(r"\D", "", body["to"])}],
                "messages": [{"id": message_id}],
            },
        )


def _whatsapp_problem(body: dict) -> str | None:
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not body.get("to"):
        return "to is required"
    kind = body.get("type", "text")
    content = body.get(kind)
    if not isinstance(content, dict):
        return f"the {kind} object is required"
    if kind == "text":
        text = content.get("body") or ""
        if not text or len(text) > 4096:
            return "text.body must be 1-4096 characters"
    elif kind in ("image", "video", "audio", "document", "sticker"):
        if not (content.get("link") or content.get("id")):
            return f"{kind}.link or {kind}.id is required"
        if "caption" in content and (
            kind in ("audio", "sticker") or len(content["caption"]) > 1024
        ):
            return f"{kind}.caption is not allowed or too long"
    elif kind == "interactive":
        return _interactive_problem(content)
    elif kind not in ("location", "contacts", "template", "reaction"):
        return f"unknown type {kind}"
    return None


def _interactive_problem(interactive: dict) -> str | None:
    body_text = (interactive.get("body") or {}).get("text") or ""
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not body_text or len(body_text) > 1024:
            return "interactive.body.text must be 1-1024 characters"
        if not 1 <= len(buttons) <= 3:
            return "a reply buttons message has 1-3 buttons"
        ids = [(b.get("reply") or {}).get("id") or "" for b in buttons]
        titles = [(b.get("reply") or {}).get("title") or "" for b in buttons]
        if any(b.get("type") != "reply" for b in buttons):
            return "buttons must be of type reply"
        if any(not 1 <= len(i) <= 256 for i in ids) or len(set(ids)) != len(ids):
            return "button ids must be unique, 1-256 characters"
        if any(not 1 <= len(t) <= 20 for t in titles) or len(set(titles)) != len(titles):
            return "button titles must be unique, 1-20 characters"
        header = interactive.get("header")
        if header and header.get("type") not in ("text", "image", "video", "document"):
            return "unsupported header type"
        return None
    if interactive.get("type") == "list":
        if not body_text or len(body_text) > 4096:
            return "interactive.body.text must be 1-4096 characters"
        if not 1 <= len(action.get("button") or "") <= 20:
            return "action.button must be 1-20 characters"
        sections = action.get("sections") or []
        rows = [row for section in sections for row in section.get("rows") or []]
        if not 1 <= len(sections) <= 10 or not 1 <= len(rows) <= 10:
            return "a list has 1-10 sections and 1-10 rows in all"
        ids = [row.get("id") or "" for row in rows]
        if any(not 1 <= len(i) <= 200 for i in ids) or len(set(ids)) != len(ids):
            return "row ids must be unique, 1-200 characters"
        if any(not 1 <= len(row.get("title") or "") <= 24 for row in rows):
            return "row titles must be 1-24 characters"
        if any(len(row.get("description") or "") > 72 for row in rows):
            return "row descriptions are at most 72 characters"
        if (interactive.get("header") or {}).get("type") not in (None, "text"):
            return "a list header must be text"
        return None
    return f"unsupported interactive type {interactive.get('type')}"


class FakeMessenger(FakeServer):
    """The Send API: ``POST /{version}/me/messages`` with the page access token (as the
    ``access_token`` parameter or a Bearer header)."""

    name = "messenger"

    def __init__(self, *, page_access_token: str = "page-access-token", version=GRAPH_VERSION):
        super().__init__()
        self.page_access_token = page_access_token
        self.prefix = f"/{version}"
        self.sent = _Sent()
        self.statuses = StatusReporter()  # message echoes (the page's message_echoes field)
        self.page_id = "106540352242922"

    def rate_limited(self) -> Answer:
        return graph_error(613, "Calls to this api have exceeded the rate limit.", whatsapp=False)

    def temporary_failure(self) -> Answer:
        return graph_error(
            1200,
            "Temporary send message failure. Please try again later",
            status=500,
            whatsapp=False,
        )

    def user_unavailable(self) -> Answer:
        return graph_error(
            551, "This person isn't available right now.", subcode=1545041, whatsapp=False
        )

    def outside_window(self) -> Answer:
        return graph_error(
            10,
            "This message is sent outside of allowed window.",
            subcode=2018278,
            whatsapp=False,
        )

    def handle(self, request: Recorded) -> Answer:
        if request.method != "POST" or not re.fullmatch(
            rf"{re.escape(self.prefix)}/[^/]+/messages", request.path
        ):
            return graph_error(100, "Unsupported post request", whatsapp=False)
        if _bearer(request) != self.page_access_token:
            return graph_error(190, "Invalid OAuth access token.", status=401, whatsapp=False)
        body = request.json
        problem = _messenger_problem(body) if isinstance(body, dict) else "The body is not JSON."
        if problem:
            return graph_error(100, "Invalid parameter", details=problem, whatsapp=False)
        number = self.sent.add(body)
        mid = f"m_FAKE{number:06d}{secrets.token_hex(4)}"
        echo = {"is_echo": True, "app_id": 1517776481860111, "mid": mid, **body["message"]}
        echo.pop("quick_replies", None)
        now_ms = int(time.time() * 1000)
        self.statuses.post(
            {
                "object": "page",
                "entry": [
                    {
                        "id": self.page_id,
                        "time": now_ms,
                        "messaging": [
                            {
                                "sender": {"id": self.page_id},
                                "recipient": {"id": body["recipient"]["id"]},
                                "timestamp": now_ms,
                                "message": echo,
                            }
                        ],
                    }
                ],
            }
        )
        return Answer(200, {"recipient_id": body["recipient"]["id"], "message_id": mid})


def _messenger_problem(body: dict) -> str | None:
    if not (body.get("recipient") or {}).get("id"):
        return "recipient.id is required"
    message = body.get("message")
    if not isinstance(message, dict):
        return "message is required"
    has_text, has_attachment = "text" in message, "attachment" in message
    if has_text == has_attachment:
        return "message must have text or attachment, not both"
    if has_text and not 1 <= len(message["text"]) <= 2000:
        return "text must be 1-2000 characters"
    if has_attachment:
        attachment = message["attachment"]
        if attachment.get("type") not in ("image", "audio", "video", "file", "template"):
            return "unsupported attachment type"
        if not (attachment.get("payload") or {}).get("url"):
            return "attachment.payload.url is required"
    replies = message.get("quick_replies")
    if replies is not None:
        if not 1 <= len(replies) <= 13:
            return "1-13 quick replies"
        for reply in replies:
            if reply.get("content_type") == "text" and (
                not 1 <= len(reply.get("title") or "") <= 20
                or not 1 <= len(str(reply.get("payload") or "")) <= 1000
            ):
                return "a text quick reply needs a title of 1-20 and a payload of 1-1000"
    return None


# --- Telegram ------------------------------------------------------------------------------


def telegram_error(code: int, description: str, retry_after: int | None = None) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return Answer(code, body)


class FakeTelegram(FakeServer):
    """The Bot API: ``POST /bot<token>/<method>`` with a JSON or form body."""

    name = "telegram"
    SEND_METHODS = {
        "sendmessage": "text",
        "sendphoto": "photo",
        "sendvideo": "video",
        "sendaudio": "audio",
        "senddocument": "document",
        "sendsticker": "sticker",
    }

    def __init__(
        self,
        *,
        bot_token: str = "123456789:AAFakeTokenForTests_abcdefghijkl",
        other_bots: tuple[str, ...] = (),
    ):
        super().__init__()
        self.bot_token = bot_token
        self.bot_tokens = {bot_token, *other_bots}  # the bots this Telegram knows
        self.sent = _Sent()
        self.blocked_chats: set[str] = set()
        self.webhook: dict | None = None

    def flood(self, retry_after: int = 3) -> Answer:
        return telegram_error(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def server_error(self) -> Answer:
        return Answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")

    def chat_not_found(self) -> Answer:
        return telegram_error(400, "Bad Request: chat not found")

    def handle(self, request: Recorded) -> Answer:
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", request.path)
        if not match:
            return telegram_error(404, "Not Found")
        token, method = match.group(1), match.group(2).lower()
        if token not in self.bot_tokens:
            return telegram_error(401, "Unauthorized")
        params = request.json if isinstance(request.json, dict) else request.form
        if method == "getme":
            return Answer(200, {"ok": True, "result": {"id": int(token.split(":")[0])}})
        if method == "setwebhook":
            # Telegram calls HTTPS addresses only (core.telegram.org/bots/api#setwebhook).
            if not str(params.get("url") or "").startswith("https://"):
                return telegram_error(
                    400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
                )
            self.webhook = {**params, "token": token}
            return Answer(200, {"ok": True, "result": True, "description": "Webhook was set"})
        if method == "answercallbackquery":
            if not params.get("callback_query_id"):
                return telegram_error(400, "Bad Request: query is too old or query ID is invalid")
            return Answer(200, {"ok": True, "result": True})
        field = self.SEND_METHODS.get(method)
        if field is None:
            return telegram_error(404, "Not Found")
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            return telegram_error(400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked_chats:
            return telegram_error(403, "Forbidden: bot was blocked by the user")
        problem = _telegram_problem(field, params)
        if problem:
            return telegram_error(400, f"Bad Request: {problem}")
        number = self.sent.add({"method": method, **params})
        result: dict[str, Any] = {
            "message_id": number,
            "date": int(time.time()),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id},
        }
        if field == "text":
            result["text"] = params["text"]
        return Answer(200, {"ok": True, "result": result})


def _telegram_problem(field: str, params: dict) -> str | None:
    if field == "text":
        text = params.get("text") or ""
        if not text:
            return "message text is empty"
        if len(text) > 4096:
            return "message is too long"
    elif not params.get(field):
        return f"there is no {field} in the request"
    if len(params.get("caption") or "") > 1024:
        return "message caption is too long"
    markup = params.get("reply_markup") or {}
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                return "BUTTON_DATA_INVALID"
            if not button.get("text"):
                return "BUTTON_TEXT_EMPTY"
    return None


# --- Twilio --------------------------------------------------------------------------------


def twilio_error(status: int, code: int, message: str, retry_after: int | None = None) -> Answer:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return Answer(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        headers=headers,
    )


class FakeTwilio(FakeServer):
    """``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, HTTP basic auth with the
    account sid and auth token, form-encoded parameters; answers 201 with the Message."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str = "AC" + "0" * 31 + "1",
        auth_token: str = "twilio-auth-token",
    ):
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent = _Sent()

    def too_many_requests(self, retry_after: int | None = None) -> Answer:
        return twilio_error(429, 20429, "Too Many Requests", retry_after)

    def server_error(self) -> Answer:
        return twilio_error(500, 20500, "Internal Server Error")

    def invalid_to(self, number: str = "+15005550001") -> Answer:
        return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {number}")

    def handle(self, request: Recorded) -> Answer:
        match = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", request.path)
        if request.method != "POST" or not match:
            return twilio_error(404, 20404, "The requested resource was not found")
        header = request.headers.get("Authorization") or ""
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if not hmac.compare_digest(header, f"Basic {expected}"):
            return twilio_error(401, 20003, "Authenticate")
        if match.group(1) != self.account_sid:
            return twilio_error(404, 20404, "The requested resource was not found")
        params = request.form
        media = [value for name, value in request.form_pairs if name == "MediaUrl"]
        if not params.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not (params.get("From") or params.get("MessagingServiceSid")):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not (params.get("Body") or media or params.get("ContentSid")):
            return twilio_error(400, 21602, "Message body is required.")
        if len(params.get("Body") or "") > 1600:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        number = self.sent.add({**params, "MediaUrl": media})
        sid = "SM" + hashlib.md5(f"{number}{time.time()}".encode()).hexdigest()  # noqa: S324
        return Answer(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": params["To"],
                "from": params.get("From"),
                "messaging_service_sid": params.get("MessagingServiceSid"),
                "body": params.get("Body", ""),
                "num_media": str(len(media)),
                "status": "accepted" if params.get("MessagingServiceSid") else "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )


# --- A tenant's webhook receiver (API channel) -----------------------------------------------


class FakeTenantWebhook(FakeServer):
    """A tenant's endpoint for API-channel events. It checks ``X-ChatTonic-Signature`` the
    way docs/channels.md tells tenants to (written here independently of the connector),
    answers 401 to a bad signature and 200 otherwise, and keeps the events it accepted."""

    name = "tenant-webhook"

    def __init__(self, *, secret: str = "tenant-signing-secret", tolerance: int = 300):
        super().__init__()
        self.secret = secret
        self.tolerance = tolerance
        self.prefix = "/chattonic/events"

    def signature_valid(self, request: Recorded) -> bool:
        timestamp = request.headers.get("X-ChatTonic-Timestamp") or ""
        header = request.headers.get("X-ChatTonic-Signature") or ""
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance:
            return False
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        candidates = [p.strip()[3:] for p in header.split(",") if p.strip().startswith("v1=")]
        return any(hmac.compare_digest(c, expected) for c in candidates)

    @property
    def events(self) -> list[dict]:
        """The events it accepted (valid signature, answered 2xx), in arrival order."""
        return [
            r.json
            for r in self.requests
            if r.answered is not None and 200 <= r.answered < 300 and self.signature_valid(r)
        ]

    def handle(self, request: Recorded) -> Answer:
        if request.method != "POST":
            return Answer(405, {"error": "POST only"})
        if not self.signature_valid(request):
            return Answer(401, {"error": "invalid signature"})
        return Answer(200, {"received": True})
