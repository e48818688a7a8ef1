"""The bot's slow actions, run by the worker."""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from urllib.parse import urlsplit

import requests
from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 256 * 1024


def _destination_allowed(url: str) -> bool:
    """Refuse private, loopback and link-local addresses unless this deployment allows them
    (the flow's URL is the tenant's input: it must not reach our own network)."""
    if settings.BOT_HTTP_ALLOW_PRIVATE:
        return True
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
        ):
            return False
    return True


def perform_http_request(request: dict) -> dict:
    """Do the flow's HTTP request; the engine's view of the outcome, never an exception."""
    url = str(request.get("url") or "")
    if urlsplit(url).scheme not in ("http", "https") or not _destination_allowed(url):
        return {"status": None, "json": None, "error": "error", "detail": "destination refused"}
    method = str(request.get("method") or "GET").upper()
    body = request.get("body")
    kwargs: dict = {
        "headers": request.get("headers") or {},
        "timeout": float(request.get("timeout") or 10),
    }
    if body not in (None, ""):
        if isinstance(body, dict | list):
            kwargs["json"] = body
        else:
            kwargs["data"] = str(body).encode()
    try:
        response = requests.request(  # noqa: S113 (the timeout is in kwargs)
            method, url, allow_redirects=False, stream=True, **kwargs
        )
        content = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except requests.Timeout:
        return {"status": None, "json": None, "error": "timeout"}
    except requests.RequestException as exc:
        return {"status": None, "json": None, "error": "error", "detail": str(exc)[:200]}
    try:
        parsed = json.loads(content[:MAX_RESPONSE_BYTES]) if content else None
    except ValueError:
        parsed = None
    if response.status_code >= 400:
        return {"status": response.status_code, "json": parsed, "error": "error"}
    return {"status": response.status_code, "json": parsed, "error": None}


@shared_task(acks_late=True)
def bot_http_request(conversation_id: int, action_id: str, request: dict) -> None:
    """Perform a flow's HTTP request node and resume the conversation with its outcome."""
    from conversations.models import Conversation
    from conversations.services import bot_http_resume

    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or conversation.awaiting_action != action_id:
        return  # gone, or already resumed by an earlier run of this task
    outcome = perform_http_request(request)
    bot_http_resume(conversation=conversation, action_id=action_id, http=outcome)
