"""The engine, node type by node type, through conversations as a visitor has them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bots.engine import (
    MAX_NODE_VISITS,
    Context,
    Event,
    StepResult,
    step,
    validate_definition,
)

NOW = datetime(2025, 3, 14, 15, 30, tzinfo=UTC)


def flow(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A definition of nodes written with their "id", starting at the first; it must be valid."""
    by_id = {node["id"]: {k: v for k, v in node.items() if k != "id"} for node in nodes}
    definition = {"start": nodes[0]["id"], "nodes": by_id, **top}
    assert validate_definition(definition) == []
    return definition


class Chat:
    """One conversation: sends events, keeps the state, remembers the last result."""

    def __init__(self, definition: dict[str, Any], **context: Any) -> None:
        self.definition = definition
        self.context = Context(**{"now": NOW, **context})
        self.state: dict[str, Any] | None = None
        self.result: StepResult | None = None

    def send(self, event: Event) -> StepResult:
        before = copy.deepcopy(self.state)
        definition_before = copy.deepcopy(self.definition)
        result = step(self.definition, self.state, event, self.context)
        assert self.state == before, "step changed the state passed in"
        assert self.definition == definition_before, "step changed the definition"
        json.dumps(result.state)  # always storable in a JSONField
        assert result.error is None, result.error
        self.state, self.result = result.state, result
        return result

    def start(self) -> list[str]:
        return texts(self.send(Event("start")))

    def say(
        self, text: str, intent: str | None = None, confidence: float | None = 1.0
    ) -> list[str]:
        event = Event(
            "message", text=text, intent=intent, confidence=confidence if intent else None
        )
        return texts(self.send(event))

    def press(self, payload: str, title: str | None = None) -> list[str]:
        return texts(self.send(Event("quick_reply", payload=payload, text=title)))

    def http(
        self, status: int | None = 200, body: Any = None, error: str | None = None
    ) -> list[str]:
        request_id = self.state["seq"] if self.state else None
        event = Event(
            "http_response",
            http={"status": status, "json": body, "error": error},
            request_id=request_id,
        )
        return texts(self.send(event))

    @property
    def status(self) -> str:
        return self.state["status"]

    @property
    def node(self) -> str | None:
        return self.state["node"]

    @property
    def vars(self) -> dict[str, Any]:
        return self.state["vars"]

    @property
    def actions(self) -> list[dict[str, Any]]:
        return self.result.actions


def texts(result: StepResult) -> list[str]:
    return [reply["text"] for reply in result.replies]


def ask(variable: str, validation: str = "text", **extra: Any) -> dict[str, Any]:
    return {
        "id": "ask",
        "type": "question",
        "text": f"Your {variable}?",
        "variable": variable,
        "validation": validation,
        "next": "thanks",
        **extra,
    }


THANKS = {"id": "thanks", "type": "message", "text": "Got {{answer}}."}


# -- message -----------------------------------------------------------------------------------


def test_message_replies_with_templated_text_and_goes_on():
    chat = Chat(
        flow(
            {"id": "a", "type": "message", "text": "Hello {{name}}!", "next": "b"},
            {"id": "b", "type": "message", "text": "Plan: {{plan|free}}, {{missing}}."},
            variables={"name": "Ana"},
        )
    )
    assert chat.start() == ["Hello Ana!", "Plan: free, ."]
    assert chat.status == "idle"


def test_message_with_media_replies_with_its_url_and_kind():
    chat = Chat(
        flow(
            {
                "id": "a",
                "type": "message",
                "media": {"url": "https://cdn.example.com/{{sku}}.png", "kind": "image"},
            },
            variables={"sku": "a b/c"},
        )
    )
    chat.start()
    assert chat.result.replies == [
        {
            "text": "",
            "quick_replies": [],
            "media": {"url": "https://cdn.example.com/a%20b%2Fc.png", "kind": "image"},
        }
    ]


def test_welcome_text_comes_before_the_start_node():
    chat = Chat(
        flow({"id": "a", "type": "message", "text": "Menu"}, settings={"welcome_text": "Welcome!"})
    )
    assert chat.start() == ["Welcome!", "Menu"]


MENU = {
    "id": "menu",
    "type": "message",
    "text": "What would you like?",
    "quick_replies": [
        {"title": "Opening hours", "payload": "hours", "next": "hours"},
        {"title": "Atención al cliente", "next": "support"},
        {"title": "Anything else"},
    ],
    "variable": "choice",
    "next": "other_topic",
}
HOURS = {"id": "hours", "type": "message", "text": "9 to 5."}
SUPPORT = {"id": "support", "type": "message", "text": "Support it is."}
OTHER_TOPIC = {"id": "other_topic", "type": "message", "text": "Tell me more."}


def test_quick_replies_are_shown_and_the_conversation_waits():
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC))
    chat.start()
    assert chat.result.replies[0]["quick_replies"] == [
        {"title": "Opening hours", "payload": "hours"},
        {"title": "Atención al cliente", "payload": "Atención al cliente"},
        {"title": "Anything else", "payload": "Anything else"},
    ]
    assert (chat.status, chat.node) == ("waiting", "menu")


