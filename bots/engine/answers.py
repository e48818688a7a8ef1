"""Validation of a question's answer: each kind accepts a text and gives the value to store."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from bots.engine.patterns import full_match
from bots.engine.text import fold, same_words

ANSWER_KINDS = ("text", "email", "phone", "number", "date", "choice", "regex")
MAX_ANSWER_LENGTH = 1000

_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE_CHARS = re.compile(r"\+?[0-9 ()./-]+")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_SLASH_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_RELATIVE_DAYS = {
    "today": 0,
    "tomorrow": 1,
    "yesterday": -1,
    "hoy": 0,
    "manana": 1,
    "ayer": -1,
    "hoje": 0,
    "amanha": 1,
    "ontem": -1,
}

Answer = tuple[bool, Any]
REJECTED: Answer = (False, None)


def check_answer(
    node: Mapping[str, Any], text: str, *, language: str, now: datetime | None
) -> Answer:
    """(True, value to store) if text is a valid answer to the question node, else (False, None).
    PatternError if the node's regex cannot be run (a definition that was never validated)."""
    text = text.strip()
    if not text or len(text) > MAX_ANSWER_LENGTH:
        return REJECTED
    kind = node.get("validation", "text")
    return _CHECKS[kind](node, text, language, now)


def _text(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    if node.get("min_length", 1) <= len(text) <= node.get("max_length", MAX_ANSWER_LENGTH):
        return True, text
    return REJECTED


def _email(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        return REJECTED
    local, _, domain = text.rpartition("@")
    return True, f"{local}@{domain.lower()}"


def _phone(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    """7 to 15 digits (E.164's longest), with spaces, dots, dashes, brackets and a leading +;
    stored as the digits, with the + if there was one."""
    if not _PHONE_CHARS.fullmatch(text):
        return REJECTED
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15:
        return REJECTED
    return True, ("+" + digits) if text.startswith("+") else digits


def parse_number(text: str, language: str) -> int | float | None:
    """ "1,234.5" in English, "1.234,5" in Spanish and Portuguese (spaces may group thousands);
    a lone separator not followed by three digits is the decimal one ("1,5" and "1.5" are 1.5
    in every language). Whole values come back as int."""
    decimal, thousands = (",", ".") if language in ("es", "pt") else (".", ",")
    text = text.replace(" ", "").replace("\u00a0", "")
    if len(text) > 20:
        return None
    if re.fullmatch(rf"[+-]?(\d{{1,3}}(\{thousands}\d{{3}})+|\d+)(\{decimal}\d+)?", text):
        value = float(text.replace(thousands, "").replace(decimal, "."))
    elif re.fullmatch(r"[+-]?\d+[.,]\d+", text):
        value = float(text.replace(",", "."))
    else:
        return None
    return int(value) if value.is_integer() else value


def _number(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    value = parse_number(text, language)
    if value is None or (node.get("integer") and isinstance(value, float)):
        return REJECTED
    if ("min" in node and value < node["min"]) or ("max" in node and value > node["max"]):
        return REJECTED
    return True, value


def parse_date(text: str, language: str, now: datetime | None) -> date | None:
    """2025-03-14 everywhere; 14/03/2025 in es/pt, 03/14/2025 in en; today, tomorrow, yesterday
    (and hoy, mañana, ayer, hoje, amanhã, ontem) when the caller gave the time."""
    folded = fold(text)
    if folded in _RELATIVE_DAYS:
        return None if now is None else now.date() + timedelta(days=_RELATIVE_DAYS[folded])
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _SLASH_DATE.fullmatch(text):
        first, second, year = (int(part) for part in match.groups())
        month, day = (first, second) if language == "en" else (second, first)
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _bound(value: str, now: datetime | None) -> date | None:
    if value == "today":
        return None if now is None else now.date()
    return date.fromisoformat(value)


def _date(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    value = parse_date(text, language, now)
    if value is None:
        return REJECTED
    low = _bound(node["min"], now) if "min" in node else None
    high = _bound(node["max"], now) if "max" in node else None
    if (low is not None and value < low) or (high is not None and value > high):
        return REJECTED
    return True, value.isoformat()


def _choice(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    """One of the choices, whatever the case, accents or punctuation, or its number (1-based)."""
    choices: list[str] = node["choices"]
    for choice in choices:
        if same_words(text, choice):
            return True, choice
    folded = fold(text)
    if folded.isdigit() and 1 <= int(folded) <= len(choices):
        return True, choices[int(folded) - 1]
    return REJECTED


def _regex(node: Mapping[str, Any], text: str, language: str, now: datetime | None) -> Answer:
    """The tenant's pattern, run by RE2 (bots.engine.patterns: linear time, capped lengths)."""
    matched = full_match(node["pattern"], text, ignore_case=bool(node.get("ignore_case")))
    return (True, text) if matched else REJECTED


_CHECKS: dict[str, Callable[[Mapping[str, Any], str, str, datetime | None], Answer]] = {
    "text": _text,
    "email": _email,
    "phone": _phone,
    "number": _number,
    "date": _date,
    "choice": _choice,
    "regex": _regex,
}


# What a visitor types when they mean to answer a question of that kind and get it wrong:
# "ana @example.com", "ana at example dot com", "anaexample.com", "john.smith.gmail.com" for an
# email; mostly digits for a phone, a number or a date.
_EMAIL_ATTEMPT = re.compile(
    r"@|\b(at|arroba)\b.*\b(dot|punto|ponto)\b|\b(gmail|hotmail|yahoo|outlook|icloud)\b"
    r"|^\S+\.(com|net|org|io|es|pt|br|mx|ar|co|uk|de|fr|info|biz)(\.\w{2})?$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d")


def looks_like_an_answer(node: Mapping[str, Any], text: str) -> bool:
    """Whether text, rejected by the question's check, still looks like a try at answering it
    (then the visitor gets the retry text, never a global intent such as a handoff)."""
    kind = node.get("validation", "text")
    text = text.strip()
    if kind == "email":
        return bool(_EMAIL_ATTEMPT.search(text))
    if kind in ("phone", "number", "date"):
        digits = len(_DIGITS.findall(text))
        return digits > 0 and digits * 2 >= len(text.replace(" ", ""))
    if kind == "choice":
        return any(fold(text) == fold(choice) for choice in node.get("choices", ()))
    return False
