"""step(): one event in; the conversation's next state, the replies and the actions out.

The engine trusts a definition that `validate_definition` accepted, but never crashes on one it
did not: a broken definition, an unknown node or a loop comes back as `StepResult.error`, with
the state passed in left as it was. docs/flows.md describes the behaviour in the words of the
people who write flows; this module is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bots.engine.answers import check_answer, looks_like_an_answer
from bots.engine.conditions import rule_holds
from bots.engine.patterns import PatternError
from bots.engine.state import FlowError, Inbound, State
from bots.engine.templates import lookup, render, render_url, render_value
from bots.engine.text import close_words, same_words
from bots.engine.texts import default_text
from bots.engine.types import (
    DEFAULT_FALLBACK_LIMIT,
    DEFAULT_INTENT_THRESHOLD,
    EVENT_TYPES,
    GLOBAL_INTENT_THRESHOLD_AT_INPUT,
    HUMAN,
    REASON_FALLBACK_LIMIT,
    REASON_VISITOR_REQUEST,
    RESTART,
    Context,
    Event,
    StepResult,
)

# Nodes one step may pass through without waiting for the visitor; past it the flow loops.
MAX_NODE_VISITS = 250
# Messages kept while an HTTP request is pending (the latest ones).
MAX_QUEUED_MESSAGES = 5
DEFAULT_HTTP_TIMEOUT = 10
DEFAULT_MAX_RETRIES = 2

Node = dict[str, Any]


def step(
    definition: dict[str, Any], state: dict[str, Any] | None, event: Event, context: Context
) -> StepResult:
    """Run one event through the flow. Pure: no I/O, no clock, no randomness."""
    try:
        run = _Run(definition, context)
        current = None if state is None else State.load(state)
        new = run.handle(current, event)
    except FlowError as exc:
        return StepResult(state=state, error=exc.as_dict())
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        error = {
            "code": "invalid_definition",
            "message": f"{type(exc).__name__}: {exc}",
            "node": None,
        }
        return StepResult(state=state, error=error)
    if new is None:  # the event changed nothing
        return StepResult(state=state)
    return StepResult(state=new.dump(), replies=run.replies, actions=run.actions)


class _Run:
    """One step: the definition indexed, the context, and what the step has said and done."""

    def __init__(self, definition: dict[str, Any], context: Context) -> None:
        self.definition = definition
        self.context = context
        self.nodes: dict[str, Node] = definition["nodes"]
        self.settings: dict[str, Any] = definition.get("settings") or {}
        self.default_language: str = self.settings.get("language") or "en"
        self.language: str = context.language or self.default_language
        # The visitor's language's texts; what it leaves out is said in the default language.
        self.translation: dict[str, Any] = (
            (definition.get("translations") or {}).get(self.language) or {}
            if self.language != self.default_language
            else {}
        )
        # The language of the engine's own words (a retry, the fallback, the handoff): the
        # visitor's where the definition speaks it (its default, or a translation), else the
        # default language. A Spanish bot with no English texts answers an English browser's
        # visitor in Spanish throughout, not its questions in Spanish and their retries in
        # English (as its test chat, in an English dashboard, showed).
        self.speaking: str = (
            self.language
            if self.language == self.default_language or self.translation
            else self.default_language
        )
        self.threshold: float = self.settings.get("intent_threshold", DEFAULT_INTENT_THRESHOLD)
        self.fallback_limit: int | None = self.settings.get(
            "fallback_limit", DEFAULT_FALLBACK_LIMIT
        )
        self.start: str = definition["start"]
        self.main: str = definition.get("main") or self.start
        self.global_intents: dict[str, str | None] = {
            HUMAN: None,
            RESTART: None,
            **(definition.get("global_intents") or {}),
        }
        self.replies: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.visits = 0

    # -- events -----------------------------------------------------------------------------

    def handle(self, state: State | None, event: Event) -> State | None:
        """The new state, or None when the event changes nothing."""
        if event.type not in EVENT_TYPES:
            raise FlowError("invalid_event", f"unknown event type {event.type!r}")
        fresh = state is None or state.status == "ended"
        if event.type == "start":
            return self._new(None) if fresh else None
        if event.type in ("message", "quick_reply"):
            inbound = self._inbound(event)
            if fresh:
                return self._new(inbound)
            assert state is not None
            if state.status == "handoff":
                return None  # the agents have the conversation
            if state.status == "http":
                if not self._global(state, inbound):
                    state.queue = [*state.queue, inbound.dump()][-MAX_QUEUED_MESSAGES:]
                return state
            self._receive(state, inbound)
            return state
        if event.type == "handback":
            return self._handback(state, event)
        if state is None:
            return None
        return self._http_response(state, event)

    def _inbound(self, event: Event) -> Inbound:
        accepted = event.intent is not None and (
            event.confidence is None or event.confidence >= self.threshold
        )
        return Inbound(
            kind=event.type,
            text=event.text or "",
            payload=event.payload,
            intent=event.intent if accepted and event.type == "message" else None,
            confidence=event.confidence if accepted and event.type == "message" else None,
        )

    def _new(self, inbound: Inbound | None) -> State:
        state = State()
        if inbound is not None and inbound.intent != RESTART and self._global(state, inbound):
            return state
        self._start(state, inbound)
        return state

    def _start(self, state: State, inbound: Inbound | None = None) -> None:
        """From the top: variables as the definition sets them, the welcome text, the start node.

        A conversation opened by a message whose intent the first router waits for goes
        straight on to that intent's node (the visitor spoke first, e.g. on WhatsApp).
        """
        state.vars = dict(self.definition.get("variables") or {})
        state.retries = state.fallbacks = 0
        state.queue, state.handoff, state.intent = [], None, None
        welcome = render(self._setting_text("welcome_text"), state.vars)
        if welcome:
            self._reply(welcome)
        self._go(state, self.start)
        if inbound is not None and inbound.intent is not None and state.status == "waiting":
            node = self._node(state.node)
            if node["type"] == "router" and inbound.intent in node["routes"]:
                state.intent = inbound.intent
                self._route(state, node, inbound)

    def _receive(self, state: State, inbound: Inbound) -> None:
        """The node's own input first (a quick reply, a question's answer or a try at one),
        then the global intents, then the node again (its fallback or retry)."""
        state.intent = inbound.intent
        if state.status == "waiting" and self._takes(state, self._node(state.node), inbound):
            node = self._node(state.node)
            self._RECEIVE[node["type"]](self, state, node, inbound)
            return
        if self._global(state, inbound):
            return
        if state.status == "idle":
            self._deliver(state, self.main, inbound)
            return
        node = self._node(state.node)
        receive = self._RECEIVE.get(node["type"])
        if receive is None:
            raise FlowError(
                "invalid_state", f"the conversation waits at a {node['type']} node", state.node
            )
        receive(self, state, node, inbound)

    def _takes(self, state: State, node: Node, inbound: Inbound) -> bool:
        """Whether the waiting node takes the input as its own: a quick reply it shows, a
        valid answer to a question that checks answers, or a text that looks like a failed
        try at one ("ana @example.com" at an email question gets the retry text, never a
        handoff). A free-text question takes anything: a clear global intent goes first."""
        if node["type"] == "message" and node.get("quick_replies"):
            return self._chosen_reply(state.node, node, inbound) is not None
        if node["type"] == "question" and node.get("validation", "text") != "text":
            if inbound.kind == "quick_reply" and inbound.payload:
                return True
            valid, _ = self._answer(state, node, inbound.text)
            return valid or looks_like_an_answer(node, inbound.text)
        return False

    def _global(self, state: State, inbound: Inbound) -> bool:
        """Handle a global intent ("human", "restart", or the definition's); False if it is none."""
        intent = inbound.intent
        if inbound.kind != "message" or intent is None or intent not in self.global_intents:
            return False
        if state.status == "waiting" and not self._interrupts(state, inbound):
            return False
        confidence = 1.0 if inbound.confidence is None else inbound.confidence
        if state.status == "waiting" and confidence < GLOBAL_INTENT_THRESHOLD_AT_INPUT:
            return False  # the node waits for an answer: only a clear request interrupts it
        target = self.global_intents[intent]
        if target is None and intent not in (HUMAN, RESTART):
            return False  # only the built-in ones have a behaviour of their own
        state.intent = intent
        state.queue, state.retries, state.fallbacks = [], 0, 0
        if target is not None:
            self._go(state, target)
        elif intent == HUMAN:
            self._handoff(state, None, reason=REASON_VISITOR_REQUEST, team=None, text=None)
        else:
            self._start(state)
        return True

    def _interrupts(self, state: State, inbound: Inbound) -> bool:
        """Whether a global intent may interrupt the node the visitor's message answers. Not
        a question with ``interruptible: false``; nor a question that checks its answers
        (every validation but text) when the message is a valid answer: "staff@example.com"
        is an email address, whatever it looks like to the intent matcher."""
        node = self._node(state.node)
        if node.get("interruptible", True) is False:
            return False
        if node["type"] != "question" or node.get("validation", "text") == "text":
            return True
        valid, _ = self._answer(state, node, inbound.text)
        return not valid

    def _answer(self, state: State, node: Node, text: str) -> tuple[bool, Any]:
        """check_answer on the question the conversation waits at (state.node); a pattern RE2
        cannot run (in a version published before RE2) is the flow's error, not a crash."""
        try:
            return check_answer(node, text, language=self.language, now=self.context.now)
        except PatternError as exc:
            raise FlowError("invalid_pattern", f"pattern {exc}", state.node) from None

    def _http_response(self, state: State, event: Event) -> State | None:
        if state.status != "http" or event.request_id not in (None, state.seq):
            return None  # nothing pending, or the answer to a request given up since
        node = self._node(state.node)
        http = event.http or {}
        status = http.get("status")
        ok = http.get("error") is None and isinstance(status, int) and 200 <= status < 300
        if node.get("status_variable"):
            state.vars[node["status_variable"]] = status if isinstance(status, int) else None
        if ok:
            body = http.get("json")
            saved = {name: lookup(body, path) for name, path in (node.get("save") or {}).items()}
            state.vars.update(saved)
        self._go(state, node.get("next") if ok else node["on_failure"])
        while state.queue and state.status in ("waiting", "idle"):
            queued = state.queue.pop(0)
            self._receive(state, Inbound(**queued))
        if state.status in ("handoff", "ended"):
            state.queue = []
        return state

    def _handback(self, state: State | None, event: Event) -> State:
        """Resume wherever the conversation was: a bot handoff, or an agent's take-over at any
        point of the flow (even before the flow started)."""
        target = event.node or self.start
        self._node(target)
        if state is None or state.status == "ended":
            state = State()
            state.vars = dict(self.definition.get("variables") or {})
        state.handoff, state.intent = None, None
        state.retries = state.fallbacks = 0
        self._go(state, target)
        return state

    # -- moving through the flow ------------------------------------------------------------

    def _node(self, node_id: str | None) -> Node:
        node = self.nodes.get(node_id)  # type: ignore[arg-type]
        if node is None:
            raise FlowError("unknown_node", f"there is no node with id {node_id!r}", node_id)
        return node

    def _go(self, state: State, target: str | None) -> None:
        """Enter target and follow the flow until a node waits or the flow runs out."""
        state.wait("running", None)
        while target is not None:
            self.visits += 1
            if self.visits > MAX_NODE_VISITS:
                raise FlowError(
                    "loop",
                    f"the flow passed through {MAX_NODE_VISITS} nodes without waiting for the "
                    "visitor; it loops",
                    target,
                )
            node = self._node(target)
            target = self._ENTER[node["type"]](self, state, target, node)
        if state.status == "running":
            state.wait("idle", None)

    def _deliver(self, state: State, target: str, inbound: Inbound) -> None:
        """Go to target with the visitor's message: a router routes it; other nodes start."""
        node = self._node(target)
        if node["type"] != "router":
            self._go(state, target)
            return
        self.visits += 1
        state.wait("waiting", target)
        self._route(state, node, inbound)

    def _reply(
        self,
        text: str,
        quick_replies: list[dict[str, str]] | None = None,
        media: dict[str, str] | None = None,
    ) -> None:
        self.replies.append({"text": text, "quick_replies": quick_replies or [], "media": media})

    def _fallback(self, state: State, node: Node, inbound: Inbound) -> None:
        """The visitor was not understood: hand off past the limit, else the router's fallback
        node, else the fallback text (and the same buttons again), still waiting here. A typed
        text is also handed out as an "unmatched" action: the bot's owner may teach it to an
        intent (bots.services.unmatched_phrase_record)."""
        if inbound.kind == "message" and inbound.text.strip():
            self.actions.append(
                {
                    "type": "unmatched",
                    "text": inbound.text,
                    "language": self.language,
                    "node": state.node,
                }
            )
        state.fallbacks += 1
        if self.fallback_limit is not None and state.fallbacks > self.fallback_limit:
            self._handoff(state, None, reason=REASON_FALLBACK_LIMIT, team=None, text=None)
        elif node.get("fallback"):
            self._go(state, node["fallback"])
        else:
            text = self._setting_text("fallback_text") or default_text("fallback", self.speaking)
            self._reply(render(text, state.vars), self._buttons(state.node, node))

    def _handoff(
        self, state: State, node_id: str | None, *, reason: str, team: str | None, text: str | None
    ) -> None:
        template = (
            text or self._setting_text("handoff_text") or default_text("handoff", self.speaking)
        )
        # Not a reply of the turn: the handoff's ``message`` is said only if a person can take
        # the conversation; when nobody can, the away message is said instead (whoever
        # carries out the action decides: agents.services.conversation_hand_off). "I'm
        # getting a person" followed at once by "nobody is available" told the visitor two
        # contrary things.
        message = render(template, state.vars)
        self.actions.append(
            {
                "type": "handoff",
                "reason": reason,
                "team": team,
                "message": message,
                # The flow's own words for this handoff (its node's text), not the bot's or the
                # engine's "I'm connecting you with a person".
                "own_text": bool(text),
                "node": node_id,
                "within_business_hours": self.context.within_business_hours,
            }
        )
        state.wait("handoff", node_id)
        state.handoff = {"reason": reason, "team": team}
        state.queue = []

    # -- entering a node: returns the next node, or None to stop (waiting, or the flow ends) --

    def _enter_message(self, state: State, node_id: str, node: Node) -> str | None:
        media = node.get("media")
        self._reply(
            render(self._text(node_id, node, "text"), state.vars),
            self._buttons(node_id, node),
            {"url": render_url(media["url"], state.vars), "kind": media["kind"]} if media else None,
        )
        if node.get("quick_replies"):
            state.wait("waiting", node_id)
            return None
        return node.get("next")

    def _enter_question(self, state: State, node_id: str, node: Node) -> str | None:
        state.retries = 0
        self._reply(
            render(self._text(node_id, node, "text"), state.vars), self._buttons(node_id, node)
        )
        state.wait("waiting", node_id)
        return None

    def _enter_condition(self, state: State, node_id: str, node: Node) -> str | None:
        for rule in node["rules"]:
            if rule_holds(rule, variables=state.vars, intent=state.intent, context=self.context):
                return rule["next"]
        return node.get("else")

    def _enter_set(self, state: State, node_id: str, node: Node) -> str | None:
        # All values see the variables as they were before the node: an object's key order
        # is not kept by every store (PostgreSQL's jsonb sorts keys).
        before = dict(state.vars)
        state.vars.update(
            {name: render_value(value, before) for name, value in node["variables"].items()}
        )
        return node.get("next")

    def _enter_router(self, state: State, node_id: str, node: Node) -> str | None:
        state.wait("waiting", node_id)
        return None

    def _enter_http(self, state: State, node_id: str, node: Node) -> str | None:
        state.seq += 1
        variables = state.vars
        self.actions.append(
            {
                "type": "http_request",
                "method": node.get("method", "GET"),
                "url": render_url(node["url"], variables),
                "headers": {
                    name: render(value, variables)
                    for name, value in (node.get("headers") or {}).items()
                },
                "body": render_value(node.get("body"), variables),
                "timeout": node.get("timeout", DEFAULT_HTTP_TIMEOUT),
                "node": node_id,
                "request_id": state.seq,
            }
        )
        state.wait("http", node_id)
        return None

    def _enter_capture_lead(self, state: State, node_id: str, node: Node) -> str | None:
        fields = {name: state.vars.get(name) for name in node["variables"]}
        fields = {name: value for name, value in fields.items() if value not in (None, "")}
        if fields:
            self.actions.append({"type": "capture_lead", "fields": fields, "node": node_id})
        return node.get("next")

    def _enter_handoff(self, state: State, node_id: str, node: Node) -> str | None:
        self._handoff(
            state,
            node_id,
            reason=node["reason"],
            team=node.get("team"),
            text=self._text(node_id, node, "text") or None,
        )
        return None

    def _enter_end(self, state: State, node_id: str, node: Node) -> str | None:
        text = render(self._text(node_id, node, "text"), state.vars)
        if text:
            self._reply(text)
        self.actions.append({"type": "end", "node": node_id})
        state.wait("ended", node_id)
        return None

    # -- receiving the visitor's input at a waiting node ------------------------------------

    def _chosen_reply(self, node_id: str | None, node: Node, inbound: Inbound) -> Node | None:
        """The quick reply the visitor chose: the button pressed (its payload), or typed: its
        title (in the default language or the visitor's) or payload with case, accents and a
        typo or two forgiven, or its number ("2" for the second)."""
        replies = node["quick_replies"]
        chosen = next((r for r in replies if _payload(r) == inbound.payload), None)
        if chosen is not None or not inbound.text:
            return chosen
        text = inbound.text.strip().rstrip(".)")
        if text.isdigit() and 1 <= int(text) <= len(replies):
            return replies[int(text) - 1]
        translated = self._translated(node_id).get("quick_replies") or []
        names = [
            [r["title"], _payload(r), *([translated[i]] if i < len(translated) else [])]
            for i, r in enumerate(replies)
        ]
        for match in (same_words, close_words):
            for reply, titles in zip(replies, names, strict=True):
                if any(isinstance(t, str) and match(inbound.text, t) for t in titles):
                    return reply
        return None

    def _receive_message(self, state: State, node: Node, inbound: Inbound) -> None:
        """Quick replies: the button pressed, or a typed text that names one."""
        chosen = self._chosen_reply(state.node, node, inbound)
        if chosen is not None:
            state.fallbacks = 0
            if node.get("variable"):
                state.vars[node["variable"]] = _payload(chosen)
            self._go(state, chosen.get("next", node.get("next")))
        elif node.get("other"):
            self._deliver(state, node["other"], inbound)
        else:
            self._fallback(state, node, inbound)

    def _receive_question(self, state: State, node: Node, inbound: Inbound) -> None:
        answer = (
            inbound.payload if inbound.kind == "quick_reply" and inbound.payload else inbound.text
        )
        valid, value = self._answer(state, node, answer)
        if valid:
            state.vars[node["variable"]] = value
            state.retries = state.fallbacks = 0
            self._go(state, node.get("next"))
            return
        state.retries += 1
        if state.retries > node.get("max_retries", DEFAULT_MAX_RETRIES):
            state.retries = 0
            self._go(state, node.get("on_max_retries", node.get("next")))
            return
        text = self._text(state.node, node, "retry_text") or self._retry_text(node, answer)
        self._reply(render(text, state.vars), self._buttons(state.node, node))

    def _retry_text(self, node: Node, answer: str) -> str:
        """The engine's retry for the question's kind; for a text answer of the wrong length,
        which way it is wrong."""
        kind = node.get("validation", "text")
        length = len((answer or "").strip())
        if kind == "text" and length:
            if length < node.get("min_length", 1):
                return default_text("retry.too_short", self.speaking).format(n=node["min_length"])
            if "max_length" in node and length > node["max_length"]:
                return default_text("retry.too_long", self.speaking).format(n=node["max_length"])
        return default_text(f"retry.{kind}", self.speaking)

    def _route(self, state: State, node: Node, inbound: Inbound) -> None:
        """An intent router: the intent's node, or the fallback."""
        intent = inbound.intent
        if inbound.kind == "quick_reply" and inbound.payload in node["routes"]:
            intent = state.intent = inbound.payload
        if intent in node["routes"]:
            state.fallbacks = 0
            self._go(state, node["routes"][intent])
        else:
            self._fallback(state, node, inbound)

    # -- the visitor's language ------------------------------------------------------------

    def _translated(self, node_id: str | None) -> dict[str, Any]:
        return ((self.translation.get("nodes") or {}).get(node_id or "")) or {}

    def _text(self, node_id: str | None, node: Node, field: str) -> str:
        """A node's text in the visitor's language, else in the default language."""
        translated = self._translated(node_id).get(field)
        return translated if isinstance(translated, str) and translated else node.get(field) or ""

    def _setting_text(self, key: str) -> str:
        """The bot's welcome, fallback or handoff text in the visitor's language, else in the
        default language."""
        translated = (self.translation.get("texts") or {}).get(key)
        return (
            translated
            if isinstance(translated, str) and translated
            else self.settings.get(key) or ""
        )

    def _buttons(self, node_id: str | None, node: Node) -> list[dict[str, str]]:
        """The quick replies a node shows (titles in the visitor's language where given), or
        a choice question's choices."""
        if node.get("quick_replies"):
            titles = self._translated(node_id).get("quick_replies") or []
            return [
                {
                    "title": titles[i] if i < len(titles) and titles[i] else r["title"],
                    "payload": _payload(r),
                }
                for i, r in enumerate(node["quick_replies"])
            ]
        if node.get("type") == "question" and node.get("validation") == "choice":
            return [{"title": choice, "payload": choice} for choice in node["choices"]]
        return []

    _ENTER: dict[str, Callable[[_Run, State, str, Node], str | None]] = {
        "message": _enter_message,
        "question": _enter_question,
        "condition": _enter_condition,
        "set": _enter_set,
        "router": _enter_router,
        "http": _enter_http,
        "capture_lead": _enter_capture_lead,
        "handoff": _enter_handoff,
        "end": _enter_end,
    }
    _RECEIVE: dict[str, Callable[[_Run, State, Node, Inbound], None]] = {
        "message": _receive_message,
        "question": _receive_question,
        "router": _route,
    }


def _payload(reply: dict[str, Any]) -> str:
    return reply.get("payload") or reply["title"]