def test_pressing_a_quick_reply_follows_it_and_stores_its_payload():
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC))
    chat.start()
    assert chat.press("hours", "Opening hours") == ["9 to 5."]
    assert chat.vars["choice"] == "hours"


@pytest.mark.parametrize(
    "typed", ["atencion al cliente", "ATENCIÓN AL CLIENTE!", "Atención al cliente"]
)
def test_typing_a_quick_reply_title_counts_as_pressing_it(typed):
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC))
    chat.start()
    assert chat.say(typed) == ["Support it is."]
    assert chat.vars["choice"] == "Atención al cliente"


def test_a_quick_reply_without_next_follows_the_message_next():
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC))
    chat.start()
    assert chat.say("anything else") == ["Tell me more."]


def test_unmatched_text_at_quick_replies_gives_the_fallback_and_the_buttons_again():
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC, settings={"fallback_text": "Pardon?"}))
    chat.start()
    assert chat.say("bananas") == ["Pardon?"]
    assert len(chat.result.replies[0]["quick_replies"]) == 3
    assert (chat.status, chat.node, chat.state["fallbacks"]) == ("waiting", "menu", 1)


def test_unmatched_text_at_quick_replies_goes_to_other_and_is_routed_there():
    menu = {**MENU, "other": "router"}
    router = {"id": "router", "type": "router", "routes": {"pricing": "prices"}}
    prices = {"id": "prices", "type": "message", "text": "Cheap."}
    intents = [{"name": "pricing", "phrases": ["how much"]}]
    chat = Chat(flow(menu, HOURS, SUPPORT, OTHER_TOPIC, router, prices, intents=intents))
    chat.start()
    assert chat.say("how much is it", intent="pricing") == ["Cheap."]


# -- question and its validations ----------------------------------------------------------------

VALID_ANSWERS = [
    ("text", {}, "  Ana Silva ", "Ana Silva"),
    ("text", {"min_length": 2, "max_length": 5}, "Ana", "Ana"),
    ("email", {}, "Ana.Silva@Example.COM", "Ana.Silva@example.com"),
    ("phone", {}, "+1 (555) 123-4567", "+15551234567"),
    ("phone", {}, "555.123.4567", "5551234567"),
    ("number", {}, "42", 42),
    ("number", {}, "1,234.5", 1234.5),
    ("number", {"min": 18, "max": 120, "integer": True}, "18", 18),
    ("date", {}, "2025-03-20", "2025-03-20"),
    ("date", {}, "03/20/2025", "2025-03-20"),
    ("date", {}, "tomorrow", "2025-03-15"),
    ("date", {"min": "today"}, "today", "2025-03-14"),
    ("choice", {"choices": ["Small", "Médium", "Large"]}, "medium", "Médium"),
    ("choice", {"choices": ["Small", "Médium", "Large"]}, "3", "Large"),
    ("regex", {"pattern": r"[A-Z]{3}-\d{4}"}, "ABC-1234", "ABC-1234"),
    ("regex", {"pattern": r"[A-Z]{3}-\d{4}", "ignore_case": True}, "abc-1234", "abc-1234"),
]


@pytest.mark.parametrize(("kind", "extra", "typed", "stored"), VALID_ANSWERS)
def test_a_valid_answer_is_stored_and_the_flow_goes_on(kind, extra, typed, stored):
    chat = Chat(flow(ask("answer", kind, **extra), THANKS))
    assert chat.start() == ["Your answer?"]
    replies = chat.say(typed)
    assert chat.vars["answer"] == stored
    assert replies == [f"Got {stored}."]
    assert chat.status == "idle"


INVALID_ANSWERS = [
    ("text", {}, "   "),
    ("text", {"min_length": 2, "max_length": 5}, "Anastasia"),
    ("email", {}, "ana@example"),
    ("email", {}, "not an email"),
    ("phone", {}, "12345"),
    ("phone", {}, "call me maybe"),
    ("number", {}, "forty"),
    ("number", {"min": 18}, "17"),
    ("number", {"max": 10}, "11"),
    ("number", {"integer": True}, "2.5"),
    ("date", {}, "2025-02-30"),
    ("date", {}, "next week"),
    ("date", {"min": "today"}, "2025-03-13"),
    ("date", {"max": "2025-03-31"}, "2025-04-01"),
    ("choice", {"choices": ["Small", "Large"]}, "huge"),
    ("choice", {"choices": ["Small", "Large"]}, "3"),
    ("regex", {"pattern": r"[A-Z]{3}-\d{4}"}, "ABC-12345"),
]


@pytest.mark.parametrize(("kind", "extra", "typed"), INVALID_ANSWERS)
def test_an_invalid_answer_is_asked_again_with_the_retry_text(kind, extra, typed):
    chat = Chat(flow(ask("answer", kind, retry_text="Again, please.", **extra), THANKS))
    chat.start()
    assert chat.say(typed) == ["Again, please."]
    assert "answer" not in chat.vars
    assert (chat.status, chat.node, chat.state["retries"]) == ("waiting", "ask", 1)


