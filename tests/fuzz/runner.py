"""Sending the fuzz suite's cases at the doors, and judging each answer.

Every door has one way to send (``Http``, ``Socket``), with two transports: in-process
(Django's test client, Channels' ``WebsocketCommunicator``: the regular suite) and over the
network (``requests``, ``websockets``: ``bench/fuzz.py`` against a uvicorn server). For every
input the ``Tally`` counts the answer by door and status, and records a failure for an answer
>= 500 (or a ``server_error`` frame, or a socket that died), an answer slower than
``SLOW_SECONDS`` (or none: a hang), an error without a JSON body on the JSON doors, and a
refused input that changed what is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from tests.fakes.channels import CREDENTIALS
from tests.fakes.signing import meta_signature, twilio_signature
from tests.fuzz.strategies import (
    FrameCase,
    Operation,
    RestCase,
    WebhookCase,
    encode_json,
    encode_raw,
    frame_text,
)
from tests.fuzz.world import ORIGIN, World

SLOW_SECONDS = 2.0
TRACE = bool(os.environ.get("FUZZ_TRACE"))  # print each input before it is sent
ANSWER_TIMEOUT = 10.0


def examples(strategy, count: int, seed: int | None = None) -> list:
    """``count`` values drawn by Hypothesis (generation only: nothing to shrink)."""
    drawn: list = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value):
        drawn.append(value)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    return drawn[:count]


# --- Judging --------------------------------------------------------------------------------


@dataclass
class Tally:
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    slowest: float = 0.0

    def count(self, door: str, status: str, elapsed: float) -> None:
        self.counts[door][status] += 1
        self.slowest = max(self.slowest, elapsed)

    def fail(self, door: str, what: str, case: Any) -> None:
        self.failures.append((door, what, repr(case)[:600]))

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def report(self) -> str:
        lines = []
        for door in sorted(self.counts):
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts[door].items()))
            lines.append(f"{door:<10} {sum(self.counts[door].values()):>6}  {statuses}")
        return "\n".join(lines)


def stored_counts() -> tuple[int, ...]:
    """Rows of every table a door writes, in one round trip."""
    from django.apps import apps
    from django.db import connection

    tables = [
        model._meta.db_table
        for label in ("bots", "conversations", "agents", "support")
        for model in apps.get_app_config(label).get_models()
    ]
    sql = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in sorted(tables))  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return tuple(cursor.fetchone())


def inbound_count() -> int:
    from conversations.models import Message

    return Message.objects.filter(direction="in").count()


# --- HTTP -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: no answer in time
    body: bytes
    content_type: str
    elapsed: float


class InProcessHttp:
    """Django's test client: the whole request path but the server."""

    def __init__(self):
        from django.test import Client

        self.client = Client()

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        meta = {
            "HTTP_" + k.upper().replace("-", "_"): v
            for k, v in headers.items()
            if k.lower() != "content-type"
        }
        start = time.monotonic()
        response = self.client.generic(
            method, path, body, content_type=headers.get("Content-Type", ""), **meta
        )
        content = b"".join(response.streaming_content) if response.streaming else response.content
        elapsed = time.monotonic() - start
        return Answer(response.status_code, content, response.get("Content-Type", ""), elapsed)


class NetworkHttp:
    def __init__(self, base_url: str):
        import requests

        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        import requests

        start = time.monotonic()
        try:
            response = self.session.request(
                method, self.base_url + path, data=body, headers=headers, timeout=ANSWER_TIMEOUT
            )
        except requests.Timeout:
            return Answer(None, b"", "", time.monotonic() - start)
        except requests.ConnectionError:
            self.session = requests.Session()
            return Answer(0, b"", "", time.monotonic() - start)
        return Answer(
            response.status_code,
            response.content,
            response.headers.get("Content-Type", ""),
            time.monotonic() - start,
        )


def _judge_http(tally: Tally, door: str, case: Any, answer: Answer) -> bool:
    """Count the answer; record a failure. Returns whether the input was refused (4xx)."""
    if answer.status is None:
        tally.count(door, "no answer", answer.elapsed)
        tally.fail(door, f"no answer within {ANSWER_TIMEOUT} s", case)
        return False
    tally.count(door, str(answer.status), answer.elapsed)
    if answer.status >= 500 or answer.status == 0:
        tally.fail(door, f"answered {answer.status}: {answer.body[:300]!r}", case)
    if answer.elapsed > SLOW_SECONDS:
        tally.fail(door, f"answered after {answer.elapsed:.1f} s", case)
    if answer.status >= 400 and "json" not in answer.content_type:
        tally.fail(door, f"a {answer.status} without a JSON body ({answer.content_type})", case)
    return 400 <= answer.status < 500


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- Webhooks -------------------------------------------------------------------------------


