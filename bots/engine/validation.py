"""validate_definition: the JSON Schema, then the checks a schema cannot express.

Unreachable nodes are allowed (an agent may hand a conversation back to any node); they are
reported by `lint_definition`, with other warnings, never by `validate_definition`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from bots.engine.patterns import MAX_PATTERN_LENGTH, pattern_problem
from bots.engine.schema import DEFINITION_SCHEMA
from bots.engine.templates import template_problem
from bots.engine.types import HUMAN, RESTART, DefinitionError

MAX_ERRORS = 100
KNOWN_CHANNELS = frozenset({"webchat", "whatsapp", "messenger", "telegram", "sms", "api"})
# Fields that are templates, per node type.
_TEMPLATED = {
    "message": ("text",),
    "question": ("text", "retry_text"),
    "http": ("url",),
    "handoff": ("text",),
    "end": ("text",),
}
_INTENT_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_KNOWN = ", ".join(sorted(KNOWN_CHANNELS))


@cache
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(DEFINITION_SCHEMA)
    return Draft202012Validator(DEFINITION_SCHEMA)


def validate_definition(definition: Any) -> list[DefinitionError]:
    """Every error in definition (at most MAX_ERRORS), each naming its node and field; [] if
    it can be published."""
    errors = [_from_schema(error, definition) for error in _schema_errors(definition)]
    if isinstance(definition, dict):
        errors.extend(_Checker(definition).errors())
    unique = list(dict.fromkeys(errors))
    return unique[:MAX_ERRORS]


def lint_definition(definition: dict[str, Any]) -> list[DefinitionError]:
    """Warnings for a valid definition: unreachable nodes, intents no router uses, unknown
    channel names. None of them stops publishing."""
    warnings: list[DefinitionError] = []
    by_id = {k: n for k, n in (definition.get("nodes") or {}).items() if isinstance(n, dict)}
    nodes = list(by_id.values())
    reachable = _reachable(definition)
    for node_id in by_id:
        if node_id not in reachable:
            warnings.append(
                DefinitionError(node_id, "", "is not reachable from the start or main node")
            )
    routed = {
        name for node in nodes if node.get("type") == "router" for name in node.get("routes", {})
    } | {
        name
        for node in nodes
        if node.get("type") == "condition"
        for rule in node.get("rules", [])
        for check in rule.get("when", [])
        for name in _as_list(check.get("intent"))
    }
    for index, intent in enumerate(definition.get("intents", [])):
        name = intent.get("name")
        if name not in routed and name not in definition.get("global_intents", {}):
            warnings.append(
                DefinitionError(
                    None, f"intents.{index}", f"intent {name!r} is used by no router or condition"
                )
            )
    for node_id, node in by_id.items():
        for r, rule in enumerate(node.get("rules", []) if node.get("type") == "condition" else []):
            for c, check in enumerate(rule.get("when", [])):
                for channel in _as_list(check.get("channel")):
                    if channel not in KNOWN_CHANNELS:
                        warnings.append(
                            DefinitionError(
                                node_id,
                                f"rules.{r}.when.{c}.channel",
                                f"{channel!r} is not a known channel ({_KNOWN})",
                            )
                        )
    return warnings


# -- the schema's errors -----------------------------------------------------------------------


def _schema_errors(definition: Any) -> Iterator[ValidationError]:
    for error in _validator().iter_errors(definition):
        # A node of a known type fails inside its own schema ("then"); its "if" wrapper adds
        # nothing useful. Errors under anyOf are summarised by the anyOf error itself.
        yield from _leaves(error)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if error.validator in ("allOf", "$ref") and error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


def _located(path: list[Any], message: str) -> DefinitionError:
    """The error at path from the root: in a node, its id and the path inside it."""
    parts = [str(part) for part in path]
    if len(parts) >= 2 and parts[0] == "nodes":
        return DefinitionError(parts[1], ".".join(parts[2:]), message)
    return DefinitionError(None, ".".join(parts), message)


def _from_schema(error: ValidationError, definition: Any) -> DefinitionError:
    path = list(error.absolute_path)
    if "propertyNames" in error.absolute_schema_path:  # the key itself is wrong: name it
        path.append(error.instance)
    validator, value = error.validator, error.validator_value
    if validator == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        return _located([*path, missing.group(1) if missing else "?"], "is required")
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - known)
        if extra and value is False:
            return _located([*path, extra[0]], "is not a known field")
    return _located(path, _message(error))


def _message(error: ValidationError) -> str:
    validator, value = error.validator, error.validator_value
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if validator == "pattern" and custom:
        return custom
    if validator == "enum":
        return "must be one of: " + ", ".join(str(v) for v in value)
    if validator == "const":
        return f"must be {value!r}"
    if validator == "type":
        article = {"object": "an ", "array": "an ", "integer": "an ", "null": ""}.get(value, "a ")
        return f"must be {article}{value}"
    if validator == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters long"
    if validator == "maxLength":
        return f"must be at most {value} characters long"
    if validator in ("minimum", "exclusiveMinimum"):
        return f"must be {'at least' if validator == 'minimum' else 'more than'} {value}"
    if validator == "maximum":
        return f"must be at most {value}"
    if validator in ("minItems", "minProperties"):
        return "must not be empty" if value == 1 else f"must have at least {value} entries"
    if validator in ("maxItems", "maxProperties"):
        return f"must have at most {value} entries"
    if validator == "uniqueItems":
        return "must not repeat an entry"
    if validator == "anyOf" and custom:
        return custom
    if validator == "anyOf":
        messages = sorted({_message(sub) for sub in error.context or [] if not sub.path})
        return " or ".join(messages) if messages else "is not valid"
    return error.message


# -- the checks a schema cannot express ---------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def node_links(node: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(dotted field inside the node, target id) for every link from node to another node:
    next, other, on_max_retries, else, fallback, on_failure, quick_replies.N.next,
    rules.N.next, routes.<intent>. For diagrams and reachability."""
    for name in ("next", "other", "on_max_retries", "else", "fallback", "on_failure"):
        if name in node:
            yield name, node[name]
    for i, reply in enumerate(node.get("quick_replies") or []):
        if isinstance(reply, dict) and "next" in reply:
            yield f"quick_replies.{i}.next", reply["next"]
    for i, rule in enumerate(node.get("rules") or []):
        if isinstance(rule, dict) and "next" in rule:
            yield f"rules.{i}.next", rule["next"]
    routes = node.get("routes")
    if isinstance(routes, dict):
        for intent, target in routes.items():
            yield f"routes.{intent}", target


