"""The one input-cleaning step at the doors: webhooks, the REST API, the sockets' frames.

Whatever comes from outside is read here before any service sees it, so that a value the
database or the code cannot take is refused (or, for free text, repaired) at the door with
the name of its field, and never becomes a 500, a hang, or a lost message beside it:

- JSON is read with orjson (no ``NaN``/``Infinity``, no lone surrogates but in webhooks,
  where ``scrubbed`` replaces them; integers past 64 bits as floats) and refused past
  ``MAX_DEPTH`` levels of nesting;
- free text is normalised (NFC), its NUL characters dropped and lone surrogates replaced
  (PostgreSQL stores neither), and cut or refused past its limit;
- ids are strings (or whole numbers) of at most their column's length, with no control
  characters; numeric ids are ASCII digits within a database key's range;
- numbers and timestamps are bounded.

A refusal is an :class:`InputError`: a ``ValidationFailed`` naming the field, which every
door already turns into its own shape (a 400 whose JSON names the field, an error frame).
"""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from chattonic.core.errors import ValidationFailed

# JSON nested deeper than this is refused (the deepest documented payload, a WhatsApp
# interactive reply, is about 10 levels; a flow definition about 8).
MAX_DEPTH = 32
# The database's keys are 64-bit signed integers.
MAX_KEY = 2**63 - 1
# The id columns (external ids, recipients, identities) hold 200 characters.
MAX_ID_LENGTH = 200
# A platform's clock may run a little ahead of ours; a timestamp further ahead is not one.
MAX_CLOCK_SKEW = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SURROGATES = range(0xD800, 0xE000)


class InputError(ValidationFailed):
    """A value refused at the door; ``field`` names it (dotted path into the document)."""

    def __init__(self, field: str, message: str, *, code: str = "invalid"):
        super().__init__(f"{field}: {message}" if field else message, code=code)
        self.field = field or "body"
        self.reason = message
        self.fields = {self.field: [message]}


# --- JSON ------------------------------------------------------------------------------------


def loads(
    raw: bytes | bytearray | memoryview | str, *, field: str = "body", surrogates: bool = False
) -> Any:
    """A JSON document, at most ``MAX_DEPTH`` deep; InputError (code ``bad_json``) when it
    is not JSON, has NaN or Infinity, a lone surrogate, or is nested too deep.

    ``surrogates``: take lone surrogates escaped in strings (``"\\ud800"``), for ``scrubbed``
    to replace: what a platform sends in one message must not cost the others of its batch."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not (surrogates and "surrogate" in str(exc)):
            raise InputError(field, f"Not valid JSON ({exc}).", code="bad_json") from None
        value = _loads_with_surrogates(raw, field)
    check_depth(value, field=field)
    return value


def _loads_with_surrogates(raw: bytes | bytearray | memoryview | str, field: str) -> Any:
    def refuse(constant: str):
        raise ValueError(f"{constant} is not a number JSON has")

    try:
        text = bytes(raw).decode("utf-8") if not isinstance(raw, str) else raw
        value = json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's stack
        raise InputError(field, f"Not valid JSON ({exc}).", code="bad_json") from None
    check_depth(value, field=field)  # before walking it
    # As orjson reads them: integers past 64 bits as floats (the documents' encoder takes no
    # more).
    return _ints_bounded(value)


def _ints_bounded(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_KEY - 1 <= value < 2**64:
        return float(value)
    if isinstance(value, dict):
        return {k: _ints_bounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints_bounded(v) for v in value]
    return value


def check_depth(value: Any, *, field: str = "body", max_depth: int = MAX_DEPTH) -> None:
    """InputError when ``value`` nests lists and objects deeper than ``max_depth``. A flat
    object (most frames a socket reads: strings, numbers, booleans) is not walked."""
    if max_depth >= 1 and type(value) is dict:
        for child in value.values():  # a loop, not any() over a generator: every frame
            if isinstance(child, _CONTAINERS):
                break
        else:
            return
    _walk_depth(value, field=field, max_depth=max_depth)


_CONTAINERS = (dict, list, tuple)


def _walk_depth(value: Any, *, field: str, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if level > max_depth:
            raise InputError(field, f"Nested deeper than {max_depth} levels.", code="too_deep")
        stack.extend((child, level + 1) for child in children)


def nul_free(value: Any, *, field: str = "") -> None:
    """InputError naming the first string (or key) of a document that holds a NUL character,
    which no text column or PostgreSQL's JSON can store."""
    stack = [(value, field)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InputError(path, "NUL characters are not allowed.")
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and "\x00" in key:
                    raise InputError(path or "body", "NUL characters are not allowed in names.")
                stack.append((child, child_path))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item))