def webhook_request(case: WebhookCase, world: World, public_base: str) -> tuple[str, bytes, dict]:
    """(path, body, headers): the case signed as its platform signs (or with the API key)."""
    channel = world.channels[case.kind]
    path = f"/hooks/{case.kind}/{channel}/"
    creds = CREDENTIALS[case.kind]
    if case.raw is not None:
        body = encode_raw(case.raw)
    elif case.form is not None:
        body = urlencode(case.form).encode()
    else:
        body = encode_json(case.document)
    if case.kind == "twilio":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if case.form is not None:
            url = public_base.rstrip("/") + path
            headers["X-Twilio-Signature"] = twilio_signature(url, case.form, creds["auth_token"])
        else:
            headers["X-Twilio-Signature"] = "unsigned garbage"
        return path, body, headers
    headers = {"Content-Type": "application/json"}
    if case.kind in ("whatsapp", "messenger"):
        headers["X-Hub-Signature-256"] = meta_signature(body, creds["app_secret"])
    elif case.kind == "telegram":
        headers["X-Telegram-Bot-Api-Secret-Token"] = creds["secret_token"]
    else:
        headers["Authorization"] = f"Bearer {world.api_secret}"
    return path, body, headers


def run_webhooks(cases: list[WebhookCase], http, world: World, tally: Tally, public_base: str):
    for case in cases:
        path, body, headers = webhook_request(case, world, public_base)
        before, inbound = stored_counts(), inbound_count()
        answer = http.send("POST", path, body, headers)
        refused = _judge_http(tally, "webhooks", case, answer)
        if refused and stored_counts() != before:
            tally.fail("webhooks", f"a refused webhook ({answer.status}) stored something", case)
        if answer.status == 200 and "json" in answer.content_type:
            received = (_json(answer.body) or {}).get("received", 0)
            if inbound_count() - inbound != received:
                tally.fail("webhooks", "stored other than the messages it took", case)


# --- The REST API ---------------------------------------------------------------------------


def run_rest(cases: list[RestCase], ops: list[Operation], http, world: World, tally: Tally):
    for case in cases:
        operation = ops[case.operation]
        path = operation.path
        for name, value in case.path_values.items():
            path = path.replace("{" + name + "}", quote(value, safe="%"))
        if case.query:
            path += "?" + "&".join(
                f"{quote(k)}={quote(v, safe='%')}" for k, v in case.query.items()
            )
        if case.raw is not None:
            body = encode_raw(case.raw)
        elif case.content_type != "application/json":
            body = b"a=1&b=%00"
        elif operation.method in ("POST", "PUT", "PATCH"):
            body = encode_json(case.body)
        else:
            body = b""
        headers = {"Authorization": f"Bearer {world.api_secret}"}
        if body:
            headers["Content-Type"] = case.content_type
        before = stored_counts()
        answer = http.send(operation.method, path, body, headers)
        refused = _judge_http(tally, "rest", (operation.method, operation.path, case), answer)
        if refused and stored_counts() != before:
            what = f"a refused {operation.method} {operation.path} ({answer.status}) stored"
            tally.fail("rest", what, case)


def warm_up(http, world: World) -> None:
    """What a server does once at its first requests (imports, the intent model's libraries),
    done before the inputs are timed: a publish, and a list of every collection."""
    headers = {"Authorization": f"Bearer {world.api_secret}", "Content-Type": "application/json"}
    bot = world.ids["bots"][0]
    http.send("POST", f"/api/v1/bots/{bot}/publish/", b"{}", headers)
    for resource in ("bots", "conversations", "contacts", "leads", "tickets"):
        http.send("GET", f"/api/v1/{resource}/", b"", headers)


# --- The sockets ----------------------------------------------------------------------------


