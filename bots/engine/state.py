"""The conversation state the engine keeps between steps, and the engine's own error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1


class FlowError(Exception):
    """The step cannot go on; becomes StepResult.error."""

    def __init__(self, code: str, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.node = code, message, node

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "node": self.node}


@dataclass(slots=True)
class Inbound:
    """A visitor's message or button press, with its intent if it passed the threshold."""

    kind: str  # "message" or "quick_reply"
    text: str
    payload: str | None
    intent: str | None
    confidence: float | None = None

    def dump(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "text": self.text,
            "payload": self.payload,
            "intent": self.intent,
            **({} if self.confidence is None else {"confidence": self.confidence}),
        }


@dataclass(slots=True)
class State:
    """The conversation as the engine sees it; dumped to a JSON-safe dict between steps.

    status: "waiting" (for the visitor's input at `node`), "idle" (the flow ran out; the next
    message goes to the main node), "http" (an HTTP request of `node` is pending), "handoff"
    (agents have the conversation), "ended". "running" exists only inside a step.
    """

    status: str = "idle"
    node: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    fallbacks: int = 0
    intent: str | None = None
    seq: int = 0
    queue: list[dict[str, Any]] = field(default_factory=list)
    handoff: dict[str, Any] | None = None

    @classmethod
    def load(cls, data: dict[str, Any]) -> State:
        if not isinstance(data, dict) or data.get("v") != STATE_VERSION:
            raise FlowError("invalid_state", f"not a conversation state of version {STATE_VERSION}")
        try:
            return cls(
                status=str(data["status"]),
                node=data.get("node"),
                vars=dict(data.get("vars") or {}),
                retries=int(data.get("retries", 0)),
                fallbacks=int(data.get("fallbacks", 0)),
                intent=data.get("intent"),
                seq=int(data.get("seq", 0)),
                queue=list(data.get("queue") or []),
                handoff=dict(data["handoff"]) if data.get("handoff") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FlowError("invalid_state", f"the conversation state is damaged: {exc}") from exc

    def dump(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "status": self.status,
            "node": self.node,
            "vars": self.vars,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "intent": self.intent,
            "seq": self.seq,
            "queue": self.queue,
            "handoff": self.handoff,
        }

    def wait(self, status: str, node: str | None) -> None:
        self.status, self.node = status, node
