"""validate_definition names the node and the field of every problem; lint_definition warns."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bots.engine import DEFINITION_SCHEMA, DefinitionError, lint_definition, validate_definition

EXAMPLE = json.loads((Path(__file__).parent / "data" / "flow_every_node.json").read_text())


def one(*nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A definition of nodes written with their "id", starting at the first."""
    by_id = {node["id"]: {k: v for k, v in node.items() if k != "id"} for node in nodes}
    return {"start": nodes[0]["id"], "nodes": by_id, **top}


def test_the_schema_is_a_valid_json_schema():
    Draft202012Validator.check_schema(DEFINITION_SCHEMA)


def test_the_example_with_every_node_type_is_valid_and_clean():
    assert {node["type"] for node in EXAMPLE["nodes"].values()} == {
        "message",
        "question",
        "condition",
        "set",
        "router",
        "http",
        "capture_lead",
        "handoff",
        "end",
    }
    assert validate_definition(EXAMPLE) == []
    assert lint_definition(EXAMPLE) == []


END = {"id": "z", "type": "end"}
END_NODES = {"z": {"type": "end"}}

CASES = [
    # (definition, node, field, message)
    ([], None, "", "must be an object"),
    ({"nodes": END_NODES}, None, "start", "is required"),
    ({"start": "z"}, None, "nodes", "is required"),
    ({"start": "z", "nodes": {}}, None, "nodes", "must not be empty"),
    ({"start": "nope", "nodes": END_NODES}, None, "start", "there is no node with id 'nope'"),
    (
        {"start": "z", "main": "nope", "nodes": END_NODES},
        None,
        "main",
        "there is no node with id 'nope'",
    ),
    ({"start": "z", "nodes": END_NODES, "colour": "red"}, None, "colour", "is not a known field"),
    (
        one({"id": "a", "type": "telepathy"}),
        "a",
        "type",
        "must be one of: message, question, condition, set, router, http, capture_lead, "
        "handoff, end",
    ),
    ({"start": "a", "nodes": {"a": "end"}}, "a", "", "must be an object"),
    ({"start": "a", "nodes": {"a": {"text": "hi"}}}, "a", "type", "is required"),
    (
        one({"id": "a b", "type": "end"}),
        "a b",
        "",
        "must be 1 to 64 letters, digits, _ or -",
    ),
    (one({"id": "a", "type": "end", "colour": 1}), "a", "colour", "is not a known field"),
    # message
    (
        one({"id": "a", "type": "message"}),
        "a",
        "text",
        "a message needs a text, a media or both",
    ),
    (
        one({"id": "a", "type": "message", "text": "hi", "next": "b"}),
        "a",
        "next",
        "there is no node with id 'b'",
    ),
    (
        one({"id": "a", "type": "message", "text": "Hi {{ first name }}"}),
        "a",
        "text",
        "has a {{ }} that is not a variable (write {{name}} or {{name|default}})",
    ),
    (
        one(
            {
                "id": "a",
                "type": "message",
                "text": "x",
                "quick_replies": [{"title": "A"}, {"title": "B", "next": "q"}],
            }
        ),
        "a",
        "quick_replies.1.next",
        "there is no node with id 'q'",
    ),
    (
        one(
            {
                "id": "a",
                "type": "message",
                "text": "x",
                "quick_replies": [{"title": "Yes"}, {"title": "yes"}],
            }
        ),
        "a",
        "quick_replies.1.title",
        "repeats another title",
    ),
    (
        one({"id": "a", "type": "message", "text": "x", "quick_replies": [{"payload": "p"}]}),
        "a",
        "quick_replies.0.title",
        "is required",
    ),
    (
        one(
            {
                "id": "a",
                "type": "message",
                "text": "x",
                "quick_replies": [{"title": str(i)} for i in range(11)],
            }
        ),
        "a",
        "quick_replies",
        "must have at most 10 entries",
    ),
    (
        one({"id": "a", "type": "message", "text": "x", "other": "a"}),
        "a",
        "other",
        "is only used with quick_replies",
    ),
    (
        one({"id": "a", "type": "message", "media": {"url": "ftp://x/y.png", "kind": "image"}}),
        "a",
        "media.url",
        "must start with http:// or https://",
    ),
    (
        one({"id": "a", "type": "message", "media": {"url": "https://x/y.mp4", "kind": "video"}}),
        "a",
        "media.kind",
        "must be one of: image, file",
    ),
    # question
    (one({"id": "a", "type": "question", "text": "?"}), "a", "variable", "is required"),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "my-var"}),
        "a",
        "variable",
        "must be a variable name: a letter or _, then letters, digits or _",
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "validation": "iban"}),
        "a",
        "validation",
        "must be one of: text, email, phone, number, date, choice, regex",
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "validation": "choice"}),
        "a",
        "choices",
        "is required when validation is 'choice'",
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "validation": "regex"}),
        "a",
        "pattern",
        "is required when validation is 'regex'",
    ),
    (
        one(
            {
                "id": "a",
                "type": "question",
                "text": "?",
                "variable": "v",
                "validation": "regex",
                "pattern": "(a",
            }
        ),
        "a",
        "pattern",
        "is not a valid regular expression in RE2 syntax: missing ): (a",
    ),
    (
        one(
            {
                "id": "a",
                "type": "question",
                "text": "?",
                "variable": "v",
                "validation": "regex",
                "pattern": r"(?<=#)\d+",
            }
        ),
        "a",
        "pattern",
        "uses lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which RE2 syntax does not have; "
        "match the text itself instead",
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "min": 3}),
        "a",
        "min",
        "does not apply to validation 'text'",
    ),
    (
        one(
            {
                "id": "a",
                "type": "question",
                "text": "?",
                "variable": "v",
                "validation": "number",
                "min": "today",
            }
        ),
        "a",
        "min",
        "must be a number",
    ),
    (
        one(
            {
                "id": "a",
                "type": "question",
                "text": "?",
                "variable": "v",
                "validation": "date",
                "max": "soon",
            }
        ),
        "a",
        "max",
        'must be a number, or for dates "today" or a date like 2025-03-14',
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "max_retries": 11}),
        "a",
        "max_retries",
        "must be at most 10",
    ),
    (
        one({"id": "a", "type": "question", "text": "?", "variable": "v", "on_max_retries": "x"}),
        "a",
        "on_max_retries",
        "there is no node with id 'x'",
    ),
    (
        one({"id": "a", "type": "question", "text": "", "variable": "v"}),
        "a",
        "text",
        "must not be empty",
    ),
    # condition
    (one({"id": "a", "type": "condition"}), "a", "rules", "is required"),
    (
        one({"id": "a", "type": "condition", "rules": [{"when": [{"business_hours": True}]}]}),
        "a",
        "rules.0.next",
        "is required",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"intent": "x", "channel": "sms"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0",
        "needs exactly one of variable, intent, channel, business_hours",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"variable": "v", "op": "gt"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0.value",
        "is required with op 'gt'",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"variable": "v", "op": "in", "value": "x"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0.value",
        "must be a list with op 'in'",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"variable": "v", "op": "like", "value": 1}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0.op",
        "must be one of: eq, ne, gt, gte, lt, lte, contains, in, set, not_set",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"intent": "billing"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0.intent",
        "there is no intent named 'billing'",
    ),
    (
        one({"id": "a", "type": "condition", "rules": [{"when": [{"intent": 5}], "next": "a"}]}),
        "a",
        "rules.0.when.0.intent",
        "must be an intent name, a list of intent names, or null",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"channel": "sms", "op": "eq"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0",
        "op and value are only used with variable",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"business_hours": "yes"}], "next": "a"}],
            }
        ),
        "a",
        "rules.0.when.0.business_hours",
        "must be a boolean",
    ),
    (
        one(
            {
                "id": "a",
                "type": "condition",
                "rules": [{"when": [{"business_hours": True}], "next": "a"}],
                "else": "b",
            }
        ),
        "a",
        "else",
        "there is no node with id 'b'",
    ),
    # set
    (
        one({"id": "a", "type": "set", "variables": {"1x": 3}}),
        "a",
        "variables.1x",
        "must be a variable name: a letter or _, then letters, digits or _",
    ),
    (
        one({"id": "a", "type": "set", "variables": {}}),
        "a",
        "variables",
        "must not be empty",
    ),
    (
        one({"id": "a", "type": "set", "variables": {"x": {"y": ["{{z"]}}}),
        "a",
        "variables.x.y.0",
        "has a {{ }} that is not a variable (write {{name}} or {{name|default}})",
    ),
    # router
    (
        one({"id": "a", "type": "router", "routes": {"billing": "a"}}),
        "a",
        "routes.billing",
        "there is no intent named 'billing'",
    ),
    (
        one({"id": "a", "type": "router", "routes": {"Bad Name": "a"}}),
        "a",
        "routes.Bad Name",
        "must be an intent name: lower-case letters, digits or _",
    ),
    (
        one({"id": "a", "type": "router", "routes": {"human": "a"}}),
        "a",
        "routes.human",
        "'human' is a global intent, handled before any router; send it to a node with "
        "global_intents instead",
    ),
    (
        one(
            {"id": "a", "type": "router", "routes": {"x": "b"}, "fallback": "c"},
            intents=[{"name": "x", "phrases": ["x"]}],
        ),
        "a",
        "routes.x",
        "there is no node with id 'b'",
    ),
    # http
    (
        one({"id": "a", "type": "http", "url": "https://x"}),
        "a",
        "on_failure",
        "is required",
    ),
    (
        one({"id": "a", "type": "http", "url": "file:///etc/passwd", "on_failure": "a"}),
        "a",
        "url",
        "must start with http:// or https://",
    ),
    (
        one({"id": "a", "type": "http", "url": "https://x", "on_failure": "a", "method": "get"}),
        "a",
        "method",
        "must be one of: GET, POST, PUT, PATCH, DELETE",
    ),
    (
        one({"id": "a", "type": "http", "url": "https://x", "on_failure": "a", "timeout": 60}),
        "a",
        "timeout",
        "must be at most 30",
    ),
    (
        one({"id": "a", "type": "http", "url": "https://x", "on_failure": "a", "timeout": 0}),
        "a",
        "timeout",
        "must be more than 0",
    ),
    (
        one(
            {"id": "a", "type": "http", "url": "https://x", "on_failure": "a", "headers": {"X": 1}}
        ),
        "a",
        "headers.X",
        "must be a string",
    ),
    (
        one(
            {
                "id": "a",
                "type": "http",
                "url": "https://x",
                "on_failure": "a",
                "headers": {"X": "{{"},
            }
        ),
        "a",
        "headers.X",
        "has a {{ }} that is not a variable (write {{name}} or {{name|default}})",
    ),
    (
        one({"id": "a", "type": "http", "url": "https://x", "on_failure": "a", "save": {"v": 1}}),
        "a",
        "save.v",
        "must be a string",
    ),
    # capture lead, handoff, end
    (
        one({"id": "a", "type": "capture_lead", "variables": []}),
        "a",
        "variables",
        "must not be empty",
    ),
    (
        one({"id": "a", "type": "capture_lead", "variables": ["email", "email"]}),
        "a",
        "variables",
        "must not repeat an entry",
    ),
    (one({"id": "a", "type": "handoff"}), "a", "reason", "is required"),
    (
        one({"id": "a", "type": "handoff", "reason": "Sales Team"}),
        "a",
        "reason",
        "must be a reason code: lower-case letters, digits or _",
    ),
    (
        one({"id": "a", "type": "handoff", "reason": "x", "next": "a"}),
        "a",
        "next",
        "is not a known field",
    ),
    (one({"id": "a", "type": "end", "next": "a"}), "a", "next", "is not a known field"),
    # settings, intents, global intents
    (
        one(END, settings={"fallback_limit": 50}),
        None,
        "settings.fallback_limit",
        "must be a whole number from 0 to 20, or null (never)",
    ),
    (
        one(END, settings={"language": "fr"}),
        None,
        "settings.language",
        "must be one of: en, es, pt",
    ),
    (
        one(END, settings={"intent_threshold": 2}),
        None,
        "settings.intent_threshold",
        "must be at most 1",
    ),
    (
        one(END, settings={"welcome_text": "Hi {{}}"}),
        None,
        "settings.welcome_text",
        "has a {{ }} that is not a variable (write {{name}} or {{name|default}})",
    ),
    (
        one(END, intents=[{"name": "a", "phrases": []}, {"name": "a", "phrases": []}]),
        None,
        "intents.1.name",
        "intent 'a' is defined twice",
    ),
    (
        one(END, intents=[{"name": "Order", "phrases": []}]),
        None,
        "intents.0.name",
        "must be an intent name: lower-case letters, digits or _",
    ),
    (
        one(END, global_intents={"cancel": "z"}),
        None,
        "global_intents.cancel",
        "there is no intent named 'cancel'",
    ),
    (
        one(END, intents=[{"name": "cancel", "phrases": ["x"]}], global_intents={"cancel": None}),
        None,
        "global_intents.cancel",
        "must name the node to go to (null is only for human, restart)",
    ),
    (
        one(END, global_intents={"human": "q"}),
        None,
        "global_intents.human",
        "there is no node with id 'q'",
    ),
    (
        one(END, variables={"bad name": 1}),
        None,
        "variables.bad name",
        "must be a variable name: a letter or _, then letters, digits or _",
    ),
]