def scrubbed(value: Any) -> Any:
    """A copy of a document (as JSON decodes it) with every string cleaned as ``clean_text``
    cleans it: for what a platform sends, stored as it came but storable."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {(clean_text(k) if isinstance(k, str) else k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


# --- Text ------------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """NFC, without NUL characters, lone surrogates replaced by U+FFFD. ASCII without NUL (most
    of what visitors type) is all that already: it is returned as it is, without a pass."""
    if value.isascii() and "\x00" not in value:
        return value
    if "\x00" in value:
        value = value.replace("\x00", "")
    if any(ord(c) in _SURROGATES for c in value):
        value = "".join("\ufffd" if ord(c) in _SURROGATES else c for c in value)
    return unicodedata.normalize("NFC", value)


def text(
    value: Any,
    *,
    field: str,
    max_length: int | None = None,
    cut: bool = False,
    default: str | None = "",
) -> str:
    """A string field, cleaned (``clean_text``); None (or missing) is ``default`` (refused
    when ``default`` is None). Past ``max_length`` characters it is refused, or cut when
    ``cut``."""
    if value is None:
        if default is None:
            raise InputError(field, "Required.")
        return default
    if not isinstance(value, str):
        raise InputError(field, "Must be a string.")
    value = clean_text(value)
    if max_length is not None and len(value) > max_length:
        if not cut:
            raise InputError(field, f"At most {max_length} characters.")
        value = value[:max_length]
    return value


def optional_text(value: Any, *, field: str, max_length: int | None = None) -> str | None:
    """``text`` where None stays None; cut past ``max_length`` (a name, a title)."""
    if value is None:
        return None
    return text(value, field=field, max_length=max_length, cut=True)


def identifier(value: Any, *, field: str, max_length: int = MAX_ID_LENGTH) -> str:
    """An id a platform gives (a message id, a sender): a non-empty string or whole number
    of at most ``max_length`` characters, without control characters or surrogates."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(field, "Must be a string or a whole number.")
    value = str(value)
    if not value:
        raise InputError(field, "Required.")
    if len(value) > max_length:
        raise InputError(field, f"At most {max_length} characters.")
    # Printable ASCII has neither (the common case: checked without a walk in Python).
    if not (value.isascii() and value.isprintable()) and any(
        ord(c) < 0x20 or ord(c) == 0x7F or ord(c) in _SURROGATES for c in value
    ):
        raise InputError(field, "Control characters are not allowed.")
    return value


# --- Numbers ---------------------------------------------------------------------------------


def integer(value: Any, *, field: str, minimum: int, maximum: int) -> int:
    """A whole number from ``minimum`` to ``maximum``: a JSON integer, or a string of ASCII
    digits (with an optional minus sign); booleans, floats and other digits are refused."""
    if isinstance(value, str) and _ascii_integer(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise InputError(field, "Must be a whole number.")
    if not minimum <= number <= maximum:
        raise InputError(field, f"Must be from {minimum} to {maximum}.")
    return number


def key(value: Any, *, field: str) -> int:
    """A database id: a positive whole number within the keys' range."""
    return integer(value, field=field, minimum=1, maximum=MAX_KEY)


def _ascii_integer(value: str) -> bool:
    digits = value[1:] if value[:1] == "-" else value
    return 0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()


def number(value: Any, *, field: str, minimum: float, maximum: float) -> float:
    """A finite number from ``minimum`` to ``maximum`` (a JSON number or a numeric string)."""
    if isinstance(value, bool):
        raise InputError(field, "Must be a number.")
    if isinstance(value, str):
        try:
            value = float(value.strip()) if len(value) <= 40 else None
        except ValueError:
            value = None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(field, "Must be a number.")
    if not minimum <= value <= maximum:
        raise InputError(field, f"Must be from {minimum:g} to {maximum:g}.")
    return value


def timestamp(value: Any, *, field: str, millis: bool = False) -> datetime:
    """An aware UTC datetime from a Unix timestamp (seconds, or milliseconds), from 1970 to
    a day ahead of our clock."""
    latest = datetime.now(tz=UTC) + MAX_CLOCK_SKEW
    bound = (latest - EPOCH).total_seconds() * (1000 if millis else 1)
    seconds = number(value, field=field, minimum=0, maximum=bound)
    return EPOCH + timedelta(seconds=seconds / 1000 if millis else seconds)


class KeyConverter:
    """``<key:name>`` in a URL: a database id of ASCII digits (18 at most: always within the
    64-bit keys' range), so another segment is a JSON 404, never a failed lookup."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
