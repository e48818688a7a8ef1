"""The bot's slow actions, run by the worker."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from urllib.parse import urlsplit

import requests
from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 256 * 1024


def _address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _destination_allowed(url: str) -> bool:
    """Refuse private, loopback, link-local, multicast and reserved addresses unless this
    deployment allows them (the flow's URL is the tenant's input: it must not reach our own
    network). Every address the name resolves to must be public."""
    if settings.BOT_HTTP_ALLOW_PRIVATE:
        return True
    host = urlsplit(url).hostname or ""
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and not any(
        _address_refused(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos
    )


def perform_http_request(request: dict) -> dict:
    """Do the flow's HTTP request; the engine's view of the outcome, never an exception.

    The timeout bounds the whole exchange (connecting, waiting and reading the body), and
    the body read is capped at MAX_RESPONSE_BYTES."""
    url = str(request.get("url") or "")
    try:
        allowed = urlsplit(url).scheme in ("http", "https") and _destination_allowed(url)
    except ValueError:
        allowed = False
    if not allowed:
        return {"status": None, "json": None, "error": "error", "detail": "destination refused"}
    method = str(request.get("method") or "GET").upper()
    body = request.get("body")
    timeout = float(request.get("timeout") or 10)
    kwargs: dict = {"headers": request.get("headers") or {}, "timeout": timeout}
    if body not in (None, ""):
        if isinstance(body, dict | list):
            kwargs["json"] = body
        else:
            kwargs["data"] = str(body).encode()
    started = time.monotonic()
    response = None
    try:
        response = requests.request(  # noqa: S113 (the timeout is in kwargs)
            method, url, allow_redirects=False, stream=True, **kwargs
        )
        content = bytearray()
        for chunk in response.iter_content(16 * 1024):
            content += chunk
            if len(content) > MAX_RESPONSE_BYTES:
                break
            if time.monotonic() - started > timeout:
                return {"status": None, "json": None, "error": "timeout"}
    except requests.Timeout:
        return {"status": None, "json": None, "error": "timeout"}
    except requests.RequestException as exc:
        if time.monotonic() - started >= timeout:
            return {"status": None, "json": None, "error": "timeout"}
        return {"status": None, "json": None, "error": "error", "detail": str(exc)[:200]}
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


@shared_task(acks_late=True)
def bot_http_request(
    conversation_id: int, action_id: str, request: dict, request_id: int | None = None
) -> None:
    """Perform a flow's HTTP request node and resume the conversation with its outcome
    (``request_id`` is the engine's number for the request, handed back with the answer)."""
    from conversations.models import Conversation
    from conversations.services import bot_http_resume

    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or conversation.awaiting_action != action_id:
        return  # gone, or already resumed by an earlier run of this task
    outcome = perform_http_request(request)
    bot_http_resume(
        conversation=conversation, action_id=action_id, http=outcome, request_id=request_id
    )