def _reachable(definition: dict[str, Any]) -> set[str]:
    nodes = {k: n for k, n in (definition.get("nodes") or {}).items() if isinstance(n, dict)}
    pending = [definition.get("start"), definition.get("main")]
    pending += list((definition.get("global_intents") or {}).values())
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, str) or current in seen or current not in nodes:
            continue
        seen.add(current)
        pending.extend(target for _, target in node_links(nodes[current]))
    return seen


class _Checker:
    """Cross-field checks over a definition that may not even match the schema: every access
    is guarded, and what the schema already reports is not reported again."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = definition
        raw = definition.get("nodes")
        self.nodes = raw if isinstance(raw, dict) else {}
        self.ids = set(self.nodes)
        self.intents = {HUMAN, RESTART} | {
            i["name"]
            for i in definition.get("intents") or []
            if isinstance(i, dict) and isinstance(i.get("name"), str)
        }
        self.found: list[DefinitionError] = []

    def add(self, node: str | None, field: str, message: str) -> None:
        """Record an error; field is dotted from the root ("nodes.<id>." is taken off)."""
        if node is not None:
            field = field.removeprefix(f"nodes.{node}").removeprefix(".")
        self.found.append(DefinitionError(node, field, message))

    def errors(self) -> list[DefinitionError]:
        self._top()
        for node_id, node in self.nodes.items():
            if isinstance(node, dict):
                self._node(node_id, f"nodes.{node_id}", node)
        return self.found

    def _target(self, node: str | None, field: str, target: Any) -> None:
        if isinstance(target, str) and target not in self.ids:
            self.add(node, field, f"there is no node with id {target!r}")

    def _top(self) -> None:
        for name in ("start", "main"):
            self._target(None, name, self.definition.get(name))
        for intent, target in (self.definition.get("global_intents") or {}).items():
            field = f"global_intents.{intent}"
            if intent not in self.intents:
                self.add(None, field, f"there is no intent named {intent!r}")
            elif target is None and intent not in (HUMAN, RESTART):
                self.add(
                    None, field, "must name the node to go to (null is only for human, restart)"
                )
            self._target(None, field, target)
        names: set[str] = set()
        for index, intent in enumerate(self.definition.get("intents") or []):
            name = intent.get("name") if isinstance(intent, dict) else None
            if isinstance(name, str):
                if name in names:
                    self.add(None, f"intents.{index}.name", f"intent {name!r} is defined twice")
                names.add(name)
        for key in ("welcome_text", "fallback_text", "handoff_text"):
            self._template(
                None, f"settings.{key}", (self.definition.get("settings") or {}).get(key)
            )

    def _template(self, node: str | None, field: str, value: Any) -> None:
        if isinstance(value, str) and (problem := template_problem(value)):
            self.add(node, field, problem)

    def _node(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        for field, target in node_links(node):
            self._target(node_id, f"{prefix}.{field}", target)
        kind = node.get("type")
        for field in _TEMPLATED.get(kind, ()):
            self._template(node_id, f"{prefix}.{field}", node.get(field))
        check = getattr(self, f"_{kind}", None)
        if check is not None:
            check(node_id, prefix, node)

    def _message(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        if not node.get("text") and not node.get("media"):
            self.add(node_id, f"{prefix}.text", "a message needs a text, a media or both")
        replies = node.get("quick_replies") or []
        titles: set[str] = set()
        for i, reply in enumerate(replies if isinstance(replies, list) else []):
            title = reply.get("title") if isinstance(reply, dict) else None
            if isinstance(title, str):
                if title.casefold() in titles:
                    self.add(node_id, f"{prefix}.quick_replies.{i}.title", "repeats another title")
                titles.add(title.casefold())
        if not replies:
            for field in ("other", "variable"):
                if field in node:
                    self.add(node_id, f"{prefix}.{field}", "is only used with quick_replies")
        media = node.get("media")
        if isinstance(media, dict) and isinstance(media.get("url"), str):
            url = media["url"]
            if problem := template_problem(url):
                self.add(node_id, f"{prefix}.media.url", problem)
            elif not re.match(r"^https?://", url):
                self.add(node_id, f"{prefix}.media.url", "must start with http:// or https://")

    def _question(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        kind = node.get("validation", "text")
        needs = {"choice": "choices", "regex": "pattern"}
        if kind in needs and needs[kind] not in node:
            self.add(node_id, f"{prefix}.{needs[kind]}", f"is required when validation is {kind!r}")
        allowed = {
            "text": {"min_length", "max_length"},
            "number": {"min", "max", "integer"},
            "date": {"min", "max"},
            "choice": {"choices"},
            "regex": {"pattern", "ignore_case"},
        }.get(kind, set())
        for field in (
            "min_length",
            "max_length",
            "min",
            "max",
            "integer",
            "choices",
            "pattern",
            "ignore_case",
        ):
            if field in node and field not in allowed:
                self.add(node_id, f"{prefix}.{field}", f"does not apply to validation {kind!r}")
        for field in ("min", "max"):
            value = node.get(field)
            if field in node and kind == "number" and not isinstance(value, (int, float)):
                self.add(node_id, f"{prefix}.{field}", "must be a number")
            if field in node and kind == "date" and not isinstance(value, str):
                self.add(node_id, f"{prefix}.{field}", 'must be "today" or a date like 2025-03-14')
        pattern = node.get("pattern")
        if kind == "regex" and isinstance(pattern, str) and len(pattern) <= MAX_PATTERN_LENGTH:
            # the schema reports a pattern that is too long; this is how the engine compiles
            problem = pattern_problem(pattern, ignore_case=node.get("ignore_case") is True)
            if problem:
                self.add(node_id, f"{prefix}.pattern", problem)

    def _condition(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        subjects = ("variable", "intent", "channel", "business_hours")
        for r, rule in enumerate(node.get("rules") or []):
            when = rule.get("when") if isinstance(rule, dict) else None
            for c, check in enumerate(when if isinstance(when, list) else []):
                if not isinstance(check, dict):
                    continue
                field = f"{prefix}.rules.{r}.when.{c}"
                present = [s for s in subjects if s in check]
                if len(present) != 1:
                    self.add(
                        node_id,
                        field,
                        "needs exactly one of variable, intent, channel, business_hours",
                    )
                    continue
                op = check.get("op", "eq")
                if present[0] != "variable" and ("op" in check or "value" in check):
                    self.add(node_id, field, "op and value are only used with variable")
                if present[0] == "variable":
                    if op in ("set", "not_set") and "value" in check:
                        self.add(node_id, f"{field}.value", f"is not used with op {op!r}")
                    if op not in ("set", "not_set") and "value" not in check:
                        self.add(node_id, f"{field}.value", f"is required with op {op!r}")
                    if op == "in" and not isinstance(check.get("value"), list):
                        self.add(node_id, f"{field}.value", "must be a list with op 'in'")
                for intent in _as_list(check.get("intent")):
                    if isinstance(intent, str) and intent not in self.intents:
                        self.add(node_id, f"{field}.intent", f"there is no intent named {intent!r}")

    def _router(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        routes = node.get("routes")
        global_intents = {HUMAN, RESTART} | set(self.definition.get("global_intents") or {})
        for intent in routes if isinstance(routes, dict) else {}:
            field = f"{prefix}.routes.{intent}"
            if not _INTENT_NAME.match(intent):
                continue  # the schema says what is wrong with the name
            if intent not in self.intents:
                self.add(node_id, field, f"there is no intent named {intent!r}")
            elif intent in global_intents:
                self.add(
                    node_id,
                    field,
                    f"{intent!r} is a global intent, handled before any router; "
                    "send it to a node with global_intents instead",
                )

    def _http(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        for name, value in (node.get("headers") or {}).items():
            self._template(node_id, f"{prefix}.headers.{name}", value)
        self._body(node_id, f"{prefix}.body", node.get("body"))

    def _body(self, node_id: str | None, field: str, value: Any) -> None:
        if isinstance(value, str):
            self._template(node_id, field, value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._body(node_id, f"{field}.{i}", item)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._body(node_id, f"{field}.{key}", item)

    def _set(self, node_id: str | None, prefix: str, node: dict[str, Any]) -> None:
        variables = node.get("variables")
        for name, value in variables.items() if isinstance(variables, dict) else ():
            self._body(node_id, f"{prefix}.variables.{name}", value)