def test_a_question_without_retry_text_uses_the_kind_text_in_the_bot_language():
    chat = Chat(flow(ask("email", "email"), THANKS, settings={"language": "es"}))
    chat.start()
    assert chat.say("nope") == ["Eso no parece un correo electrónico. Inténtalo de nuevo."]
    # A visitor's language the flow speaks (a translation): its words in it.
    translated = {"pt": {"nodes": {"ask": {"text": "Seu e-mail?"}}}}
    chat = Chat(flow(ask("email", "email"), THANKS, translations=translated), language="pt")
    chat.start()
    assert chat.say("nope") == ["Isso não parece um endereço de e-mail. Tente novamente."]


def test_a_text_answer_of_the_wrong_length_is_told_which_way():
    """ "ay" to a question asking at least 5 characters got "Please type an answer."."""
    chat = Chat(flow(ask("problem", min_length=5, max_length=20), THANKS))
    chat.start()
    assert chat.say("ay") == ["Please write a little more: at least 5 characters."]
    assert chat.say("x" * 21) == ["Please make it shorter: at most 20 characters."]
    chat = Chat(flow(ask("problem", min_length=5), THANKS, settings={"language": "es"}))
    chat.start()
    assert chat.say("ay") == ["Por favor, escribe un poco más: al menos 5 caracteres."]


def test_the_engines_words_are_in_the_language_the_flow_speaks_to_the_visitor():
    """A Spanish flow with no English texts, an English browser (the dashboard's test chat):
    its question in Spanish, so its retry, fallback and handoff too, not a mix."""
    spanish = flow(ask("email", "email", text="¿Tu correo?"), THANKS, settings={"language": "es"})
    chat = Chat(spanish, language="en")
    chat.start()
    assert chat.say("nope") == ["Eso no parece un correo electrónico. Inténtalo de nuevo."]
    chat = Chat(flow(ask("email", "email"), THANKS), language="pt")  # English only
    chat.start()
    assert chat.say("nope") == ["That doesn't look like an email address. Please try again."]


def test_numbers_and_dates_follow_the_conversation_language():
    chat = Chat(flow(ask("answer", "number"), THANKS), language="es")
    chat.start()
    chat.say("1.234,5")
    assert chat.vars["answer"] == 1234.5
    chat = Chat(flow(ask("answer", "date"), THANKS), language="pt")
    chat.start()
    chat.say("20/03/2025")
    assert chat.vars["answer"] == "2025-03-20"


def test_relative_dates_need_the_time_from_the_context():
    chat = Chat(flow(ask("answer", "date", retry_text="Date?"), THANKS), now=None)
    chat.start()
    assert chat.say("mañana") == ["Date?"]


def test_a_choice_question_shows_its_choices_and_accepts_a_pressed_one():
    chat = Chat(flow(ask("answer", "choice", choices=["Small", "Large"]), THANKS))
    chat.start()
    assert chat.result.replies[0]["quick_replies"] == [
        {"title": "Small", "payload": "Small"},
        {"title": "Large", "payload": "Large"},
    ]
    assert chat.press("Large") == ["Got Large."]


def test_after_max_retries_the_flow_goes_to_on_max_retries():
    giving_up = {"id": "giving_up", "type": "message", "text": "Let's skip that."}
    question = ask("answer", "email", max_retries=2, on_max_retries="giving_up", retry_text="?")
    chat = Chat(flow(question, THANKS, giving_up))
    chat.start()
    assert chat.say("one") == ["?"]
    assert chat.say("two") == ["?"]
    assert chat.say("three") == ["Let's skip that."]
    assert "answer" not in chat.vars
    assert chat.state["retries"] == 0


def test_with_no_retries_allowed_the_first_invalid_answer_moves_on_to_next():
    chat = Chat(flow(ask("answer", "number", max_retries=0), THANKS))
    chat.start()
    assert chat.say("lots") == ["Got ."]


def test_a_valid_answer_after_a_retry_resets_the_count():
    chat = Chat(flow(ask("answer", "number", max_retries=1, retry_text="?"), THANKS))
    chat.start()
    chat.say("x")
    assert chat.say("7") == ["Got 7."]
    assert chat.state["retries"] == 0


# -- condition -----------------------------------------------------------------------------------


def branch(*rules: dict[str, Any], otherwise: str | None = "no") -> list[dict[str, Any]]:
    node: dict[str, Any] = {"id": "check", "type": "condition", "rules": list(rules)}
    if otherwise:
        node["else"] = otherwise
    return [
        node,
        {"id": "yes", "type": "message", "text": "yes"},
        {"id": "no", "type": "message", "text": "no"},
    ]


