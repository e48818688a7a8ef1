"""How Chat-Tonic signs what it POSTs to a tenant's systems (the API channel's deliveries and
the lead webhooks), and how a receiver checks it: docs/channels.md."""

from __future__ import annotations

import hashlib
import hmac
import time

EVENT_HEADER = "X-ChatTonic-Event"
EVENT_ID_HEADER = "X-ChatTonic-Event-Id"
TIMESTAMP_HEADER = "X-ChatTonic-Timestamp"
SIGNATURE_HEADER = "X-ChatTonic-Signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds
USER_AGENT = "ChatTonic-Webhooks/1.0"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """True when ``signature`` (the ``X-ChatTonic-Signature`` header) holds a ``v1=`` value
    computed with ``secret`` over ``timestamp`` and the raw ``body``, and the timestamp is
    within ``tolerance`` seconds of now (a replayed old delivery fails)."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if tolerance is not None and abs(current - sent_at) > tolerance:
        return False
    expected = sign(secret, sent_at, body)
    valid = False
    for part in (signature or "").replace(" ", ",").split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION:
            valid |= hmac.compare_digest(value.encode(), expected.encode())
    return valid
