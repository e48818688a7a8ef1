"""The JSON Schema of a bot definition (draft 2020-12). docs/flows.md explains every field.

The schema checks shapes; `bots.engine.validation` adds what a schema cannot say (targets
exist, ids are unique, regexes compile in RE2, templates are well formed).
"""

from __future__ import annotations

from typing import Any

from bots.engine.answers import ANSWER_KINDS
from bots.engine.patterns import MAX_PATTERN_LENGTH
from bots.engine.types import LANGUAGES

NODE_TYPES = (
    "message",
    "question",
    "condition",
    "set",
    "router",
    "http",
    "capture_lead",
    "handoff",
    "end",
)
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
VARIABLE_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "set", "not_set")
MAX_NODES = 1000
MAX_TEXT = 4096

_ID = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_-]{1,64}$",
    "errorMessage": "must be 1 to 64 letters, digits, _ or -",
}
_VARIABLE = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "errorMessage": "must be a variable name: a letter or _, then letters, digits or _",
}
_VARIABLE_PATH = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,10}$",
    "errorMessage": "must be a variable name, or a path into one like order.items.0.sku",
}
_INTENT = {
    "type": "string",
    "pattern": r"^[a-z0-9_]{1,64}$",
    "errorMessage": "must be an intent name: lower-case letters, digits or _",
}
_REASON = {
    "type": "string",
    "pattern": r"^[a-z0-9_]{1,40}$",
    "errorMessage": "must be a reason code: lower-case letters, digits or _",
}
_TARGET = {"$ref": "#/$defs/id"}  # the id of another node
_TEXT = {"type": "string", "maxLength": MAX_TEXT}
_DATE_BOUND = {
    "type": "string",
    "pattern": r"^(today|\d{4}-\d{2}-\d{2})$",
    "errorMessage": 'must be "today" or a date like 2025-03-14',
}

_BOUND = {
    "anyOf": [{"type": "number"}, _DATE_BOUND],
    "errorMessage": 'must be a number, or for dates "today" or a date like 2025-03-14',
}


def _node(type_: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "required": ["type", *required],
        "properties": {
            "type": {"const": type_},
            "note": {"type": "string", "maxLength": 1000},
            "meta": {"type": "object"},
            **properties,
        },
        "additionalProperties": False,
    }


_QUICK_REPLY = {
    "type": "object",
    "required": ["title"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 80},
        "payload": {"type": "string", "minLength": 1, "maxLength": 256},
        "next": _TARGET,
    },
    "additionalProperties": False,
}

_CHECK = {
    "type": "object",
    "properties": {
        "variable": {"$ref": "#/$defs/variable_path"},
        "op": {"enum": list(VARIABLE_OPS)},
        "value": {},
        "intent": {
            "anyOf": [
                {"$ref": "#/$defs/intent"},
                {"type": "array", "items": {"$ref": "#/$defs/intent"}, "minItems": 1},
                {"type": "null"},
            ],
            "errorMessage": "must be an intent name, a list of intent names, or null",
        },
        "channel": {
            "anyOf": [
                {"$ref": "#/$defs/channel"},
                {"type": "array", "items": {"$ref": "#/$defs/channel"}, "minItems": 1},
            ],
            "errorMessage": "must be a channel name or a list of channel names",
        },
        "business_hours": {"type": "boolean"},
    },
    "additionalProperties": False,
}

NODE_SCHEMAS: dict[str, dict[str, Any]] = {
    "message": _node(
        "message",
        {
            "text": _TEXT,
            "media": {
                "type": "object",
                "required": ["url", "kind"],
                "properties": {
                    "url": {"type": "string", "minLength": 1, "maxLength": 2000},
                    "kind": {"enum": ["image", "file"]},
                },
                "additionalProperties": False,
            },
            "quick_replies": {
                "type": "array",
                "items": _QUICK_REPLY,
                "minItems": 1,
                "maxItems": 10,
            },
            "variable": {"$ref": "#/$defs/variable"},
            "other": _TARGET,
            "next": _TARGET,
        },
    ),
    "question": _node(
        "question",
        {
            "text": {**_TEXT, "minLength": 1},
            "variable": {"$ref": "#/$defs/variable"},
            "validation": {"enum": list(ANSWER_KINDS)},
            "min_length": {"type": "integer", "minimum": 1, "maximum": 1000},
            "max_length": {"type": "integer", "minimum": 1, "maximum": 1000},
            "min": _BOUND,
            "max": _BOUND,
            "integer": {"type": "boolean"},
            "choices": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 80},
                "minItems": 1,
                "maxItems": 10,
            },
            "pattern": {"type": "string", "minLength": 1, "maxLength": MAX_PATTERN_LENGTH},
            "ignore_case": {"type": "boolean"},
            "retry_text": _TEXT,
            "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
            "on_max_retries": _TARGET,
            "interruptible": {"type": "boolean"},
            "next": _TARGET,
        },
        ("text", "variable"),
    ),
    "condition": _node(
        "condition",
        {
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["when", "next"],
                    "properties": {
                        "when": {"type": "array", "items": _CHECK, "minItems": 1},
                        "match": {"enum": ["all", "any"]},
                        "next": _TARGET,
                    },
                    "additionalProperties": False,
                },
            },
            "else": _TARGET,
        },
        ("rules",),
    ),
    "set": _node(
        "set",
        {
            "variables": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/variable"},
            },
            "next": _TARGET,
        },
        ("variables",),
    ),
    "router": _node(
        "router",
        {
            "routes": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/intent"},
                "additionalProperties": _TARGET,
            },
            "fallback": _TARGET,
        },
        ("routes",),
    ),
    "http": _node(
        "http",
        {
            "method": {"enum": list(HTTP_METHODS)},
            "url": {
                "type": "string",
                "pattern": r"^https?://",
                "maxLength": 2000,
                "errorMessage": "must start with http:// or https://",
            },
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 30},
            "save": {
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/variable"},
                "additionalProperties": {"type": "string", "maxLength": 200},
            },
            "status_variable": {"$ref": "#/$defs/variable"},
            "next": _TARGET,
            "on_failure": _TARGET,
        },
        ("url", "on_failure"),
    ),
    "capture_lead": _node(
        "capture_lead",
        {
            "variables": {
                "type": "array",
                "items": {"$ref": "#/$defs/variable"},
                "minItems": 1,
                "uniqueItems": True,
            },
            "next": _TARGET,
        },
        ("variables",),
    ),
    "handoff": _node(
        "handoff",
        {"reason": _REASON, "team": {"type": "string", "maxLength": 100}, "text": _TEXT},
        ("reason",),
    ),
    "end": _node("end", {"text": _TEXT}),
}

DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://chattonic.example/schemas/bot-definition-1.json",
    "title": "Chat-Tonic bot definition",
    "type": "object",
    "required": ["start", "nodes"],
    "properties": {
        "format": {"const": 1},
        "description": {"type": "string", "maxLength": 2000},
        "meta": {"type": "object"},
        "start": _TARGET,
        "main": _TARGET,
        "settings": {
            "type": "object",
            "properties": {
                "welcome_text": _TEXT,
                "fallback_text": _TEXT,
                "handoff_text": _TEXT,
                "fallback_limit": {
                    "anyOf": [{"type": "integer", "minimum": 0, "maximum": 20}, {"type": "null"}],
                    "errorMessage": "must be a whole number from 0 to 20, or null (never)",
                },
                "intent_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                "language": {"enum": list(LANGUAGES)},
            },
            "additionalProperties": False,
        },
        "intents": {
            "type": "array",
            "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["name", "phrases"],
                "properties": {
                    "name": {"$ref": "#/$defs/intent"},
                    "phrases": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 300},
                        "maxItems": 1000,
                    },
                },
                "additionalProperties": False,
            },
        },
        "translations": {
            "type": "object",
            "propertyNames": {"enum": list(LANGUAGES)},
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "texts": {
                        "type": "object",
                        "properties": {
                            "welcome_text": _TEXT,
                            "fallback_text": _TEXT,
                            "handoff_text": _TEXT,
                        },
                        "additionalProperties": False,
                    },
                    "nodes": {
                        "type": "object",
                        "propertyNames": {"$ref": "#/$defs/id"},
                        "additionalProperties": {
                            "type": "object",
                            "properties": {
                                "text": _TEXT,
                                "retry_text": _TEXT,
                                "quick_replies": {
                                    "type": "array",
                                    "items": {"type": "string", "maxLength": 200},
                                    "maxItems": 20,
                                },
                            },
                            "additionalProperties": False,
                        },
                    },
                    "intents": {
                        "type": "object",
                        "propertyNames": {"$ref": "#/$defs/intent"},
                        "additionalProperties": {
                            "type": "array",
                            "items": {"type": "string", "minLength": 1, "maxLength": 300},
                            "maxItems": 1000,
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
        "global_intents": {
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/intent"},
            "additionalProperties": {
                "anyOf": [_TARGET, {"type": "null"}],
                "errorMessage": "must be a node id, or null for the built-in behaviour",
            },
        },
        "variables": {"type": "object", "propertyNames": {"$ref": "#/$defs/variable"}},
        "nodes": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_NODES,
            "propertyNames": {"$ref": "#/$defs/id"},
            "additionalProperties": {"$ref": "#/$defs/node"},
        },
    },
    "additionalProperties": False,
    "$defs": {
        "id": _ID,
        "variable": _VARIABLE,
        "variable_path": _VARIABLE_PATH,
        "intent": _INTENT,
        "channel": {
            "type": "string",
            "pattern": r"^[a-z0-9_]{1,40}$",
            "errorMessage": "must be a channel name like webchat, whatsapp, telegram, sms, api",
        },
        "node": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(NODE_TYPES)}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                    "then": {"$ref": f"#/$defs/{name}_node"},
                }
                for name in NODE_TYPES
            ],
        },
        **{f"{name}_node": schema for name, schema in NODE_SCHEMAS.items()},
    },
}
