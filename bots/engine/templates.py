"""`{{variable}}` templating.

`{{name}}` is the variable's value, `{{order.items.0.sku}}` a field inside a value (lists by
position), `{{name|there}}` the text after the bar when the value is missing or empty. A
missing variable without a default is an empty string. Spaces inside the braces are allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME + r"(?:\.[A-Za-z0-9_]+)*)\s*(?:\|([^{}]*))?\}\}")
_WHOLE = re.compile(r"\A" + PLACEHOLDER.pattern + r"\Z")


def lookup(value: Any, path: str) -> Any:
    """value["a"]["b"][0] for path "a.b.0"; None where any step is missing. "" is value."""
    if path == "":
        return value
    for key in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def as_text(value: Any) -> str:
    """How a value reads inside a text: None is empty, 3.0 is "3", lists and objects are JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _resolve(match: re.Match[str], variables: Mapping[str, Any]) -> Any:
    value = lookup(variables, match.group(1))
    default = match.group(2)
    if default is not None and (value is None or value == ""):
        return default.strip()
    return value


def render(template: str, variables: Mapping[str, Any], escape: Callable[[str], str] = str) -> str:
    """The template with every placeholder replaced by escape(its value as text)."""
    if "{{" not in template:
        return template
    return PLACEHOLDER.sub(lambda m: escape(as_text(_resolve(m, variables))), template)


def render_url(template: str, variables: Mapping[str, Any]) -> str:
    """A URL template: values are percent-encoded, so "a b/c" cannot change the path."""
    return render(template, variables, escape=lambda text: quote(text, safe=""))


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Strings rendered, lists and objects rendered inside, other values as they are.

    A string that is exactly one placeholder keeps the value's type ("{{count}}" -> 3), so that
    numbers and objects reach an HTTP body as JSON numbers and objects.
    """
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _resolve(whole, variables)
        return render(value, variables)
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    return value


def template_problem(template: str) -> str | None:
    """Why template is malformed ("{{ name" not closed, "{{1x}}"), or None if it is fine."""
    rest = PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        return "has a {{ }} that is not a variable (write {{name}} or {{name|default}})"
    return None
