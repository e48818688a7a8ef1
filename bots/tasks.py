"""The bot's slow actions, run by the worker."""

from __future__ import annotations

import json
import logging
import time

import requests
import urllib3
from celery import shared_task
from urllib3.util import Timeout

from bots import hooks
from chattonic.core import outbound
from chattonic.core.redact import redact

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 256 * 1024


def perform_http_request(request: dict) -> dict:
    """Do the flow's HTTP request; the engine's view of the outcome, never an exception.

    One deadline, ``timeout`` seconds from the start, bounds the whole exchange: connecting
    and waiting for the headers get what is left of it (urllib3's total time-out), and the
    body is read one receive at a time, each allowed only what is then left, so a server that
    sends a byte every half second cannot hold the worker past the deadline. The body is
    capped at MAX_RESPONSE_BYTES. The URL is the tenant's: the guarded session
    (chattonic/core/outbound.py) refuses the platform's own network."""
    url = str(request.get("url") or "")
    method = str(request.get("method") or "GET").upper()
    body = request.get("body")
    timeout = float(request.get("timeout") or 10)
    kwargs: dict = {"headers": request.get("headers") or {}, "timeout": Timeout(total=timeout)}
    if body not in (None, ""):
        if isinstance(body, dict | list):
            kwargs["json"] = body
        else:
            kwargs["data"] = str(body).encode()
    deadline = time.monotonic() + timeout
    response = None
    try:
        response = outbound.request(method, url, allow_redirects=False, stream=True, **kwargs)
        content = _read_within(response, deadline)
        if content is None:
            return {"status": None, "json": None, "error": "timeout"}
    except outbound.OutboundRefused:
        return {"status": None, "json": None, "error": "error", "detail": outbound.REFUSED}
    except (requests.Timeout, TimeoutError):
        return {"status": None, "json": None, "error": "timeout"}
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        # ValueError: a malformed URL; OSError, urllib3's errors: the body's read failed.
        if time.monotonic() >= deadline:
            return {"status": None, "json": None, "error": "timeout"}
        return {"status": None, "json": None, "error": "error", "detail": redact(str(exc))[:200]}
    finally:
        if response is not None:
            response.close()
    try:
        parsed = json.loads(bytes(content[:MAX_RESPONSE_BYTES])) if content else None
    except ValueError:
        parsed = None
    if response.status_code >= 400:
        return {"status": response.status_code, "json": parsed, "error": "error"}
    return {"status": response.status_code, "json": parsed, "error": None}


def _read_within(response: requests.Response, deadline: float) -> bytearray | None:
    """The response's body, up to MAX_RESPONSE_BYTES + 1 bytes, or None when the deadline
    passes first. Each receive (``read1``: at most one system call) is given only the time
    left, on the connection's socket (urllib3's ``HTTPResponse.connection.sock``;
    tests/bots/test_http_node.py fails if an upgrade takes it away)."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    content = bytearray()
    while len(content) <= MAX_RESPONSE_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = raw.read1(16 * 1024)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            return None
        if not chunk:
            break
        content += chunk
    return content


@shared_task(acks_late=True)
def bot_http_request(
    conversation_id: int, action_id: str, request: dict, request_id: int | None = None
) -> None:
    """Perform a flow's HTTP request node and resume the conversation with its outcome
    (``request_id`` is the engine's number for the request, handed back with the answer).
    The conversation is the conversations app's: reached through ``bots.hooks``."""
    if not hooks.http_action_awaited(conversation_id=conversation_id, action_id=action_id):
        return  # gone, or already resumed by an earlier run of this task
    outcome = perform_http_request(request)
    hooks.http_action_resume(
        conversation_id=conversation_id, action_id=action_id, outcome=outcome, request_id=request_id
    )


@shared_task(acks_late=True)
def bot_version_train(version_id: int) -> None:
    """Train a published version's intent matcher and put the version live (safe twice)."""
    from bots.services import bot_version_train as train

    train(version_id=version_id)


@shared_task
def bot_versions_train_stuck() -> None:
    """Queue again the training of versions whose task was lost (beat, every minute)."""
    from bots.services import bot_versions_train_stuck as sweep

    sweep()
