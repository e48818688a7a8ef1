"""What ``bots`` asks of the rooms above it, which register the answer at start-up (bots
imports none of them).

- ``sandbox_node``: the node a staff member's test chat (the sandbox widget, known by its
  session token) is on now, for the flow editor's highlight. Registered by ``conversations``.
- ``http_action_awaited`` and ``http_action_resume``: the worker's side of a flow's HTTP
  request node (``bots.tasks.bot_http_request``): whether the conversation still waits for
  the answer, and resuming it with the answer. Registered by ``conversations``; unregistered,
  they raise (``chattonic.core.hooks``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chattonic.core.hooks import Slot

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


class HttpActionAwaited(Protocol):
    def __call__(self, *, conversation_id: int, action_id: str) -> bool: ...


class HttpActionResume(Protocol):
    def __call__(
        self, *, conversation_id: int, action_id: str, outcome: dict, request_id: int | None
    ) -> None: ...


_http_action_awaited: Slot[HttpActionAwaited] = Slot(
    "bots.hooks.http_action_awaited", answered_by="conversations"
)
_http_action_resume: Slot[HttpActionResume] = Slot(
    "bots.hooks.http_action_resume", answered_by="conversations"
)


def http_action_register(*, awaited: HttpActionAwaited, resume: HttpActionResume) -> None:
    _http_action_awaited.register(awaited)
    _http_action_resume.register(resume)


def http_action_awaited(*, conversation_id: int, action_id: str) -> bool:
    """Whether the conversation still waits for the answer to request ``action_id`` (False
    when it is gone or was resumed already)."""
    return _http_action_awaited.answer(conversation_id=conversation_id, action_id=action_id)


def http_action_resume(
    *, conversation_id: int, action_id: str, outcome: dict, request_id: int | None
) -> None:
    """Resume the conversation's flow with the request's outcome (the engine's view of it)."""
    _http_action_resume.answer(
        conversation_id=conversation_id,
        action_id=action_id,
        outcome=outcome,
        request_id=request_id,
    )