class InProcessSocket:
    """``WebsocketCommunicator`` through the real routing."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]], ip: str):
        from channels.testing import WebsocketCommunicator

        from chattonic.asgi import application

        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.communicator.scope["client"] = (ip, 50000)

    async def open(self) -> bool:
        connected, _ = await self.communicator.connect(timeout=ANSWER_TIMEOUT)
        return connected

    async def send(self, text: str | None, data: bytes | None) -> None:
        message = {"type": "websocket.receive"}
        message.update({"text": text} if text is not None else {"bytes": data})
        await self.communicator.send_input(message)

    async def receive(self, timeout: float) -> dict | None:
        """The next frame (None when none came in time); raises EOFError once closed."""
        # (receive_output's own time-out would cancel the application: wait for output first)
        if await self.communicator.receive_nothing(timeout=timeout, interval=0.005):
            return None
        message = await self.communicator.receive_output(timeout=ANSWER_TIMEOUT)
        if message["type"] == "websocket.close":
            raise EOFError(message.get("code"))
        return json.loads(message["text"])

    async def close(self) -> None:
        await self.communicator.disconnect()


class NetworkSocket:
    def __init__(self, url: str, headers: list[tuple[bytes, bytes]], ip: str):
        self.url = url
        self.headers = [(k.decode(), v.decode()) for k, v in headers]
        self.connection = None

    async def open(self) -> bool:
        from websockets.asyncio.client import connect

        try:
            self.connection = await connect(
                self.url, additional_headers=self.headers, open_timeout=ANSWER_TIMEOUT
            )
        except Exception:  # noqa: BLE001 - a refused handshake
            return False
        return True

    async def send(self, text: str | None, data: bytes | None) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await self.connection.send(text if text is not None else data)
        except ConnectionClosed as exc:
            raise EOFError(exc.rcvd.code if exc.rcvd else None) from None

    async def receive(self, timeout: float) -> dict | None:
        from websockets.exceptions import ConnectionClosed

        try:
            text = await asyncio.wait_for(self.connection.recv(), timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise EOFError(exc.rcvd.code if exc.rcvd else None) from None
        return json.loads(text)

    async def close(self) -> None:
        await self.connection.close()


def _probe(door: str, n: int) -> dict:
    """A frame the socket answers in a way no fuzz frame makes it answer: its answer comes
    once the frame before it was handled."""
    if door == "widget":  # refused (no id), and the error names the frame's client_id
        return {"type": "read", "client_id": f"probe-{n}"}
    return {"type": "presence", "presence": "online", "ref": f"probe-{n}"}


def _answers_probe(door: str, frame: dict, n: int) -> bool:
    if door == "widget":
        return frame.get("type") == "error" and frame.get("client_id") == f"probe-{n}"
    return frame.get("type") == "ack" and frame.get("ref") == f"probe-{n}"


async def run_socket(
    door: str, cases: list[FrameCase], open_socket, tally: Tally, *, reconnect_every: int = 100
) -> None:
    """Send each frame, then a probe the socket answers once it has handled the frame: the
    frames between are the frame's answer. ``open_socket()`` makes a new socket; every
    ``reconnect_every`` frames (and after a socket closed) a new one is opened."""
    count_stored = sync_to_async(_socket_counts, thread_sensitive=True)
    socket = None
    for n, case in enumerate(cases):
        if socket is None or n % reconnect_every == 0:
            if socket is not None:
                await socket.close()
            socket = open_socket()
            if not await socket.open():
                tally.fail(door, "the socket could not connect", case)
                return
            await _drain(socket)
        before = await count_stored()
        text, data = frame_text(case)
        start = time.monotonic()
        answers: list[dict] = []
        status = None
        try:
            await socket.send(text, data)
            await socket.send(json.dumps(_probe(door, n)), None)
            while True:
                frame = await socket.receive(ANSWER_TIMEOUT)
                if frame is None:
                    status = "no answer"
                    break
                if _answers_probe(door, frame, n):
                    break
                answers.append(frame)
        except EOFError as closed:
            status = f"closed {closed.args[0] if closed.args else ''}".strip()
        elapsed = time.monotonic() - start
        errors = [f for f in answers if f.get("type") == "error"]
        if status is None:
            status = f"error {errors[0].get('code')}" if errors else "ok"
        if TRACE:
            print(door, repr(case)[:200], "->", repr(answers)[:300], file=sys.stderr, flush=True)
        tally.count(door, status, elapsed)
        if status == "no answer" or status.startswith("closed"):
            tally.fail(door, f"{status} after the frame", case)
            if status.startswith("closed"):
                socket = None
        if any(f.get("code") == "server_error" for f in errors):
            tally.fail(door, "a server_error frame", case)
        if elapsed > SLOW_SECONDS:
            tally.fail(door, f"answered after {elapsed:.1f} s", case)
        accepted = [f for f in answers if f.get("type") in ("ack", "contact_saved", "rated")]
        if errors and not accepted and await count_stored() != before:
            tally.fail(door, "a refused frame stored something", case)
    if socket is not None:
        await socket.close()
    # Whatever the frames did, the address can still open a socket.
    last = open_socket()
    if not await last.open():
        tally.fail(door, "the address could not connect after the run", None)
    else:
        await last.close()


async def _drain(socket) -> None:
    """Read what a socket sends on opening (session, history, hello)."""
    while await socket.receive(0.3) is not None:
        pass


def _socket_counts() -> tuple[int, ...]:
    from agents.models import Note
    from contacts.models import Contact
    from conversations.models import Conversation, Message
    from leads.models import Lead

    return (
        Message.objects.filter(direction="in").count(),
        Message.objects.filter(sender="agent").count(),
        Conversation.objects.count(),
        Contact.objects.count(),
        Lead.objects.count(),
        Note.objects.count(),
    )


def widget_opener(world: World, make_socket, ip: str = "198.51.100.77"):
    path = f"/ws/webchat/{world.bot_public_key}/"
    headers = [(b"origin", ORIGIN.encode())]
    return lambda: make_socket(path, headers, ip)


def console_opener(world: World, make_socket, origin: str):
    headers = [(b"origin", origin.encode()), (b"cookie", world.agent_cookie.encode())]
    return lambda: make_socket("/ws/agent/", headers, "127.0.0.1")