@pytest.mark.parametrize(("definition", "node", "field", "message"), CASES)
def test_an_error_names_its_node_and_field(definition, node, field, message):
    errors = validate_definition(definition)
    assert DefinitionError(node, field, message) in errors, errors


def test_every_error_is_reported_at_once():
    definition = copy.deepcopy(EXAMPLE)
    definition["nodes"]["ask_email"]["validation"] = "iban"
    definition["nodes"]["lookup"]["timeout"] = 99
    del definition["nodes"]["has_order"]["rules"]
    definition["settings"]["language"] = "de"
    errors = {(e.node, e.field, e.path) for e in validate_definition(definition)}
    assert errors == {
        ("ask_email", "validation", "nodes.ask_email.validation"),
        ("lookup", "timeout", "nodes.lookup.timeout"),
        ("has_order", "rules", "nodes.has_order.rules"),
        (None, "settings.language", "settings.language"),
    }


def test_errors_are_plain_data():
    [error] = validate_definition({"start": "nope", "nodes": END_NODES})
    assert error.as_dict() == {
        "node": None,
        "field": "start",
        "path": "start",
        "message": "there is no node with id 'nope'",
    }
    [error] = validate_definition(one({"id": "a", "type": "end", "text": 5}))
    assert error.as_dict() == {
        "node": "a",
        "field": "text",
        "path": "nodes.a.text",
        "message": "must be a string",
    }