VARIABLE_CASES = [
    ({"variable": "age", "op": "gte", "value": 18}, {"age": 18}, True),
    ({"variable": "age", "op": "gte", "value": 18}, {"age": "17"}, False),
    ({"variable": "age", "op": "gt", "value": 18}, {"age": "19"}, True),
    ({"variable": "age", "op": "lt", "value": 18}, {"age": 12.5}, True),
    ({"variable": "age", "op": "lte", "value": 18}, {"age": "abc"}, False),
    ({"variable": "plan", "value": "Pró"}, {"plan": "pro"}, True),
    ({"variable": "plan", "op": "eq", "value": "pro"}, {}, False),
    ({"variable": "plan", "op": "ne", "value": "pro"}, {"plan": "free"}, True),
    (
        {"variable": "plan", "op": "eq", "value": "{{wanted}}"},
        {"plan": "pro", "wanted": "pro"},
        True,
    ),
    ({"variable": "count", "op": "eq", "value": 3}, {"count": "3"}, True),
    ({"variable": "ok", "op": "eq", "value": True}, {"ok": True}, True),
    ({"variable": "note", "op": "contains", "value": "urgent"}, {"note": "Very URGENT!"}, True),
    ({"variable": "tags", "op": "contains", "value": "vip"}, {"tags": ["new", "VIP"]}, True),
    ({"variable": "plan", "op": "in", "value": ["pro", "team"]}, {"plan": "team"}, True),
    ({"variable": "plan", "op": "in", "value": ["pro", "team"]}, {"plan": "free"}, False),
    ({"variable": "email", "op": "set"}, {"email": "a@b.co"}, True),
    ({"variable": "email", "op": "set"}, {"email": ""}, False),
    ({"variable": "email", "op": "not_set"}, {}, True),
    ({"variable": "order.status", "value": "shipped"}, {"order": {"status": "shipped"}}, True),
]


@pytest.mark.parametrize(("check", "variables", "holds"), VARIABLE_CASES)
def test_condition_on_a_variable(check, variables, holds):
    chat = Chat(flow(*branch({"when": [check], "next": "yes"}), variables=variables))
    assert chat.start() == (["yes"] if holds else ["no"])


def test_condition_on_the_channel():
    nodes = branch({"when": [{"channel": ["whatsapp", "telegram"]}], "next": "yes"})
    assert Chat(flow(*nodes), channel="whatsapp").start() == ["yes"]
    assert Chat(flow(*nodes), channel="webchat").start() == ["no"]


def test_condition_on_business_hours():
    nodes = branch({"when": [{"business_hours": True}], "next": "yes"})
    assert Chat(flow(*nodes), within_business_hours=True).start() == ["yes"]
    assert Chat(flow(*nodes), within_business_hours=False).start() == ["no"]


def test_condition_on_the_matched_intent():
    router = {"id": "router", "type": "router", "routes": {"billing": "check"}, "fallback": "check"}
    nodes = branch({"when": [{"intent": "billing"}], "next": "yes"})
    intents = [{"name": "billing", "phrases": ["my bill"]}]
    chat = Chat(flow(router, *nodes, intents=intents))
    chat.start()
    assert chat.say("my bill is wrong", intent="billing") == ["yes"]
    chat = Chat(flow(router, *nodes, intents=intents))
    chat.start()
    assert chat.say("weather?") == ["no"]


def test_condition_on_no_intent():
    router = {"id": "router", "type": "router", "routes": {"billing": "check"}, "fallback": "check"}
    nodes = branch({"when": [{"intent": None}], "next": "yes"})
    chat = Chat(flow(router, *nodes, intents=[{"name": "billing", "phrases": ["bill"]}]))
    chat.start()
    assert chat.say("hmm") == ["yes"]


def test_condition_rules_match_all_by_default_or_any():
    both = [{"variable": "a", "op": "set"}, {"variable": "b", "op": "set"}]
    assert Chat(flow(*branch({"when": both, "next": "yes"}), variables={"a": 1})).start() == ["no"]
    any_rule = {"when": both, "match": "any", "next": "yes"}
    assert Chat(flow(*branch(any_rule), variables={"a": 1})).start() == ["yes"]


def test_the_first_rule_that_holds_wins():
    nodes = branch(
        {"when": [{"variable": "a", "op": "set"}], "next": "no"},
        {"when": [{"variable": "a", "op": "set"}], "next": "yes"},
    )
    assert Chat(flow(*nodes, variables={"a": 1})).start() == ["no"]


def test_a_condition_without_else_stops_the_flow_when_nothing_holds():
    nodes = branch({"when": [{"business_hours": False}], "next": "yes"}, otherwise=None)
    chat = Chat(flow(*nodes))
    assert chat.start() == []
    assert chat.status == "idle"


# -- set -------------------------------------------------------------------------------------


def test_set_stores_literals_and_templated_values_as_of_before_the_node():
    chat = Chat(
        flow(
            {
                "id": "s",
                "type": "set",
                "variables": {
                    "greeting": "Hi {{name}}",
                    "count": 3,
                    "copy": "{{profile}}",
                    "name": "Bea",
                    "flag": None,
                },
                "next": "m",
            },
            {"id": "m", "type": "message", "text": "{{greeting}} {{count}} {{name}}"},
            variables={"name": "Ana", "profile": {"tier": "gold"}, "flag": True},
        )
    )
    assert chat.start() == ["Hi Ana 3 Bea"]
    assert chat.vars["copy"] == {"tier": "gold"}
    assert chat.vars["flag"] is None


# -- router ----------------------------------------------------------------------------------

INTENTS = [
    {"name": "pricing", "phrases": ["how much"]},
    {"name": "hours", "phrases": ["when are you open"]},
]


def routed(**settings: Any) -> dict[str, Any]:
    return flow(
        {"id": "hello", "type": "message", "text": "Ask me.", "next": "router"},
        {"id": "router", "type": "router", "routes": {"pricing": "prices", "hours": "hours"}},
        {"id": "prices", "type": "message", "text": "Cheap.", "next": "router"},
        {"id": "hours", "type": "message", "text": "9 to 5."},
        intents=INTENTS,
        settings=settings,
    )


