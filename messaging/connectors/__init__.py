"""Messaging-platform connectors: one module per platform, one shared interface (base.py).

``get_connector(kind)`` returns the connector of a channel kind: "whatsapp", "messenger",
"telegram", "twilio" or "api".
"""

from __future__ import annotations

from .api import ApiConnector, verify_signature
from .base import (
    Connector,
    ConnectorError,
    InboundMessage,
    MalformedPayload,
    OutboundMessage,
    ParsedWebhook,
    PermanentSendError,
    RetryableSendError,
    SendError,
    SendResult,
    StatusUpdate,
    VerificationFailed,
    WebhookRequest,
    public_url,
    resolve_numbered_reply,
)
from .messenger import MessengerConnector
from .telegram import TelegramConnector
from .twilio import TwilioConnector
from .whatsapp import WhatsAppConnector

CONNECTORS: dict[str, Connector] = {
    connector.kind: connector
    for connector in (
        WhatsAppConnector(),
        MessengerConnector(),
        TelegramConnector(),
        TwilioConnector(),
        ApiConnector(),
    )
}
KINDS = tuple(CONNECTORS)


def get_connector(kind: str) -> Connector:
    """The connector of a channel kind; LookupError for an unknown kind."""
    try:
        return CONNECTORS[kind]
    except KeyError:
        raise LookupError(f"No connector for channel kind {kind!r}.") from None


__all__ = [
    "CONNECTORS",
    "KINDS",
    "ApiConnector",
    "Connector",
    "ConnectorError",
    "InboundMessage",
    "MalformedPayload",
    "MessengerConnector",
    "OutboundMessage",
    "ParsedWebhook",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "SendResult",
    "StatusUpdate",
    "TelegramConnector",
    "TwilioConnector",
    "VerificationFailed",
    "WebhookRequest",
    "WhatsAppConnector",
    "get_connector",
    "public_url",
    "resolve_numbered_reply",
    "verify_signature",
]