def test_unreachable_nodes_are_allowed_and_only_linted():
    definition = one(END, {"id": "orphan", "type": "message", "text": "x"})
    assert validate_definition(definition) == []
    assert lint_definition(definition) == [
        DefinitionError("orphan", "", "is not reachable from the start or main node")
    ]


def test_nodes_reached_only_through_global_intents_are_reachable():
    definition = one(
        END,
        {"id": "sales", "type": "handoff", "reason": "sales"},
        global_intents={"human": "sales"},
    )
    assert lint_definition(definition) == []


def test_lint_warns_about_unused_intents_and_unknown_channels():
    definition = one(
        {
            "id": "a",
            "type": "condition",
            "rules": [{"when": [{"channel": "whatsap"}], "next": "z"}],
        },
        END,
        intents=[{"name": "unused", "phrases": ["x"]}],
    )
    assert validate_definition(definition) == []
    messages = {(w.node, w.field, w.message) for w in lint_definition(definition)}
    assert messages == {
        (None, "intents.0", "intent 'unused' is used by no router or condition"),
        (
            "a",
            "rules.0.when.0.channel",
            "'whatsap' is not a known channel (api, messenger, sms, telegram, webchat, whatsapp)",
        ),
    }


def test_node_links_lists_every_target_of_a_node():
    from bots.engine import node_links

    all_links = {name: sorted(node_links(node)) for name, node in EXAMPLE["nodes"].items()}
    links = {name: found for name, found in all_links.items() if found}
    assert links["greeting"] == [
        ("other", "menu"),
        ("quick_replies.0.next", "ask_email"),
        ("quick_replies.1.next", "prices"),
        ("quick_replies.2.next", "hours_check"),
    ]
    assert links["menu"] == [
        ("routes.opening_hours", "hours"),
        ("routes.pricing", "prices"),
        ("routes.track_order", "ask_email"),
    ]
    assert links["ask_email"] == [("next", "lookup"), ("on_max_retries", "hours_check")]
    assert links["lookup"] == [("next", "has_order"), ("on_failure", "lookup_failed")]
    assert links["has_order"] == [("else", "no_order"), ("rules.0.next", "order_found")]
    assert "agent" not in links and "goodbye" not in links


def test_every_error_is_reported_at_once_up_to_100():
    """flows.md: every error is reported at once (up to 100), each naming its node."""
    nodes = [{"id": "n0", "type": "message", "text": "Hi", "next": "n1"}]
    nodes += [{"id": f"n{i}", "type": "message", "text": "Hi", "next": "nowhere"} for i in (1, 2)]
    found = validate_definition(one(*nodes))
    assert {e.node for e in found} == {"n1", "n2"}  # both, not just the first
    many = [{"id": "start", "type": "message", "text": "Hi", "next": "n0"}]
    many += [
        {"id": f"n{i}", "type": "message", "text": "Hi", "next": f"nowhere{i}"} for i in range(150)
    ]
    errors = validate_definition(one(*many))
    assert len(errors) == 100
    assert len({e.node for e in errors}) == 100