def test_the_router_waits_and_goes_to_the_intent_node():
    chat = Chat(routed())
    assert chat.start() == ["Ask me."]
    assert (chat.status, chat.node) == ("waiting", "router")
    assert chat.say("how much?", intent="pricing") == ["Cheap."]
    assert (chat.status, chat.node) == ("waiting", "router")
    assert chat.state["intent"] == "pricing"


def test_an_intent_below_the_threshold_is_no_intent():
    chat = Chat(routed(intent_threshold=0.6, fallback_text="Pardon?"))
    chat.start()
    assert chat.say("how much?", intent="pricing", confidence=0.59) == ["Pardon?"]
    assert chat.say("how much?", intent="pricing", confidence=0.6) == ["Cheap."]


def test_the_router_fallback_node_runs_when_no_route_matches():
    definition = routed()
    definition["nodes"]["router"]["fallback"] = "hours"
    chat = Chat(definition)
    chat.start()
    assert chat.say("blah") == ["9 to 5."]
    assert chat.state["fallbacks"] == 1


def test_a_quick_reply_payload_naming_an_intent_is_routed():
    chat = Chat(routed())
    chat.start()
    assert chat.press("hours", "Hours") == ["9 to 5."]


def test_a_message_after_the_flow_ran_out_goes_to_the_main_node():
    definition = routed()
    definition["main"] = "router"
    chat = Chat(definition)
    chat.start()
    chat.say("when?", intent="hours")
    assert chat.status == "idle"
    assert chat.say("and the price?", intent="pricing") == ["Cheap."]


def test_without_main_a_message_after_the_flow_ran_out_starts_again_without_welcome():
    chat = Chat(routed(welcome_text="Welcome!"))
    assert chat.start() == ["Welcome!", "Ask me."]
    chat.say("when?", intent="hours")
    assert chat.say("thanks") == ["Ask me."]


def test_a_conversation_opened_by_a_message_with_a_routed_intent_goes_straight_there():
    chat = Chat(routed(welcome_text="Welcome!"))
    assert chat.say("how much is it?", intent="pricing") == ["Welcome!", "Ask me.", "Cheap."]


def test_a_conversation_opened_by_a_message_without_intent_just_starts():
    chat = Chat(routed(welcome_text="Welcome!"))
    assert chat.say("hi") == ["Welcome!", "Ask me."]
    assert (chat.status, chat.node) == ("waiting", "router")


# -- fallback limit --------------------------------------------------------------------------


def test_after_fallback_limit_fallbacks_the_next_one_hands_off():
    chat = Chat(
        routed(fallback_limit=2, fallback_text="Pardon?", handoff_text="A human is coming.")
    )
    chat.start()
    assert chat.say("blah") == ["Pardon?"]
    assert chat.say("blah blah") == ["Pardon?"]
    # The handoff's text is the action's message, said only if a person can come.
    assert chat.say("blah blah blah") == []
    assert chat.actions == [
        {"type": "unmatched", "text": "blah blah blah", "language": "en", "node": "router"},
        {
            "type": "handoff",
            "reason": "fallback_limit",
            "team": None,
            "message": "A human is coming.",
            "own_text": False,  # the bot's handoff_text, not a node's
            "node": None,
            "within_business_hours": True,
        },
    ]
    assert chat.status == "handoff"


def test_a_text_that_falls_back_is_handed_out_as_unmatched_and_a_button_is_not():
    chat = Chat(routed(fallback_text="Pardon?"))
    chat.start()
    assert chat.say("where do penguins live") == ["Pardon?"]
    assert chat.actions == [
        {
            "type": "unmatched",
            "text": "where do penguins live",
            "language": "en",
            "node": "router",
        }
    ]
    assert chat.press("no_such_route", "Stale") == ["Pardon?"]
    assert [a for a in chat.actions if a["type"] == "unmatched"] == []


def test_an_understood_message_resets_the_fallback_count():
    chat = Chat(routed(fallback_limit=1, fallback_text="Pardon?"))
    chat.start()
    chat.say("blah")
    chat.say("how much", intent="pricing")
    assert chat.state["fallbacks"] == 0
    assert chat.say("blah") == ["Pardon?"]


def test_a_null_fallback_limit_never_hands_off():
    chat = Chat(routed(fallback_limit=None, fallback_text="Pardon?"))
    chat.start()
    for _ in range(30):
        assert chat.say("blah") == ["Pardon?"]
    assert chat.status == "waiting"


def test_the_fallback_limit_defaults_to_two():
    chat = Chat(routed())
    chat.start()
    chat.say("a")
    chat.say("b")
    assert chat.status == "waiting"
    chat.say("c")
    assert chat.status == "handoff"


# -- global intents ----------------------------------------------------------------------------


def test_human_hands_off_from_any_waiting_node():
    chat = Chat(flow(ask("email", "email"), THANKS))
    chat.start()
    assert chat.say("let me talk to a person", intent="human") == []
    assert chat.actions[0]["message"] == "I'm connecting you with a person from our team."
    assert chat.actions[0]["reason"] == "visitor_request"
    assert chat.state["handoff"] == {"reason": "visitor_request", "team": None}


