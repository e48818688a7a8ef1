"""Recorded webhook payloads in each platform's documented format.

``whatsapp/`` and ``messenger/`` hold Meta's JSON bodies, ``telegram/`` one Update per file,
``twilio/`` the raw ``application/x-www-form-urlencoded`` bodies Twilio posts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def raw(name: str) -> bytes:
    """The recorded body, byte for byte (a trailing newline of the file is not part of it)."""
    return (HERE / name).read_bytes().rstrip(b"\n")


def load(name: str) -> Any:
    return json.loads(raw(name))
