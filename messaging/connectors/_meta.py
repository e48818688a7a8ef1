"""What WhatsApp Cloud API and Messenger share: Meta's webhook handshake, its
``X-Hub-Signature-256`` signature, and Graph API error bodies."""

from __future__ import annotations

import requests

from .base import (
    Connector,
    SendError,
    VerificationFailed,
    WebhookRequest,
    constant_time_equals,
    hmac_hex,
    parse_retry_after,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"


def handshake(request: WebhookRequest, verify_token: str) -> str:
    """The ``hub.challenge`` to echo when ``hub.mode`` is "subscribe" and the token matches."""
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token") or ""
    challenge = request.query.get("hub.challenge")
    if mode != "subscribe" or challenge is None:
        raise VerificationFailed(
            "Not a subscription handshake (hub.mode=subscribe and hub.challenge expected).",
            code="invalid_handshake",
        )
    if not verify_token or not constant_time_equals(token, verify_token):
        raise VerificationFailed("The verify token does not match.", code="invalid_verify_token")
    return challenge


def verify(request: WebhookRequest, app_secret: str) -> None:
    """Check ``X-Hub-Signature-256: sha256=<hex>``, the HMAC-SHA256 of the raw body."""
    header = request.header(SIGNATURE_HEADER)
    if not header:
        raise VerificationFailed(
            f"The {SIGNATURE_HEADER} header is missing.", status=401, code="missing_signature"
        )
    if not app_secret:
        raise VerificationFailed("The channel has no app secret.", code="not_configured")
    scheme, _, signature = header.strip().partition("=")
    expected = hmac_hex(app_secret, request.body)
    # Compare even a malformed header, so that the time taken says nothing about the secret.
    if not constant_time_equals(signature.strip().lower(), expected) or scheme != "sha256":
        raise VerificationFailed("The signature does not match the body.")


def graph_error(
    response: requests.Response,
    body: dict,
    *,
    retryable_codes: dict[int, float | None],
    what: str,
) -> SendError:
    """A Graph API error body ``{"error": {"message", "type", "code", "error_subcode",
    "error_data": {"details"}, "is_transient", "fbtrace_id"}}`` as a send error.

    Retryable when the HTTP status is 429 or 5xx, when the code is one of
    ``retryable_codes`` (code -> suggested delay in seconds), or when Graph flags the error
    as transient.
    """
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = error.get("code")
    try:
        code = int(code) if code is not None else None
    except (TypeError, ValueError):
        code = None
    details = (error.get("error_data") or {}).get("details") if error else None
    message = error.get("message") or response.reason or f"HTTP {response.status_code}"
    reason = f"{what}: {message}" + (f" ({details})" if details and details not in message else "")
    retryable = (
        response.status_code == 429
        or response.status_code >= 500
        or (code is not None and code in retryable_codes)
        or error.get("is_transient") is True
    )
    hint = parse_retry_after(response.headers.get("Retry-After"))
    if hint is None and code in retryable_codes:
        hint = retryable_codes[code]
    subcode = error.get("error_subcode")
    platform_code = None
    if code is not None:
        platform_code = f"{code}/{subcode}" if subcode else str(code)
    return Connector._http_error(
        response,
        body,
        reason=reason,
        platform_code=platform_code,
        retryable=retryable,
        retry_after=hint,
    )