def test_restart_starts_over_with_fresh_variables_and_the_welcome():
    chat = Chat(
        flow(
            ask("email", "email"),
            THANKS,
            settings={"welcome_text": "Welcome!"},
            variables={"source": "ad"},
        )
    )
    chat.start()
    chat.say("x")
    assert chat.say("start over", intent="restart") == ["Welcome!", "Your email?"]
    assert chat.vars == {"source": "ad"}
    assert chat.state["retries"] == 0


def test_a_global_intent_below_the_threshold_is_an_ordinary_answer():
    chat = Chat(flow(ask("answer", "text"), THANKS))
    chat.start()
    assert chat.say("Human Resources", intent="human", confidence=0.1) == ["Got Human Resources."]


def test_a_question_can_refuse_interruptions():
    chat = Chat(flow(ask("answer", "text", interruptible=False), THANKS))
    chat.start()
    assert chat.say("agent", intent="human") == ["Got agent."]


@pytest.mark.parametrize(
    "validation,answer,stored",
    [
        ("email", "staff@example.com", "staff@example.com"),
        ("number", "42", 42),
        ("choice", "Agent", "Agent"),
    ],
)
def test_a_valid_answer_to_a_checked_question_is_an_answer_not_a_global_intent(
    validation, answer, stored
):
    extra = {"choices": ["Agent", "Shop"]} if validation == "choice" else {}
    chat = Chat(flow(ask("answer", validation, **extra), THANKS))
    chat.start()
    assert chat.say(answer, intent="restart", confidence=0.4) == [f"Got {answer}."]
    assert (chat.status, chat.vars["answer"]) == ("idle", stored)
    # An invalid answer that is a global intent still interrupts.
    chat = Chat(flow(ask("answer", validation, **extra), THANKS))
    chat.start()
    chat.say("talk to a human", intent="human")
    assert chat.status == "handoff"


def test_global_intents_can_go_to_a_node_of_the_definition():
    sales = {"id": "sales", "type": "handoff", "reason": "sales", "team": "sales", "text": "Sales!"}
    cancel = {"id": "cancel", "type": "message", "text": "Cancelled."}
    chat = Chat(
        flow(
            ask("answer"),
            THANKS,
            sales,
            cancel,
            intents=[{"name": "cancel", "phrases": ["cancel"]}],
            global_intents={"human": "sales", "cancel": "cancel"},
        )
    )
    chat.start()
    assert chat.say("cancel that", intent="cancel") == ["Cancelled."]
    chat.start()
    assert chat.say("human!", intent="human") == []
    assert (chat.actions[0]["team"], chat.actions[0]["message"]) == ("sales", "Sales!")


def test_a_new_conversation_opened_by_asking_for_a_human_is_handed_off_at_once():
    chat = Chat(flow(ask("answer"), THANKS, settings={"welcome_text": "Welcome!"}))
    assert chat.say("human please", intent="human") == []
    assert chat.actions[0]["message"] == "I'm connecting you with a person from our team."
    assert chat.status == "handoff"


def test_a_pressed_button_is_never_a_global_intent():
    chat = Chat(flow(MENU, HOURS, SUPPORT, OTHER_TOPIC))
    chat.start()
    result = chat.send(Event("quick_reply", payload="hours", intent="human", confidence=1.0))
    assert texts(result) == ["9 to 5."]


# -- http --------------------------------------------------------------------------------------

LOOKUP = {
    "id": "lookup",
    "type": "http",
    "method": "POST",
    "url": "https://api.example.com/orders/{{order}}?lang={{lang|en}}",
    "headers": {"Authorization": "Bearer {{token}}", "X-Static": "1"},
    "body": {"order": "{{order}}", "qty": "{{qty}}", "note": "for {{name}}", "tags": ["{{name}}"]},
    "timeout": 5,
    "save": {"status": "data.status", "first": "data.items.0.sku", "absent": "data.nothing"},
    "status_variable": "http_status",
    "next": "found",
    "on_failure": "failed",
}
FOUND = {"id": "found", "type": "message", "text": "Order is {{status}} ({{first}})."}
FAILED = {"id": "failed", "type": "message", "text": "Lookup failed ({{http_status|none}})."}


def http_chat() -> Chat:
    return Chat(
        flow(
            LOOKUP,
            FOUND,
            FAILED,
            variables={"order": "A 1/2", "token": "t0k", "qty": 3, "name": "Ana"},
        )
    )


def test_the_http_node_asks_for_a_request_and_waits():
    chat = http_chat()
    assert chat.start() == []
    assert chat.actions == [
        {
            "type": "http_request",
            "method": "POST",
            "url": "https://api.example.com/orders/A%201%2F2?lang=en",
            "headers": {"Authorization": "Bearer t0k", "X-Static": "1"},
            "body": {"order": "A 1/2", "qty": 3, "note": "for Ana", "tags": ["Ana"]},
            "timeout": 5,
            "node": "lookup",
            "request_id": 1,
        }
    ]
    assert (chat.status, chat.node) == ("http", "lookup")


def test_a_successful_response_saves_fields_and_goes_to_next():
    chat = http_chat()
    chat.start()
    body = {"data": {"status": "shipped", "items": [{"sku": "X1"}], "nothing": None}}
    assert chat.http(200, body) == ["Order is shipped (X1)."]
    assert chat.vars["http_status"] == 200
    assert chat.vars["absent"] is None


