"""Tenants' regular expressions: compiled and run by RE2, in time linear in the text.

Python's `re` backtracks: a pattern such as `(a|a?)+$` takes exponential time on an answer of
a few dozen characters, and no heuristic over the pattern's text catches every such case.
RE2 (google-re2) never backtracks, so every pattern a tenant writes goes through here and
nowhere else: the validator (`pattern_problem`) and the engine (`full_match`) compile the
same way. RE2 has no backreferences and no lookaround; such patterns are refused when the
flow is saved or published.

What one match can cost is bounded on both sides: the pattern is at most
MAX_PATTERN_LENGTH characters and its compiled program at most MAX_PROGRAM_MEMORY bytes
(RE2's own budget, which also bounds its lazily built DFA), and the text is at most
MAX_TEXT_LENGTH characters.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_LENGTH = 200
MAX_TEXT_LENGTH = 300
MAX_PROGRAM_MEMORY = 1 << 20  # RE2's max_mem (its default is 8 MB)
_CACHED_PATTERNS = 128  # at most this many DFAs of MAX_PROGRAM_MEMORY each

_LOOKAROUND = ("(?=", "(?!", "(?<=", "(?<!")


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message completes "pattern ..." for the flow's author."""


def _explain(detail: str) -> str:
    """RE2's parse error ("invalid perl operator: (?<=") in the words of a flow's author."""
    if any(detail.endswith(f"operator: {lookaround}") for lookaround in _LOOKAROUND):
        return (
            "uses lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which RE2 syntax does not "
            "have; match the text itself instead"
        )
    if detail.startswith("invalid escape sequence: \\") and detail[-1:].isdigit():
        return f"uses a backreference ({detail.rsplit(' ', 1)[-1]}), which RE2 syntax does not have"
    if detail == "invalid escape sequence: \\Z":
        return "uses \\Z, which RE2 syntax writes \\z (or leave it out: the whole text must match)"
    if detail.startswith("invalid repetition size"):
        count = detail.rsplit(" ", 1)[-1]
        return f"repeats more than 1000 times in all (at {count}), the most RE2 allows"
    if detail.startswith("pattern too large"):
        return "is too large once compiled: use smaller repetition counts, or + and *"
    return f"is not a valid regular expression in RE2 syntax: {detail}"


@lru_cache(maxsize=_CACHED_PATTERNS)
def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Any:
    """The compiled pattern (re2's regexp object); PatternError if RE2 cannot run it."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"must be at most {MAX_PATTERN_LENGTH} characters long")
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the author's error, not ours
    options.never_capture = True  # only "does it match" is asked: the DFA alone answers it
    options.case_sensitive = not ignore_case
    options.max_mem = MAX_PROGRAM_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(_explain(str(detail))) from None


def pattern_problem(pattern: str, *, ignore_case: bool = False) -> str | None:
    """Why pattern cannot be used (completing "pattern ..."), or None if it can."""
    try:
        compile_pattern(pattern, ignore_case=ignore_case)
    except PatternError as exc:
        return str(exc)
    return None


def full_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Whether all of text matches pattern; a text over MAX_TEXT_LENGTH characters never does.
    PatternError if the pattern cannot be run (a definition that was never validated)."""
    if len(text) > MAX_TEXT_LENGTH:
        return False
    return compile_pattern(pattern, ignore_case=ignore_case).fullmatch(text) is not None
