"""Secrets out of error texts: one function for every text that is stored or logged.

:func:`redact` masks the secrets it is given (a channel's tokens, Trello's key and token)
and what looks like a secret in any text: a Telegram bot token in a ``/bot<token>/`` URL,
credentials in a URL (``https://user:password@host``), secret query parameters
(``access_token=``, ``token=``, ``key=``, ...) and ``Authorization`` values. Each door calls
it with its own secrets before it stores an error (a delivery attempt, a message, a channel,
a lead webhook, Trello's outbox) or logs one; :func:`install_log_redaction` applies the
pattern part to every log record of the process as well (the ``Celery`` worker's too), so a
traceback cannot carry a bot token into the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "[redacted]"
#: Shorter "secrets" would mask ordinary words and numbers: they are left to the patterns.
MIN_SECRET_LENGTH = 6

_HIDDEN_PARAMS = (
    "access_token|token|key|api_key|apikey|client_secret|secret|password|passwd"
    "|auth|auth_token|signature|sig|hub\\.verify_token|verify_token"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram: https://api.telegram.org/bot123456:AA.../sendMessage (the bot id may stay).
    (re.compile(r"(/bot\d+:)[A-Za-z0-9_-]+"), rf"\g<1>{MASK}"),
    # Credentials in a URL: scheme://user:password@host, scheme://token@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@"), rf"\g<1>{MASK}@"),
    # Secret query or form parameters.
    (re.compile(rf"(?i)([?&;]|\b)((?:{_HIDDEN_PARAMS})=)[^&#;\s'\"]+"), rf"\g<1>\g<2>{MASK}"),
    # Authorization values: Bearer / Basic tokens, OAuth parameters.
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\g<1> {MASK}"),
    (re.compile(r'(?i)\b(oauth_[a-z_]+=)"[^"]*"'), rf'\g<1>"{MASK}"'),
)


def redact(text: str, secrets: Iterable[object] = ()) -> str:
    """``text`` with ``secrets`` (and their URL-encoded forms) and secret-looking parts
    replaced by ``[redacted]``."""
    if not text:
        return text
    text = str(text)
    values = {str(secret) for secret in secrets if secret is not None}
    for value in sorted(values, key=len, reverse=True):  # a longer one may hold a shorter one
        if len(value) < MIN_SECRET_LENGTH:
            continue
        text = text.replace(value, MASK)
        encoded = quote(value, safe="")
        if encoded != value:
            text = text.replace(encoded, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --- Logs ---------------------------------------------------------------------------------------

_installed = False


def install_log_redaction() -> None:
    """Redact every log record of this process as it is made: its message and the text of
    its exception. A record factory (``logging.setLogRecordFactory``) rather than a handler's
    filter, because the worker's handlers are Celery's, not the settings'."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: logging reports it later
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