@pytest.mark.parametrize(
    ("status", "error", "shown"),
    [(None, "timeout", "none"), (None, "error", "none"), (500, None, "500"), (404, None, "404")],
)
def test_a_timeout_an_error_or_a_bad_status_goes_to_the_failure_branch(status, error, shown):
    chat = http_chat()
    chat.start()
    assert chat.http(status, {"data": {"status": "x"}}, error) == [f"Lookup failed ({shown})."]
    assert "status" not in chat.vars


def test_messages_during_a_pending_request_are_handled_after_the_response():
    chat = Chat(
        flow(
            {**LOOKUP, "next": "router"},
            {"id": "router", "type": "router", "routes": {"pricing": "prices"}},
            {"id": "prices", "type": "message", "text": "Cheap.", "next": "router"},
            FAILED,
            intents=[{"name": "pricing", "phrases": ["how much"]}],
        )
    )
    chat.start()
    assert chat.say("how much?", intent="pricing") == []
    assert chat.state["queue"] == [
        {
            "kind": "message",
            "text": "how much?",
            "payload": None,
            "intent": "pricing",
            "confidence": 1.0,
        }
    ]
    assert chat.http(200, {}) == ["Cheap."]
    assert chat.state["queue"] == []


def test_only_the_latest_messages_are_kept_while_a_request_is_pending():
    chat = http_chat()
    chat.start()
    for n in range(8):
        chat.say(f"m{n}")
    assert [m["text"] for m in chat.state["queue"]] == ["m3", "m4", "m5", "m6", "m7"]


def test_asking_for_a_human_during_a_pending_request_hands_off_and_the_late_response_is_ignored():
    chat = http_chat()
    chat.start()
    chat.say("human!", intent="human")
    assert chat.status == "handoff"
    state = chat.state
    result = step(
        chat.definition,
        state,
        Event("http_response", http={"status": 200, "json": {}, "error": None}, request_id=1),
        chat.context,
    )
    assert (result.state, result.replies, result.actions, result.error) == (state, [], [], None)


def test_a_response_to_a_superseded_request_is_ignored():
    chat = http_chat()
    chat.start()
    stale = Event("http_response", http={"status": 200, "json": {}, "error": None}, request_id=7)
    result = step(chat.definition, chat.state, stale, chat.context)
    assert result.state == chat.state
    assert result.replies == [] and result.actions == []


# -- capture lead, handoff, handback, end ------------------------------------------------------


def test_capture_lead_yields_the_variables_that_are_set_and_goes_on():
    chat = Chat(
        flow(
            {
                "id": "lead",
                "type": "capture_lead",
                "variables": ["name", "email", "phone"],
                "next": "m",
            },
            {"id": "m", "type": "message", "text": "Thanks!"},
            variables={"name": "Ana", "email": "a@b.co", "phone": ""},
        )
    )
    assert chat.start() == ["Thanks!"]
    assert chat.actions == [
        {"type": "capture_lead", "fields": {"name": "Ana", "email": "a@b.co"}, "node": "lead"}
    ]


def test_capture_lead_with_nothing_to_capture_yields_no_action():
    chat = Chat(flow({"id": "lead", "type": "capture_lead", "variables": ["email"]}))
    chat.start()
    assert chat.actions == []


HANDOFF = {
    "id": "agent",
    "type": "handoff",
    "reason": "sales_question",
    "team": "sales",
    "text": "{{name}}, a sales rep will join.",
}


def test_the_handoff_node_yields_the_action_with_what_to_tell_the_visitor():
    chat = Chat(flow(HANDOFF, variables={"name": "Ana"}), within_business_hours=False)
    assert chat.start() == []  # the message is the action's: said if a person can come
    assert chat.actions == [
        {
            "type": "handoff",
            "reason": "sales_question",
            "team": "sales",
            "message": "Ana, a sales rep will join.",
            "own_text": True,
            "node": "agent",
            "within_business_hours": False,
        }
    ]
    assert chat.state["handoff"] == {"reason": "sales_question", "team": "sales"}
    assert (chat.status, chat.node) == ("handoff", "agent")


def test_during_a_handoff_the_bot_stays_silent():
    chat = Chat(flow(HANDOFF))
    chat.start()
    state = chat.state
    for event in (Event("message", text="hello?"), Event("message", text="x", intent="restart")):
        result = step(chat.definition, state, event, chat.context)
        assert (result.state, result.replies, result.actions, result.error) == (state, [], [], None)


def test_handback_resumes_at_the_given_node_keeping_the_variables():
    chat = Chat(
        flow(
            HANDOFF,
            {"id": "survey", "type": "message", "text": "Was that helpful, {{name}}?"},
            variables={"name": "Ana"},
        )
    )
    chat.start()
    assert texts(chat.send(Event("handback", node="survey"))) == ["Was that helpful, Ana?"]
    assert chat.state["handoff"] is None
    assert chat.status == "idle"


