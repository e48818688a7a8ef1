"""A small threaded HTTP server that records every request and answers from a script.

Subclasses implement one platform's documented contract in :meth:`FakeServer.handle`; tests
queue special answers with :meth:`FakeServer.script` (a 429 with a retry hint, a 500, a
hang until released, a dropped connection), consumed one per request, in order, before the
contract's own answer applies again. Safe to use from many threads at once (the benchmark
and concurrent delivery tests do).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict
    body: bytes
    received_at: float = field(default_factory=time.monotonic)
    answered: int | None = None  # the status code it was answered with

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None

    @property
    def form_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    @property
    def form(self) -> dict[str, str]:
        form: dict[str, str] = {}
        for name, value in self.form_pairs:
            form.setdefault(name, value)
        return form

    def param(self, name: str) -> str | None:
        """A query parameter's first value."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Answer:
    """What the fake answers: ``body`` (a dict or list is sent as JSON), or one of the
    special behaviours: ``hang`` (no answer until :meth:`FakeServer.release` or stop, so the
    client times out), ``drop`` (close the connection without an answer), ``delay`` (seconds
    before answering), ``trickle`` (the headers at once, then the body one byte every
    ``trickle`` seconds: a slow sender)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False
    delay: float = 0.0
    trickle: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        if self.body is None:
            return b"", "text/plain"
        return json.dumps(self.body).encode(), "application/json"


HANG = Answer(hang=True)
DROP = Answer(drop=True)


class FakeServer:
    """A platform's fake API on 127.0.0.1; ``base_url`` is what the settings point at."""

    name = "fake"
    prefix = ""  # a path prefix that is part of base_url (e.g. a Graph API version)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls=None):
        self._host = host
        self._port = port
        self._tls = tls  # an ssl.SSLContext: serve HTTPS (root_url says https)
        self._lock = threading.Condition()
        self._requests: list[Recorded] = []
        self._script: deque[Answer | Callable[[Recorded], Answer]] = deque()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the platforms offer
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls

            def do_GET(self):
                fake._serve(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

            def log_message(self, format, *args):  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.request_queue_size = 256
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits at most this long
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let hanging handlers go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def root_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + self.prefix

    @property
    def netloc(self) -> str:
        """``host:port``, as ``OUTBOUND_ALLOWED_HOSTS`` names it."""
        return f"{self._host}:{self.port}"

    def allow(self, settings) -> FakeServer:
        """Let outbound requests reach this fake: it listens on loopback, which the guard
        (chattonic/core/outbound.py) refuses unless OUTBOUND_ALLOWED_HOSTS names it. Takes
        pytest-django's ``settings`` fixture, which restores the setting after the test."""
        settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, self.netloc]
        return self

    # --- scripting and inspection -------------------------------------------------------------

    def script(self, *answers: Answer | Callable[[Recorded], Answer]) -> None:
        """Answer the next requests with these, in order, then follow the contract again."""
        with self._lock:
            self._script.extend(answers)

    def release(self) -> None:
        """Let every request held by a ``hang`` answer go (they then get a 504)."""
        released, self._released = self._released, threading.Event()
        released.set()

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._script.clear()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Block until ``count`` requests have arrived (no fixed sleeps in tests)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: {len(self._requests)} requests after {timeout}s, "
                        f"expected {count}"
                    )
                self._lock.wait(left)
            return list(self._requests)

    # --- the contract ------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Answer:
        """The platform's documented answer to ``request``; subclasses implement it."""
        return Answer(404, {"error": "not found"})

    # --- plumbing ----------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        recorded = Recorded(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=CaseInsensitiveDict(dict(handler.headers.items())),
            body=body,
        )
        with self._lock:
            self._requests.append(recorded)
            scripted = self._script.popleft() if self._script else None
            self._lock.notify_all()
        released = self._released
        try:
            answer = scripted(recorded) if callable(scripted) else scripted
            if answer is None:
                answer = self.handle(recorded)
        except Exception as exc:  # noqa: BLE001 - a bug in a fake must show, not hang a test
            answer = Answer(500, {"fake_error": repr(exc)})
        if answer.hang:
            released.wait()
            answer = Answer(504, {"error": "released"})
        if answer.delay:
            released.wait(answer.delay)
        if answer.drop:
            recorded.answered = 0
            handler.close_connection = True
            return
        payload, content_type = answer.encoded()
        recorded.answered = answer.status
        try:
            handler.send_response(answer.status)
            headers = {"Content-Type": content_type, **answer.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD" and answer.trickle:
                handler.wfile.flush()
                for i in range(len(payload)):
                    if released.wait(answer.trickle):
                        break
                    handler.wfile.write(payload[i : i + 1])
                    handler.wfile.flush()
            elif handler.command != "HEAD":
                handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (a time-out)
