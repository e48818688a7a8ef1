"""What ``bots`` asks of the rooms above it, which register the answer at start-up (bots
imports none of them).

- ``sandbox_node``: the node a staff member's test chat (the sandbox widget, known by its
  session token) is on now, for the flow editor's highlight. Registered by ``conversations``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.models import Bot

SandboxNode = Callable[["Bot", str], "str | None"]
_sandbox_node: SandboxNode | None = None


def sandbox_node_register(lookup: SandboxNode) -> None:
    global _sandbox_node
    _sandbox_node = lookup


def sandbox_node(bot: Bot, token: str) -> str | None:
    """The node of the bot's sandbox conversation opened with ``token``, or None (no such
    conversation, a token of another bot, or nothing registered)."""
    return _sandbox_node(bot, token) if _sandbox_node is not None else None
