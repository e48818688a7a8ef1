"""Local fakes of the messaging platforms' send APIs, and signed-webhook builders.

See server.py for the scripting model, platforms.py for each platform's contract,
signing.py for building signed inbound requests, and fixtures.py for the pytest fixtures.
"""

from .platforms import (
    FakeMessenger,
    FakeTelegram,
    FakeTenantWebhook,
    FakeTwilio,
    FakeWhatsApp,
    graph_error,
    telegram_error,
    twilio_error,
)
from .server import DROP, HANG, Answer, FakeServer, Recorded

__all__ = [
    "DROP",
    "HANG",
    "Answer",
    "FakeMessenger",
    "FakeServer",
    "FakeTelegram",
    "FakeTenantWebhook",
    "FakeTwilio",
    "FakeWhatsApp",
    "Recorded",
    "graph_error",
    "telegram_error",
    "twilio_error",
]
