"""The checks of a condition node: on a variable, the matched intent, the channel, the hours."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bots.engine.answers import parse_number
from bots.engine.templates import lookup, render_value
from bots.engine.text import fold
from bots.engine.types import Context


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        parsed = parse_number(value, "en")
        return None if parsed is None else float(parsed)
    return None


def _equal(left: Any, right: Any) -> bool:
    """Numbers by value ("18" equals 18), texts without case or accents, the rest as JSON."""
    if isinstance(left, str) and isinstance(right, str):
        return fold(left) == fold(right)
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    return left == right


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return fold(str(item)) in fold(container)
    if isinstance(container, list):
        return any(_equal(element, item) for element in container)
    if isinstance(container, dict):
        return str(item) in container
    return False


def _compare(op: str, left: Any, right: Any) -> bool:
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return False  # only numbers have an order; "abc" > 3 is simply false
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]


def variable_check(check: Mapping[str, Any], variables: Mapping[str, Any]) -> bool:
    value = lookup(variables, check["variable"])
    op = check.get("op", "eq")
    if op == "set":
        return value not in (None, "")
    if op == "not_set":
        return value in (None, "")
    expected = render_value(check.get("value"), variables)
    if op == "eq":
        return _equal(value, expected)
    if op == "ne":
        return not _equal(value, expected)
    if op == "contains":
        return _contains(value, expected)
    if op == "in":
        return isinstance(expected, list) and any(_equal(value, item) for item in expected)
    return _compare(op, value, expected)


def _one_of(value: Any, accepted: Any) -> bool:
    return value in accepted if isinstance(accepted, list) else value == accepted


def check_holds(
    check: Mapping[str, Any], *, variables: Mapping[str, Any], intent: str | None, context: Context
) -> bool:
    """Whether one check of a condition rule holds."""
    if "variable" in check:
        return variable_check(check, variables)
    if "intent" in check:
        return _one_of(intent, check["intent"])
    if "channel" in check:
        return _one_of(context.channel, check["channel"])
    if "business_hours" in check:
        return context.within_business_hours == check["business_hours"]
    raise ValueError("a check needs one of variable, intent, channel, business_hours")


def rule_holds(
    rule: Mapping[str, Any], *, variables: Mapping[str, Any], intent: str | None, context: Context
) -> bool:
    """Whether all (or, with "match": "any", any) of a rule's checks hold."""
    results = (
        check_holds(check, variables=variables, intent=intent, context=context)
        for check in rule["when"]
    )
    return any(results) if rule.get("match", "all") == "any" else all(results)