def test_handback_without_a_node_resumes_at_the_start_without_the_welcome():
    chat = Chat(
        flow(
            {"id": "menu", "type": "router", "routes": {"pricing": "agent"}},
            HANDOFF,
            intents=[{"name": "pricing", "phrases": ["price"]}],
            settings={"welcome_text": "Welcome!"},
        )
    )
    chat.start()
    chat.say("price", intent="pricing")
    assert chat.status == "handoff"
    assert texts(chat.send(Event("handback"))) == []
    assert (chat.status, chat.node) == ("waiting", "menu")


def test_handback_to_an_unknown_node_is_an_error_and_keeps_the_handoff():
    chat = Chat(flow(HANDOFF))
    chat.start()
    result = step(chat.definition, chat.state, Event("handback", node="nope"), chat.context)
    assert result.error == {
        "code": "unknown_node",
        "message": "there is no node with id 'nope'",
        "node": "nope",
    }
    assert result.state == chat.state


def test_end_says_goodbye_and_yields_end():
    chat = Chat(flow({"id": "bye", "type": "end", "text": "Bye {{name|friend}}!"}))
    assert chat.start() == ["Bye friend!"]
    assert chat.actions == [{"type": "end", "node": "bye"}]
    assert chat.status == "ended"


def test_a_message_after_the_end_starts_a_new_conversation():
    chat = Chat(
        flow(
            {"id": "s", "type": "set", "variables": {"seen": True}, "next": "bye"},
            {"id": "bye", "type": "end", "text": "Bye!"},
            settings={"welcome_text": "Welcome!"},
        )
    )
    chat.start()
    assert chat.vars == {"seen": True}
    assert chat.say("hello again") == ["Welcome!", "Bye!"]


# -- the step as a whole -----------------------------------------------------------------------


def test_a_loop_that_never_waits_stops_with_an_error_and_leaves_the_state():
    definition = flow(
        {"id": "a", "type": "set", "variables": {"n": 1}, "next": "b"},
        {
            "id": "b",
            "type": "condition",
            "rules": [{"when": [{"variable": "n", "op": "set"}], "next": "a"}],
        },
    )
    result = step(definition, None, Event("start"), Context(now=NOW))
    assert result.error["code"] == "loop"
    assert result.error["node"] in ("a", "b")
    assert (result.state, result.replies, result.actions) == (None, [], [])


def test_a_long_chain_below_the_bound_is_not_a_loop():
    count = MAX_NODE_VISITS - 1
    nodes = [
        {
            "id": f"n{i}",
            "type": "set",
            "variables": {"i": i},
            **({"next": f"n{i + 1}"} if i < count - 1 else {}),
        }
        for i in range(count)
    ]
    chat = Chat(flow(*nodes))
    chat.start()
    assert chat.vars["i"] == count - 1


def test_start_on_a_running_conversation_changes_nothing():
    chat = Chat(flow(ask("answer"), THANKS))
    chat.start()
    result = step(chat.definition, chat.state, Event("start"), chat.context)
    assert (result.state, result.replies, result.actions) == (chat.state, [], [])


def test_an_http_response_without_a_conversation_does_nothing():
    result = step(flow(HANDOFF), None, Event("http_response", http={"status": 200}), Context())
    assert (result.state, result.replies, result.actions, result.error) == (None, [], [], None)


def test_handback_of_a_conversation_the_bot_never_started_begins_at_the_node():
    definition = flow(
        HANDOFF,
        {"id": "survey", "type": "message", "text": "Was that helpful, {{name|friend}}?"},
        variables={"name": "Ana"},
    )
    result = step(definition, None, Event("handback", node="survey"), Context())
    assert [r["text"] for r in result.replies] == ["Was that helpful, Ana?"]
    assert result.state["status"] == "idle" and result.state["handoff"] is None


def test_the_step_is_deterministic():
    definition = routed(welcome_text="Hi")
    results = [
        step(
            definition,
            None,
            Event("message", text="x", intent="pricing", confidence=1),
            Context(now=NOW),
        )
        for _ in range(2)
    ]
    assert results[0] == results[1]


@pytest.mark.parametrize(
    ("state", "code"),
    [({"status": "idle"}, "invalid_state"), ({"v": 1}, "invalid_state"), ("junk", "invalid_state")],
)
def test_a_damaged_state_is_an_error(state, code):
    result = step(routed(), state, Event("message", text="hi"), Context())
    assert result.error["code"] == code
    assert result.state == state


def test_an_invalid_definition_is_an_error_not_a_crash():
    broken = {"start": "a", "nodes": {"a": {"type": "message", "next": "b"}}}
    result = step(broken, None, Event("start"), Context())
    assert result.error["code"] == "unknown_node"
    for nodes in (None, [{"id": "a", "type": "end"}]):
        wrong = {"start": "a", "nodes": nodes}
        assert step(wrong, None, Event("start"), Context()).error["code"] == "invalid_definition"


def test_an_unknown_event_type_is_an_error():
    result = step(routed(), None, Event("poke"), Context())  # type: ignore[arg-type]
    assert result.error["code"] == "invalid_event"


def test_the_engine_imports_no_framework_network_or_numeric_library():
    """The engine is a pure core: importing it must not pull in Django, I/O or numpy."""
    import subprocess
    import sys

    code = (
        "import sys, bots.engine; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'django', 'requests', 'socket', 'numpy', 'sklearn', 'celery', 'redis', 'urllib3'}))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
