"""What goes into the engine and what comes out of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

EventType = Literal["start", "message", "quick_reply", "http_response", "handback"]
EVENT_TYPES: frozenset[str] = frozenset(
    {"start", "message", "quick_reply", "http_response", "handback"}
)
LANGUAGES = ("en", "es", "pt")

# The global intents every bot has (their phrases are in bots.nlu.builtin).
HUMAN = "human"
RESTART = "restart"
# Handoff reasons the engine itself gives.
REASON_VISITOR_REQUEST = "visitor_request"
REASON_FALLBACK_LIMIT = "fallback_limit"

# The intent matcher scales confidences so that 0.3 is each bot's calibrated threshold.
DEFAULT_INTENT_THRESHOLD = 0.3
# At a node waiting for the visitor's input (buttons, a question), a global intent ("human",
# "restart") interrupts only above this confidence, and only once the node's own input (its
# buttons, a valid answer or a try at one) did not match.
GLOBAL_INTENT_THRESHOLD_AT_INPUT = 0.6
DEFAULT_FALLBACK_LIMIT = 2


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to the conversation.

    - "start": a new conversation (the widget opened); no other field.
    - "message": the visitor typed `text`; `intent` and `confidence` are what the intent
      matcher made of it (None when it matched nothing).
    - "quick_reply": the visitor pressed a button: `payload` (and its `text`, the title).
    - "http_response": the outcome of the last http_request action: `http` is
      {"status": int | None, "json": any, "error": None | "timeout" | "error"};
      `request_id` (from the action) lets a late, superseded response be ignored.
    - "handback": an agent gave the conversation back; resume at `node` (None: the start).
    """

    type: EventType
    text: str | None = None
    payload: str | None = None
    intent: str | None = None
    confidence: float | None = None
    http: dict[str, Any] | None = None
    node: str | None = None
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What the engine may know about the world; the caller computes it (the engine reads no
    clock and no settings)."""

    channel: str = "webchat"
    within_business_hours: bool = True
    now: datetime | None = None  # aware; needed for "today"/"tomorrow" in date questions
    language: str | None = None  # "en", "es", "pt"; None: the definition's language


@dataclass(slots=True)
class StepResult:
    """The new state to store, the replies to send in order, the actions to perform.

    `error` is None, or {"code", "message", "node"} when the step could not run (a loop, an
    invalid definition, an unknown node); then `state` is the state passed in, unchanged, and
    there are no replies or actions.
    """

    state: dict[str, Any] | None
    replies: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DefinitionError:
    """A problem in a definition, and where it is.

    In a node: `node` is its id and `field` the dotted path inside it ("quick_replies.0.next";
    "" for the node as a whole). Elsewhere: `node` is None and `field` the dotted path from the
    definition's root ("settings.fallback_limit"). `path` is always the path from the root.
    """

    node: str | None
    field: str
    message: str

    @property
    def path(self) -> str:
        if self.node is None:
            return self.field
        return ".".join(part for part in ("nodes", self.node, self.field) if part)

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "field": self.field, "path": self.path, "message": self.message}
